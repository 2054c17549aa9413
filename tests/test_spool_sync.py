"""Spool → store with verification, outage and retry, fixity audits and reindexing, on real servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from typer.testing import CliRunner

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import Capture, WarcFile
from archive.fixity import verify
from archive.reindex import reindex
from archive.spool import cdxj_key, sync
from scheduler.cli.archive import app as archive_app
from tests import servers
from tests.archive_tools import warcio_check
from tests.servers import S3Server, StoreUnderTest, make_store
from tests.warc_factory import keep_copies, write_spool_warcs

# pytest fixtures from tests/servers.py
any_store = servers.any_store
moto_s3 = servers.moto_s3
rclone_s3 = servers.rclone_s3


def _catalog(tmp_path: Path) -> Catalog:
    return open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")


def _warcs(catalog: Catalog) -> list[WarcFile]:
    with catalog.session() as session:
        return list(session.scalars(select(WarcFile).order_by(WarcFile.key)))


def _captures(catalog: Catalog) -> set[tuple[Any, ...]]:
    with catalog.session() as session:
        rows = session.execute(select(Capture, WarcFile.key).join(WarcFile, Capture.warc_file_id == WarcFile.id))
        return {(c.record_id, c.record_type, c.url, c.surt, c.timestamp, c.status, c.mime, c.payload_digest,
                 c.offset, c.length, c.refers_to_uri, key, c.source_id, c.run_id) for c, key in rows}


def _spool_left(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_sync_round_trips_every_capture_byte_identical(any_store: StoreUnderTest, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    files = write_spool_warcs(spool) + write_spool_warcs(spool, "demo-json", run="20260105T020000Z-ffee01", seed=2)
    assert len(files) > 4
    (spool / "demo-static" / "demo-static-20260105T030000Z-0a0b0c-00001.warc.gz.open").write_bytes(b"half")
    originals = keep_copies(files, tmp_path / "originals")
    catalog = _catalog(tmp_path)

    result = sync(catalog, any_store.storage, spool)

    assert result.ok, result
    assert len(result.verified) == len(files) and len(result.uploaded) == 2 * len(files)   # WARCs + .cdxj
    assert _spool_left(spool) == ["demo-static-20260105T030000Z-0a0b0c-00001.warc.gz.open"]  # never touched
    warcs = _warcs(catalog)
    assert {w.name for w in warcs} == set(originals)
    for warc in warcs:
        assert warc.state == "verified" and warc.stored_at and warc.verified_at and not warc.problem
        assert warc.key.startswith(f"{warc.source_id}/2026/01/")
        assert any_store.storage.stat(cdxj_key(warc.key)) is not None
    captures = 0
    with catalog.session() as session:
        for capture, key, name in session.execute(
                select(Capture, WarcFile.key, WarcFile.name).join(WarcFile, Capture.warc_file_id == WarcFile.id)):
            original = originals[name].read_bytes()
            stored = any_store.storage.read_range(key, capture.offset, capture.length)
            assert stored == original[capture.offset:capture.offset + capture.length]
            captures += 1
    assert captures > 40
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for warc in warcs:
        target = downloads / warc.name
        target.write_bytes(b"".join(any_store.storage.iter_bytes(warc.key)))
        assert target.read_bytes() == originals[warc.name].read_bytes()
    warcio_check(sorted(downloads.iterdir()))

    again = sync(catalog, any_store.storage, spool)       # nothing left to do
    assert again.ok and not again.verified and not again.uploaded


def test_store_down_keeps_everything_and_a_later_sync_finishes(rclone_s3: S3Server, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    files = write_spool_warcs(spool)
    before = {p: p.read_bytes() for p in files}
    catalog = _catalog(tmp_path)
    storage = rclone_s3.storage(rclone_s3.make_bucket())
    rclone_s3.stop()

    down = sync(catalog, storage, spool)

    assert not down.ok and not down.verified and not down.uploaded
    assert {p.name for p in down.waiting} == {p.name for p in files}
    reason = down.waiting[0].reason
    assert "cannot reach" in reason and rclone_s3.endpoint in reason and "spool" in reason
    assert rclone_s3.secret_key not in reason
    assert all(p.read_bytes() == data for p, data in before.items())      # nothing deleted or changed
    assert {w.state for w in _warcs(catalog)} == {"spooled"}              # registered, waiting

    rclone_s3.start()
    up = sync(catalog, storage, spool)

    assert up.ok and len(up.verified) == len(files)
    assert _spool_left(spool) == []
    assert {w.state for w in _warcs(catalog)} == {"verified"}
    for warc in _warcs(catalog):
        assert b"".join(storage.iter_bytes(warc.key)) == before[spool / warc.source_id / warc.name]


@pytest.mark.parametrize("kind", ["rclone", "moto"])
def test_retry_after_crash_and_conflicting_objects(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = make_store(kind, request, tmp_path)
    spool = tmp_path / "spool"
    first, second, *_ = write_spool_warcs(spool)
    catalog = _catalog(tmp_path)
    # a crash after uploading `first` (before the catalog and spool were updated) ...
    sync(catalog, store.storage, tmp_path / "empty")
    from archive.indexer import file_sha256, register_warc

    warc = register_warc(catalog, first, source_id="demo-static")
    store.storage.put_file(warc.key, first, sha256=file_sha256(first))
    # ... and someone else's different object under `second`'s key
    other = register_warc(catalog, second, source_id="demo-static")
    store.storage.put_file(other.key, first, sha256=file_sha256(first))

    result = sync(catalog, store.storage, spool, verify="checksum")

    assert warc.key in result.verified and warc.key not in result.uploaded    # counted as stored
    assert [p.name for p in result.failed] == [second.name]
    assert "different object already exists" in result.failed[0].reason and "kept" in result.failed[0].reason
    assert second.exists() and not first.exists()
    states = {w.name: w.state for w in _warcs(catalog)}
    assert states[first.name] == "verified" and states[second.name] == "spooled"


def _damage(store: StoreUnderTest, catalog: Catalog) -> tuple[str, str]:
    warcs = _warcs(catalog)
    corrupt, missing = warcs[0].key, warcs[-1].key
    store.corrupt(corrupt, at=warcs[0].size // 2)
    store.remove(missing)
    return corrupt, missing


def _cli_env(store: StoreUnderTest, tmp_path: Path) -> dict[str, str]:
    env = {"LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"), "LISTWATCH_DATA_DIR": str(tmp_path / "data"),
           "LISTWATCH_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.sqlite'}"}
    if store.server is None:
        env["LISTWATCH_STORAGE__PATH"] = str(store.storage.root)
    else:
        env.update(store.server.settings_env(store.bucket))
    return env


def test_fixity_reports_exactly_the_corrupt_and_missing_files(any_store: StoreUnderTest, tmp_path: Path) -> None:
    spool = tmp_path / "data" / "spool"
    write_spool_warcs(spool, pages=16)
    catalog = _catalog(tmp_path)
    assert sync(catalog, any_store.storage, spool).ok
    runner = CliRunner()
    env = _cli_env(any_store, tmp_path)

    clean = runner.invoke(archive_app, ["verify"], env=env)
    assert clean.exit_code == 0, clean.output
    assert "0 missing, 0 corrupt" in clean.output

    corrupt, missing = _damage(any_store, catalog)
    report = verify(catalog, any_store.storage)
    assert not report.ok
    assert report.corrupt == [corrupt] and report.missing == [missing]
    assert "SHA-256" in report.problems[0].problem or "size" in report.problems[0].problem
    states = {w.key: (w.state, w.problem) for w in _warcs(catalog)}
    assert states[corrupt][0] == "corrupt" and states[missing][0] == "missing" and states[missing][1]
    assert {s for k, (s, _) in states.items() if k not in (corrupt, missing)} == {"verified"}

    failed = runner.invoke(archive_app, ["verify", "--all"], env=env)
    assert failed.exit_code == 1
    assert corrupt in failed.output and missing in failed.output and "1 missing, 1 corrupt" in failed.output
    if any_store.server is not None:
        assert any_store.server.secret_key not in failed.output
    sampled = runner.invoke(archive_app, ["verify", "--sample", "1"], env=env)
    assert "1 of 1 checked" in sampled.output
    status = runner.invoke(archive_app, ["status"], env=env)
    assert status.exit_code == 0 and "corrupt" in status.output and "missing" in status.output


def test_verify_older_than_days_and_sample(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from datetime import UTC, datetime, timedelta

    store = make_store("local", request, tmp_path)
    spool = tmp_path / "spool"
    files = write_spool_warcs(spool)
    catalog = _catalog(tmp_path)
    assert sync(catalog, store.storage, spool).ok
    assert verify(catalog, store.storage, older_than_days=1).selected == 0
    later = datetime.now(UTC) + timedelta(days=2)
    assert verify(catalog, store.storage, older_than_days=1, now=later).selected == len(files)
    assert verify(catalog, store.storage, sample=2).checked == 2


def test_reindex_from_the_store_alone_restores_the_captures(any_store: StoreUnderTest, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    write_spool_warcs(spool)
    write_spool_warcs(spool, "demo-rss", run="20260201T000000Z-0c0c0c", seed=3)
    catalog = _catalog(tmp_path)
    assert sync(catalog, any_store.storage, spool).ok
    before = _captures(catalog)
    assert before
    with catalog.session() as session:
        session.execute(delete(Capture))

    assert reindex(catalog, any_store.storage) == len(before)
    assert _captures(catalog) == before
    assert reindex(catalog, any_store.storage, source_id="demo-rss") == sum(1 for c in before if c[12] == "demo-rss")
    assert _captures(catalog) == before                           # replaced, not duplicated

    fresh = open_catalog(f"sqlite:///{tmp_path / 'fresh.sqlite'}")  # no rows at all: WARC rows are recreated
    assert reindex(fresh, any_store.storage) == len(before)
    assert _captures(fresh) == before
    assert {(w.key, w.sha256, w.size) for w in _warcs(fresh)} == {(w.key, w.sha256, w.size) for w in _warcs(catalog)}


def test_cli_sync_and_status(rclone_s3: S3Server, tmp_path: Path) -> None:
    bucket = rclone_s3.make_bucket()
    store = StoreUnderTest("rclone", rclone_s3.storage(bucket), rclone_s3, bucket)
    env = _cli_env(store, tmp_path)
    files = write_spool_warcs(tmp_path / "data" / "spool")
    runner = CliRunner()
    rclone_s3.stop()
    down = runner.invoke(archive_app, ["sync"], env=env)
    assert down.exit_code == 1 and "waiting" in down.output and "cannot reach" in down.output
    assert rclone_s3.secret_key not in down.output
    status = runner.invoke(archive_app, ["status"], env=env)
    assert "spooled" in status.output and "oldest unsynced" in status.output
    rclone_s3.start()
    up = runner.invoke(archive_app, ["sync", "--verify", "checksum"], env=env)
    assert up.exit_code == 0, up.output
    assert f"{len(files)} verified" in up.output
    assert runner.invoke(archive_app, ["reindex"], env=env).exit_code == 0
