"""The state database: values, finished items, runs; threads; reopening; a reader."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hikd.state import FILE_NAME, RUNS_KEPT, StateStore


def test_values_items_and_runs_survive_reopening(tmp_path: Path) -> None:
    with StateStore.open(tmp_path) as state:
        assert state.get("job", "cursor") is None
        assert state.get("job", "cursor", 5) == 5
        state.put("job", "cursor", {"at": "2024-05-01T00:00:00", "n": [1, 2]})
        state.put("job", "cursor", {"at": "2024-05-02T00:00:00", "n": [3]})
        state.put("job", "pending/a", 1)
        state.put("job", "pending/b", 2)
        state.put("other", "pending/c", 3)
        assert not state.is_done("job", "nvr/1/x")
        state.mark_done("job", "nvr/1/x", {"path": "/f", "size": 10})
        t0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
        state.record_run("job", "nvr", t0, t0 + timedelta(seconds=3), True, "2 recordings")
        later = t0 + timedelta(hours=1)
        state.record_run("job", "nvr", later, later, False, "skipped: device nvr is not online")
        state.record_run("job", "cam", t0, t0, True, "1 recording")
    assert (tmp_path / FILE_NAME).is_file()

    with StateStore.open(tmp_path) as state:
        assert state.get("job", "cursor") == {"at": "2024-05-02T00:00:00", "n": [3]}
        assert state.items("job", "pending/") == {"pending/a": 1, "pending/b": 2}
        state.delete("job", "pending/a")
        assert state.items("job", "pending/") == {"pending/b": 2}
        assert state.is_done("job", "nvr/1/x")
        assert not state.is_done("other", "nvr/1/x")
        assert state.done_info("job", "nvr/1/x") == {"path": "/f", "size": 10}
        assert state.done_count("job") == 1
        last = state.last_run("job", "nvr")
        assert last is not None
        assert last["ok"] is False and last["summary"].startswith("skipped")
        assert last["started"] == t0 + timedelta(hours=1)
        assert state.last_run("job", "nowhere") is None
        assert state.last_run("nojob") is None
        assert [r["device"] for r in state.last_runs("job")] == ["cam", "nvr"]


def test_old_runs_are_dropped(tmp_path: Path) -> None:
    with StateStore.open(tmp_path) as state:
        for i in range(RUNS_KEPT + 20):
            state.record_run("job", "nvr", float(i), float(i), True, f"run {i}")
        count = state._db.execute("SELECT count(*) FROM runs").fetchone()[0]
        assert count == RUNS_KEPT
        last = state.last_run("job", "nvr")
        assert last is not None and last["summary"] == f"run {RUNS_KEPT + 19}"


def test_threads_share_one_store(tmp_path: Path) -> None:
    state = StateStore.open(tmp_path)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(100):
                item = f"{n}/{i}"
                state.mark_done("job", item, {"n": n, "i": i})
                assert state.is_done("job", item)
                state.put("job", f"k{n}", i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        assert state.done_count("job") == 800
        assert all(state.get("job", f"k{n}") == 99 for n in range(8))
    finally:
        state.close()


def test_a_read_only_reader_sees_what_the_writer_commits(tmp_path: Path) -> None:
    """`hikd jobs` reads the database while the daemon writes it (WAL)."""
    writer = StateStore.open(tmp_path)
    try:
        writer.record_run("job", "nvr", 0.0, 1.0, True, "first")
        reader = StateStore(tmp_path / FILE_NAME, read_only=True)
        try:
            first = reader.last_run("job")
            assert first is not None and first["summary"] == "first"
            writer.record_run("job", "nvr", 2.0, 3.0, True, "second")
            second = reader.last_run("job")
            assert second is not None and second["summary"] == "second"
        finally:
            reader.close()
    finally:
        writer.close()
