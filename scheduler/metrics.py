"""Prometheus metrics of the daemon, served on ``scheduler.metrics_port`` when it is set.

=========================================  ======================================================
metric                                     meaning
=========================================  ======================================================
``listwatch_runs_total{source,kind,status}``  finished crawl runs
``listwatch_run_failures_total{source}``   runs that failed (crash, limit, no listing page)
``listwatch_items_total{source,kind}``     items extracted
``listwatch_archived_bytes_total{source}`` WARC bytes written
``listwatch_run_seconds{source,kind}``     run wall time (histogram)
``listwatch_last_success_timestamp{source}`` end of the last complete run (Unix time)
``listwatch_alert_backlog``                outbox rows not yet sent
``listwatch_spool_backlog_files``          closed WARCs waiting in the spool
``listwatch_running_crawls``               crawls running now
=========================================  ======================================================
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    """One registry per daemon (no module-level state, so tests can build several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("listwatch_runs", "Finished crawl runs.", ["source", "kind", "status"], registry=r)
        self.failures = Counter("listwatch_run_failures", "Failed crawl runs.", ["source"], registry=r)
        self.items = Counter("listwatch_items", "Items extracted.", ["source", "kind"], registry=r)
        self.archived = Counter("listwatch_archived_bytes", "WARC bytes written.", ["source"], registry=r)
        self.seconds = Histogram("listwatch_run_seconds", "Run wall time.", ["source", "kind"], registry=r,
                                 buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600))
        self.last_success = Gauge("listwatch_last_success_timestamp", "End of the last complete run.",
                                  ["source"], registry=r)
        self.alert_backlog = Gauge("listwatch_alert_backlog", "Outbox rows not yet sent.", registry=r)
        self.spool_backlog = Gauge("listwatch_spool_backlog_files", "Closed WARCs waiting in the spool.",
                                   registry=r)
        self.running = Gauge("listwatch_running_crawls", "Crawls running now.", registry=r)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        start_http_server(port, addr=addr, registry=self.registry)

    def record_run(self, source: str, kind: str, status: str, *, items: int, warc_bytes: int, seconds: float) -> None:
        self.runs.labels(source, kind, status).inc()
        if status == "failed":
            self.failures.labels(source).inc()
        self.items.labels(source, kind).inc(items)
        self.archived.labels(source).inc(warc_bytes)
        self.seconds.labels(source, kind).observe(seconds)
        if status == "complete":
            self.last_success.labels(source).set(time.time())
