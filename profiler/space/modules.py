"""Module specifications and ModuleUIDs (pure: no nnabla).

A :class:`ModuleSpec` is one measurable module at one input shape. Its ``uid`` follows the
original profiler's form exactly: ``Name[key=value,...][[input shape],...]`` with no spaces
and brackets for tuples, e.g.::

    Conv[in_channels=192,out_channels=192,kernel=[5,5],stride=[1,1],pad=[2,2],dilation=None,
         base_axis=1,group=192,with_bias=False,fix_parameters=False,channel_last=False][[1,192,16,16]]

(one line, no spaces). Leaf UIDs are exactly what nnabla-nas 0.15's modules print
(``str(module) + str(input_shapes)``, spaces removed, tuples in brackets), quirks included:
a 1x1 *projection* convolution prints ``pad=None`` while the 1x1 *expansion* convolution
(built through ``ConvBNReLU``) prints ``pad=[0,0]``, so the same computation has two leaf
UIDs, as in tables made with nnabla-nas; ``Linear`` prints ``bias=True``; a residual block's
add is an ``Add2`` leaf with two input shapes. Block UIDs are this project's own and
canonical (scalars become pairs).

Two granularities are offered (see docs/design.md):

* ``block`` (default): a whole block is one module: ``ConvBNReLU``, ``InvertedResidual``
  (with its residual add), ``GlobalAvgPool``, ``Linear``.
* ``leaf``: nnabla-nas's (and the original profiler's) leaf layers: ``Conv``,
  ``BatchNormalization``, ``ReLU6``, ``Add2`` (residual adds), ``GlobalAvgPool``, ``Linear``.

MobileNetV3 / OFA blocks (``ConvBNAct``, ``MBConv``) add the leaves nnabla-nas's OFA modules
print: ``ReLU[inplace=...]`` (``True`` inside MBConv, ``False`` in ``ConvLayer`` and in the
SE module, as nnabla-nas builds them), ``Hswish[]``, ``Hsigmoid[]`` and bias convolutions.
nnabla-nas's ``SEModule`` computes its squeeze (a mean) and its gating product in ``call``,
not in modules, so here they are leaves in this project's style: ``GlobalAvgPool`` and
``Mul2`` (two inputs: the features and the ``[n,c,1,1]`` gate). OFA's residual add (done in
its ``ResidualBlock.call``) is an ``Add2`` leaf, listed last.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

Shape = Tuple[int, ...]
GRANULARITIES = ("block", "leaf")
BLOCK_TYPES = ("ConvBNReLU", "InvertedResidual", "ConvBNAct", "MBConv")
ACTIVATIONS = ("relu", "relu6", "hswish")
TWO_INPUT_LEAVES = ("Add2", "Mul2")
SE_REDUCTION = 4


def _fmt(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class ModuleSpec:
    """One module (a leaf layer or a block) at concrete input shapes, batch included."""

    name: str
    attrs: Tuple[Tuple[str, Any], ...]
    input_shapes: Tuple[Shape, ...]

    @property
    def uid(self) -> str:
        body = ",".join(f"{k}={_fmt(v)}" for k, v in self.attrs)
        shapes = ",".join(_fmt(s) for s in self.input_shapes)
        return f"{self.name}[{body}][{shapes}]"

    def attr(self, key: str) -> Any:
        return dict(self.attrs)[key]

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0]

    @property
    def output_shape(self) -> Shape:
        return output_shape(self)

    @property
    def op_type(self) -> str:
        """Coarse operation type used for per-op-type analyses (DepthwiseConv is split out)."""
        if self.name == "Conv" and self.attr("group") > 1:
            return "DepthwiseConv"
        return self.name

    def leaves(self) -> List["ModuleSpec"]:
        """The leaf layers this module runs (itself when it is a leaf), in nnabla-nas's
        module order (a residual block's ``Add2`` first)."""
        return leaves_of(self)


def file_stem(uid: str) -> str:
    """A safe, stable file name for ``uid``: a readable prefix plus a hash of the full UID."""
    digest = hashlib.sha256(uid.encode("utf-8")).hexdigest()[:16]
    prefix = re.sub(r"[^A-Za-z0-9]+", "-", uid.split("]")[0])[:48].strip("-")
    return f"{prefix}-{digest}"


# --- constructors (canonical attribute order and normalisation) -----------------------

def _pair(v: Any) -> Tuple[int, int]:
    if v is None:
        return (0, 0)
    return _pair_or_none(v)


def _pair_or_none(v: Any) -> Optional[Tuple[int, int]]:
    if v is None:
        return None
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))


