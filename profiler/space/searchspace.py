"""Search-space files: load, validate against the JSON Schema, check semantics (pure).

A search space is a chain of fixed layers and choice stages (see
``search_spaces/search_space.schema.json``). Errors name the file, the key path and the
problem on one line, e.g. ``spaces/x.json: layers/3/stride: 3 is not one of [1, 2]``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from profiler.errors import SpaceError

SCHEMA_PATH = Path(__file__).with_name("search_space.schema.json")


@dataclass(frozen=True)
class Candidate:
    """One candidate operation of a choice block: MB<expand_ratio> <kernel>x<kernel>."""

    expand_ratio: int
    kernel: int

    @property
    def label(self) -> str:
        return f"MB{self.expand_ratio}_k{self.kernel}"


@dataclass(frozen=True)
class FixedLayer:
    """A layer every architecture contains (stem, fixed block, head)."""

    type: str
    params: Tuple[Tuple[str, Any], ...]

    def get(self, key: str) -> Any:
        return dict(self.params)[key]


@dataclass(frozen=True)
class ChoiceStage:
    """``blocks`` choice blocks; the first uses ``stride``, the others stride 1.

    ``block`` is ``InvertedResidual`` (ReLU6, no SE) or ``MBConv`` (with ``act`` and ``se``).
    ``depth`` (elastic depth) lists how many leading blocks an architecture may keep, the
    trailing ones being skipped; empty means every block is present.
    """

    out_channels: int
    blocks: int
    stride: int
    candidates: Tuple[Candidate, ...]
    skip_connect: bool
    block: str = "InvertedResidual"
    act: str = "relu6"
    se: bool = False
    depth: Tuple[int, ...] = ()


Layer = Union[FixedLayer, ChoiceStage]


@dataclass(frozen=True)
class SearchSpace:
    name: str
    input_shape: Tuple[int, int, int]
    layers: Tuple[Layer, ...]
    path: str
    sha256: str
    #: the JSON document it was parsed from (ours; an nnabla-nas config already converted)
    document: Optional[Dict[str, Any]] = field(default=None, compare=False, hash=False, repr=False)

    @property
    def n_choice_blocks(self) -> int:
        return sum(layer.blocks for layer in self.layers if isinstance(layer, ChoiceStage))


def _key_path(parts: Any) -> str:
    path = "/".join(str(p) for p in parts)
    return path or "(top level)"


def _schema() -> Dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


_LAYER_DEFS = {
    "ConvBNReLU": "conv_bn_relu",
    "ConvBNAct": "conv_bn_act",
    "InvertedResidual": "inverted_residual",
    "MBConv": "mb_conv",
    "ChoiceStage": "choice_stage",
    "GlobalAvgPool": "global_avg_pool",
    "Linear": "linear",
}


def validate_document(doc: Any, source: str) -> None:
    """Raise :class:`SpaceError` for the most relevant schema violation of ``doc``.

    Layers are checked first against the definition their ``type`` names, so a bad key in
    a layer is reported as such rather than as "matches none of the layer kinds".
    """
    import jsonschema  # lazy: only needed when a space is loaded

    schema = _schema()
    cls = jsonschema.Draft202012Validator
    if isinstance(doc, dict) and isinstance(doc.get("layers"), list):
        for i, layer in enumerate(doc["layers"]):
            if not isinstance(layer, dict):
                continue
            kind = layer.get("type")
            if kind not in _LAYER_DEFS:
                raise SpaceError(f"{source}: layers/{i}/type: unknown layer type {kind!r} "
                                 f"(expected one of {', '.join(_LAYER_DEFS)})")
            sub = {"$ref": f"#/$defs/{_LAYER_DEFS[kind]}", "$defs": schema["$defs"]}
            err = jsonschema.exceptions.best_match(cls(sub).iter_errors(layer))
            if err is not None:
                raise SpaceError(f"{source}: {_key_path(['layers', i, *err.absolute_path])}: {err.message}")
    err = jsonschema.exceptions.best_match(cls(schema).iter_errors(doc))
    if err is not None:
        raise SpaceError(f"{source}: {_key_path(err.absolute_path)}: {err.message}")


def parse_document(doc: Dict[str, Any], source: str, sha256: str = "") -> SearchSpace:
    """Validate ``doc`` and build a :class:`SearchSpace`, checking shapes stay valid."""
    validate_document(doc, source)
    default_cands = tuple(Candidate(c["expand_ratio"], c["kernel"]) for c in doc["candidates"])
    default_skip = bool(doc.get("skip_connect", True))
    layers: List[Layer] = []
    seen_pool = False
    for i, raw in enumerate(doc["layers"]):
        where = f"{source}: layers/{i}"
        kind = raw["type"]
        if seen_pool and kind != "Linear" and not _head_conv(raw):
            raise SpaceError(f"{where}: {kind} after GlobalAvgPool; only Linear layers and 1x1 "
                             f"stride-1 ConvBNAct layers may follow it")
        if kind == "ChoiceStage":
            layers.append(_choice_stage(raw, where, default_cands, default_skip))
        elif kind == "Linear":
            if not seen_pool:
                raise SpaceError(f"{where}: Linear needs a GlobalAvgPool before it")
            layers.append(FixedLayer(kind, (("out_features", raw["out_features"]),)))
        elif kind == "GlobalAvgPool":
            seen_pool = True
            layers.append(FixedLayer(kind, ()))
        else:
            keys = [k for k in ("out_channels", "expand_ratio", "kernel", "stride") if k in raw]
            params = [(k, raw[k]) for k in keys]
            if kind == "ConvBNAct":
                params += [("act", raw["act"]), ("bn", bool(raw.get("bn", True))),
                           ("bias", bool(raw.get("bias", False)))]
            elif kind == "MBConv":
                params += [("act", raw["act"]), ("se", bool(raw.get("se", False)))]
            layers.append(FixedLayer(kind, tuple(params)))
    if not any(isinstance(layer, ChoiceStage) for layer in layers):
        raise SpaceError(f"{source}: layers: no ChoiceStage; a search space needs at least one choice")
    c, h, w = doc["input_shape"]
    return SearchSpace(doc["name"], (c, h, w), tuple(layers), source, sha256, doc)


def _head_conv(raw: Dict[str, Any]) -> bool:
    """A 1x1, stride-1 ``ConvBNAct`` (MobileNetV3's feature-mix layer after the pool)."""
    return raw["type"] == "ConvBNAct" and raw["kernel"] == 1 and raw["stride"] == 1


def _choice_stage(raw: Dict[str, Any], where: str, default_cands: Tuple[Candidate, ...],
                  default_skip: bool) -> ChoiceStage:
    cands = raw.get("candidates")
    cand_t = tuple(Candidate(c["expand_ratio"], c["kernel"]) for c in cands) if cands else default_cands
    if len(set(cand_t)) != len(cand_t):
        raise SpaceError(f"{where}/candidates: duplicate candidates")
    block = raw.get("block", "InvertedResidual")
    if block != "MBConv":
        for key in ("act", "se"):
            if key in raw:
                raise SpaceError(f'{where}/{key}: only for MBConv stages (set "block": "MBConv")')
    depth = tuple(sorted(raw.get("depth", ())))
    skip = bool(raw.get("skip_connect", default_skip))
    if depth:
        if max(depth) != raw["blocks"]:
            raise SpaceError(f"{where}/depth: the largest depth must equal blocks ({raw['blocks']}), "
                             f"not {max(depth)}")
        if raw.get("skip_connect") is True:
            raise SpaceError(f"{where}/skip_connect: cannot be combined with depth; elastic depth "
                             f"already skips the trailing blocks")
        skip = False
    act = raw.get("act", "relu" if block == "MBConv" else "relu6")
    return ChoiceStage(raw["out_channels"], raw["blocks"], raw["stride"], cand_t, skip, block,
                       act, bool(raw.get("se", False)), depth)


def read_document(path: Union[str, Path]) -> Tuple[Dict[str, Any], bytes, bool]:
    """The JSON document of ``path`` (a search space, or an nnabla-nas config converted to
    one, see :mod:`profiler.space.nnabla_nas`), the file's bytes, and whether it was
    converted."""
    from profiler.space.nnabla_nas import convert, is_nnabla_nas_config
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise SpaceError(f"{p}: no such search-space file (see search_spaces/ for examples)") from None
    except OSError as e:
        raise SpaceError(f"{p}: cannot read: {e.strerror}") from None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f"line {e.lineno} column {e.colno}: " if isinstance(e, json.JSONDecodeError) else ""
        raise SpaceError(f"{p}: not valid JSON: {where}{getattr(e, 'msg', e)}") from None
    if is_nnabla_nas_config(doc):
        return convert(doc, str(p)), data, True
    return doc, data, False


def load_space(path: Union[str, Path]) -> SearchSpace:
    """Read and validate a search-space JSON file (ours, or an nnabla-nas search config)."""
    doc, data, _ = read_document(path)
    return parse_document(doc, str(path), hashlib.sha256(data).hexdigest())
