"""The web interface over a big catalog: 200,000 programmes and 1,000,000 captures in SQLite.

    .venv/bin/python -m tests.benchmarks.bench_web [--programmes N] [--captures N] [--requests N]

Target (issue 10): the programme list, a search and a programme page each answer in p95 ≤ 300 ms on this
machine. Requests go through the whole app (FastAPI routing, access check, catalog queries, Jinja2 rendering)
in process; ``/healthz`` is the baseline measured in the same run. Searches: a common two-character Chinese
word (expanded to the trigrams that begin with it), a four-character one (an FTS5 trigram phrase), both kinds
together, and a rare two-character word (few matches: looked up, not found by walking the sort order).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from archive.catalog import open_catalog
from archive.indexer import safe_surt
from archive.programs.store import posted_date, search_text

REGIONS = ("东盟国家", "非洲国家", "拉美和加勒比国家", "太平洋岛国", "中亚国家", "阿拉伯国家", "南亚国家",
           "发展中国家", "上海合作组织国家", "葡语国家", "东欧国家", "加勒比国家", "西非国家", "东非国家",
           "南部非洲国家", "湄公河国家")
TOPICS = ("数字经济", "杂交水稻技术", "卫星遥感应用", "港口管理", "防灾减灾", "智慧城市建设", "贸易便利化",
          "经济特区建设", "竹藤产业发展", "职业教育合作", "公共卫生管理", "海关监管", "电子商务", "清洁能源",
          "农业机械化", "水资源管理", "减贫经验", "中医药", "铁路运营管理", "网络安全", "食品安全", "金融监管",
          "旅游管理", "质量标准")
KINDS = ("研修班", "研讨会", "培训班", "官员研修班", "部级研讨会", "技术培训班")
CITIES = ("北京市朝阳区", "上海市浦东新区", "浙江省杭州市", "广东省广州市", "四川省成都市", "湖南省长沙市",
          "云南省昆明市")
SOURCES = ("bench-mofcom", "bench-academy", "bench-tenders", "bench-api", "bench-feed")
RARE = "稀有"


def seed(url: str, programmes: int, captures: int) -> None:
    """Programmes with one version each (a tenth edited once, with a changed event), and captures: each version's
    listing and detail capture, the rest filler captures of listing pages over time."""
    catalog = open_catalog(url)
    raw = catalog.engine.raw_connection()
    cur = raw.cursor()
    rnd = random.Random(10)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    triggers = cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'programs'"
                           ).fetchall()
    for name, _ in triggers:          # one FTS rebuild after the bulk load instead of a trigger per row
        cur.execute(f"DROP TRIGGER {name}")
    cur.execute("BEGIN")
    for sid in SOURCES:
        cur.execute("INSERT INTO sources (id, name, config_sha256, created_at) VALUES (?, ?, '', ?)",
                    (sid, f"{sid} (benchmark)", start.isoformat(" ")))
    cur.execute("INSERT INTO warc_files (id, name, source_id, key, size, sha256, state, created_at, problem) "
                "VALUES (1, 'bench.warc.gz', 'bench', 'bench/bench.warc.gz', 0, '', 'stored', '2026-01-01', '')")
    prog_sql = ("INSERT INTO programs (id, source_id, key, title, fields, status, first_seen, last_seen, missing_runs, "
                "removal_reason, search_text, posted, last_record_id, detail_url) "
                "VALUES (?,?,?,?,?,?,?,?,0,'',?,?,?,?)")
    version_sql = ("INSERT INTO program_versions (program_id, run_id, seen_at, fields, listing_record_id, "
                   "detail_record_id) VALUES (?,?,?,?,?,?)")
    event_sql = ("INSERT INTO events (source_id, program_id, run_id, kind, at, title, summary, changes, "
                 "before_record_id, after_record_id, backfill) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
    cap_sql = ("INSERT INTO captures (warc_file_id, record_id, record_type, url, surt, timestamp, status, mime, "
               "payload_digest, offset, length, source_id) VALUES (1,?,?,?,?,?,200,'text/html',?,?,?,?)")
    n_cap = 0
    progs, versions, events, caps = [], [], [], []

    def capture(url_: str, when: datetime, sid: str) -> str:
        nonlocal n_cap
        rid = f"<urn:uuid:{n_cap:032x}>"
        caps.append((rid, "response", url_, safe_surt(url_), when.strftime("%Y%m%d%H%M%S") + "000000",
                     f"sha256:{n_cap:064x}", n_cap * 1000, 900, sid))
        n_cap += 1
        return rid

    def flush() -> None:
        cur.executemany(prog_sql, progs)
        cur.executemany(version_sql, versions)
        cur.executemany(event_sql, events)
        cur.executemany(cap_sql, caps)
        for rows in (progs, versions, events, caps):
            rows.clear()

    for pid in range(1, programmes + 1):
        sid = SOURCES[pid % len(SOURCES)]
        seen = start + timedelta(minutes=pid * 3)
        title = f"{2024 + pid % 3}年{rnd.choice(REGIONS)}{rnd.choice(TOPICS)}{rnd.choice(KINDS)}"
        posted = (seen - timedelta(days=rnd.randint(0, 20))).date().isoformat()
        fields: dict[str, Any] = {"title": title, "date": posted,
                                  "deadline": (seen + timedelta(days=30)).date().isoformat(),
                                  "location": rnd.choice(CITIES) + (RARE if pid % 20_000 == 7 else ""),
                                  "organizer": "商务部国际商务官员研修学院", "number": f"MOFCOM-{pid:07d}",
                                  "attachments": [{"name": f"附件{pid}.pdf", "url": f"https://{sid}.example.org/a/{pid}.pdf"}]}
        key = f"https://{sid}.example.org/detail/{pid}.html"
        listing = capture(f"https://{sid}.example.org/list/index_{pid // 20}.html", seen, sid)
        detail = capture(key, seen, sid)
        progs.append((pid, sid, key, title, json.dumps(fields, ensure_ascii=False), "active", seen.isoformat(" "),
                      seen.isoformat(" "), search_text(title, fields), posted_date(fields), detail, key))
        versions.append((pid, f"run-{pid // 20}", seen.isoformat(" "), json.dumps(fields, ensure_ascii=False),
                         listing, detail))
        events.append((sid, pid, f"run-{pid // 20}", "new", seen.isoformat(" "), title, f"New: {title}", "{}",
                       None, detail, False))
        if pid % 10 == 0:
            later = seen + timedelta(days=7)
            edited = {**fields, "location": rnd.choice(CITIES) + "（线上线下相结合）"}
            detail2 = capture(key, later, sid)
            versions.append((pid, f"run-{pid // 20 + 1}", later.isoformat(" "),
                             json.dumps(edited, ensure_ascii=False), listing, detail2))
            changes = {"location": [fields["location"], edited["location"]]}
            events.append((sid, pid, f"run-{pid // 20 + 1}", "changed", later.isoformat(" "), title, "location",
                           json.dumps(changes, ensure_ascii=False), detail, detail2, False))
        if len(progs) >= 20_000:
            flush()
    flush()
    for i in range(max(0, captures - n_cap)):                 # re-visits of listing pages over two years
        sid = SOURCES[i % len(SOURCES)]
        capture(f"https://{sid}.example.org/list/index_{i % 500}.html", start + timedelta(minutes=i), sid)
        if len(caps) >= 50_000:
            cur.executemany(cap_sql, caps)
            caps.clear()
    cur.executemany(cap_sql, caps)
    raw.commit()
    for _, sql in triggers:
        cur.execute(sql)
    cur.execute("INSERT INTO programs_fts(programs_fts) VALUES ('rebuild')")
    raw.commit()
    cur.execute("ANALYZE")
    raw.close()
    catalog.dispose()


def timed(call: Callable[[], Any], n: int) -> dict[str, float]:
    call()                                                    # warm caches once
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p95": samples[max(0, int(len(samples) * 0.95) - 1)],
            "max": samples[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--programmes", type=int, default=200_000)
    parser.add_argument("--captures", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--db", type=Path, help="Keep the seeded catalog here and reuse it on the next run.")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from scheduler.api import create_app
    from scheduler.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        db = args.db or Path(tmp) / "catalog.sqlite"
        url = f"sqlite:///{db}"
        if not db.exists():
            t0 = time.perf_counter()
            seed(url, args.programmes, args.captures)
            print(f"seeded {args.programmes:,} programmes and {args.captures:,} captures in "
                  f"{time.perf_counter() - t0:.0f} s")
        else:
            open_catalog(url).dispose()   # brings a kept catalog to the newest migration
            print(f"reusing {db}")
        settings = Settings(data_dir=Path(tmp), catalog_url=url, api={"token": "bench"})
        headers = {"Authorization": "Bearer bench"}
        rnd = random.Random(3)
        with TestClient(create_app(settings), headers=headers) as client:
            def get(path: str) -> Callable[[], Any]:
                def call() -> None:
                    answer = client.get(path)
                    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                return call

            def programme_page() -> None:
                get(f"/programmes/{rnd.randint(1, args.programmes)}")()

            cases: dict[str, Callable[[], Any]] = {
                "baseline /healthz": get("/healthz"),
                "programme list (newest first)": get("/programmes"),
                "programme list, one source, by title": get("/programmes?source=bench-api&sort=title"),
                "programme list, page 50": get("/programmes?page=50"),
                "search 水稻 (2 chars: trigram vocabulary)": get("/programmes?q=" + quote("水稻")),
                "search 杂交水稻 (FTS5 trigram)": get("/programmes?q=" + quote("杂交水稻")),
                "search 卫星 研修班 (2 + 3 chars)": get("/programmes?q=" + quote("卫星 研修班")),
                f"search {RARE} (rare, 2 chars)": get("/programmes?q=" + quote(RARE)),
                "programme page (random id)": programme_page,
                "JSON /api/programmes?q=杂交水稻": get("/api/programmes?q=" + quote("杂交水稻")),
            }
            results = {name: timed(call, args.requests) for name, call in cases.items()}
    base = results["baseline /healthz"]["p95"]
    print(f"{'request':48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p95/base':>9}")
    for name, r in results.items():
        print(f"{name:48} {r['p50']:8.1f} {r['p95']:8.1f} {r['max']:8.1f} {r['p95'] / base:9.1f}")
    worst = max(r["p95"] for name, r in results.items() if not name.startswith("baseline"))
    print(f"target: list, search and programme page p95 ≤ 300 ms; worst p95 here {worst:.1f} ms "
          f"({'met' if worst <= 300 else 'NOT met'})")


if __name__ == "__main__":
    main()
