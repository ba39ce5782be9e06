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
    extreme: Optional[str] = None   # the edge it stands for (see :func:`extremes`), else None

    def to_dict(self, pos: Sequence[Position]) -> Dict[str, object]:
        choice_pos = [p for p in pos if p.choice]
        d: Dict[str, object] = {"id": self.arch_id, "choices": list(self.choices),
                                "labels": [p.label(c) for p, c in zip(choice_pos, self.choices)]}
        if self.extreme is not None:
            d["extreme"] = self.extreme
        return d


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


STRATEGIES = ("spread", "uniform")
DEFAULT_STRATEGY = "spread"


def _by_cost(p: Position) -> List[int]:
    """Option indices of ``p`` from cheapest to most expensive (MACs, then params, then index)."""
    costs = [M.cost(o) for o in p.options]
    return sorted(range(len(p.options)), key=lambda i: (costs[i]["macs"], costs[i]["params"], i))


def extremes(pos: Sequence[Position]) -> List[Tuple[str, Tuple[int, ...]]]:
    """The edge architectures of the space, ``[(name, choices)]``, distinct, in a fixed order.

    ``smallest``: skip wherever allowed, the cheapest candidate (MACs) elsewhere; ``largest``:
    the most expensive candidate everywhere; ``skip-largest``: skip wherever allowed, the most
    expensive candidate elsewhere; ``cand-k``: candidate ``k`` at every position (clamped to a
    position's last candidate), one per uniform candidate choice. A name whose choices equal
    an earlier one is left out.
    """
    choice_pos = [p for p in pos if p.choice]
    if not choice_pos:
        return []
    ranked = [_by_cost(p) for p in choice_pos]
    skip = [len(p.options) if p.skip else None for p in choice_pos]
    smallest = tuple(s if s is not None else r[0] for s, r in zip(skip, ranked))
    largest = tuple(r[-1] for r in ranked)
    skip_largest = tuple(s if s is not None else r[-1] for s, r in zip(skip, ranked))
    named = [("smallest", smallest), ("largest", largest), ("skip-largest", skip_largest)]
    for k in range(max(len(p.options) for p in choice_pos)):
        named.append((f"cand-{k}", tuple(min(k, len(p.options) - 1) for p in choice_pos)))
    out, seen = [], set()
    for name, choices in named:
        if choices not in seen:
            seen.add(choices)
            out.append((name, choices))
    return out


def _uniform_draw(rng: random.Random, choice_pos: Sequence[Position]) -> Tuple[int, ...]:
    return tuple(rng.randrange(p.n_choices) for p in choice_pos)


def _spread_draw(rng: random.Random, choice_pos: Sequence[Position],
                 ranked: Sequence[Sequence[int]]) -> Tuple[int, ...]:
    """One network with its own propensities: ``p_skip`` for skip, ``p_large`` for big candidates.

    Both are drawn uniformly per network, so some networks skip almost everything and take
    small candidates while others take the largest everywhere; the sum over ~20 positions
    then spreads from the smallest to the largest latency instead of piling up in the middle.
    Elsewhere the candidate's cost rank is Binomial(n_options - 1, p_large).
    """
    p_skip, p_large = rng.random(), rng.random()
    choices = []
    for p, order in zip(choice_pos, ranked):
        if p.skip and rng.random() < p_skip:
            choices.append(len(p.options))
            continue
        rank = sum(rng.random() < p_large for _ in range(len(p.options) - 1))
        choices.append(order[rank])
    return tuple(choices)


def sample(pos: Sequence[Position], num: int, seed: int, strategy: str = "uniform",
           with_extremes: bool = False) -> List[Architecture]:
    """``num`` distinct architectures, seeded and reproducible.

    ``strategy``: ``uniform`` draws every choice uniformly (skip included where allowed);
    ``spread`` draws per-network propensities (see :func:`_spread_draw`) so the sample spans
    small to large networks. With ``with_extremes`` the :func:`extremes` come first (as
    many as ``num`` allows) and are marked by :attr:`Architecture.extreme`. Ids are
    ``arch-NNNN`` by position, so a smaller ``num`` gives a prefix of a larger one; duplicates
    are redrawn while the space allows, so every id names a distinct network.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    rng = random.Random(seed)
    choice_pos = [p for p in pos if p.choice]
    ranked = [_by_cost(p) for p in choice_pos]
    seen = set()
    archs: List[Architecture] = []
    for name, choices in (extremes(pos) if with_extremes else []):
        if len(archs) >= num:
            break
        seen.add(choices)
        archs.append(Architecture(f"arch-{len(archs):04d}", choices, name))
    attempts = 0
    while len(archs) < num:
        if strategy == "uniform":
            choices = _uniform_draw(rng, choice_pos)
        else:
            choices = _spread_draw(rng, choice_pos, ranked)
        attempts += 1
        if choices in seen and attempts < 100 * num:
            continue
        seen.add(choices)
        archs.append(Architecture(f"arch-{len(archs):04d}", choices))
    return archs
