"""Compile a rule's selectors when the source is loaded, so ``sources check`` finds what a crawl would trip on.

Nothing is fetched. CSS is translated as parsel translates it (``::text``, ``::attr(x)`` included), XPath is
compiled by lxml and its function calls are checked against XPath 1.0 (the only version lxml runs; XPath 2.0
functions such as ``lower-case()`` or ``matches()`` compile but fail on the first matching node at crawl time),
plus the EXSLT ``re:``/``set:`` functions and parsel's ``has-class()``. JSONPath is parsed by jsonpath-ng.
"""

from __future__ import annotations

import re
from functools import lru_cache

XPATH_1_FUNCTIONS = frozenset([
    "last", "position", "count", "id", "local-name", "namespace-uri", "name", "string", "concat", "starts-with",
    "contains", "substring-before", "substring-after", "substring", "string-length", "normalize-space", "translate",
    "boolean", "not", "true", "false", "lang", "number", "sum", "floor", "ceiling", "round",
    "comment", "text", "node", "processing-instruction",  # node tests
    "has-class", "and", "or", "div", "mod",  # parsel's extension; operators before a parenthesis
])
_EXTENSIONS = re.compile(r"^(re|set):[\w-]+$")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_CALL = re.compile(r"(?<![\w.@$:-])([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)\s*\(")


@lru_cache(maxsize=1024)
def check_css(css: str) -> str | None:
    """None when ``css`` is a valid selector, else why not."""
    from cssselect import SelectorError
    from parsel.csstranslator import HTMLTranslator

    try:
        HTMLTranslator().css_to_xpath(css)
    except (SelectorError, ValueError, NotImplementedError) as exc:
        return f"CSS {css!r} is not a valid selector: {exc}"
    return None


@lru_cache(maxsize=1024)
def check_xpath(xpath: str) -> str | None:
    """None when ``xpath`` is valid XPath 1.0 (with EXSLT re:/set:), else why not."""
    from lxml import etree

    try:
        etree.XPath(xpath, namespaces={"re": "http://exslt.org/regular-expressions", "set": "http://exslt.org/sets"})
    except etree.XPathError as exc:
        return f"XPath {xpath!r} does not compile: {exc}"
    for name in _CALL.findall(_QUOTED.sub("''", xpath)):
        if name not in XPATH_1_FUNCTIONS and not _EXTENSIONS.match(name):
            return f"XPath {xpath!r} calls {name}(), which is not an XPath 1.0 function (lxml runs XPath 1.0 only)"
    return None


@lru_cache(maxsize=1024)
def check_jsonpath(expr: str) -> str | None:
    from jsonpath_ng.ext import parse

    try:
        parse(expr)
    except Exception as exc:  # jsonpath_ng raises bare Exception subclasses on syntax errors
        return f"JSONPath {expr!r} does not parse: {exc}"
    return None
