from pathlib import Path

import numpy as np
import pytest

from profiler.phone.snpe.rawinput import (RawInputError, format_input_list, image_to_array, images_to_raw,
                                    parse_input_list, random_inputs, read_raw, safe_name, write_input_list)


def test_random_inputs_seeded_float32_nhwc(tmp_path):
    dims = {"input:0": [1, 8, 8, 3], "mask": [1, 4]}
    a = random_inputs(tmp_path / "a", dims, 3, seed=11)
    b = random_inputs(tmp_path / "b", dims, 3, seed=11)
    c = random_inputs(tmp_path / "c", dims, 3, seed=12)
    assert [sorted(s) for s in a] == [["input:0", "mask"]] * 3
    assert a[0]["input:0"].name == "input_0_0.raw" and a[2]["mask"].name == "mask_2.raw"
    for sa, sb, sc in zip(a, b, c):
        for name in dims:
            assert sa[name].read_bytes() == sb[name].read_bytes()
            assert sa[name].read_bytes() != sc[name].read_bytes()
    x = read_raw(a[0]["input:0"], [1, 8, 8, 3])
    assert x.dtype == np.float32 and x.shape == (1, 8, 8, 3)
    assert a[0]["input:0"].stat().st_size == 8 * 8 * 3 * 4
    assert float(x.min()) >= -1.0 and float(x.max()) < 1.0
    assert not np.array_equal(read_raw(a[0]["input:0"], [192]), read_raw(a[1]["input:0"], [192]))


def test_raw_files_are_little_endian_headerless(tmp_path):
    [s] = random_inputs(tmp_path, {"x": [2]}, 1, seed=0)
    raw = s["x"].read_bytes()
    assert np.array_equal(np.frombuffer(raw, dtype="<f4"), read_raw(s["x"], [2]))
    with pytest.raises(RawInputError, match="8 bytes, expected 12 for float32 dims 3"):
        read_raw(s["x"], [3])


@pytest.mark.parametrize("inputs,count,match", [
    ({"x": [1, 2]}, 0, "at least one"), ({}, 1, "no network inputs"),
    ({"x": [1, 0]}, 1, "invalid dims"), ({"a:b": [1], "a/b": [1]}, 1, "collide"),
])
def test_random_inputs_errors(tmp_path, inputs, count, match):
    with pytest.raises(RawInputError, match=match):
        random_inputs(tmp_path, inputs, count)


def test_safe_name():
    assert safe_name("input:0") == "input_0"
    assert safe_name("/model/x.1") == "model_x.1"
    assert safe_name("::") == "input"


@pytest.fixture
def images(tmp_path):
    from PIL import Image
    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("RGB", (40, 20), (255, 0, 0)).save(d / "b_red.png")   # wide
    Image.new("RGB", (10, 30), (0, 0, 255)).save(d / "a_blue.jpg", quality=100)  # tall
    (d / "notes.txt").write_text("not an image")
    return d


def test_image_letterbox_stretch_crop(images):
    red = images / "b_red.png"
    lb = image_to_array(red, 16, 16)  # scale to 16x8, pad top/bottom
    assert lb.shape == (1, 16, 16, 3) and lb.dtype == np.float32
    assert np.allclose(lb[0, 4:12, :, :], [1.0, 0.0, 0.0])
    assert np.all(lb[0, :4] == 0.0) and np.all(lb[0, 12:] == 0.0)
    st = image_to_array(red, 16, 16, resize="stretch", mean=(127.5,) * 3, std=(127.5,) * 3)
    assert np.allclose(st[0], [1.0, -1.0, -1.0])
    cc = image_to_array(red, 12, 12, resize="center_crop", bgr=True)
    assert cc.shape == (1, 12, 12, 3) and np.allclose(cc[0], [0.0, 0.0, 1.0])
    with pytest.raises(ValueError):
        image_to_array(red, 8, 8, resize="fit")