def conv(in_ch: int, out_ch: int, kernel: int, stride: int, shape: Shape,
         pad: Any = None, group: int = 1, with_bias: bool = False,
         dilation: Any = None) -> ModuleSpec:
    """A convolution leaf. ``pad`` and ``dilation`` are kept as given (``None`` prints
    ``pad=None``, as nnabla-nas's ``Mo.Conv`` does when built without a pad; its OFA
    ``ConvLayer`` passes ``dilation=(1, 1)``); ints become pairs."""
    attrs = (("in_channels", in_ch), ("out_channels", out_ch), ("kernel", _pair(kernel)),
             ("stride", _pair(stride)), ("pad", _pair_or_none(pad)), ("dilation", _pair_or_none(dilation)),
             ("base_axis", 1), ("group", group), ("with_bias", with_bias),
             ("fix_parameters", False), ("channel_last", False))
    return ModuleSpec("Conv", attrs, (tuple(shape),))


def batch_norm(n: int, shape: Shape) -> ModuleSpec:
    attrs = (("n_features", n), ("fix_parameters", False), ("eps", 1e-05), ("decay_rate", 0.9))
    return ModuleSpec("BatchNormalization", attrs, (tuple(shape),))


def relu6(shape: Shape) -> ModuleSpec:
    return ModuleSpec("ReLU6", (), (tuple(shape),))


def global_avg_pool(shape: Shape) -> ModuleSpec:
    return ModuleSpec("GlobalAvgPool", (), (tuple(shape),))


def linear(in_features: int, out_features: int, shape: Shape) -> ModuleSpec:
    """nnabla-nas's ``Mo.Linear`` prints ``in_features, out_features, base_axis, bias``."""
    attrs = (("in_features", in_features), ("out_features", out_features), ("base_axis", 1),
             ("bias", True))
    return ModuleSpec("Linear", attrs, (tuple(shape),))


def relu(shape: Shape, inplace: bool = False) -> ModuleSpec:
    """nnabla-nas's ``Mo.ReLU`` prints its ``inplace`` flag."""
    return ModuleSpec("ReLU", (("inplace", inplace),), (tuple(shape),))


def hswish(shape: Shape) -> ModuleSpec:
    """h-swish, ``x * relu6(x + 3) / 6`` (nnabla-nas's ``Mo.Hswish``)."""
    return ModuleSpec("Hswish", (), (tuple(shape),))


def hsigmoid(shape: Shape) -> ModuleSpec:
    """h-sigmoid, ``relu6(x + 3) / 6`` (nnabla-nas's ``Mo.Hsigmoid``)."""
    return ModuleSpec("Hsigmoid", (), (tuple(shape),))


def mul2(shape: Shape, gate_shape: Shape) -> ModuleSpec:
    """The squeeze-and-excitation product: features times a broadcast ``[n,c,1,1]`` gate."""
    return ModuleSpec("Mul2", (), (tuple(shape), tuple(gate_shape)))


def activation(act: str, shape: Shape, inplace: bool = False) -> ModuleSpec:
    """The leaf of activation ``act`` ("relu", "relu6" or "hswish")."""
    if act == "relu":
        return relu(shape, inplace)
    if act == "relu6":
        return relu6(shape)
    if act == "hswish":
        return hswish(shape)
    raise ValueError(f"unknown activation {act!r} (expected one of {ACTIVATIONS})")


