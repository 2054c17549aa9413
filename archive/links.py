"""Public links to archived evidence, used in alerts, feeds and API answers.

Replay goes through pywb (``listwatch replay``) with one collection, ``archive``; raw records come
from the HTTP API. Keeping both builders here keeps alerts and the servers in agreement.
"""

from __future__ import annotations

from urllib.parse import quote

REPLAY_COLLECTION = "archive"


def replay_link(replay_base: str, url: str, timestamp: str) -> str:
    """``{replay}/archive/{14-digit timestamp}/{url}``: pywb shows the capture nearest that time."""
    return f"{replay_base.rstrip('/')}/{REPLAY_COLLECTION}/{timestamp[:14]}/{url}"


def record_link(api_base: str, record_id: str) -> str:
    """The raw WARC record, by its WARC-Record-ID (``<urn:uuid:…>``)."""
    return f"{api_base.rstrip('/')}/records/{quote(record_id.strip('<>'), safe=':')}"
