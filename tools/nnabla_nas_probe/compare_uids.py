"""Compare nnabla-nas 0.15's leaf UIDs with ours for one nnabla-nas config (issue 15 probe).

    python tools/nnabla_nas_probe/compare_uids.py CONFIG.json [--manifest DIR/manifest.json]

Ours: the converted space's ``candidate_modules(.., "leaf")`` (what ``profiler generate
--granularity leaf`` writes), or the UIDs of a given manifest. Theirs: leaf_uids.py --all.
Prints counts, every difference grouped by kind, and checks the rewrite rule ``to_ours``.
Also compares per-architecture active leaves for a few random choice vectors.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import leaf_uids as L  # noqa: E402

from profiler.space import arch as A  # noqa: E402
from profiler.space import modules as M  # noqa: E402
from profiler.space.nnabla_nas import convert  # noqa: E402
from profiler.space.searchspace import parse_document  # noqa: E402


def to_ours(uid: str):
    """nnabla-nas leaf UID -> our leaf UID. Since issue 15 our leaf UIDs are nnabla-nas's
    exactly (projection ``pad=None``, ``Linear[..,bias=True]``, ``Add2`` leaves), so this is
    the identity; it was a rewrite rule while they differed."""
    return uid


def kind(uid: str) -> str:
    name = uid.split("[", 1)[0]
    if name == "Conv":
        if re.search(r"group=(?!1,)\d+", uid):
            return "Conv(depthwise)"
        return "Conv(1x1,pad=None)" if "pad=None" in uid else "Conv(pad set)"
    return name


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", type=Path)
    ap.add_argument("--manifest", type=Path)
    ap.add_argument("--archs", type=int, default=20)
    args = ap.parse_args()
    doc = json.loads(args.config.read_text())
    space = parse_document(convert(doc, str(args.config)), str(args.config))
    pos = A.positions(space)
    if args.manifest:
        ours = [e["uid"] for e in json.loads(args.manifest.read_text())["entries"]]
    else:
        ours = [m.uid for m in A.candidate_modules(space, "leaf")]
    theirs = L.all_leaf_uids(doc)
    print(f"{args.config.name}: nnabla-nas {len(theirs)} unique leaves, ours {len(ours)}; "
          f"blocks ours {len(A.candidate_modules(space, 'block'))}")
    print("  nnabla-nas by kind:", dict(collections.Counter(kind(u) for u in theirs)))
    only_theirs = sorted(set(theirs) - set(ours))
    only_ours = sorted(set(ours) - set(theirs))
    print("  identical strings:", len(set(theirs) & set(ours)))
    print("  only nnabla-nas by kind:", dict(collections.Counter(kind(u) for u in only_theirs)))
    print("  only ours by kind:", dict(collections.Counter(u.split("[", 1)[0] + ("(pad=[0,0],1x1)" if "kernel=[1,1]" in u else "") for u in only_ours)))
    mapped = [to_ours(u) for u in theirs]
    mapped_set = {u for u in mapped if u is not None}
    ok = mapped_set == set(ours)
    collisions = len([u for u in mapped if u is not None]) - len(mapped_set)
    print(f"  rule to_ours maps nnabla-nas's set onto ours exactly: {ok}; "
          f"collisions after mapping: {collisions}")
    if not ok:
        print("   left:", sorted(mapped_set - set(ours))[:5], sorted(set(ours) - mapped_set)[:5])
    # per architecture
    rng = random.Random(0)
    choice_pos = [p for p in pos if p.choice]
    bad = 0
    for _ in range(args.archs):
        choices = [rng.randrange(p.n_choices) for p in choice_pos]
        t = [to_ours(u) for u in L.active_leaf_uids(doc, choices)]
        t = [u for u in t if u is not None]
        o = M.module_uids(A.blocks_of(pos, choices), "leaf")
        if t != o:
            bad += 1
            print("   arch mismatch", choices)
    print(f"  {args.archs} random architectures: active leaves (mapped, in order) equal ours: "
          f"{args.archs - bad}/{args.archs}")
    return 0 if ok and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
