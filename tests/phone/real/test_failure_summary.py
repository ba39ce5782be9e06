"""Issue 18.2 through the real adb server: both phones die mid-session -> the remaining pairs are
failed with one cause, and the bench summary prints one line for it (bounded), every failure
only with --verbose and in the store."""

from __future__ import annotations

from profiler.cli.bench import summary_lines
from profiler.session.loop import run_session
from profiler.session.store import read_store
from tests.phone.conftest import session_config
from tests.phone.fake_sdk import make_fake_sdk
from tests.phone.models import standard_specs, write_models

from .conftest import PHONE_PROPS


def test_both_phones_dead_one_cause_line(tmp_path, adb_server, phones, make_real_target):
    a = phones("EMUD0001", props=dict(PHONE_PROPS))
    b = phones("EMUD0002", props=dict(PHONE_PROPS))
    sdk = make_fake_sdk(tmp_path / "sdk", "2.10.0.4541")
    models = write_models(tmp_path / "m", standard_specs(4))
    out = tmp_path / "dead.results"

    def on_progress(done, total, uid, failed):
        if uid and a.alive():
            a.kill()          # both cables pulled after the first record
            b.kill()
            for ph in (a, b):   # once the server noticed (before, a failing command is the module's fault)
                adb_server.wait_state(ph.addr, "offline")
    summary = run_session(models, out, make_real_target(sdk, [adb_server]),
                          session_config(["CPU", "GPU"], batch_size=8), on_progress=on_progress)
    n = len(summary.failed)
    assert n >= 4, summary.failed                      # 8 pairs, the phones died after the first
    lines = summary_lines(summary)
    causes = [ln for ln in lines if ln.startswith("  FAILED")]
    assert len(causes) == 1, lines
    assert causes[0].startswith(f"  FAILED {n} x ") and "no phone left" in causes[0] and "+" in causes[0]
    full_size = sum(len(e) for _, _, e in summary.failed)
    size = sum(len(ln) + 1 for ln in lines)
    assert size < 1000 and size < full_size / 2, (size, full_size)
    verbose = summary_lines(summary, verbose=True)
    assert len([ln for ln in verbose if ln.startswith("  FAILED")]) == n
    # the store has every failure with its full message
    stored = {(r["uid"], r["runtime"]): r["error"] for r in read_store(out).latest().values() if r["status"] != "ok"}
    assert sorted(stored) == sorted((u, rt) for u, rt, _ in summary.failed)
    assert all(stored[(u, rt)] == e for u, rt, e in summary.failed)
