"""Raw input tensors for snpe-net-run / snpe-dlc-quant(ize) and the input list that names them.

A ``.raw`` file is a headerless little-endian float32 array of exactly ``prod(dims)`` values, in
the DLC's layout (NHWC for images, also for ONNX models). The input list has one line per
inference: the plain path when the network has one input, else ``name:=path`` tokens separated
by single spaces. SNPE splits lines on spaces, so paths must not contain whitespace. The
quantizer wants absolute paths; snpe-net-run resolves relative ones against its working folder.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from profiler.errors import ProfilerError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
RESIZE_MODES = ("stretch", "letterbox", "center_crop")
Sample = Union[str, Path, Mapping[str, Union[str, Path]]]


class RawInputError(ProfilerError):
    """Input data that cannot become SNPE raw inputs (bad folder, image, shape or path)."""


def safe_name(tensor: str) -> str:
    """A file-name-safe form of a tensor name (``input:0`` -> ``input_0``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", tensor).strip("_") or "input"


def write_raw(path: Union[str, Path], array: np.ndarray) -> Path:
    """Write ``array`` as little-endian float32 without a header."""
    path = Path(path)
    np.ascontiguousarray(array, dtype="<f4").tofile(str(path))
    return path


def read_raw(path: Union[str, Path], dims: Sequence[int]) -> np.ndarray:
    """Read a float32 ``.raw`` file and check it holds exactly ``prod(dims)`` values."""
    path = Path(path)
    expected = int(math.prod(dims)) * 4
    size = path.stat().st_size
    if size != expected:
        raise RawInputError(f"{path}: {size} bytes, expected {expected} for float32 dims "
                            f"{'x'.join(map(str, dims))}")
    return np.fromfile(str(path), dtype="<f4").reshape(tuple(dims))


def random_inputs(out_dir: Union[str, Path], inputs: Mapping[str, Sequence[int]], count: int, *,
                  seed: int = 0, low: float = -1.0, high: float = 1.0) -> List[Dict[str, Path]]:
    """``count`` samples of uniform ``[low, high)`` float32 tensors, one ``.raw`` per input.

    Files are ``<out_dir>/<safe input name>_<i>.raw``; the same ``seed`` gives the same bytes.
    Returns ``[{input name: path}, ...]`` ready for :func:`write_input_list`.
    """
    if count < 1:
        raise RawInputError(f"need at least one random input sample, not {count}")
    if not inputs:
        raise RawInputError("no network inputs given (read them with snpe-dlc-info)")
    names = {safe_name(n) for n in inputs}
    if len(names) != len(inputs):
        raise RawInputError(f"input names {sorted(inputs)} collide once made file-name safe")
    for name, dims in inputs.items():
        if not dims or any(int(d) <= 0 for d in dims):
            raise RawInputError(f"input {name!r} has invalid dims {list(dims)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        sample = {}
        for name, dims in inputs.items():
            data = rng.uniform(low, high, size=tuple(int(d) for d in dims)).astype(np.float32)
            sample[name] = write_raw(out / f"{safe_name(name)}_{i}.raw", data)
        samples.append(sample)
    return samples


def image_to_array(path: Union[str, Path], height: int, width: int, *, resize: str = "letterbox",
                   mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (255.0, 255.0, 255.0),
                   bgr: bool = False, pad_value: float = 0.0) -> np.ndarray:
    """One image as a ``1 x H x W x 3`` float32 array: ``(pixel - mean) / std`` per channel.

    ``resize``: ``stretch`` to H x W; ``letterbox`` keeps the aspect ratio, scales to fit and
    pads (with ``pad_value`` after normalisation) centred; ``center_crop`` keeps the aspect
    ratio, scales to cover and crops the centre. Pixels are RGB unless ``bgr``.
    """
    from PIL import Image  # Pillow is only needed for image folders

    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, not {resize!r}")
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except OSError as e:
        raise RawInputError(f"{path}: cannot read image ({e})") from None
    w0, h0 = img.size
    if resize == "stretch":
        arr = np.asarray(img.resize((width, height), Image.BILINEAR), dtype=np.float32)
    elif resize == "letterbox":
        s = min(width / w0, height / h0)
        nw, nh = max(1, round(w0 * s)), max(1, round(h0 * s))
        small = np.asarray(img.resize((nw, nh), Image.BILINEAR), dtype=np.float32)
        arr = None
    else:
        s = max(width / w0, height / h0)
        nw, nh = max(width, round(w0 * s)), max(height, round(h0 * s))
        big = img.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - width) // 2, (nh - height) // 2
        arr = np.asarray(big.crop((left, top, left + width, top + height)), dtype=np.float32)
    mean_a = np.asarray(mean, dtype=np.float32)
    std_a = np.asarray(std, dtype=np.float32)
    if arr is None:
        out = np.full((height, width, 3), pad_value, dtype=np.float32)
        top, left = (height - nh) // 2, (width - nw) // 2
        out[top:top + nh, left:left + nw] = (small - mean_a) / std_a
    else:
        out = (arr - mean_a) / std_a
    if bgr:
        out = out[..., ::-1]
    return np.ascontiguousarray(out[None, ...], dtype=np.float32)


def images_to_raw(image_dir: Union[str, Path], out_dir: Union[str, Path], height: int, width: int,
                  *, limit: Optional[int] = None, **kwargs) -> List[Path]:
    """Convert every image of ``image_dir`` (sorted by name) to ``<out_dir>/<stem>.raw``.

    Keyword arguments go to :func:`image_to_array`. Returns the raw paths in order.
    """
    src = Path(image_dir)
    if not src.is_dir():
        raise RawInputError(f"{src}: image folder does not exist")
    images = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if limit is not None:
        images = images[:limit]
    if not images:
        raise RawInputError(f"{src}: no images ({', '.join(IMAGE_SUFFIXES)}) to convert")
    stems: Dict[str, Path] = {}
    for p in images:
        if p.stem in stems:
            raise RawInputError(f"{src}: {stems[p.stem].name} and {p.name} would both become {p.stem}.raw")
        stems[p.stem] = p
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [write_raw(out / f"{p.stem}.raw", image_to_array(p, height, width, **kwargs)) for p in images]


def format_input_list(samples: Sequence[Sample], *, output_names: Sequence[str] = (),
                      relative_to: Optional[Union[str, Path]] = None, absolute: bool = False) -> str:
    """Input-list text: one line per sample (see module docstring).

    A sample is a path (single-input network) or ``{input name: path}``; a one-entry mapping is
    written as the plain path. ``output_names`` adds the ``#out1 out2`` first line.
    ``absolute`` resolves paths (needed by the quantizer); ``relative_to`` writes them relative
    to that folder (e.g. the device model dir the files are pushed into).
    """
    if not samples:
        raise RawInputError("an input list needs at least one sample")
    if absolute and relative_to is not None:
        raise ValueError("use either absolute or relative_to, not both")

    def fmt(p: Union[str, Path]) -> str:
        path = Path(p)
        if absolute:
            path = path.resolve()
        elif relative_to is not None:
            try:
                path = path.relative_to(relative_to)
            except ValueError:
                raise RawInputError(f"{p}: not inside {relative_to}") from None
        text = path.as_posix()
        if re.search(r"\s", text):
            raise RawInputError(f"{text!r}: SNPE input lists cannot hold paths with spaces")
        return text

    lines = []
    if output_names:
        lines.append("#" + " ".join(output_names))
    names: Optional[Tuple[str, ...]] = None
    for i, sample in enumerate(samples):
        if isinstance(sample, Mapping):
            if not sample:
                raise RawInputError(f"sample {i} has no inputs")
            if names is None:
                names = tuple(sample)
            elif tuple(sample) != names:
                raise RawInputError(f"sample {i} has inputs {list(sample)}, sample 0 has {list(names)}")
            for name in sample:
                if re.search(r"\s|:=", name):
                    raise RawInputError(f"input name {name!r} cannot be written to an input list")
            if len(sample) == 1:
                lines.append(fmt(next(iter(sample.values()))))
            else:
                lines.append(" ".join(f"{name}:={fmt(p)}" for name, p in sample.items()))
        else:
            if names is not None:
                raise RawInputError(f"sample {i} is a bare path but earlier samples name their inputs")
            lines.append(fmt(sample))
    return "\n".join(lines) + "\n"


def write_input_list(path: Union[str, Path], samples: Sequence[Sample], **kwargs) -> Path:
    """Write :func:`format_input_list` text to ``path`` and return it."""
    path = Path(path)
    path.write_text(format_input_list(samples, **kwargs), encoding="utf-8")
    return path


def parse_input_list(text: str) -> Tuple[List[str], List[Dict[str, str]]]:
    """Read input-list text back: ``(output names, [{input name or "": path}, ...])``."""
    outputs: List[str] = []
    samples: List[Dict[str, str]] = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            outputs = s[1:].split()
            continue
        if s.startswith("%"):
            continue
        sample = {}
        for tok in s.split(" "):
            name, sep, p = tok.partition(":=")
            sample[name if sep else ""] = p if sep else name
        samples.append(sample)
    return outputs, samples


def rebase_input_list(text: str, folder: str) -> str:
    """Input-list text with every relative path put under ``folder`` (posix; e.g. where the
    raws sit as seen from snpe-net-run's working folder); absolute paths stay as they are."""
    outputs, samples = parse_input_list(text)

    def move(p: str) -> str:
        return p if p.startswith("/") else f"{folder.rstrip('/')}/{p}"
    moved: List[Sample] = [move(s[""]) if list(s) == [""] else {n: move(v) for n, v in s.items()}
                           for s in samples]
    return format_input_list(moved, output_names=outputs)


__all__ = [
    "IMAGE_SUFFIXES", "RawInputError", "format_input_list", "image_to_array", "images_to_raw",
    "parse_input_list", "random_inputs", "rebase_input_list", "read_raw", "safe_name", "write_input_list", "write_raw",
]