def test_images_to_raw_folder(images, tmp_path):
    out = images_to_raw(images, tmp_path / "raw", 16, 16)
    assert [p.name for p in out] == ["a_blue.raw", "b_red.raw"]  # sorted, text file skipped
    blue = read_raw(out[0], [1, 16, 16, 3])
    # 10x30 fitted into 16x16 -> 5x16 centred at columns 5..9; jpeg colours are nearly exact
    assert np.allclose(blue[0, :, 5:10, :], [0.0, 0.0, 1.0], atol=0.02)
    assert np.all(blue[0, :, :5] == 0.0) and np.all(blue[0, :, 10:] == 0.0)
    assert len(images_to_raw(images, tmp_path / "one", 8, 8, limit=1)) == 1


def test_images_to_raw_errors(images, tmp_path):
    with pytest.raises(RawInputError, match="does not exist"):
        images_to_raw(tmp_path / "nope", tmp_path / "o", 8, 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RawInputError, match="no images"):
        images_to_raw(tmp_path / "empty", tmp_path / "o", 8, 8)
    (images / "b_red.jpg").write_bytes((images / "a_blue.jpg").read_bytes())
    with pytest.raises(RawInputError, match="would both become b_red.raw"):
        images_to_raw(images, tmp_path / "o", 8, 8)
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"not a png")
    with pytest.raises(RawInputError, match="cannot read image"):
        images_to_raw(bad, tmp_path / "o", 8, 8)


def test_input_list_single_input_plain_paths(tmp_path):
    samples = [{"x": tmp_path / "raw" / f"x_{i}.raw"} for i in range(2)]
    assert format_input_list(samples, relative_to=tmp_path) == "raw/x_0.raw\nraw/x_1.raw\n"
    assert format_input_list(["a.raw", Path("b.raw")]) == "a.raw\nb.raw\n"
    text = format_input_list(samples, absolute=True)
    assert text.splitlines()[0] == str((tmp_path / "raw" / "x_0.raw").resolve())


def test_input_list_several_inputs_and_output_line(tmp_path):
    samples = [{"image": "r/image_0.raw", "mask:0": "r/mask_0_0.raw"},
               {"image": "r/image_1.raw", "mask:0": "r/mask_0_1.raw"}]
    text = format_input_list(samples, output_names=["logits", "aux"])
    assert text == ("#logits aux\n"
                    "image:=r/image_0.raw mask:0:=r/mask_0_0.raw\n"
                    "image:=r/image_1.raw mask:0:=r/mask_0_1.raw\n")
    path = write_input_list(tmp_path / "list.txt", samples)
    outputs, back = parse_input_list(path.read_text())
    assert outputs == [] and back == [{"image": "r/image_0.raw", "mask:0": "r/mask_0_0.raw"},
                                      {"image": "r/image_1.raw", "mask:0": "r/mask_0_1.raw"}]
    assert parse_input_list(text)[0] == ["logits", "aux"]


@pytest.mark.parametrize("samples,kw,match", [
    ([], {}, "at least one sample"),
    (["my file.raw"], {}, "paths with spaces"),
    ([{"a": "1.raw", "b": "2.raw"}, {"a": "3.raw"}], {}, "sample 1 has inputs"),
    ([{"a": "1.raw"}, "2.raw"], {}, "bare path"),
    ([{"in put": "1.raw", "b": "2.raw"}], {}, "cannot be written"),
    ([{}], {}, "has no inputs"),
    (["/elsewhere/x.raw"], {"relative_to": "/data"}, "not inside /data"),
])
def test_input_list_errors(samples, kw, match):
    with pytest.raises(RawInputError, match=match):
        format_input_list(samples, **kw)


def test_rebase_input_list_moves_relative_paths_and_keeps_names_outputs_and_absolute_paths():
    from profiler.phone.snpe.rawinput import rebase_input_list
    single = "x_0.raw\nx_1.raw\n"
    assert rebase_input_list(single, "../../inputs/in-ab") == "../../inputs/in-ab/x_0.raw\n../../inputs/in-ab/x_1.raw\n"
    multi = "#out1 out2\na:=a_0.raw b:=/abs/b_0.raw\n"
    assert rebase_input_list(multi, "up/") == "#out1 out2\na:=up/a_0.raw b:=/abs/b_0.raw\n"
