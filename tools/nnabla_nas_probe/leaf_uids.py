"""Print the leaf ModuleUIDs that nnabla-nas 0.15 itself produces for a mobilenet config.

Research/probe tool (issue 15); needs nnabla-nas 0.15.0 in the venv:

    .venv/bin/pip install --no-deps nnabla-nas==0.15.0
    .venv/bin/pip install hydra-core networkx "tensorboard<2.21"   # see the issue-15 report

Usage:

    python tools/nnabla_nas_probe/leaf_uids.py CONFIG.json --all
        every unique leaf UID of the space (SearchNet built in "full" mode, one forward:
        every candidate sees its in-network input shape) -- the set to measure.
    python tools/nnabla_nas_probe/leaf_uids.py CONFIG.json --choices 0,6,1,...
        the active leaves of one architecture, in network order, duplicates kept
        (``--unique`` to dedupe): built in "sample" mode, each MixedOp forced to the
        given index. ``--choices random --seed N`` draws one uniformly.

A UID is the original profiler's ``uid(module)``: ``str(module) + str(input_shapes)``
with spaces removed and ``(``/``)`` turned into ``[``/``]``. Leaves are the modules with
no submodules, ``need_grad`` True and a recorded input shape, except Identity and
Dropout (the filter of the original ``get_unique_modules`` / ``get_sampled_modules``).

How an index is forced (the later cross-check test does the same): in "sample" mode
``MixedOp.call`` draws ``rng.choice(n, p=softmax(alpha))`` and then sets
``active_index``, which puts ``need_grad``/``is_active`` False on every other op.  We set
the block's architecture parameter ``_mixed._alpha.d`` to ``-1e4`` everywhere except 0
at the wanted index, so the softmax is exactly one-hot in float32 and the draw always
returns that index; after the forward we assert ``_mixed.active_index == index``.
The candidate order of a block is ``network.candidates`` (default "MB3 3x3", "MB6 3x3",
"MB3 5x5", "MB6 5x5", "MB3 7x7", "MB6 7x7") followed by "skip_connect" where offered
(stride 1, in == out, ``skip_connect`` true): the same order as our choice vectors.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import types
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

OFA_STUB = "nnabla_nas.contrib.classification.ofa.networks"


def import_nnabla_nas() -> Tuple[Any, Any, Any]:
    """Import SearchNet and the module package, working around the 0.15.0 wheel.

    The published wheel lacks ``nnabla_nas/contrib/classification/ofa/networks`` which
    ``nnabla_nas/contrib/__init__.py`` imports; an empty stand-in is registered first.
    """
    if OFA_STUB not in sys.modules:
        stub = types.ModuleType(OFA_STUB)
        stub.ofa_mbv3 = stub.ofa_xception = stub.ofa_resnet50 = None
        sys.modules[OFA_STUB] = stub
    from nnabla_nas import module as Mo
    from nnabla_nas.contrib.classification.mobilenet import SearchNet
    from nnabla_nas.contrib.classification.mobilenet.modules import ChoiceBlock
    return SearchNet, ChoiceBlock, Mo


def network_kwargs(doc: Dict[str, Any]) -> Tuple[Dict[str, Any], List[int]]:
    """SearchNet kwargs and the CHW input shape from an old-JSON or a hydra-style config."""
    net = dict(doc["network"])
    if "search_space" in net:                      # 2020 JSON: network.search_space
        space = net.pop("search_space")
        shape = doc["input_shape"]
    else:                                          # 0.15 hydra: network: {mobilenet: {...}}
        (space, net), = net.items()
        net = dict(net)
        shape = doc.get("hparams", {}).get("input_shapes", [[3, 32, 32]])[0]
    if space != "mobilenet":
        raise SystemExit(f"only the mobilenet search space is probed, not {space!r}")
    return net, list(shape)


def uid(module: Any) -> str:
    text = str(module) + str([s for s in module.input_shapes])
    return text.replace(" ", "").replace("(", "[").replace(")", "]")


def leaf_modules(net: Any, Mo: Any) -> List[Any]:
    out = []
    for _, m in net.get_modules():
        if (len(m.modules) == 0 and m.need_grad and len(m.input_shapes) > 0
                and not isinstance(m, (Mo.Identity, Mo.Dropout))):
            out.append(m)
    return out


def choice_blocks(net: Any, ChoiceBlock: Any) -> List[Any]:
    return [m for m in net._features if isinstance(m, ChoiceBlock)]


def build(doc: Dict[str, Any], mode: str):
    import nnabla as nn
    SearchNet, ChoiceBlock, Mo = import_nnabla_nas()
    kwargs, shape = network_kwargs(doc)
    kwargs["mode"] = mode
    net = SearchNet(**kwargs).apply(training=False)
    return net, nn.Variable([1] + shape), ChoiceBlock, Mo


def all_leaf_uids(doc: Dict[str, Any]) -> List[str]:
    net, x, _, Mo = build(doc, "full")
    net(x)
    return list(dict.fromkeys(uid(m) for m in leaf_modules(net, Mo)))


def n_choices(doc: Dict[str, Any]) -> List[int]:
    net, _, ChoiceBlock, _ = build(doc, "sample")
    return [len(b._mixed._ops) for b in choice_blocks(net, ChoiceBlock)]


def active_leaf_uids(doc: Dict[str, Any], choices: Sequence[int]) -> List[str]:
    import numpy as np
    net, x, ChoiceBlock, Mo = build(doc, "sample")
    blocks = choice_blocks(net, ChoiceBlock)
    if len(choices) != len(blocks):
        raise SystemExit(f"expected {len(blocks)} choices, got {len(choices)}")
    for b, c in zip(blocks, choices):
        alpha = b._mixed._alpha
        if not 0 <= c < alpha.shape[0]:
            raise SystemExit(f"choice {c} out of range ({alpha.shape[0]} ops)")
        d = np.full(alpha.shape, -1e4, dtype=np.float32)
        d[c] = 0.0
        alpha.d = d
    net(x)
    for b, c in zip(blocks, choices):
        assert b._mixed.active_index == c, (b._mixed.active_index, c)
    return [uid(m) for m in leaf_modules(net, Mo)]


def main(argv: Sequence[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--all", action="store_true", help="every unique leaf UID of the space")
    g.add_argument("--choices", help="comma-separated indices, or 'random'")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unique", action="store_true")
    ap.add_argument("--json", action="store_true", help="print a JSON list")
    args = ap.parse_args(argv)
    doc = json.loads(args.config.read_text())
    if args.all:
        uids = all_leaf_uids(doc)
    else:
        if args.choices == "random":
            rng = random.Random(args.seed)
            choices = [rng.randrange(n) for n in n_choices(doc)]
            print("# choices: " + ",".join(map(str, choices)), file=sys.stderr)
        else:
            choices = [int(c) for c in args.choices.split(",")]
        uids = active_leaf_uids(doc, choices)
        if args.unique:
            uids = list(dict.fromkeys(uids))
    print(json.dumps(uids, indent=1) if args.json else "\n".join(uids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
