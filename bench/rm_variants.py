"""Controlled variants of a preference export, for reward-model experiments on the sandbox.

    .venv/bin/python bench/rm_variants.py same-heldout \
        --base exports/clean --other exports/all --out exports/all-same
    .venv/bin/python bench/rm_variants.py flip --base exports/clean --dimension safety --out exports/flipped

same-heldout: the `other` export's rows, re-split so that its held-out split is exactly `base`'s
(rows `base` holds out are removed from training). Two reward models trained on `base` and on the
result are then scored on the same held-out pairs, neither having trained on them: the way to
measure what, say, keeping excluded raters' labels costs.

flip: `base` with chosen and rejected swapped on every training row of one dimension (the held-out
split is untouched, so it still measures the truth). A planted failure that the gate must catch.
Both write a normal export (JSONL + manifest) that `tether rm train --data` and `tether rm eval
--data` read; the manifest records what was done.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tether.labeling.export_files import MANIFEST_NAME, load_rows, write_export


def manifest(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
    return {k: v for k, v in loaded.items() if k not in ("format", "columns", "rows", "rows_by_dimension")}


def same_heldout(base: Path, other: Path, out: Path) -> None:
    test = load_rows(base, "test")
    held = {r.task_id for r in test}
    train = [r for r in load_rows(other, "train") + load_rows(other, "test") if r.task_id not in held]
    info = {**manifest(other), "variant": f"same-heldout as {base}", "heldout_from": str(base)}
    write_export(out, train, test, fmt="jsonl", manifest=info)
    print(f"{out}: {len(train)} train rows from {other}, {len(test)} held-out rows from {base}")


def flip(base: Path, dimension: str, out: Path) -> None:
    train = load_rows(base, "train")
    flipped = [
        replace(r, chosen=r.rejected, rejected=r.chosen) if r.dimension == dimension else r for r in train
    ]
    n = sum(r.dimension == dimension for r in train)
    info = {**manifest(base), "variant": f"{dimension} training labels flipped ({n} rows)"}
    write_export(out, flipped, load_rows(base, "test"), fmt="jsonl", manifest=info)
    print(f"{out}: flipped {n} {dimension} training rows of {len(train)}; held-out split unchanged")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("same-heldout")
    a.add_argument("--base", type=Path, required=True)
    a.add_argument("--other", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("flip")
    b.add_argument("--base", type=Path, required=True)
    b.add_argument("--dimension", required=True)
    b.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "same-heldout":
        same_heldout(args.base, args.other, args.out)
    else:
        flip(args.base, args.dimension, args.out)


if __name__ == "__main__":
    main()
