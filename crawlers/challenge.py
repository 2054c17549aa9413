"""Recognise anti-bot interstitials so they are archived as evidence, never parsed as the listing.

Markers come from the challenge pages seen on government sites: 加速乐/知道创宇 (``__jsl_clearance``),
Cloudflare (``cf-chl``, "Just a moment..."), Akamai, Tencent/Aliyun WAF, F5 and generic captchas.

Detection runs on every page, so it must cost nothing on ordinary ones: the body is looked at only where
a challenge is plausible — a challenge status, a short body, or a script-only shell (scripts and almost
no links: the shape of every interstitial). An ordinary page costs a length check and one ``str.count``.
Where a body is looked at, one pass over its lower-cased head checks every marker's literals (C-speed
substring searches; the case-insensitive regexes cost ~10x more on CJK text), and only a page holding one
is matched against the marker regexes, in table order, to name it.
"""

from __future__ import annotations

import re

CHALLENGE_STATUSES = {202, 403, 405, 412, 429, 503, 521}
SCAN_CHARS = 20_000    # markers sit in the head of an interstitial
SHORT_BODY = 2_000     # interstitials are small: a body under this many characters is always looked at
SHELL_LINKS = 5        # a page with scripts and fewer links than this is a shell worth looking at
JS_COOKIE_MAX = 8_000  # the cookie-and-reload script check applies to pages under this many characters

# (name, regex, literals): the regex (case-insensitive) decides; each way it can match contains one of the
# lower-case literals, so a head without any literal cannot match. Keep the two in step.
_MARKERS = (
    ("jiasule", r"__jsl_clearance|jsl_clearance_s|jiasule", ("jsl_clearance", "jiasule")),
    ("cloudflare", r"cf-chl|cf_chl_|challenge-platform|<title>\s*Just a moment",
     ("cf-chl", "cf_chl_", "challenge-platform", "just a moment")),
    ("akamai", r"Reference&#32;&#35;|akamai.*access denied|_abck", ("reference&#32;&#35;", "access denied", "_abck")),
    ("aliyun-waf", r"aliyun_waf|acw_sc__v2|_waf_bd8ce2ce37", ("aliyun_waf", "acw_sc__v2", "_waf_bd8ce2ce37")),
    ("tencent-waf", r"waf\.tencent|TencentCloud.*WAF", ("waf.tencent", "tencentcloud")),
    ("f5", r"TS[0-9a-f]{6,}=.*location|The requested URL was rejected", ("location", "the requested url was rejected")),
    ("captcha", r"g-recaptcha|h-captcha|geetest|滑动验证|请输入验证码|人机验证",
     ("g-recaptcha", "h-captcha", "geetest", "滑动验证", "请输入验证码", "人机验证")),
    ("blocked", r"访问被拒绝|您的访问被阻断|疑似黑客攻击|Access Denied",
     ("访问被拒绝", "您的访问被阻断", "疑似黑客攻击", "access denied")),
)
_BODY_MARKERS = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern, _ in _MARKERS)
_LITERALS = tuple(dict.fromkeys(literal for _, _, literals in _MARKERS for literal in literals))
_HEADER_MARKERS = (("cloudflare", "cf-mitigated"), ("aliyun-waf", "x-waf-uuid"))
_JS_COOKIE = re.compile(r"document\.cookie\s*=.*?(location\.(href|reload|replace)|window\.location)",
                        re.IGNORECASE | re.DOTALL)


def detect_challenge(status: int, headers: dict[str, str], text: str) -> str | None:
    """Name the challenge this response looks like, or None when it looks like real content."""
    if headers:
        names = {k.lower() for k in headers}
        for name, header in _HEADER_MARKERS:
            if header in names:
                return name
    head = text[:SCAN_CHARS]
    challenge_status = status in CHALLENGE_STATUSES
    if not (challenge_status or len(head) < SHORT_BODY or is_shell(head)):
        return None
    lowered = head.lower()
    if any(literal in lowered for literal in _LITERALS):
        for name, pattern in _BODY_MARKERS:
            if pattern.search(head):
                return name
    # A short page whose script only sets a cookie and reloads is a JS cookie challenge.
    if len(head) < JS_COOKIE_MAX and "document.cookie" in lowered and _JS_COOKIE.search(head):
        return "js-cookie"
    if challenge_status and len(head) < 4_000 and "<script" in lowered:
        return f"http-{status}-script"
    return None


def is_shell(head: str) -> bool:
    """Scripts and hardly any links: the shape of an interstitial.

    Scripts first (most pages without any end here) and links counted only up to ``SHELL_LINKS``: on CJK text
    (two bytes a character) each full scan of a 20 KB head costs ~10 µs, and ``str.count`` always scans it all.
    """
    if _SCRIPT_TAG.search(head) is None:
        return False
    at = -1
    for _ in range(SHELL_LINKS):
        at = head.find("href", at + 1)
        if at < 0:
            return True
    return False


_SCRIPT_TAG = re.compile("<(?:script|SCRIPT|Script)")   # one pass for the three spellings looked for
