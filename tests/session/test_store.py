"""Results store: append, read back, torn tails, corruption and version errors."""

from __future__ import annotations

import json

import pytest

from profiler.errors import ResultsError
from profiler.session.store import ResultsStore, read_store


def _rec(uid: str, rt: str = "ORT_CPU", status: str = "ok") -> dict:
    rec = {"uid": uid, "runtime": rt, "status": status}
    if status == "ok":
        rec["samples"] = {"Forward Propagate": [1.0, 2.0, 3.0]}
    else:
        rec["error"] = "boom"
    return rec


def test_create_append_read(tmp_path):
    path = tmp_path / "s.results"
    with ResultsStore.create(path, {"target": "host"}) as store:
        store.add(_rec("a"))
        store.add(_rec("b", status="failed"))
    c = read_store(path)
    assert c.meta == {"target": "host"}
    assert [r["uid"] for r in c.records] == ["a", "b"]
    assert c.done() == {("a", "ORT_CPU")}
    assert not c.torn_tail
    header = json.loads(path.read_text().splitlines()[0])
    assert header["format"] == "profiler-results" and header["version"] == 1


def test_existing_store_needs_resume(tmp_path):
    path = tmp_path / "s.results"
    ResultsStore.create(path, {}).close()
    with pytest.raises(ResultsError, match="already exists; pass --resume"):
        ResultsStore.create(path, {})


def test_torn_tail_is_ignored_then_truncated_on_resume(tmp_path):
    path = tmp_path / "s.results"
    with ResultsStore.create(path, {"target": "host"}) as store:
        store.add(_rec("a"))
    with open(path, "ab") as f:
        f.write(b'{"type":"result","uid":"b","runt')  # a write cut short by a crash
    c = read_store(path)
    assert c.torn_tail and [r["uid"] for r in c.records] == ["a"]
    store, contents = ResultsStore.resume(path, {"target": "host"})
    with store:
        store.add(_rec("b"))
    c = read_store(path)
    assert not c.torn_tail
    assert [r["uid"] for r in c.records] == ["a", "b"]
    assert len(c.sessions) == 1 and "resumed" in c.sessions[0]


def test_corrupt_middle_line_is_an_error_with_line_number(tmp_path):
    path = tmp_path / "s.results"
    with ResultsStore.create(path, {}) as store:
        store.add(_rec("a"))
        store.add(_rec("b"))
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:20] + "###"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ResultsError, match=r"s.results:2: corrupt record"):
        read_store(path)


@pytest.mark.parametrize("header, message", [
    ({"format": "profiler-results", "version": 2, "meta": {}}, "version 2 is newer than this profiler reads"),
    ({"format": "something-else", "version": 1}, "not a profiler results store"),
])
def test_header_errors(tmp_path, header, message):
    path = tmp_path / "s.results"
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(ResultsError, match=message):
        read_store(path)


def test_ok_is_not_replaced_by_later_failure_and_failure_by_later_ok(tmp_path):
    path = tmp_path / "s.results"
    with ResultsStore.create(path, {}) as store:
        store.add(_rec("a"))
        store.add(_rec("a", status="failed"))
        store.add(_rec("b", status="failed"))
        store.add(_rec("b"))
    latest = read_store(path).latest()
    assert latest[("a", "ORT_CPU")]["status"] == "ok"
    assert latest[("b", "ORT_CPU")]["status"] == "ok"
