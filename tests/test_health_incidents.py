"""Source health over manual crawls (``listwatch crawl``, no daemon): one alert when an incident starts, one
"recovered" when it ends, delivered to a real webhook on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from crawlers.demo.site import DemoSite
from scheduler.alerts import deliver_due
from scheduler.alerts.subscriptions import subscribe
from scheduler.settings import Settings
from tests.alerts_support import Endpoint
from tests.conftest import DEMO_SOURCES, run_listwatch
from tests.programs_support import pipeline_catalog


def test_failing_failing_ok_gives_one_problem_alert_and_one_recovered(tmp_path: Path, demo_site: DemoSite) -> None:
    endpoint = Endpoint().start()
    data_dir = tmp_path / "data"
    catalog = pipeline_catalog(data_dir)
    try:
        subscribe(catalog, "ops", f"http://{endpoint.url}/health", channel="webhook", kinds=["source_health"])
        delivered: list[list[tuple[str, str]]] = []
        for fault in (None, "503", "503", None):    # a healthy baseline, then failing, failing, ok
            demo_site.set_fault("/tenders/list.html", fault)
            crawled = run_listwatch(["crawl", "--json", str(DEMO_SOURCES / "tenders.yaml")], data_dir=data_dir,
                                    site=demo_site)
            [report] = json.loads(crawled.stdout)
            assert report["status"] == ("failed" if fault else "complete"), report
            deliver_due(catalog, Settings(data_dir=data_dir))
            delivered.append([(r.json["event"]["kind"], r.json["event"]["summary"]) for r in endpoint.at("/health")])
    finally:
        endpoint.stop()
        catalog.dispose()
    # One alert when the incident starts, none for its second failing crawl, one "recovered" when it ends.
    assert [len(d) for d in delivered] == [0, 1, 1, 2], delivered
    (kind, summary), (recovered_kind, recovered) = delivered[-1]
    assert kind == "incomplete" and "503" in summary, delivered
    assert recovered_kind == "source_health" and recovered.startswith("recovered") and "incomplete" in recovered
