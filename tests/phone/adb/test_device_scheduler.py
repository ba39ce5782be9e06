"""run_sharded: pure tests with fake devices, then two emulated phones with one vanishing."""

import threading

import pytest

from profiler.phone.adb import DeviceSession, run_sharded
from profiler.errors import DeviceError, ToolError



class FakeDevice:
    def __init__(self, serial, lose_on=(), bad_items=()):
        self.serial = serial
        self.lose_on = set(lose_on)
        self.bad_items = set(bad_items)
        self.seen = []

    def run(self, item):
        self.seen.append(item)
        if item in self.lose_on:
            raise DeviceError(f"device {self.serial}: disconnected")
        if item in self.bad_items:
            raise ToolError(f"item {item} does not run")
        return item * 10


def _collect():
    got = []
    return got, lambda item, dev, result: got.append((item, dev.serial, result))


def test_all_items_done_across_devices():
    a, b = FakeDevice("A"), FakeDevice("B")
    got, on_result = _collect()
    rep = run_sharded([a, b], range(20), lambda d, i: d.run(i), on_result)
    assert sorted(i for i, _, _ in got) == list(range(20))
    assert all(r == i * 10 for i, _, r in got)
    assert rep.complete and rep.not_done == [] and rep.retired == {}
    assert sorted(i for i, _ in rep.done) == list(range(20))


def test_lost_device_item_is_requeued_to_another_device():
    a, b = FakeDevice("A", lose_on={3}), FakeDevice("B", lose_on={})
    events = []
    got, on_result = _collect()
    rep = run_sharded([a, b], range(8), lambda d, i: d.run(i), on_result,
                      on_event=lambda kind, name, item, err: events.append((kind, name, item)))
    assert sorted(i for i, _, _ in got) == list(range(8))
    assert (3, "B", 30) in got                      # finished by the survivor
    assert list(rep.retired) == ["A"] and "disconnected" in str(rep.retired["A"])
    assert ("retired", "A", 3) in events and ("requeued", "A", 3) in events
    assert rep.complete
    assert a.seen[-1] == 3                          # A took nothing after it was lost


def test_no_device_left_returns_remaining_items_as_not_done():
    a, b = FakeDevice("A", lose_on={0, 1}), FakeDevice("B", lose_on={0, 1})
    got, on_result = _collect()
    rep = run_sharded([a, b], range(5), lambda d, i: d.run(i), on_result)
    assert set(rep.retired) == {"A", "B"}
    assert sorted(rep.not_done + [i for i, _, _ in got]) == list(range(5))
    assert not rep.complete and {0, 1} <= set(rep.not_done)


def test_no_devices_at_all():
    rep = run_sharded([], [1, 2], lambda d, i: i)
    assert rep.not_done == [1, 2] and rep.done == []


def test_item_failure_does_not_retire_the_device():
    a = FakeDevice("A", bad_items={2})
    rep = run_sharded([a], range(4), lambda d, i: d.run(i))
    assert [i for i, _ in rep.done] == [0, 1, 3]
    assert [(i, type(e)) for i, e in rep.failed] == [(2, ToolError)]
    assert rep.retired == {}


def test_max_attempts_gives_up_on_an_item():
    a, b = FakeDevice("A", lose_on={0}), FakeDevice("B", lose_on={0})
    rep = run_sharded([a, b], [0], lambda d, i: d.run(i), max_attempts=1)
    assert [i for i, _ in rep.failed] == [0] and rep.not_done == []
    assert len(rep.retired) == 1                    # the other device never had to try


def test_setup_failure_retires_device_before_it_takes_work():
    a, b = FakeDevice("A"), FakeDevice("B")

    def setup(dev):
        if dev.serial == "A":
            raise ToolError("SDK push failed")

    rep = run_sharded([a, b], range(4), lambda d, i: d.run(i), setup=setup)
    assert a.seen == [] and sorted(b.seen) == [0, 1, 2, 3]
    assert "setup failed: SDK push failed" in str(rep.retired["A"])


def test_bug_in_fn_propagates_after_finished_items_were_reported():
    a = FakeDevice("A")
    got, on_result = _collect()

    def fn(dev, item):
        if item == 2:
            raise RuntimeError("bug")
        return dev.run(item)

    with pytest.raises(RuntimeError, match="bug"):
        run_sharded([a], range(5), fn, on_result)
    assert [i for i, _, _ in got] == [0, 1]


def test_stop_event_returns_unstarted_items():
    stop = threading.Event()
    got = []

    def on_result(item, dev, result):
        got.append(item)
        if len(got) == 2:
            stop.set()

    rep = run_sharded([FakeDevice("A")], range(6), lambda d, i: d.run(i), on_result, stop=stop)
    assert got == [0, 1] and rep.not_done == [2, 3, 4, 5]


# --- two emulated phones, one vanishing mid-way ------------------------------------------------

def _measure(session, item):
    code, out = session.shell(f"echo item-{item}; cat /data/local/tmp/sdk/version.txt")
    if code != 0:
        raise ToolError(f"item {item}: exit {code}")
    return out.split()


def test_sharded_run_on_emulated_phones_requeues_vanished_work(adb_server, client, tmp_path):
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    (sdk / "version.txt").write_text("2.5.0\n")
    # A serves 3 shell commands (setup's md5 listing, then 2 items; the push itself is one sync
    # connection, which makes its folders); it dies as its 4th, the third item, arrives.
    A, B = adb_server.a.addr, adb_server.b.addr
    adb_server.a.die_on("shell,v2", after=4)
    sessions = [DeviceSession(client, A, timeout=20),
                DeviceSession(client, B, timeout=20)]
    got, on_result = _collect()
    events = []
    rep = run_sharded(sessions, range(12), _measure, on_result,
                      setup=lambda s: s.push_tree(sdk, "/data/local/tmp/sdk"),
                      on_event=lambda kind, name, item, err: events.append((kind, name, item)))

    assert sorted(i for i, _, _ in got) == list(range(12))          # every item, exactly once
    assert all(r == [f"item-{i}", "2.5.0"] for i, _, r in got)
    assert list(rep.retired) == [A]
    assert str(rep.retired[A]).startswith(f"device {A}: became offline during shell 'echo item-")
    listing = ", ".join(sorted([f"{A} [offline]", B]))
    assert f"(adb lists: {listing})" in str(rep.retired[A])
    lost = [item for kind, _, item in events if kind == "requeued"]
    assert len(lost) == 1 and (lost[0], B) in [(i, s) for i, s, _ in got]
    by_a = [i for i, s, _ in got if s == A]
    assert len(by_a) == 2
    assert rep.complete and rep.not_done == []
    assert adb_server.b.count("SEND") == 1 and adb_server.a.count("SEND") == 1
    assert adb_server.a.count("shell,v2") == 4 and not adb_server.a.alive()


def test_sharded_run_all_phones_vanish_keeps_finished_results(adb_server, client):
    for phone in (adb_server.a, adb_server.b):
        phone.die_on("shell,v2", after=3)   # 2 items each, the 3rd pulls the plug
    sessions = [DeviceSession(client, p.addr, timeout=20) for p in (adb_server.a, adb_server.b)]

    def fn(session, item):
        return session.shell(f"echo {item}").output.strip()

    got, on_result = _collect()
    rep = run_sharded(sessions, range(10), fn, on_result)
    assert len(got) == 4 and all(r == str(i) for i, _, r in got)
    assert set(rep.retired) == {adb_server.a.addr, adb_server.b.addr}
    assert sorted(rep.not_done + [i for i, _, _ in got]) == list(range(10))
    assert len(rep.not_done) == 6
