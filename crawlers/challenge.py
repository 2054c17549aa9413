"""Recognise anti-bot interstitials so they are archived as evidence, never parsed as the listing.

Markers come from the challenge pages seen on government sites: 加速乐/知道创宇 (``__jsl_clearance``),
Cloudflare (``cf-chl``, "Just a moment..."), Akamai, Tencent/Aliyun WAF, F5 and generic captchas.
"""

from __future__ import annotations

import re

CHALLENGE_STATUSES = {202, 403, 405, 412, 429, 503, 521}
_BODY_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("jiasule", r"__jsl_clearance|jsl_clearance_s|jiasule"),
        ("cloudflare", r"cf-chl|cf_chl_|challenge-platform|<title>\s*Just a moment"),
        ("akamai", r"Reference&#32;&#35;|akamai.*access denied|_abck"),
        ("aliyun-waf", r"aliyun_waf|acw_sc__v2|_waf_bd8ce2ce37"),
        ("tencent-waf", r"waf\.tencent|TencentCloud.*WAF"),
        ("f5", r"TS[0-9a-f]{6,}=.*location|The requested URL was rejected"),
        ("captcha", r"g-recaptcha|h-captcha|geetest|滑动验证|请输入验证码|人机验证"),
        ("blocked", r"访问被拒绝|您的访问被阻断|疑似黑客攻击|Access Denied"),
    )
)
_HEADER_MARKERS = (("cloudflare", "cf-mitigated"), ("aliyun-waf", "x-waf-uuid"))
_JS_COOKIE = re.compile(r"document\.cookie\s*=.*?(location\.(href|reload|replace)|window\.location)",
                        re.IGNORECASE | re.DOTALL)


def detect_challenge(status: int, headers: dict[str, str], text: str) -> str | None:
    """Name the challenge this response looks like, or None when it looks like real content."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, header in _HEADER_MARKERS:
        if header in lowered:
            return name
    head = text[:20_000]
    for name, pattern in _BODY_MARKERS:
        if pattern.search(head):
            return name
    # A short page whose script only sets a cookie and reloads is a JS cookie challenge.
    if len(head) < 8_000 and _JS_COOKIE.search(head):
        return "js-cookie"
    if status in CHALLENGE_STATUSES and "<script" in head.lower() and len(head) < 4_000:
        return f"http-{status}-script"
    return None
