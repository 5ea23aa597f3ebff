"""`tether data import-preferences` at HH-RLHF's train size: rows per second and wall time.

    .venv/bin/python bench/import_preferences.py /tmp/import-bench            # 161k pairs
    .venv/bin/python bench/import_preferences.py /tmp/import-bench --rows 20000

Writes synthetic HH-RLHF rows (`synthetic_hh_rows`: 1-3 human turns, replies of 1-8 sentences,
about 620 characters a transcript) as JSONL, imports them into a fresh assistant project on SQLite
through the CLI's own function, then imports the same file again (every row already there). Reports
the wall time of each phase: parsing with `datasets`, and the whole import (parse, link prompts,
store about a million rows). The goal is the whole import under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from tether.labeling.import_formats import parse_file, synthetic_hh_rows
from tether.labeling.import_preferences import import_preferences
from tether.scaffold import init_project

HH_TRAIN_ROWS = 160_800
"""Anthropic HH-RLHF's train split (helpful-base, helpful-online, helpful-rejection, harmless-base)."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=HH_TRAIN_ROWS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    data = args.out / "hh-train.jsonl"
    start = time.perf_counter()
    with data.open("w", encoding="utf-8") as handle:
        for row in synthetic_hh_rows(args.rows, args.seed):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    written = time.perf_counter() - start
    print(f"wrote {args.rows:,} rows ({data.stat().st_size / 2**20:.0f} MiB) in {written:.1f} s")

    start = time.perf_counter()
    parsed = parse_file(data, "hh-rlhf")
    parse_s = time.perf_counter() - start
    print(f"parse: {parsed.rows:,} rows, {len(parsed.problems)} problems, {parse_s:.1f} s "
          f"({parsed.rows / parse_s:,.0f} rows/s)")  # fmt: skip

    project = init_project(args.out / "project", template="assistant")
    for label in ("import", "re-import"):
        start = time.perf_counter()
        result = import_preferences(project, data, source="hh-train")
        seconds = time.perf_counter() - start
        print(
            f"{label}: {result.imported:,} pairs stored, {result.already:,} already there, "
            f"{result.prompts_added:,} prompts added, {result.prompts_linked:,} linked; {seconds:.1f} s "
            f"({result.rows / seconds:,.0f} rows/s)"
        )


if __name__ == "__main__":
    main()