def make_divisible(v: float, divisor: int = 8) -> int:
    """The nearest multiple of ``divisor`` (at least ``divisor``), never more than 10% below
    ``v`` (MobileNet/OFA channel rounding)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def add2(shape: Shape) -> ModuleSpec:
    """A residual add (nnabla-nas's ``Mo.Add2``): two inputs of one shape, no attributes."""
    return ModuleSpec("Add2", (), (tuple(shape), tuple(shape)))


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int, shape: Shape,
                 group: int = 1) -> ModuleSpec:
    attrs = (("in_channels", in_ch), ("out_channels", out_ch), ("kernel", _pair(kernel)),
             ("stride", _pair(stride)), ("pad", _pair(kernel // 2)), ("group", group))
    return ModuleSpec("ConvBNReLU", attrs, (tuple(shape),))


def inverted_residual(in_ch: int, out_ch: int, kernel: int, stride: int, expand_ratio: int,
                      shape: Shape) -> ModuleSpec:
    attrs = (("in_channels", in_ch), ("out_channels", out_ch), ("kernel", _pair(kernel)),
             ("stride", _pair(stride)), ("expand_ratio", expand_ratio),
             ("residual", stride == 1 and in_ch == out_ch))
    return ModuleSpec("InvertedResidual", attrs, (tuple(shape),))


def conv_bn_act(in_ch: int, out_ch: int, kernel: int, stride: int, shape: Shape, act: str,
                bn: bool = True, bias: bool = False) -> ModuleSpec:
    """OFA's ``ConvLayer``: convolution (padding kernel//2), optional BN, activation."""
    attrs = (("in_channels", in_ch), ("out_channels", out_ch), ("kernel", _pair(kernel)),
             ("stride", _pair(stride)), ("pad", _pair(kernel // 2)), ("bn", bn), ("bias", bias),
             ("act", act))
    return ModuleSpec("ConvBNAct", attrs, (tuple(shape),))


def mb_conv(in_ch: int, out_ch: int, kernel: int, stride: int, expand_ratio: int, act: str,
            se: bool, shape: Shape) -> ModuleSpec:
    """A MobileNetV3/OFA MBConv block; hidden channels ``make_divisible(in * expand)``."""
    mid = in_ch if expand_ratio == 1 else make_divisible(round(in_ch * expand_ratio))
    attrs = (("in_channels", in_ch), ("out_channels", out_ch), ("kernel", _pair(kernel)),
             ("stride", _pair(stride)), ("expand_ratio", expand_ratio), ("mid_channels", mid),
             ("act", act), ("se", se), ("residual", stride == 1 and in_ch == out_ch))
    return ModuleSpec("MBConv", attrs, (tuple(shape),))


def squeeze_excitation(channels: int, shape: Shape) -> List[ModuleSpec]:
    """SE leaves on features of ``shape``: squeeze, reduce (bias), ReLU, expand (bias),
    h-sigmoid, product; reduction 4 with ``make_divisible`` as in nnabla-nas's ``SEModule``."""
    mid = make_divisible(channels // SE_REDUCTION)
    pooled = (shape[0], channels, 1, 1)
    reduce_ = conv(channels, mid, 1, 1, pooled, pad=0, with_bias=True)
    expand = conv(mid, channels, 1, 1, reduce_.output_shape, pad=0, with_bias=True)
    return [global_avg_pool(shape), reduce_, relu(reduce_.output_shape), expand,
            hsigmoid(pooled), mul2(shape, pooled)]


# --- shapes, leaves, cost ---------------------------------------------------------------

def _conv_out(shape: Shape, out_ch: int, kernel: Tuple[int, int], stride: Tuple[int, int],
              pad: Tuple[int, int]) -> Shape:
    n, _, h, w = shape
    oh = (h + 2 * pad[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * pad[1] - kernel[1]) // stride[1] + 1
    return (n, out_ch, oh, ow)


def output_shape(spec: ModuleSpec) -> Shape:
    shape = spec.input_shape
    if spec.name in ("BatchNormalization", "ReLU6", "Add2", "ReLU", "Hswish", "Hsigmoid", "Mul2"):
        return shape
    if spec.name == "GlobalAvgPool":
        return (shape[0], shape[1], 1, 1)
    if spec.name == "Linear":
        return (shape[0], spec.attr("out_features"))
    if spec.name in ("Conv", "ConvBNReLU", "ConvBNAct"):
        return _conv_out(shape, spec.attr("out_channels"), spec.attr("kernel"),
                         spec.attr("stride"), _pair(spec.attr("pad")))
    if spec.name in ("InvertedResidual", "MBConv"):
        k = spec.attr("kernel")
        return _conv_out(shape, spec.attr("out_channels"), k, spec.attr("stride"),
                         (k[0] // 2, k[1] // 2))
    raise ValueError(f"unknown module type {spec.name}")


def leaves_of(spec: ModuleSpec) -> List[ModuleSpec]:
    if spec.name == "ConvBNReLU":
        k, s = spec.attr("kernel"), spec.attr("stride")
        c = conv(spec.attr("in_channels"), spec.attr("out_channels"), k, s, spec.input_shape,
                 pad=spec.attr("pad"), group=spec.attr("group"))
        out = c.output_shape
        return [c, batch_norm(spec.attr("out_channels"), out), relu6(out)]
    if spec.name == "InvertedResidual":
        cin, cout = spec.attr("in_channels"), spec.attr("out_channels")
        e, k, s = spec.attr("expand_ratio"), spec.attr("kernel"), spec.attr("stride")
        hidden = cin * e
        shape = spec.input_shape
        result: List[ModuleSpec] = []
        if e != 1:
            result += conv_bn_relu(cin, hidden, 1, 1, shape).leaves()
            shape = result[-1].output_shape
        dw = conv_bn_relu(hidden, hidden, k[0], s[0], shape, group=hidden)
        result += dw.leaves()
        shape = dw.output_shape
        proj = conv(hidden, cout, 1, 1, shape, pad=None)   # nnabla-nas builds it without pad
        result += [proj, batch_norm(cout, proj.output_shape)]
        if spec.attr("residual"):
            # first, as in nnabla-nas's module order (its InvertedResidual registers the
            # Add2 before the convolutions); it runs last, on the block's input and output
            result.insert(0, add2(proj.output_shape))
        return result
    if spec.name == "ConvBNAct":
        c = conv(spec.attr("in_channels"), spec.attr("out_channels"), spec.attr("kernel"),
                 spec.attr("stride"), spec.input_shape, pad=spec.attr("pad"),
                 with_bias=spec.attr("bias"), dilation=1)
        out = c.output_shape
        bn = [batch_norm(spec.attr("out_channels"), out)] if spec.attr("bn") else []
        return [c, *bn, activation(spec.attr("act"), out)]
    if spec.name == "MBConv":
        return _mb_conv_leaves(spec)
    return [spec]


def _mb_conv_leaves(spec: ModuleSpec) -> List[ModuleSpec]:
    """nnabla-nas's ``MBConvLayer`` order: expansion, depthwise (+ SE), projection; every
    1x1 convolution there is built with ``pad=(0, 0)``, activations in place."""
    cin, cout, mid = spec.attr("in_channels"), spec.attr("out_channels"), spec.attr("mid_channels")
    k, s, act = spec.attr("kernel"), spec.attr("stride"), spec.attr("act")
    shape = spec.input_shape
    result: List[ModuleSpec] = []
    if spec.attr("expand_ratio") != 1:
        c = conv(cin, mid, 1, 1, shape, pad=0)
        shape = c.output_shape
        result += [c, batch_norm(mid, shape), activation(act, shape, inplace=True)]
    dw = conv(mid, mid, k, s, shape, pad=(k[0] // 2, k[1] // 2), group=mid)
    shape = dw.output_shape
    result += [dw, batch_norm(mid, shape), activation(act, shape, inplace=True)]
    if spec.attr("se"):
        result += squeeze_excitation(mid, shape)
    proj = conv(mid, cout, 1, 1, shape, pad=0)
    result += [proj, batch_norm(cout, proj.output_shape)]
    if spec.attr("residual"):
        result.append(add2(proj.output_shape))
    return result


def cost(spec: ModuleSpec) -> Dict[str, int]:
    """Parameters, multiply-accumulates and floating point operations of one module.

    FLOPs count 2 per MAC plus one per element for BN (scale+shift counted as 2), ReLU6,
    ReLU, h-swish, h-sigmoid, pooling, residual adds and SE products (an approximation for
    the h-functions); convolution biases count as parameters.
    """
    if spec.name in BLOCK_TYPES:
        total = {"params": 0, "macs": 0, "flops": 0}
        for leaf in spec.leaves():
            for k, v in cost(leaf).items():
                total[k] += v
        return total
    shape = spec.input_shape
    out = spec.output_shape
    if spec.name == "Conv":
        kh, kw = spec.attr("kernel")
        cin_g = spec.attr("in_channels") // spec.attr("group")
        macs = _numel(out) * cin_g * kh * kw
        params = spec.attr("out_channels") * (cin_g * kh * kw + int(spec.attr("with_bias")))
        return {"params": params, "macs": macs, "flops": 2 * macs}
    if spec.name == "BatchNormalization":
        return {"params": 4 * spec.attr("n_features"), "macs": 0, "flops": 2 * _numel(shape)}
    if spec.name in ("ReLU6", "GlobalAvgPool", "Add2", "ReLU", "Hswish", "Hsigmoid", "Mul2"):
        return {"params": 0, "macs": 0, "flops": _numel(shape)}
    if spec.name == "Linear":
        fin, fout = spec.attr("in_features"), spec.attr("out_features")
        return {"params": fin * fout + fout, "macs": fin * fout, "flops": 2 * fin * fout}
    raise ValueError(f"unknown module type {spec.name}")


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def unique(specs: Iterable[ModuleSpec]) -> List[ModuleSpec]:
    """Specs with duplicate UIDs removed, first occurrence kept (order is stable)."""
    seen: Dict[str, ModuleSpec] = {}
    for s in specs:
        seen.setdefault(s.uid, s)
    return list(seen.values())


def module_uids(blocks: Sequence[Optional[ModuleSpec]], granularity: str = "block") -> List[str]:
    """The UIDs whose table look-ups sum to an architecture's accumulated latency.

    ``blocks`` is the architecture as block specs (``None`` for a skipped block).
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, not {granularity!r}")
    uids: List[str] = []
    for b in blocks:
        if b is None:
            continue
        uids.extend(leaf.uid for leaf in (b.leaves() if granularity == "leaf" else [b]))
    return uids
