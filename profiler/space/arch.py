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
    ``len(options)`` means the identity. In a stage with elastic depth, ``stage`` is the
    stage's layer index, ``block_in_stage`` the block's index in it and ``depths`` its allowed
    depths; such a block may be skipped only as one of the stage's trailing blocks (see
    :func:`check_depths`).
    """

    index: int
    options: Tuple[M.ModuleSpec, ...]
    labels: Tuple[str, ...]
    skip: bool
    choice: bool
    stage: Optional[int] = None
    block_in_stage: int = 0
    depths: Tuple[int, ...] = ()

    @property
    def free_skip(self) -> bool:
        """Skip is a per-block choice here (``skip_connect``), not elastic depth's."""
        return self.skip and not self.depths

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
    for li, layer in enumerate(space.layers):
        if isinstance(layer, ChoiceStage):
            for b in range(layer.blocks):
                stride = layer.stride if b == 0 else 1
                cin = shape[1]
                opts = tuple(_choice_block(layer, cin, cand.kernel, stride, cand.expand_ratio, shape)
                             for cand in layer.candidates)
                labels = tuple(cd.label for cd in layer.candidates)
                if layer.depth:
                    out.append(Position(len(out), opts, labels, b >= min(layer.depth), True,
                                        li, b, layer.depth))
                else:
                    skip = layer.skip_connect and stride == 1 and cin == layer.out_channels
                    out.append(Position(len(out), opts, labels, skip, True))
                shape = opts[0].output_shape
        else:
            spec = _fixed(layer, shape)
            out.append(Position(len(out), (spec,), (layer.type,), False, False))
            shape = spec.output_shape
    return out


def _choice_block(layer: ChoiceStage, cin: int, kernel: int, stride: int, expand_ratio: int,
                  shape: M.Shape) -> M.ModuleSpec:
    if layer.block == "MBConv":
        return M.mb_conv(cin, layer.out_channels, kernel, stride, expand_ratio, layer.act,
                         layer.se, shape)
    return M.inverted_residual(cin, layer.out_channels, kernel, stride, expand_ratio, shape)


def _fixed(layer: FixedLayer, shape: M.Shape) -> M.ModuleSpec:
    if layer.type == "ConvBNReLU":
        return M.conv_bn_relu(shape[1], layer.get("out_channels"), layer.get("kernel"),
                              layer.get("stride"), shape)
    if layer.type == "ConvBNAct":
        return M.conv_bn_act(shape[1], layer.get("out_channels"), layer.get("kernel"),
                             layer.get("stride"), shape, layer.get("act"), layer.get("bn"),
                             layer.get("bias"))
    if layer.type == "MBConv":
        return M.mb_conv(shape[1], layer.get("out_channels"), layer.get("kernel"),
                         layer.get("stride"), layer.get("expand_ratio"), layer.get("act"),
                         layer.get("se"), shape)
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


# --- elastic depth (kept apart from the sampling strategies) ---------------------------

def depth_groups(choice_pos: Sequence[Position]) -> List[Tuple[List[int], Tuple[int, ...]]]:
    """Per elastic-depth stage: the indices (into ``choice_pos``) of its blocks and its depths."""
    groups: Dict[int, List[int]] = {}
    depths: Dict[int, Tuple[int, ...]] = {}
    for i, p in enumerate(choice_pos):
        if p.depths:
            groups.setdefault(p.stage, []).append(i)
            depths[p.stage] = p.depths
    return [(groups[k], depths[k]) for k in groups]


def depth_of(choice_pos: Sequence[Position], choices: Sequence[int], idx: Sequence[int]) -> int:
    """How many leading blocks of the stage (``idx``) are present."""
    present = [choices[i] != len(choice_pos[i].options) for i in idx]
    return present.index(False) if False in present else len(present)


def check_depths(choice_pos: Sequence[Position], choices: Sequence[int]) -> None:
    """Raise ``ValueError`` unless every elastic stage skips only trailing blocks and keeps
    one of its allowed depths."""
    for idx, depths in depth_groups(choice_pos):
        d = depth_of(choice_pos, choices, idx)
        skipped = [choices[i] == len(choice_pos[i].options) for i in idx]
        if any(not s for s in skipped[d:]) or d not in depths:
            raise ValueError(f"positions {choice_pos[idx[0]].index}-{choice_pos[idx[-1]].index}: "
                             f"elastic depth keeps a leading run of {', '.join(map(str, depths))} "
                             f"blocks, not skip pattern {['skip' if s else 'block' for s in skipped]}")


