"""Link parameters that never identify a programme: session ids, anti-forgery tokens, cache busters, click ids.

Many government sites built on Java, PHP, ASP or ColdFusion put the visitor's session in every link
(``detail.jsp;jsessionid=8F3A…``, ``?PHPSESSID=…``, ``?CFID=…&CFTOKEN=…``), a form token
(``?csrf_token=…``) or a timestamp (``?_=1717000000``). The value is new on every crawl, so a key that kept
it would make every programme "new" and the old ones "missing", then "removed", on every crawl. These
parameters are dropped from keys whatever the source's ``key_params_drop`` says (that list is for the
site's own tracking parameters); the crawl still fetches the link exactly as the page gave it.

A name is only a hint: when dropping such a parameter would give two different links on one listing page
the same key, the parameter does identify the items there (``?sid=`` as a subject id), and the extractor
keeps it (:func:`crawlers.extractor` compares with ``keep_session=True``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SESSION_PARAMS = frozenset({
    # server sessions (Java, PHP, ColdFusion, generic)
    "jsessionid", "phpsessid", "sid", "sessid", "sessionid", "session_id", "cfid", "cftoken",
    # anti-forgery tokens
    "csrf", "_csrf", "csrf_token", "csrftoken", "csrfmiddlewaretoken", "xsrf", "_xsrf", "xsrf_token",
    "authenticity_token", "__requestverificationtoken", "_token", "nonce", "_nonce",
    # cache busters (jQuery's ``_``, ExtJS's ``_dc``) and timestamps
    "_", "_dc", "_t", "_ts", "timestamp",
    # click and mail tracking ids
    "fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_eid", "_hsenc", "_hsmi",
})
_PREFIXES = ("utm_", "aspsessionid", "asp.net_sessionid")
# ``;jsessionid=…`` (and other session names) as a path parameter, up to the next ``;``, ``/`` or the end
_PATH_SESSION = re.compile(r";(?:jsessionid|phpsessid|sid|sessionid)=[^;/]*", re.IGNORECASE)
# ASP.NET's cookieless session as a path segment: ``/(S(lit3py55t21z5v55vlm25s55))/detail.aspx``
_ASP_COOKIELESS = re.compile(r"/\((?:[A-Z]\([^()/]*\))+\)(?=/)")


def is_session_param(name: str) -> bool:
    """True for a query parameter that carries a session, token, timestamp or click id (any case)."""
    lowered = name.lower()
    return lowered in SESSION_PARAMS or lowered.startswith(_PREFIXES)


def strip_path_session(path: str) -> str:
    """``/d/1.html;jsessionid=8F3A`` → ``/d/1.html``; ``/(S(x1y2))/d.aspx`` → ``/d.aspx``."""
    return _ASP_COOKIELESS.sub("", _PATH_SESSION.sub("", path))


def without_session(value: str) -> str:
    """A link with its session parameters removed, for comparing two captures' field values: the same
    detail link with a new session id is not an edit. Other text is returned as it is."""
    if not value[:8].lower().startswith(("http://", "https://", "/")):
        return value
    parts = urlsplit(value)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_session_param(k)]
    return urlunsplit((parts.scheme, parts.netloc, strip_path_session(parts.path), urlencode(query), parts.fragment))
