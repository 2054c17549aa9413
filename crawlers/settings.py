"""Scrapy settings for listwatch crawls. ``crawlers.run.crawl_settings`` layers per-source values on top.

Every listwatch-specific setting is declared here once, with its default and what it does.
"""

from importlib.util import find_spec

BOT_NAME = "listwatch"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
# uvloop under the reactor: 2-6 % less CPU for the same crawl (README, "Crawls run on uvloop"). Processes install
# it with the reactor (install_reactor(TWISTED_REACTOR, ASYNCIO_EVENT_LOOP)). A virtualenv made before uvloop
# became a dependency crawls on asyncio's own loop until infra/setup.sh is run again.
ASYNCIO_EVENT_LOOP = "uvloop.Loop" if find_spec("uvloop") else None
ROBOTSTXT_OBEY = True
USER_AGENT = "listwatch/0.1 (+https://example.org/listwatch; set politeness.user_agent with your contact)"
COOKIES_ENABLED = True
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False   # never open a control port from a crawl
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
REDIRECT_MAX_TIMES = 10
DOWNLOAD_WARNSIZE = 0
# Scrapy starts this many asyncio worker tasks (plus one filling their queue) for every callback's output
# (default 100). Ours yield requests and items that no pipeline waits on (items go to the feed only), so one
# worker takes them as fast as sixteen: 100 tasks per response cost ~10 % of a static crawl's CPU, 16 another
# ~8 % of an unchanged re-crawl's, where most responses yield a single item.
CONCURRENT_ITEMS = 1
# Scrapy's downloader stats re-serialise every request (request_httprepr) and measure every response to count
# bytes nobody here reads (the crawl report and the WARC writer count what matters): ~3 % of an unchanged
# re-crawl's CPU.
DOWNLOADER_STATS = False
LOG_LEVEL = "INFO"

# Per-response layers that do nothing for these crawls: depth (no DEPTH_LIMIT or DEPTH_PRIORITY; pagination
# has max_pages) and a debugging aid warning about meta copied from responses (the spider copies none). URL
# length: Scrapy's limit dropped a detail request with the listing item it carries, silently; the fetch policy
# bounds length instead, as a page problem that keeps the item (crawlers/fetch_policy.py).
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
}
EXTENSIONS = {"crawlers.capture.WarcCapture": 0, "crawlers.stopping.PromptStop": 0}
# The fetch policy (960) sits outside the capture (950): a refused response is never archived. The source's
# own headers (940) are added before the capture sees the request (which writes their values redacted).
DOWNLOADER_MIDDLEWARES = {
    # No spider here sets allowed_domains (the fetch policy decides where a crawl may go): offsite filtering
    # would let everything through, at a URL parse and a signal per request.
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "crawlers.secret_headers.SourceHeadersMiddleware": 940,
    "crawlers.capture.WarcCaptureMiddleware": 950,
    "crawlers.fetch_policy.FetchPolicyMiddleware": 960,
    "crawlers.spiders.direct.FailedRequestMiddleware": 990,
}

# -- listwatch settings ------------------------------------------------------------------------
LISTWATCH_SPOOL_DIR = ""          # where WARC files are written (capture is off when empty)
LISTWATCH_RUN_DIR = ""            # where run.json (the crawl report) and items.jsonl go
LISTWATCH_SOURCE_ID = "adhoc"     # warcinfo isPartOf, and the WARC file name prefix
LISTWATCH_RUN_ID = ""             # the crawl run this process performs
LISTWATCH_WARC_PREFIX = ""        # WARC file names are {prefix}-{serial:05d}.warc.gz
LISTWATCH_WARC_MAX_SIZE = 1_000_000_000   # roll over to a new WARC file past this many bytes
LISTWATCH_OPERATOR = ""           # warcinfo operator (who runs this crawler, with contact)
LISTWATCH_CHROMIUM = "/usr/bin/chromium"  # browser executable for rendered sources
LISTWATCH_SECRET_HEADERS: list[str] = []  # request header names written to WARCs as [redacted] (names only)
LISTWATCH_CONDITIONAL_GET = True  # ask with the validators of the last capture (a 304 becomes a revisit)
LISTWATCH_REVALIDATE = True       # confirm unchanged detail pages outside Scrapy's stack (crawlers.revalidate)

# Chromium flags that keep a headless browser from reaching out to the internet on its own.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
