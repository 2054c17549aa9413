"""Challenge detection, case by case: the marker table, where the body is scanned, and ordinary pages."""

from __future__ import annotations

import pytest

from crawlers.challenge import detect_challenge
from crawlers.demo import assets
from crawlers.demo.pages import Response, html_page, mofcom_list

LINKS = "".join(f'<li><a href="/p/{i}.html">第{i}期 研修班</a></li>' for i in range(30))
PROSE = "<p>" + "发展中国家经济管理官员研修班公告内容。" * 1200 + "</p>"  # ~23,000 characters


def page(body: str, links: str = "") -> str:
    return html_page("页面", f"<ul>{links}</ul>{body}")


def shell(script: str) -> str:
    """A script-only interstitial padded past the short-body size (no links)."""
    return page(f"<script>{script}</script>" + "<!--" + "x" * 12_000 + "-->")


def demo(response: Response) -> tuple[int, dict[str, str], str]:
    charset = "gbk" if "gbk" in response.content_type.lower() else "utf-8"
    return response.status, dict(response.headers), response.body.decode(charset)


CASES = [
    # (label, status, headers, text, expected)
    ("jiasule 412 cookie script", 412, {},
     "<script>document.cookie=('__jsl_clearance_s=1');location.href=location.pathname</script>", "jiasule"),
    ("cloudflare by header", 503, {"cf-mitigated": "challenge"}, "<title>Just a moment...</title>", "cloudflare"),
    ("cloudflare header on a long 200 page", 200, {"CF-Mitigated": "challenge"}, page(PROSE, LINKS), "cloudflare"),
    ("aliyun header", 200, {"X-WAF-UUID": "1"}, page(PROSE, LINKS), "aliyun-waf"),
    ("generic cookie-and-reload", 200, {}, "<script>document.cookie='a=b';window.location.reload()</script>",
     "js-cookie"),
    ("demo jsl challenge", *demo(assets.jsl_challenge()), "jiasule"),
    ("demo cloudflare challenge", *demo(assets.cloudflare_challenge()), "cloudflare"),
    ("cloudflare body without header", 403, {}, demo(assets.cloudflare_challenge())[2], "cloudflare"),
    ("akamai", 403, {}, page("<h1>Access Denied</h1><p>Reference&#32;&#35;18.a1b2</p>"), "akamai"),
    ("aliyun acw_sc__v2 short", 200, {}, page("<script>var arg1='3F2A';acw_sc__v2(arg1)</script>"), "aliyun-waf"),
    ("aliyun acw_sc__v2 shell", 200, {}, shell("var arg1='3F2A';acw_sc__v2(arg1)"), "aliyun-waf"),
    ("tencent waf", 403, {}, page("<p>waf.tencent-cloud.com</p>"), "tencent-waf"),
    ("f5 rejected", 200, {}, page("<p>The requested URL was rejected. Please consult with your administrator.</p>"),
     "f5"),
    ("captcha short", 200, {}, page('<div class="g-recaptcha" data-sitekey="x"></div>'), "captcha"),
    ("chinese captcha shell", 200, {}, shell("initGeetest({})") + "请完成滑动验证", "captcha"),
    ("blocked chinese", 200, {}, page("<h1>访问被拒绝</h1>"), "blocked"),
    ("blocked 403 long", 403, {}, page(PROSE + "<p>您的访问被阻断</p>", LINKS), None),  # marker past 20,000 chars
    ("blocked 403 in head", 403, {}, page("<p>您的访问被阻断</p>" + PROSE, LINKS), "blocked"),
    ("first marker in table order wins", 200, {}, page("<p>Access Denied</p><div class='g-recaptcha'></div>"),
     "captcha"),
    ("503 script shell", 503, {}, "<html><script>setTimeout(function(){location.reload()},5000)</script></html>",
     "http-503-script"),
    ("429 plain text", 429, {}, "Too Many Requests", None),
    ("ordinary listing", 200, {"Server": "nginx"},
     "<html><body><ul>" + "<li><a href='/a'>培训班</a></li>" * 30 + "</ul><script>var x=1;</script></body></html>",
     None),
    ("ordinary demo listing", *demo(mofcom_list(0, 0)), None),
    ("ordinary 6 KB bench page", *demo(assets.bench_page(3, 100)), None),
    ("ordinary 40 KB bench page", *demo(assets.bench_page(3, 100, 40)), None),
    ("ordinary long page with a script", 200, {}, page(PROSE + "<script>var a=1;</script>", LINKS), None),
    # Ordinary long pages are not scanned: an article that quotes a marker is not an interstitial.
    ("long article quoting a marker", 200, {}, page("<p>如何处理 Access Denied 错误</p>" + PROSE, LINKS), None),
    ("long page with a captcha form", 200, {}, page('<div class="g-recaptcha"></div>' + PROSE, LINKS), None),
]


@pytest.mark.parametrize(("label", "status", "headers", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_challenge_table(label: str, status: int, headers: dict[str, str], text: str, expected: str | None) -> None:
    assert detect_challenge(status, headers, text) == expected
