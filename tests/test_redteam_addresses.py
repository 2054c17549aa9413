"""Every spelling of loopback, and every non-http scheme, as a detail link and as a redirect, through a real
``listwatch crawl`` of a hostile site whose source allows only its own loopback origin (as the tests'
sources do): nothing reaches the internal service, nothing of it is archived, and each refusal says why."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.conftest import crawl_sources
from tests.hostile import HostileSite, listing_html, source_yaml

SECRET = "SECRET-LOOPBACK-5c1e"
HOSTS = ("2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1", "[::1]", "[::ffff:127.0.0.1]",
         "[::ffff:7f00:1]", "0.0.0.0", "localhost.", "LOCALHOST", "127.0.0.2")
SCHEMES = ("file:///etc/passwd", "ftp://127.0.0.1/secret", "gopher://127.0.0.1:70/_secret")


def test_loopback_in_every_spelling_and_other_schemes_are_never_fetched(tmp_path: Path) -> None:
    with HostileSite() as site, HostileSite() as internal:
        internal.page("/secret", f"<html><body>{SECRET}</body></html>")
        port = internal.url.rsplit(":", 1)[1]
        spelled = [f"http://{host}:{port}/secret" for host in HOSTS]
        for n, target in enumerate([*spelled, *SCHEMES]):
            site.redirect(f"/r/{n}", f"{target}?via={n}" if n < len(spelled) else target)
        links = [(f"{t}?direct={n}", f"Link {n}") for n, t in enumerate(spelled)] + [(t, t) for t in SCHEMES]
        links += [(f"{site.url}/r/{n}", f"Redirect {n}") for n in range(len(spelled) + len(SCHEMES))]
        site.page("/list.html", listing_html(links))
        path = tmp_path / "spellings.yaml"
        path.write_text(source_yaml(site.url, "spellings", extra="detail: {fields: {body: 'body'}}\n"),
                        encoding="utf-8")
        crawl = crawl_sources([path], data_dir=tmp_path / "d")["spellings"]

    assert internal.hits == {}, "nothing was ever sent to the internal service"
    assert SECRET.encode() not in b"".join(gzip.decompress(p.read_bytes()) for p in crawl.warcs)
    assert SECRET not in json.dumps(crawl.items)
    refused = [p["url"] for p in crawl.report["problems"] if p["kind"] == "refused"]
    for n in range(len(spelled)):  # URLs are canonicalised (LOCALHOST → localhost): match their unique query
        assert sum(url.endswith((f"?direct={n}", f"?via={n}")) for url in refused) == 2, (HOSTS[n], refused)
    schemes = {p["url"]: p["message"] for p in crawl.report["problems"] if p["kind"] == "http-302"}
    assert len(schemes) == len(SCHEMES) and all("never followed" in m for m in schemes.values()), schemes
