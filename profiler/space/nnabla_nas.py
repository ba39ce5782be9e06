"""Convert an nnabla-nas search configuration into one of our search-space documents (pure).

nnabla-nas (sony/nnabla-nas, checked against 0.15.0) describes a search by a training
config; only its network part and input shape matter here. Two layouts are recognised:

* the 2020 JSON examples (``examples/mobilenet_*_search*.json``, the original profiler's
  input): ``{"input_shape": [3, 32, 32], "network": {"search_space": "mobilenet", ...}}``;
* a composed 0.15 hydra config (a dict, e.g. from ``yaml.safe_load`` of the resolved
  config): ``{"network": {"mobilenet": {...}}, "hparams": {"input_shapes": [[3, 32, 32]]}}``.

Only the ``mobilenet`` search space (MobileNetV2 / ProxylessNAS, ``contrib/classification/
mobilenet``) is supported. ``convert`` rebuilds what its ``SearchNet`` builds:

* stem ``ConvBNReLU(3, md(32*w), 3x3, stride 2)``; a fixed ``MB1 3x3`` block to
  ``md(16*w)`` at stride 1;
* per ``settings`` triple ``[c, n, s]`` (output channels, blocks, stride of the first
  block): ``n`` choice blocks to ``md(c*w)``; each offers ``candidates`` in order, plus
  ``skip_connect`` (the identity, last) where stride is 1, in == out and ``skip_connect``;
* head ``ConvBNReLU(.., md(1280*max(1, w)), 1x1)``, ``GlobalAvgPool``, ``Dropout``
  (the identity at inference, not a layer here) and ``Linear(.., num_classes)``;

where ``w`` is ``width_mult`` and ``md(x) = ceil(x / 8) * 8`` (nnabla-nas rounds *up*;
it is not torchvision's round-to-nearest ``_make_divisible``). Defaults: ``num_classes``
1000, ``width_mult`` 1, ``settings`` ``[[24,4,2],[32,4,2],[64,4,2],[96,4,1],[160,4,2],
[320,1,1]]``, ``candidates`` ``["MB3 3x3","MB6 3x3","MB3 5x5","MB6 5x5","MB3 7x7",
"MB6 7x7"]``, ``skip_connect`` true. ``mode`` and ``drop_rate`` do not change the
inference network and are only checked.

Errors are :class:`NnasConfigError` (a ``ValueError`` and a ``SpaceError``) with one line
naming the file and the key, e.g. ``x.json: network/search_space: 'darts' is not supported
(supported: mobilenet)``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from profiler.errors import SpaceError

SUPPORTED = ("mobilenet",)
#: Every search space nnabla-nas 0.15 ships (``nnabla_nas/contrib/__init__.py``).
KNOWN_SPACES = ("mobilenet", "darts", "pnas", "zoph", "random_wired", "fairnas",
                "ofa_mbv3", "ofa_xception", "ofa_resnet50")

DEFAULT_SETTINGS = ((24, 4, 2), (32, 4, 2), (64, 4, 2), (96, 4, 1), (160, 4, 2), (320, 1, 1))
DEFAULT_CANDIDATES = ("MB3 3x3", "MB6 3x3", "MB3 5x5", "MB6 5x5", "MB3 7x7", "MB6 7x7")
#: The keys of nnabla-nas's mobilenet ``CANDIDATES`` other than "skip_connect".
MB_CANDIDATES = tuple(f"MB{e} {k}x{k}" for k in (3, 5, 7) for e in (1, 3, 6))
#: ``SearchNet.__init__`` keyword arguments (``network.search_space`` aside).
SEARCHNET_KEYS = ("name", "num_classes", "width_mult", "settings", "drop_rate", "candidates",
                  "mode", "skip_connect")
MODES = ("sample", "full", "max", "fair")
STEM_CHANNELS, FIRST_CHANNELS, LAST_CHANNELS = 32, 16, 1280


class NnasConfigError(SpaceError, ValueError):
    """An nnabla-nas config that cannot be converted (one line: file, key, problem)."""


def make_divisible(x: float, divisible_by: int = 8) -> int:
    """nnabla-nas's ``_make_divisible``: round ``x`` *up* to a multiple of ``divisible_by``."""
    return int(math.ceil(x * 1.0 / divisible_by) * divisible_by)


