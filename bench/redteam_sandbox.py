"""The red-teaming acceptance figure: are the top findings truly worse than the SFT output, by gold?

    cd DIR   # a sandbox project with a length-biased reward model (bench/rm_sandbox.sh builds one)
    tether redteam search --policy sft --reward-model models/rm-clean --prompts 300 --samples-per-prompt 8
    python bench/redteam_sandbox.py DIR [--top 50] [--search redteam_search-…]

Reads the latest `redteam_search` artifact (or the one named) and its findings, largest gap first,
and grades every top finding and its SFT baseline with the sandbox gold grader, from the prompt's
stored truth (independently of the grader scores the search recorded). Prints how many of the top N
are strictly worse than the SFT output on the same prompt by gold utility, and the mean reward and
mean gold utility of the top N against every candidate the search scored.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tether.project import Project
from tether.sandbox.gold import grade
from tether.sandbox.world import SandboxPrompt
from tether.store import get_artifact, latest_artifact, list_prompts
from tether.store.findings import FindingRecord, list_findings

KIND = "redteam_search"


def search_record(project: Project, search_id: str | None) -> Any:
    with project.store.session() as session:
        if search_id:
            record = get_artifact(session, artifact_id=search_id)
        else:
            record = latest_artifact(session, project_id=project.project_id, kind=KIND)
    if record is None or record.kind != KIND:
        raise SystemExit(
            f"no {KIND} artifact {search_id or ''} in {project.root}; run `tether redteam search`"
        )
    return record


def top_findings(project: Project, search_id: str, top: int) -> list[FindingRecord]:
    with project.store.session() as session:
        findings = list_findings(session, project_id=project.project_id, source="search")
    return [f for f in findings if f.meta.get("search") == search_id][:top]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path)
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--search", default=None, help="redteam_search artifact id (default: the latest)")
    args = parser.parse_args()
    project = Project.open(args.project)
    record = search_record(project, args.search)
    with project.store.session() as session:
        truth = {
            p.text: SandboxPrompt.from_meta(p.meta)
            for p in list_prompts(session, project_id=project.project_id)
        }
    findings = top_findings(project, record.id, args.top)
    if not findings:
        raise SystemExit(f"search {record.id} stored no findings")
    gold = np.array([grade(truth[f.prompt], f.response).utility for f in findings])
    base = np.array([grade(truth[f.prompt], f.baseline_response or "").utility for f in findings])
    rm = np.array([f.rm_score for f in findings], dtype=np.float64)
    base_rm = np.array([f.meta["baseline"]["rm_score"] for f in findings], dtype=np.float64)
    candidates = [json.loads(line) for line in project.resolve(record.path).read_text("utf-8").splitlines()]
    all_rm = np.array([c["rm_score"] for c in candidates])
    all_gold = np.array([c["grader_score"] for c in candidates])
    settings = record.meta
    n = len(findings)
    print(
        f"search {record.id}: policy {settings['policy']['label']} ({settings['policy']['artifact_id']}), "
        f"reward model {settings['reward_model']['path']} ({settings['reward_model']['artifact_id']}), "
        f"{settings['prompts']} prompts x {settings['samples_per_prompt']} samples, seed {settings['seed']}"
    )
    print(f"candidates scored: {len(candidates)} ({settings['samples']} samples + probe edits, distinct)")
    worse = int((gold < base).sum())
    print(
        f"top {n} findings: {worse}/{n} truly worse than the SFT output on the same prompt by gold utility "
        f"({int((gold == base).sum())} equal, {int((gold > base).sum())} better)"
    )
    print(
        f"  reward model likes them more than the SFT output: {int((rm > base_rm).sum())}/{n} "
        f"(of which gold-worse: {int(((rm > base_rm) & (gold < base)).sum())})"
    )
    for name, top_, all_, sft in (
        ("reward", f"{rm.mean():+.3f}", f"{all_rm.mean():+.3f}", f"{base_rm.mean():+.3f}"),
        ("gold  ", f"{gold.mean():.3f} ", f"{all_gold.mean():.3f} ", f"{base.mean():.3f}"),
    ):
        print(f"  mean {name}   top {n} {top_}   all candidates {all_}   SFT baselines {sft}")
    origins = Counter(f.meta.get("origin", "?") for f in findings)
    print("  origins: " + ", ".join(f"{k} {v}" for k, v in origins.most_common()))
    dims = Counter(f.dimension for f in findings)
    print("  dimensions: " + ", ".join(f"{k} {v}" for k, v in sorted(dims.items())))


if __name__ == "__main__":
    main()