def with_depths(choice_pos: Sequence[Position], choices: Sequence[int],
                depths: Sequence[int]) -> Tuple[int, ...]:
    """``choices`` with each elastic stage cut to the given depth (one per :func:`depth_groups`):
    its blocks beyond the depth become skip."""
    out = list(choices)
    for (idx, _), d in zip(depth_groups(choice_pos), depths):
        for j, i in enumerate(idx):
            if j >= d:
                out[i] = len(choice_pos[i].options)
    return tuple(out)


def blocks_of(pos: Sequence[Position], choices: Sequence[int]) -> List[Optional[M.ModuleSpec]]:
    """The architecture's blocks in order (``None`` where a choice is skip)."""
    choice_pos = [p for p in pos if p.choice]
    if len(choices) != len(choice_pos):
        raise ValueError(f"expected {len(choice_pos)} choices, got {len(choices)}")
    for c, p in zip(choices, choice_pos):
        if not 0 <= c < p.n_choices:
            raise ValueError(f"choice {c} out of range for position {p.index} ({p.n_choices} choices)")
    check_depths(choice_pos, choices)
    it = iter(choices)
    result: List[Optional[M.ModuleSpec]] = []
    for p in pos:
        if not p.choice:
            result.append(p.options[0])
            continue
        result.append(p.block(next(it)))
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
    position's last candidate), one per uniform candidate choice. With elastic depth,
    ``smallest`` and ``skip-largest`` take every stage's minimum depth, the others its
    maximum depth. A name whose choices equal an earlier one is left out.
    """
    choice_pos = [p for p in pos if p.choice]
    if not choice_pos:
        return []
    ranked = [_by_cost(p) for p in choice_pos]
    skip = [len(p.options) if p.free_skip else None for p in choice_pos]
    groups = depth_groups(choice_pos)
    dmin = [min(d) for _, d in groups]
    smallest = with_depths(choice_pos, [s if s is not None else r[0] for s, r in zip(skip, ranked)], dmin)
    largest = tuple(r[-1] for r in ranked)
    skip_largest = with_depths(choice_pos, [s if s is not None else r[-1] for s, r in zip(skip, ranked)],
                               dmin)
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
    """Every choice uniformly; elastic-depth blocks draw a candidate (their skip comes from
    :func:`_draw_depths`)."""
    return tuple(rng.randrange(p.n_choices if p.free_skip or not p.skip else len(p.options))
                 for p in choice_pos)


def _draw_depths(rng: random.Random, groups: Sequence[Tuple[List[int], Tuple[int, ...]]],
                 p_short: Optional[float] = None) -> List[int]:
    """One depth per elastic stage: uniform over its depths, or with ``p_short`` (spread) the
    rank from the deepest is Binomial(n_depths - 1, p_short). No draw without such stages."""
    out = []
    for _, depths in groups:
        ordered = sorted(depths)
        if p_short is None:
            out.append(ordered[rng.randrange(len(ordered))])
        else:
            shorter = sum(rng.random() < p_short for _ in range(len(ordered) - 1))
            out.append(ordered[len(ordered) - 1 - shorter])
    return out


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
        if p.free_skip and rng.random() < p_skip:
            choices.append(len(p.options))
            continue
        rank = sum(rng.random() < p_large for _ in range(len(p.options) - 1))
        choices.append(order[rank])
    groups = depth_groups(choice_pos)
    if groups:   # elastic depth: short stages as likely as skips in this network
        return with_depths(choice_pos, choices, _draw_depths(rng, groups, p_skip))
    return tuple(choices)


def sample(pos: Sequence[Position], num: int, seed: int, strategy: str = "uniform",
           with_extremes: bool = False) -> List[Architecture]:
    """``num`` distinct architectures, seeded and reproducible.

    ``strategy``: ``uniform`` draws every choice uniformly (skip included where allowed);
    ``spread`` draws per-network propensities (see :func:`_spread_draw`) so the sample spans
    small to large networks. With ``with_extremes`` the :func:`extremes` come first (as
    many as ``num`` allows) and are marked by :attr:`Architecture.extreme`. Ids are
    ``arch-NNNN`` by position, so a smaller ``num`` gives a prefix of a larger one; duplicates
    are redrawn while the space allows, so every id names a distinct network. Elastic depth
    (see :func:`depth_groups`) is drawn per stage after the candidates, uniformly or (spread)
    with the network's skip propensity; spaces without it draw exactly as before.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    rng = random.Random(seed)
    choice_pos = [p for p in pos if p.choice]
    ranked = [_by_cost(p) for p in choice_pos]
    groups = depth_groups(choice_pos)
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
            if groups:
                choices = with_depths(choice_pos, choices, _draw_depths(rng, groups))
        else:
            choices = _spread_draw(rng, choice_pos, ranked)
        attempts += 1
        if choices in seen and attempts < 100 * num:
            continue
        seen.add(choices)
        archs.append(Architecture(f"arch-{len(archs):04d}", choices))
    return archs