def _space_of(doc: Any) -> Optional[Tuple[str, str, Any]]:
    """(search-space name, its key path, the SearchNet kwargs) or None if not nnabla-nas."""
    if not isinstance(doc, Mapping) or "layers" in doc:
        return None
    net = doc.get("network")
    if not isinstance(net, Mapping):
        return None
    if "search_space" in net:
        return (net["search_space"], "network/search_space",
                {k: v for k, v in net.items() if k != "search_space"})
    if len(net) == 1:
        (name, kwargs), = net.items()
        if name in KNOWN_SPACES and (kwargs is None or isinstance(kwargs, Mapping)):
            return name, f"network/{name}", dict(kwargs or {})
    return None


def is_nnabla_nas_config(doc: Any) -> bool:
    """True when ``doc`` looks like an nnabla-nas config (any search space) and not ours."""
    return _space_of(doc) is not None


def _int(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise NnasConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _input_shape(doc: Mapping[str, Any], source: str, old_style: bool) -> List[int]:
    if old_style:
        shape, where = doc.get("input_shape"), "input_shape"
    else:
        shapes = (doc.get("hparams") or {}).get("input_shapes")
        where = "hparams/input_shapes"
        if not isinstance(shapes, list) or len(shapes) != 1:
            raise NnasConfigError(f"{source}: {where}: expected one input shape [[C, H, W]], "
                                  f"got {shapes!r}")
        shape, where = shapes[0], "hparams/input_shapes/0"
    if not isinstance(shape, list) or len(shape) != 3:
        raise NnasConfigError(f"{source}: {where}: expected [channels, height, width], got {shape!r}")
    out = [_int(v, f"{source}: {where}/{i}") for i, v in enumerate(shape)]
    if out[0] != 3:
        raise NnasConfigError(f"{source}: {where}/0: the mobilenet stem takes 3 input channels, "
                              f"got {out[0]}")
    return out


def _candidates(value: Any, where: str) -> List[Dict[str, int]]:
    if not isinstance(value, list) or not value:
        raise NnasConfigError(f"{where}: expected a non-empty list of candidate names, got {value!r}")
    out: List[Dict[str, int]] = []
    for i, name in enumerate(value):
        if name == "skip_connect":
            raise NnasConfigError(f"{where}/{i}: 'skip_connect' as an explicit candidate is not "
                                  "supported; use network skip_connect: true (offers it where "
                                  "stride is 1 and channels match)")
        if name not in MB_CANDIDATES:
            raise NnasConfigError(f"{where}/{i}: unknown candidate {name!r} "
                                  f"(expected one of {', '.join(MB_CANDIDATES)})")
        m = re.fullmatch(r"MB(\d+) (\d+)x\2", name)
        cand = {"expand_ratio": int(m.group(1)), "kernel": int(m.group(2))}
        if cand in out:
            raise NnasConfigError(f"{where}/{i}: duplicate candidate {name!r}")
        out.append(cand)
    return out


def _settings(value: Any, where: str) -> List[Tuple[int, int, int]]:
    if not isinstance(value, list) or not value:
        raise NnasConfigError(f"{where}: expected a list of [channels, blocks, stride], got {value!r}")
    out = []
    for i, triple in enumerate(value):
        w = f"{where}/{i}"
        if not isinstance(triple, list) or len(triple) != 3:
            raise NnasConfigError(f"{w}: expected [channels, blocks, stride] (c, n, s), got {triple!r}")
        c = _int(triple[0], f"{w}/0")
        n = _int(triple[1], f"{w}/1", minimum=0)
        s = _int(triple[2], f"{w}/2")
        if s not in (1, 2):
            raise NnasConfigError(f"{w}/2: stride must be 1 or 2, got {s}")
        out.append((c, n, s))
    return out


def _name(source: str) -> str:
    stem = re.split(r"[\\/]", source)[-1]
    stem = re.sub(r"\.(json|ya?ml)$", "", stem)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_")
    return stem or "nnabla_nas"


def convert(doc: Any, source: str) -> Dict[str, Any]:
    """A document valid for ``search_space.schema.json`` describing ``doc``'s network."""
    found = _space_of(doc)
    if found is None:
        raise NnasConfigError(f"{source}: network: not an nnabla-nas config (expected "
                              "network/search_space or network/<search space>)")
    space, where, kwargs = found
    if space not in SUPPORTED:
        raise NnasConfigError(f"{source}: {where}: {space!r} is not supported "
                              f"(supported: {', '.join(SUPPORTED)})")
    base = where.rsplit("/", 1)[0] if where.endswith("search_space") else where
    for key in kwargs:
        if key not in SEARCHNET_KEYS:
            raise NnasConfigError(f"{source}: {base}/{key}: not a mobilenet SearchNet argument "
                                  f"(expected one of {', '.join(SEARCHNET_KEYS)})")
    shape = _input_shape(doc, source, old_style=where.endswith("search_space"))

    num_classes = _int(kwargs.get("num_classes", 1000), f"{source}: {base}/num_classes")
    width = kwargs.get("width_mult", 1)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise NnasConfigError(f"{source}: {base}/width_mult: expected a number > 0, got {width!r}")
    mode = kwargs.get("mode", "sample")
    if mode not in MODES:
        raise NnasConfigError(f"{source}: {base}/mode: {mode!r} is not one of {', '.join(MODES)}")
    drop = kwargs.get("drop_rate", 0)
    if isinstance(drop, bool) or not isinstance(drop, (int, float)) or not 0 <= drop < 1:
        raise NnasConfigError(f"{source}: {base}/drop_rate: expected a number in [0, 1), got {drop!r}")
    skip = kwargs.get("skip_connect", True)
    if not isinstance(skip, bool):
        raise NnasConfigError(f"{source}: {base}/skip_connect: expected true or false, got {skip!r}")
    settings_raw = kwargs.get("settings")
    settings = (list(DEFAULT_SETTINGS) if settings_raw is None
                else _settings(settings_raw, f"{source}: {base}/settings"))
    cands_raw = kwargs.get("candidates")
    candidates = _candidates(list(DEFAULT_CANDIDATES) if cands_raw is None else cands_raw,
                             f"{source}: {base}/candidates")

    stem = make_divisible(STEM_CHANNELS * width)
    first = make_divisible(FIRST_CHANNELS * width)
    last = make_divisible(LAST_CHANNELS * max(1.0, width))
    layers: List[Dict[str, Any]] = [
        {"type": "ConvBNReLU", "out_channels": stem, "kernel": 3, "stride": 2},
        {"type": "InvertedResidual", "out_channels": first, "expand_ratio": 1, "kernel": 3,
         "stride": 1},
    ]
    for c, n, s in settings:
        if n == 0:          # nnabla-nas builds nothing for it
            continue
        layers.append({"type": "ChoiceStage", "out_channels": make_divisible(c * width),
                       "blocks": n, "stride": s})
    if not any(layer["type"] == "ChoiceStage" for layer in layers):
        raise NnasConfigError(f"{source}: {base}/settings: no choice block (every n is 0)")
    layers += [
        {"type": "ConvBNReLU", "out_channels": last, "kernel": 1, "stride": 1},
        {"type": "GlobalAvgPool"},
        {"type": "Linear", "out_features": num_classes},
    ]
    n_blocks = sum(layer.get("blocks", 0) for layer in layers)
    return {
        "name": _name(source),
        "description": (f"Converted from the nnabla-nas config {source} ({where} = mobilenet, "
                        f"width_mult={width}, {n_blocks} choice blocks); candidates and skip "
                        "order as nnabla-nas's SearchNet."),
        "input_shape": shape,
        "candidates": candidates,
        "skip_connect": skip,
        "layers": layers,
    }




def convert_file(path: Any) -> Dict[str, Any]:
    """Read the nnabla-nas config ``path`` and return our (validated) search-space document."""
    from profiler.space.searchspace import parse_document, read_document
    doc, _, converted = read_document(path)     # converts an nnabla-nas config
    if not converted:
        raise NnasConfigError(f"{path}: network: not an nnabla-nas config (expected "
                              "network/search_space or network/<search space>)"
                              + ("; it is already a profiler search space" if "layers" in doc else ""))
    parse_document(doc, str(path))              # schema + semantic checks of the result
    return doc
