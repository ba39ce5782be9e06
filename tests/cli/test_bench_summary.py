"""The bench summary groups failures by cause (issue 18.2): the pure normaliser and the lines."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from profiler.cli.bench import failure_cause, group_failures, summary_lines
from profiler.space.modules import file_stem

UIDS = [f"MBConv[e={e},k=3][[1,{c},16,16]]" for e, c in ((1, 8), (2, 8), (4, 16), (6, 16), (6, 24))]


def _summary(failed, measured=None):
    return SimpleNamespace(measured=len(failed) if measured is None else measured, failed=failed, skipped=0,
                           store=Path("s.results"), unstable=[])


def _net_run_error(uid: str, run: int, code: int = 1) -> str:
    stem = file_stem(uid)
    return (f"snpe-net-run failed on device R3CT (exit code {code}, DSP, run {run}): error_code=1002; "
            f"error_message=Layer /data/local/tmp/profiler/models/{stem}/{stem}.q1a2b3c4d.dlc not supported")


def test_failure_cause_strips_the_module_parts():
    a = failure_cause(_net_run_error(UIDS[0], 1), UIDS[0])
    b = failure_cause(_net_run_error(UIDS[3], 4), UIDS[3])
    assert a == b
    assert "<module>" in a and file_stem(UIDS[0]) not in a and "run N" in a
    assert "exit code 1" in a                     # what the cause is stays
    assert failure_cause(_net_run_error(UIDS[0], 1, code=2), UIDS[0]) != a


def test_failure_cause_other_per_call_parts():
    uid = UIDS[1]
    text = (f"/tmp/cache/{file_stem(uid)}.dlc: No space left on device (host side, preparing {uid[:80]}); "
            "check ... /tmp/profiler-phone-k2j4_x9q/stage; processes 4411, 4412 stuck; tag "
            "0123456789abcdef0123456789abcdef")
    cause = failure_cause(text, uid)
    assert cause == ("/tmp/cache/<module>.dlc: No space left on device (host side, preparing <module>); check ... "
                     "/tmp/profiler-phone-*/stage; processes N stuck; tag <tag>")
    # a message without per-module parts is left as it is (whitespace collapsed)
    assert failure_cause("not measured:  no phone left\n(reconnect)", uid) == "not measured: no phone left (reconnect)"


def test_group_failures_most_frequent_first():
    failed = [(UIDS[0], "CPU", "boom"), (UIDS[1], "DSP", _net_run_error(UIDS[1], 1)),
              (UIDS[2], "DSP", _net_run_error(UIDS[2], 2)), (UIDS[3], "CPU", _net_run_error(UIDS[3], 1))]
    groups = group_failures(failed)
    assert [len(p) for _, p in groups] == [3, 1]
    assert groups[0][1] == [(UIDS[1], "DSP"), (UIDS[2], "DSP"), (UIDS[3], "CPU")]
    assert groups[1] == ("boom", [(UIDS[0], "CPU")])


def test_summary_one_line_per_cause_bounded_and_verbose_lists_all():
    gone = ("not measured: no phone left (device A, B vanished or failed: device A: disconnected during shell "
            "'sh /data/local/tmp/profiler/models/x/run_CPU.sh' (adb lists: no devices); reconnect it (cable, "
            "USB debugging) and resume); reconnect the phone(s) and re-run with --resume") * 2
    failed = [(u, rt, gone) for rt in ("CPU", "DSP") for u in UIDS]
    lines = summary_lines(_summary(failed))
    assert lines[0].startswith("0 measured, 10 failed")
    cause_lines = [ln for ln in lines if ln.startswith("  FAILED")]
    assert len(cause_lines) == 1
    assert cause_lines[0].startswith("  FAILED 10 x CPU, DSP: not measured: no phone left")
    assert f"[{UIDS[0]}, {UIDS[1]}, {UIDS[2]}, +2 more]" in cause_lines[0]
    assert sum(len(ln) + 1 for ln in lines) < 900          # 10 x 600 characters before
    assert "--verbose" in lines[-1]
    full = summary_lines(_summary(failed), verbose=True)
    assert len([ln for ln in full if ln.startswith("  FAILED")]) == 10 and all(gone in ln for ln in full[1:])


def test_summary_single_failures_keep_their_message_and_causes_are_capped():
    one = summary_lines(_summary([(UIDS[0], "CPU", "snpe-net-run failed: segfault")], measured=3))
    assert one == ["2 measured, 1 failed, 0 already in the store -> s.results",
                   f"  FAILED CPU {UIDS[0]}: snpe-net-run failed: segfault"]
    many = [(f"M{i}", "CPU", f"distinct cause number {i}") for i in range(30)]
    lines = summary_lines(_summary(many))
    assert len([ln for ln in lines if ln.startswith("  FAILED")]) == 20
    assert "... and 10 more failures with 10 other causes" in lines[-2] and "--verbose" in lines[-1]


def test_failure_cause_other_modules_stems_too():
    """A retired phone's message (repeated in every 'no phone left' record) names the module it was
    running: that module's own record must get the same cause as the others."""
    why = f"device A: disconnected during shell 'sh /data/local/tmp/profiler/models/{file_stem(UIDS[2])}/run.sh'"
    assert len({failure_cause(why, u) for u in UIDS}) == 1
