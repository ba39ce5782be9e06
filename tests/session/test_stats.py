"""profiler.session.stats: hand-computed summaries, the p90/std definitions and stability warnings."""

from __future__ import annotations

import math

import pytest

from profiler.session import stats as S


def test_summarize_even_count_by_hand():
    s = S.summarize([4.0, 1.0, 3.0, 2.0])  # unsorted on purpose
    assert s["Min_Time"] == 1.0
    assert s["Max_Time"] == 4.0
    assert s["Avg_Time"] == 2.5
    assert s["Median_Time"] == 2.5  # mean of the two middle samples 2 and 3
    # deviations -1.5, -0.5, 0.5, 1.5 -> squares sum 5; ddof=1 -> 5 / 3
    assert s["Std_Time"] == pytest.approx(math.sqrt(5.0 / 3.0), rel=1e-15)
    assert s["P90_Time"] == 4.0  # ceil(0.9 * 4) = 4 -> 4th smallest
    assert s["Count"] == 4 and isinstance(s["Count"], int)
    assert list(s) == list(S.STAT_NAMES)


def test_summarize_odd_count_by_hand():
    s = S.summarize([5, 1, 3])
    assert (s["Min_Time"], s["Avg_Time"], s["Max_Time"], s["Median_Time"]) == (1.0, 3.0, 5.0, 3.0)
    assert s["Std_Time"] == 2.0  # (4 + 0 + 4) / (3 - 1) = 4
    assert s["P90_Time"] == 5.0  # ceil(2.7) = 3 -> 3rd smallest
    assert all(isinstance(s[k], float) for k in S.STAT_NAMES if k != "Count")


def test_std_uses_ddof_1_and_is_zero_for_one_sample():
    assert S.summarize([2.0, 4.0])["Std_Time"] == pytest.approx(math.sqrt(2.0), rel=1e-15)  # not 1.0
    one = S.summarize([7.5])
    assert one["Std_Time"] == 0.0
    assert one["Min_Time"] == one["Avg_Time"] == one["Max_Time"] == one["Median_Time"] == one["P90_Time"] == 7.5
    assert one["Count"] == 1


@pytest.mark.parametrize("n,expected", [
    (1, 1.0),    # ceil(0.9) = 1
    (2, 2.0),    # ceil(1.8) = 2
    (9, 9.0),    # ceil(8.1) = 9
    (10, 9.0),   # ceil(9.0) = 9: nearest rank, not numpy's interpolated 9.1
    (11, 10.0),  # ceil(9.9) = 10
    (20, 18.0),  # ceil(18.0) = 18
    (21, 19.0),  # ceil(18.9) = 19
    (30, 27.0),  # ceil(27.0) = 27 (exact integer arithmetic, no float round-up to 28)
])
def test_p90_is_nearest_rank(n, expected):
    values = [float(i) for i in range(n, 0, -1)]  # n..1, reversed
    assert S.summarize(values)["P90_Time"] == expected
    assert S.p90(values) == expected


def test_p90_is_an_observed_sample():
    values = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 1000.0]
    assert S.summarize(values)["P90_Time"] == 90.0


@pytest.mark.parametrize("bad", [[], [float("nan")], [1.0, float("inf")], [1.0, -0.5], [[1.0, 2.0]],
                                 ["fast"], None])
def test_summarize_rejects_bad_samples(bad):
    with pytest.raises(ValueError):
        S.summarize(bad)


def test_negative_zero_is_zero():
    s = S.summarize([-0.0, 0.0])
    assert math.copysign(1.0, s["Min_Time"]) == 1.0


# --- stability ------------------------------------------------------------------------------

def test_stable_samples_give_no_warning():
    values = [100.0 + (i % 5) for i in range(20)]  # 100..104, std ~1.45 %
    assert S.stability(values) == []


def test_all_zero_samples_are_stable():
    assert S.stability([0.0] * S.MIN_SAMPLES) == []


def test_too_few_samples():
    w = S.stability([100.0, 100.0, 100.0])
    assert len(w) == 1
    assert "3 samples" in w[0] and "increase" in w[0]


def test_noisy_samples_warn_about_std():
    values = [80.0, 120.0] * 10  # mean 100, std ~20.5 % (> 10 %); min/max only 20 % away
    w = S.stability(values)
    assert len(w) == 1
    assert w[0].startswith("std dev is 21% of the mean")
    assert "close other programs" in w[0]


def test_max_outlier_warns():
    values = [100.0] * 19 + [300.0]  # mean 110; max 173 % above; std 44.7 / 110 = 41 %
    w = S.stability(values)
    assert any(x.startswith("maximum 300 us is 173% above the mean 110 us") for x in w)
    assert any(x.startswith("std dev is 41%") for x in w)
    assert not any(x.startswith("minimum") for x in w)
    assert all(("add" in x or "close" in x or "increase" in x) for x in w)


def test_min_outlier_warns():
    values = [100.0] * 19 + [10.0]  # mean 95.5; min 89.5 % below
    w = S.stability(values, unit="cycles")
    assert any(x.startswith("minimum 10 cycles is 90% below the mean 95.5 cycles") for x in w)
    assert not any(x.startswith("maximum") for x in w)


def test_thresholds_are_module_constants(monkeypatch):
    values = [95.0, 105.0] * 10  # std ~5.1 % of the mean
    assert S.stability(values) == []
    monkeypatch.setattr(S, "MAX_REL_STD", 0.05)
    assert len(S.stability(values)) == 1
    monkeypatch.setattr(S, "MIN_SAMPLES", 50)
    assert len(S.stability(values)) == 2


def test_stability_rejects_bad_samples():
    with pytest.raises(ValueError):
        S.stability([])
