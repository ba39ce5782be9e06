"""From a search space to positions, candidate modules and architectures (pure).

Shapes here are computed arithmetically; generation cross-checks them against the shapes
nnabla infers when it builds the supernet (see :mod:`profiler.models.build`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from profiler.space import modules as M
from profiler.space.searchspace import ChoiceStage, FixedLayer, SearchSpace

SKIP = "skip"


@dataclass(frozen=True)
class Position:
    """One place in the network: a fixed block, or a choice among ``options``.

    ``options`` are block specs; when ``skip`` is allowed the choice index
    ``len(options)`` means the identity.
    """

    index: int
    options: Tuple[M.ModuleSpec, ...]
    labels: Tuple[str, ...]
    skip: bool
    choice: bool

    @property
    def n_choices(self) -> int:
        return len(self.options) + (1 if self.skip else 0)

    def label(self, choice: int) -> str:
        return SKIP if choice == len(self.options) else self.labels[choice]

    def block(self, choice: int) -> Optional[M.ModuleSpec]:
        return None if choice == len(self.options) else self.options[choice]


def positions(space: SearchSpace, batch: int = 1) -> List[Position]:
    """Expand ``space`` into its positions, with each option at its in-network shape."""
    c, h, w = space.input_shape
    shape: M.Shape = (batch, c, h, w)
    out: List[Position] = []
    for layer in space.layers:
        if isinstance(layer, ChoiceStage):
            for b in range(layer.blocks):
                stride = layer.stride if b == 0 else 1
                cin = shape[1]
                opts = tuple(M.inverted_residual(cin, layer.out_channels, cand.kernel, stride,
                                                 cand.expand_ratio, shape)
                             for cand in layer.candidates)
                skip = layer.skip_connect and stride == 1 and cin == layer.out_channels
                out.append(Position(len(out), opts, tuple(cd.label for cd in layer.candidates),
                                    skip, True))
                shape = opts[0].output_shape
        else:
            spec = _fixed(layer, shape)
            out.append(Position(len(out), (spec,), (layer.type,), False, False))
            shape = spec.output_shape
    return out


def _fixed(layer: FixedLayer, shape: M.Shape) -> M.ModuleSpec:
    if layer.type == "ConvBNReLU":
        return M.conv_bn_relu(shape[1], layer.get("out_channels"), layer.get("kernel"),
                              layer.get("stride"), shape)
    if layer.type == "InvertedResidual":
        return M.inverted_residual(shape[1], layer.get("out_channels"), layer.get("kernel"),
                                   layer.get("stride"), layer.get("expand_ratio"), shape)
    if layer.type == "GlobalAvgPool":
        return M.global_avg_pool(shape)
    if layer.type == "Linear":
        features = 1
        for d in shape[1:]:
            features *= d
        return M.linear(features, layer.get("out_features"), shape)
    raise ValueError(f"unknown layer type {layer.type}")


def candidate_blocks(space: SearchSpace) -> List[M.ModuleSpec]:
    """Every block any architecture can contain, unique by UID, in network order."""
    return M.unique(opt for pos in positions(space) for opt in pos.options)


def candidate_modules(space: SearchSpace, granularity: str = "block") -> List[M.ModuleSpec]:
    """The unique modules to measure for ``granularity`` ("block" or "leaf")."""
    blocks = candidate_blocks(space)
    if granularity == "block":
        return blocks
    if granularity == "leaf":
        return M.unique(leaf for b in blocks for leaf in b.leaves())
    raise ValueError(f"granularity must be one of {M.GRANULARITIES}, not {granularity!r}")


@dataclass(frozen=True)
class Architecture:
    """One whole network: a choice index per choice position."""

    arch_id: str
    choices: Tuple[int, ...]

    def to_dict(self, pos: Sequence[Position]) -> Dict[str, object]:
        choice_pos = [p for p in pos if p.choice]
        return {"id": self.arch_id, "choices": list(self.choices),
                "labels": [p.label(c) for p, c in zip(choice_pos, self.choices)]}


def blocks_of(pos: Sequence[Position], choices: Sequence[int]) -> List[Optional[M.ModuleSpec]]:
    """The architecture's blocks in order (``None`` where a choice is skip)."""
    choice_pos = [p for p in pos if p.choice]
    if len(choices) != len(choice_pos):
        raise ValueError(f"expected {len(choice_pos)} choices, got {len(choices)}")
    it = iter(choices)
    result: List[Optional[M.ModuleSpec]] = []
    for p in pos:
        if not p.choice:
            result.append(p.options[0])
            continue
        c = next(it)
        if not 0 <= c < p.n_choices:
            raise ValueError(f"choice {c} out of range for position {p.index} ({p.n_choices} choices)")
        result.append(p.block(c))
    return result


def sample(pos: Sequence[Position], num: int, seed: int) -> List[Architecture]:
    """``num`` architectures drawn uniformly per choice block (skip included where allowed).

    Seeded and reproducible; duplicates are redrawn while the space allows, so every id
    names a distinct network.
    """
    rng = random.Random(seed)
    choice_pos = [p for p in pos if p.choice]
    seen = set()
    archs: List[Architecture] = []
    attempts = 0
    while len(archs) < num:
        choices = tuple(rng.randrange(p.n_choices) for p in choice_pos)
        attempts += 1
        if choices in seen and attempts < 100 * num:
            continue
        seen.add(choices)
        archs.append(Architecture(f"arch-{len(archs):04d}", choices))
    return archs
