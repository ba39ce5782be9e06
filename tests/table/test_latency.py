"""profiler.table.latency: building, the seed's CSV layout, round trips, meta merge, look-ups, sums."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from profiler.table import latency as T
from profiler.errors import TableError
from profiler.table.latency import LatencyTable

SEED_UID = ("Conv[in_channels=192,out_channels=192,kernel=[5,5],stride=[1,1],pad=[2,2],dilation=None,"
            "base_axis=1,group=192,with_bias=False,fix_parameters=False,channel_last=False][[1,192,16,16]]")
Q = f'"{SEED_UID}"'
# The rows of the original profiler's documented example (docs/profiler/snpe.rst).
SEED_ROWS = [
    f"{Q},GPU,Forward Propagate,Min_Time,595",
    f"{Q},GPU,Forward Propagate,Avg_Time,672",
    f"{Q},GPU,Forward Propagate,Max_Time,783",
    f"{Q},GPU,Total Inference Time,Min_Time,623",
    f"{Q},GPU,Total Inference Time,Avg_Time,700",
    f"{Q},GPU,Total Inference Time,Max_Time,812",
    f"{Q},GPU,Layers Time,Min_Time,37.0",
    f"{Q},GPU,Layers Time,Avg_Time,37.0",
    f"{Q},GPU,Layers Time,Max_Time,38.0",
]


def rec(uid, runtime, samples, status="ok", **extra):
    return {"uid": uid, "runtime": runtime, "status": status, "error": None if status == "ok" else "boom",
            "samples": samples if status == "ok" else {}, "unit": "us", **extra}


def uid(i):
    return f"Conv[in_channels={i},out_channels={i},kernel=[3,3]][[1,{i},8,8]]"


@pytest.fixture
def small():
    records = [
        rec(uid(1), "CPU", {"Layers Time": [10.0, 12.0, 14.0], "Forward Propagate": [20.0, 22.0]}),
        rec(uid(1), "GPU", {"Layers Time": [5.0, 5.0]}),
        rec(uid(2), "CPU", {"Layers Time": [1.0, 2.0, 2.0]}),
        rec(uid(3), "GPU", {"Layers Time": [7.0]}),
        rec(uid(4), "CPU", {}, status="failed"),
    ]
    return LatencyTable.from_records(records, [{"device": "Pixel 4"}], sources=["a.jsonl"])


def random_table(rng, n_uids=40, runtimes=("CPU", "GPU", "DSP")):
    records = []
    for i in range(n_uids):
        for rt in runtimes:
            if rt == "GPU" and i % 7 == 3:
                continue  # some modules never measured on GPU
            samples = {k: list(rng.uniform(1.0, 500.0, size=int(rng.integers(1, 12))))
                       for k in T.LATENCY_KEYS}
            records.append(rec(uid(i), rt, samples))
    return LatencyTable.from_records(records, [{"device": "x"}], sources=["r.jsonl"])


# --- building -------------------------------------------------------------------------------

def test_latency_keys_match_the_store():
    from profiler.keys import LATENCY_KEYS
    assert T.LATENCY_KEYS == tuple(LATENCY_KEYS)


def test_from_records_summarizes_ok_records_only(small):
    assert small.uids == (uid(1), uid(2), uid(3))  # uid(4) failed -> left out
    assert small.runtimes == ("CPU", "GPU")
    assert small.keys == ("Forward Propagate", "Layers Time")
    d = small.to_dict()
    assert d[uid(1)]["CPU"]["Layers Time"] == {"Min_Time": 10.0, "Avg_Time": 12.0, "Max_Time": 14.0,
                                               "Median_Time": 12.0, "Std_Time": 2.0, "P90_Time": 14.0,
                                               "Count": 3}
    assert d[uid(2)]["CPU"]["Layers Time"]["Avg_Time"] == 5.0 / 3.0
    assert small.notes == ["left out 1 failed records"]


def test_no_successful_record_is_an_error():
    with pytest.raises(TableError, match=r"no successful measurements in s\.jsonl \(1 failed"):
        LatencyTable.from_records([rec(uid(1), "CPU", {}, status="failed")], [], sources=["s.jsonl"])


def test_bad_samples_name_the_module():
    with pytest.raises(TableError, match=r"s\.jsonl: module .*in_channels=1,.* on runtime 'CPU', 'Layers Time'"):
        LatencyTable.from_records([rec(uid(1), "CPU", {"Layers Time": [1.0, -3.0]}, source="s.jsonl")])


def test_cycles_are_never_mixed_with_us():
    r = rec(uid(1), "DSP", {"Layers Time": [900.0], "Forward Propagate": [10.0]},
            unit={"Layers Time": "cycles"})
    with pytest.raises(TableError, match=r"'Layers Time' is in 'cycles', not microseconds"):
        LatencyTable.from_records([r])
    t = LatencyTable.from_records([r], non_us="skip")
    assert t.keys == ("Forward Propagate",)
    assert any("cycles" in n for n in t.notes)
    whole = rec(uid(2), "DSP", {"Layers Time": [900.0]}, unit="cycles")
    with pytest.raises(TableError, match="cycles"):
        LatencyTable.from_records([whole])


# --- duplicates -----------------------------------------------------------------------------

def _dups():
    a = [rec(uid(1), "CPU", {"Layers Time": [1.0]}, source="a.jsonl"),
         rec(uid(2), "CPU", {"Layers Time": [2.0]}, source="a.jsonl")]
    b = [rec(uid(1), "CPU", {"Layers Time": [9.0]}, source="b.jsonl")]
    return a + b


def test_duplicate_is_an_error_by_default():
    with pytest.raises(TableError) as e:
        LatencyTable.from_records(_dups(), [{}, {}], sources=["a.jsonl", "b.jsonl"])
    msg = str(e.value)
    assert uid(1) in msg and "'CPU'" in msg and "a.jsonl" in msg and "b.jsonl" in msg
    assert "--on-duplicate last" in msg


@pytest.mark.parametrize("policy,expected", [("last", 9.0), ("first", 1.0)])
def test_duplicate_policies(policy, expected):
    t = LatencyTable.from_records(_dups(), on_duplicate=policy)
    assert t.lookup(uid(1), "CPU") == expected
    assert t.lookup(uid(2), "CPU") == 2.0
    assert any("1 duplicate" in n for n in t.notes)


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError):
        LatencyTable.from_records(_dups(), on_duplicate="max")


# --- meta -----------------------------------------------------------------------------------

def test_meta_is_merged_over_all_stores_not_the_last():
    m1 = {"device": "Pixel 4", "soc": "SM8150", "android sdk": 30, "SNPE SDK version": "1.33.1",
          "config": {"warmup": 10, "threads": 1}, "runtimes": ["CPU", "GPU"]}
    m2 = {"device": "SM-G991B", "soc": "SM8150", "android sdk": 31, "SNPE SDK version": "1.33.1",
          "config": {"warmup": 10, "threads": 4}, "runtimes": ["DSP"], "extra": "only here",
          "shapes": [[1, 3]], "flag": True, "none": None}
    meta = T.merge_meta([m1, m2], ["a.jsonl", "b.jsonl"])
    assert list(meta)[:4] == ["format", "version", "unit", "sources"]
    assert meta["format"] == "profiler-table" and meta["version"] == "1" and meta["unit"] == "us"
    assert meta["sources"] == "a.jsonl; b.jsonl"
    assert meta["device"] == "Pixel 4; SM-G991B"
    assert meta["soc"] == "SM8150"
    assert meta["android sdk"] == "30; 31"
    assert meta["SNPE SDK version"] == "1.33.1"
    assert meta["config.warmup"] == "10"
    assert meta["config.threads"] == "1; 4"
    assert meta["runtimes"] == "CPU,GPU; DSP"
    assert meta["extra"] == "only here"
    assert (meta["shapes"], meta["flag"], meta["none"]) == ("[[1,3]]", "true", "null")


def test_reserved_meta_keys_are_not_overwritten():
    meta = T.merge_meta([{"version": "SNPE 2", "format": "x"}])
    assert meta["version"] == "1" and meta["store.version"] == "SNPE 2" and meta["store.format"] == "x"


def test_from_stores_reads_real_stores(tmp_path):
    from profiler.session.store import ResultsStore
    pa, pb = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    with ResultsStore.create(pa, {"target": "phone", "device": "Pixel 4"}) as s:
        s.add(rec(uid(1), "CPU", {"Layers Time": [3.0, 5.0]}))
        s.add(rec(uid(2), "CPU", {}, status="failed"))
        s.add(rec(uid(2), "CPU", {"Layers Time": [8.0]}))  # re-measured in the same store: not a duplicate
    with ResultsStore.create(pb, {"target": "phone", "device": "SM-G991B"}) as s:
        s.add(rec(uid(1), "GPU", {"Layers Time": [1.0]}))
    t = LatencyTable.from_stores([pa, pb])
    assert t.lookup(uid(1), "CPU") == 4.0 and t.lookup(uid(2), "CPU") == 8.0 and t.lookup(uid(1), "GPU") == 1.0
    assert t.meta["device"] == "Pixel 4; SM-G991B" and t.meta["target"] == "phone"
    assert t.meta["sources"] == f"{pa}; {pb}"
    with ResultsStore.create(tmp_path / "c.jsonl", {"device": "Pixel 4"}) as s:
        s.add(rec(uid(1), "CPU", {"Layers Time": [4.0]}))
    with pytest.raises(TableError, match=r"a\.jsonl and .*c\.jsonl"):
        LatencyTable.from_stores([pa, tmp_path / "c.jsonl"])


# --- CSV layout (the seed's) ----------------------------------------------------------------

def test_csv_rows_are_byte_identical_to_the_seed_example(tmp_path):
    # samples chosen so min/avg/max are the seed's: (595 + 638 + 783) / 3 = 672, (623 + 665 + 812) / 3 = 700
    t = LatencyTable.from_records([rec(SEED_UID, "GPU", {"Layers Time": [37.0, 37.0, 37.0],
                                                         "Total Inference Time": [812.0, 665.0, 623.0],
                                                         "Forward Propagate": [595.0, 638.0, 783.0]})])
    csv_path = t.save(tmp_path / "seed")[0]
    lines = csv_path.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == ""  # every row ends with \n
    assert lines[:6] == SEED_ROWS[:6]  # key order FP, TIT, LT; stats Min, Avg, Max; quoted UID
    assert lines[6:9] == [f"{Q},GPU,Layers Time,{s},37" for s in ("Min_Time", "Avg_Time", "Max_Time")]
    assert len(lines) == 10  # only the seed's three stats in the CSV


def test_csv_of_the_seed_example_loads(tmp_path):
    p = tmp_path / "MNV2-CIFAR10-space-latency.csv"
    p.write_text("\r\n".join(SEED_ROWS) + "\r\n", encoding="utf-8")  # csv.writer's default line ends
    t = LatencyTable.load(p)
    assert t.uids == (SEED_UID,) and t.runtimes == ("GPU",)
    assert t.lookup(SEED_UID, "GPU") == 37.0
    assert t.lookup(SEED_UID, "GPU", "Forward Propagate", "Max_Time") == 783.0
    t.save(tmp_path / "again")
    rows = (tmp_path / "again.csv").read_text().splitlines()
    assert rows[:6] == SEED_ROWS[:6]
    assert [r.replace(",37", ",37.0").replace(",38", ",38.0") for r in rows[6:]] == SEED_ROWS[6:]


def test_value_text_is_exact():
    assert T._fmt_value(595.0) == "595"
    assert T._fmt_value(37.5) == "37.5"
    assert T._fmt_value(5.0 / 3.0) == "1.6666666666666667"
    assert T._fmt_value(-0.0) == "0"
    assert float(T._fmt_value(0.1 + 0.2)) == 0.1 + 0.2


# --- round trips ----------------------------------------------------------------------------

def test_round_trip_json_csv_meta(tmp_path):
    t = random_table(np.random.default_rng(0))
    written = t.save(tmp_path / "out" / "space-latency")
    assert [p.name for p in written] == ["space-latency.csv", "space-latency.json", "space-latency.meta"]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(p.name for p in written)  # no temp files left

    from_json = LatencyTable.load(tmp_path / "out" / "space-latency")  # bare NAME -> prefers .json
    assert from_json.source.endswith(".json")
    assert from_json.to_dict() == t.to_dict()
    assert from_json.meta == t.meta
    assert from_json.uids == t.uids and from_json.runtimes == t.runtimes and from_json.keys == t.keys

    from_csv = LatencyTable.load(tmp_path / "out" / "space-latency.csv")
    expected = {u: {rt: {k: {s: v for s, v in st.items() if s in ("Min_Time", "Avg_Time", "Max_Time")}
                         for k, st in bk.items()} for rt, bk in br.items()} for u, br in t.to_dict().items()}
    assert from_csv.to_dict() == expected  # exact floats
    assert from_csv.meta == t.meta

    (tmp_path / "out" / "space-latency.json").unlink()
    assert LatencyTable.load(tmp_path / "out" / "space-latency").source.endswith(".csv")


def test_json_layout(tmp_path, small):
    small.save(tmp_path / "t")
    doc = json.loads((tmp_path / "t.json").read_text())
    assert list(doc) == list(small.uids)
    stats = doc[uid(1)]["CPU"]["Layers Time"]
    assert list(stats) == ["Min_Time", "Avg_Time", "Max_Time", "Median_Time", "Std_Time", "P90_Time", "Count"]
    assert list(doc[uid(1)]["CPU"]) == ["Forward Propagate", "Layers Time"]


def test_meta_file_format(tmp_path):
    meta = T.merge_meta([{"SNPE SDK version:": "1.33.1.608", "date": "2024-05-01T10:00:00+02:00",
                          "ro.product.model": "Pixel 4", "note": "a\nb"}], ["x.jsonl"])
    t = LatencyTable({uid(1): {"CPU": {"Layers Time": {"Avg_Time": 1.0}}}}, meta)
    t.save(tmp_path / "m")
    text = (tmp_path / "m.meta").read_text()
    lines = text.split("\n")
    assert lines[:5] == ["format:profiler-table", "version:1", "unit:us", "sources:x.jsonl",
                         '"SNPE SDK version:":1.33.1.608']
    assert '"date":"2024-05-01T10:00:00+02:00"' not in text  # only fields containing ':' are quoted
    assert 'date:"2024-05-01T10:00:00+02:00"' in lines
    assert "ro.product.model:Pixel 4" in lines
    assert LatencyTable.load(tmp_path / "m").meta == t.meta


def test_seed_style_meta_is_accepted(tmp_path):
    (tmp_path / "old.csv").write_text(SEED_ROWS[0] + "\n")
    (tmp_path / "old.meta").write_text('ro.product.model:Pixel 4\n"SNPE SDK version:":1.33\n')
    t = LatencyTable.load(tmp_path / "old")
    assert t.meta == {"ro.product.model": "Pixel 4", "SNPE SDK version:": "1.33"}


def test_failed_write_leaves_nothing_behind(tmp_path, small, monkeypatch):
    def broken(src, dst):
        raise OSError(28, "No space left on device", str(dst))
    monkeypatch.setattr(T.os, "replace", broken)
    with pytest.raises(TableError, match="No space left on device"):
        small.save(tmp_path / "t")
    assert os.listdir(tmp_path) == []


# --- corrupt / foreign files ----------------------------------------------------------------

@pytest.mark.parametrize("content,match", [
    ('{"a": {"CPU": {"Layers Time": {"Avg_Time": 1.0}}', r"bad\.json: not valid JSON"),
    ('[1, 2]', r"bad\.json: expected an object"),
    ('{}', r"bad\.json: the table is empty"),
    ('{"m": {"CPU": {"Layers Time": {"Avg_Time": "fast"}}}}', r"bad\.json: module 'm', runtime 'CPU', "
                                                              r"'Layers Time': Avg_Time is 'fast'"),
    ('{"m": {"CPU": {"Layers Time": {"Avg_Time": NaN}}}}', r"bad\.json: .*not a finite"),
    ('{"m": {"CPU": {"Layers Time": {"Avg_Time": -1}}}}', r"bad\.json: .*non-negative"),
    ('{"m": {"CPU": []}}', r"bad\.json: module 'm', runtime 'CPU'"),
])
def test_corrupt_json(tmp_path, content, match):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(TableError, match=match):
        LatencyTable.load(tmp_path / "bad.json")


@pytest.mark.parametrize("rows,match", [
    ([SEED_ROWS[0], SEED_ROWS[1], f"{Q},GPU,Forward Propagate,Max_Time"], r"bad\.csv:3: bad row: expected 5"),
    ([SEED_ROWS[0].replace('"', "")], r"bad\.csv:1: bad row: expected 5 fields .* got 21 .*quoted"),
    ([SEED_ROWS[0], f"{Q},GPU,Forward Propagate,Avg_Time,fast"], r"bad\.csv:2: bad row: value 'fast'"),
    ([f"{Q},GPU,Forward Propagate,Avg_Time,nan"], r"bad\.csv:1: bad row: value 'nan'"),
    ([f"{Q},GPU,Forward Propagate,Avg_Time,-3"], r"bad\.csv:1: bad row: value '-3'"),
    (["ModuleUID,Runtime,LatencyKey,Stats,Value"], r"bad\.csv:1: bad row: value 'Value'"),
    ([SEED_ROWS[0], SEED_ROWS[1], SEED_ROWS[0]], r"bad\.csv:3: bad row: .*already given at line 1"),
    ([f"{Q},,Forward Propagate,Avg_Time,1"], r"bad\.csv:1: bad row: empty"),
    ([], r"bad\.csv: empty table"),
])
def test_corrupt_csv(tmp_path, rows, match):
    (tmp_path / "bad.csv").write_text("".join(r + "\n" for r in rows))
    with pytest.raises(TableError, match=match):
        LatencyTable.load(tmp_path / "bad.csv")


def test_non_utf8_and_missing_files(tmp_path):
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TableError, match=r"bin\.csv: not UTF-8"):
        LatencyTable.load(tmp_path / "bin.csv")
    with pytest.raises(TableError, match=r"nothing: no latency table found .*nothing\.json and .*nothing\.csv"):
        LatencyTable.load(tmp_path / "nothing")
    with pytest.raises(TableError, match=r"gone\.json: no such table file"):
        LatencyTable.load(tmp_path / "gone.json")


@pytest.mark.parametrize("meta,match", [
    ("format:profiler-table\nversion:2\nunit:us\n", r"t\.meta: table format version 2 is newer"),
    ("format:profiler-results\n", r"t\.meta: format 'profiler-results' is not a latency table"),
    ("format:profiler-table\nversion:1\nunit:cycles\n", r"t\.meta: values are in 'cycles'"),
    ("format:profiler-table\nversion:one\n", r"t\.meta: version 'one' is not an integer"),
    ("format:profiler-table\na:b:c\n", r"t\.meta:2: expected one 'key:value' pair"),
])
def test_bad_meta(tmp_path, small, meta, match):
    small.save(tmp_path / "t")
    (tmp_path / "t.meta").write_text(meta)
    with pytest.raises(TableError, match=match):
        LatencyTable.load(tmp_path / "t")


# --- look-ups -------------------------------------------------------------------------------

def test_lookup_defaults_to_layers_time_avg(small):
    assert small.lookup(uid(1), "CPU") == 12.0
    assert small.lookup(uid(1), "CPU", "Forward Propagate", "Max_Time") == 22.0
    assert small.lookup(uid(1), "CPU", stat="Count") == 3.0
    assert uid(1) in small and "nope" not in small and len(small) == 3


def test_lookup_errors_name_uid_runtime_and_alternatives(small, tmp_path):
    with pytest.raises(TableError) as e:
        small.lookup("Conv[nope]", "CPU")
    assert "'Conv[nope]'" in str(e.value) and "'CPU'" in str(e.value) and "CPU, GPU" in str(e.value)
    with pytest.raises(TableError) as e:
        small.lookup(uid(3), "CPU")
    assert uid(3) in str(e.value) and "'CPU'" in str(e.value) and "measured on: GPU" in str(e.value)
    with pytest.raises(TableError, match="has no 'Total Inference Time'.*it has: Forward Propagate, Layers Time"):
        small.lookup(uid(1), "CPU", "Total Inference Time")
    small.save(tmp_path / "t")
    csv_table = LatencyTable.load(tmp_path / "t.csv")
    with pytest.raises(TableError, match=r"no 'P90_Time' in .*t\.csv.*load the \.json"):
        csv_table.lookup(uid(1), "CPU", stat="P90_Time")


# --- vectorised -----------------------------------------------------------------------------

def test_vector_is_aligned_cached_and_read_only(small):
    v = small.vector("CPU")
    assert v.dtype == np.float64 and v.shape == (3,)
    assert v[0] == 12.0 and v[1] == 5.0 / 3.0 and np.isnan(v[2])  # uid(3) has no CPU
    assert np.shares_memory(v, small.vector("CPU"))
    with pytest.raises(ValueError):
        v[0] = 1.0
    with pytest.raises(TableError, match=r"runtime 'NPU' is not in the latency table; it has: CPU, GPU"):
        small.vector("NPU")
    with pytest.raises(TableError, match=r"no module has 'Total Inference Time'"):
        small.vector("CPU", "Total Inference Time")


def test_index_of(small):
    assert small.index_of([uid(3), uid(1), uid(1)]).tolist() == [2, 0, 0]
    assert small.index_of([]).dtype == np.int64
    with pytest.raises(TableError, match=r"'Conv\[x\]' is not in the latency table \(1 of 2 UIDs unknown\)"):
        small.index_of([uid(1), "Conv[x]"])
    with pytest.raises(ValueError):
        small.index_of(uid(1))


@pytest.mark.parametrize("runtime,key,stat", [("CPU", "Layers Time", "Avg_Time"),
                                              ("DSP", "Forward Propagate", "Max_Time"),
                                              ("GPU", "Total Inference Time", "P90_Time")])
def test_vectorised_sums_equal_a_naive_loop(runtime, key, stat):
    rng = np.random.default_rng(42)
    t = random_table(rng)
    usable = [u for u in t.uids if runtime in t.to_dict()[u]]
    archs = [list(rng.choice(usable, size=int(rng.integers(0, 25)))) for _ in range(300)]
    naive = np.array([sum(t.lookup(u, runtime, key, stat) for u in a) for a in archs])

    by_uids = t.sum_uids(archs, runtime, key, stat)
    assert by_uids.shape == (300,)
    np.testing.assert_allclose(by_uids, naive, rtol=1e-12, atol=0)

    idx_list = [t.index_of(a) for a in archs]
    np.testing.assert_array_equal(t.sum_indices(idx_list, runtime, key, stat), by_uids)

    width = max(len(a) for a in archs)
    padded = np.full((len(archs), width), -1, dtype=np.int64)
    for i, ix in enumerate(idx_list):
        padded[i, :len(ix)] = ix
    np.testing.assert_array_equal(t.sum_indices(padded, runtime, key, stat), by_uids)
    assert np.all(by_uids[[len(a) == 0 for a in archs]] == 0.0)


def test_sum_is_exact_on_integral_values(small):
    idx = np.array([[0, 1, -1, -1], [1, 1, 1, 0], [-1, -1, -1, -1]])
    assert small.sum_indices(idx, "CPU", stat="Max_Time").tolist() == [16.0, 20.0, 0.0]
    assert small.sum_indices(np.zeros((0, 3), dtype=np.int32), "CPU").shape == (0,)
    assert small.sum_indices([], "CPU").shape == (0,)


def test_missing_value_in_a_sum_names_the_module(small):
    with pytest.raises(TableError) as e:
        small.sum_uids([[uid(1)], [uid(1), uid(3)], [uid(3)]], "CPU")
    msg = str(e.value)
    assert uid(3) in msg and "'CPU'" in msg and "architecture 1" in msg and "2 of 3" in msg
    assert "measured on: GPU" in msg


def test_malformed_indices_are_rejected(small):
    with pytest.raises(ValueError, match="2-D"):
        small.sum_indices(np.array([0, 1]), "CPU")
    with pytest.raises(ValueError, match="out of range"):
        small.sum_indices(np.array([[0, 3]]), "CPU")  # 3 == len(uids) would hit the 0 sentinel
    with pytest.raises(ValueError, match="out of range"):
        small.sum_indices(np.array([[0, -2]]), "CPU")
    with pytest.raises(ValueError, match="integers"):
        small.sum_indices(np.array([[0.0, 1.0]]), "CPU")
    with pytest.raises(ValueError, match="wrap one architecture"):
        small.sum_uids([uid(1), uid(2)], "CPU")


def test_to_frame(small):
    df = small.to_frame()
    assert list(df.columns[:4]) == ["ModuleUID", "Runtime", "LatencyKey", "Min_Time"]
    assert len(df) == 5
    row = df[(df.ModuleUID == uid(1)) & (df.Runtime == "CPU") & (df.LatencyKey == "Layers Time")]
    assert row["Avg_Time"].item() == 12.0


def test_import_is_cheap():
    code = "import sys, profiler.table.latency; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the per-network constant (reserved row @network) ----------------------------------------

def _with_constant():
    records = [rec(uid(1), "ORT_CPU", {"Forward Propagate": [100.0, 102.0, 104.0],
                                        "Total Inference Time": [110.0, 112.0, 114.0]}),
               rec(uid(2), "ORT_CPU", {"Forward Propagate": [50.0, 50.0, 52.0],
                                        "Total Inference Time": [60.0, 60.0, 62.0]}),
               rec("@network", "ORT_CPU", {"Forward Propagate": [2.0, 2.5, 3.0],
                                           "Total Inference Time": [20.0, 21.0, 25.0]})]
    return LatencyTable.from_records(records, [{"target": "host"}], sources=["m.results"])


def test_network_constant_survives_build_save_and_load(tmp_path):
    t = _with_constant()
    assert t.network_constant("ORT_CPU", "Total Inference Time", "Median_Time") == 21.0
    assert t.network_constant("ORT_CPU", "Forward Propagate", "Median_Time") == 2.5
    assert "@network" in t.uids and t.module_uids == (uid(1), uid(2))
    t.save(tmp_path / "t")
    for name in ("t.json", "t.csv", "t"):
        back = LatencyTable.load(tmp_path / name)
        assert back.has_constant("ORT_CPU") and back.module_uids == (uid(1), uid(2))
        assert back.network_constant("ORT_CPU", "Total Inference Time", "Avg_Time") == pytest.approx(22.0)
    assert "\n@network,ORT_CPU,Total Inference Time,Avg_Time,22\n" in (tmp_path / "t.csv").read_text()


def test_a_table_without_the_constant_reads_zero_and_a_partial_row_is_an_error(small):
    assert not small.has_constant("CPU") and small.network_constant("CPU", "Layers Time") == 0.0
    assert small.module_uids == small.uids
    t = _with_constant()
    with pytest.raises(TableError, match="@network.*'Layers Time'"):
        t.network_constant("ORT_CPU", "Layers Time", "Median_Time")


def test_accumulation_adds_the_constant_once_per_network():
    from profiler.table.accumulate import accumulate, network_sum
    t = _with_constant()
    args = ("ORT_CPU", "Forward Propagate", "Median_Time", "a")
    one = network_sum(t, [uid(1)], *args)
    assert one == 102.0 + 21.0                     # the networks' key: Total Inference Time
    assert network_sum(t, [uid(1), uid(1), uid(2)], *args) == 102.0 * 2 + 50.0 + 21.0
    assert network_sum(t, [], *args) == 21.0
    assert network_sum(t, [uid(1)], *args, const_key="Forward Propagate") == 102.0 + 2.5
    assert network_sum(t, [uid(1)], *args, const_key=None) == 102.0
    entries = [{"uid": "n1", "module_uids": {"block": [uid(1), uid(2)]}},
               {"uid": "n2", "module_uids": {"block": [uid(2)]}}]
    acc = accumulate(entries, t, "block", "Forward Propagate", "Median_Time")
    assert acc == {"n1": {"ORT_CPU": 102.0 + 50.0 + 21.0}, "n2": {"ORT_CPU": 50.0 + 21.0}}
