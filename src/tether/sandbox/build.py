"""`tether sandbox build`: write the world into a project.

Steps: (1) generate tagged prompts and store them, (2) write the SFT corpus, (3) train the
tokenizer and SFT the tiny policy, (4) save it with safetensors, (5) derive the anchors from
gold, (6) register every output as an artifact with its lineage. The same seed gives the same
prompts, anchors and simulated judgments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tether.artifacts import ANCHORS_KIND, SANDBOX_WORLD_KIND, SFT_CORPUS_KIND
from tether.errors import TetherInputError
from tether.hashing import content_sha256
from tether.policies import register_policy
from tether.project import Project
from tether.sandbox.anchors import write_sandbox_anchors
from tether.sandbox.config import SandboxConfig
from tether.sandbox.grammar import render_sft_example
from tether.sandbox.policy import build_model, save_policy, sft, train_tokenizer
from tether.sandbox.world import DIMENSIONS, SandboxPrompt, generate_prompts, split_for, stable_rng
from tether.store import (
    ArtifactRecord,
    NewPrompt,
    add_prompts,
    latest_artifact,
    list_prompts,
    register_artifact,
)


@dataclass(frozen=True)
class BuildResult:
    prompts_added: int
    prompts_total: int
    world: ArtifactRecord
    policy: ArtifactRecord
    anchors: ArtifactRecord
    final_loss: float
    seconds: float


def sandbox_prompts(cfg: SandboxConfig) -> list[tuple[SandboxPrompt, str]]:
    """Every prompt of the world with its split ('pool' or 'eval')."""
    return [
        (p, split_for(p.id, seed=cfg.seed, eval_share=cfg.eval_share))
        for p in generate_prompts(seed=cfg.seed, n=cfg.n_prompts)
    ]


def sft_corpus(prompts: list[tuple[SandboxPrompt, str]], cfg: SandboxConfig) -> list[tuple[str, str]]:
    """(prompt, response) pairs from pool prompts only: eval prompts stay unseen."""
    return [
        (p.text, render_sft_example(p, stable_rng("sft", cfg.seed, p.id, k)))
        for p, split in prompts
        if split == "pool"
        for k in range(cfg.responses_per_prompt)
    ]


def check_sandbox_project(project: Project) -> None:
    missing = [d for d in DIMENSIONS if d not in project.spec.dimension_ids]
    if missing:
        raise TetherInputError(
            f"{project.spec_path}: the sandbox needs the dimensions {', '.join(DIMENSIONS)} "
            f"(missing {', '.join(missing)}); create the project with 'tether init DIR --template sandbox'"
        )


def _check_seed(project: Project, seed: int) -> None:
    with project.store.session() as session:
        world = latest_artifact(session, project_id=project.project_id, kind=SANDBOX_WORLD_KIND)
    if world is not None and world.meta.get("seed") != seed:
        raise TetherInputError(
            f"this project's sandbox was built with seed {world.meta.get('seed')}; "
            f"use a new project for seed {seed}, so that prompts from two worlds never mix"
        )


def store_prompts(project: Project, prompts: list[tuple[SandboxPrompt, str]], seed: int) -> int:
    rows = [
        NewPrompt(
            key=p.id,
            text=p.text,
            dimension=p.dimension,
            stratum=p.stratum,
            split=split,
            source="sandbox",
            meta={**p.to_meta(), "seed": seed},
        )
        for p, split in prompts
    ]
    with project.store.session() as session:
        return add_prompts(session, project_id=project.project_id, prompts=rows, spec_hash=project.spec_hash)


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


@dataclass(frozen=True)
class _Outputs:
    world_file: Path
    corpus_file: Path
    policy_dir: Path
    anchors_file: Path


def build_world(
    project: Project, cfg: SandboxConfig, on_step: Callable[[int, float], None] | None = None
) -> BuildResult:
    """Build the sandbox world into `project`; `on_step(step, loss)` reports SFT progress."""
    start = time.perf_counter()
    check_sandbox_project(project)
    _check_seed(project, cfg.seed)
    out = _Outputs(
        world_file=project.path("sandbox", f"world-seed{cfg.seed}.json"),
        corpus_file=project.path("sandbox", f"sft-corpus-seed{cfg.seed}.jsonl"),
        policy_dir=project.path("models", f"sft-seed{cfg.seed}", "config.json").parent,
        anchors_file=project.root / project.spec.labeling.anchors_path,
    )
    # 1. prompts
    prompts = sandbox_prompts(cfg)
    added = store_prompts(project, prompts, cfg.seed)
    out.world_file.write_text(
        json.dumps({"config": asdict(cfg), "n_prompts": len(prompts)}, indent=2), "utf-8"
    )
    # 2. SFT corpus
    corpus = sft_corpus(prompts, cfg)
    _write_jsonl(out.corpus_file, [{"prompt": p, "response": r} for p, r in corpus])
    # 3. tokenizer and SFT; every prompt's words are in the vocabulary, no eval response is
    tokenizer = train_tokenizer([p.text for p, _ in prompts] + [r for _, r in corpus])
    model = build_model(tokenizer, cfg.policy)
    losses = sft(model, tokenizer, corpus, cfg.policy, on_step=on_step)
    # 4. save
    save_policy(model, tokenizer, cfg.policy, out.policy_dir)
    # 5. anchors
    anchors = write_sandbox_anchors(out.anchors_file, cfg.seed)
    # 6. lineage
    counts = {
        "prompts": len(prompts),
        "examples": len(corpus),
        "anchors": len(anchors),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    world, policy, anchors_record = _register(project, cfg, out, counts, losses[-1])
    return BuildResult(
        added, len(prompts), world, policy, anchors_record, losses[-1], time.perf_counter() - start
    )


def _register(
    project: Project, cfg: SandboxConfig, out: _Outputs, counts: dict[str, int], final_loss: float
) -> tuple[ArtifactRecord, ArtifactRecord, ArtifactRecord]:
    project_id = project.project_id  # resolved before the session: it may open one itself
    with project.store.session() as session:

        def register(kind: str, path: Path, parents: list[str], meta: dict[str, object]) -> ArtifactRecord:
            return register_artifact(
                session,
                project_id=project_id,
                kind=kind,
                path=project.relative(path),
                content_hash=content_sha256(path),
                spec_hash=project.spec_hash,
                parents=parents,
                meta={"seed": cfg.seed, **meta},
            )

        world = register(SANDBOX_WORLD_KIND, out.world_file, [], {"prompts": counts["prompts"]})
        corpus = register(SFT_CORPUS_KIND, out.corpus_file, [world.id], {"examples": counts["examples"]})
        anchors = register(ANCHORS_KIND, out.anchors_file, [world.id], {"anchors": counts["anchors"]})
    # The same registration a team's own model goes through (`tether policy register`).
    policy = register_policy(
        project,
        out.policy_dir,
        parents=[corpus.id],
        meta={
            "seed": cfg.seed,
            "parameters": counts["parameters"],
            "config": asdict(cfg),
            "final_loss": final_loss,
        },
    ).record
    return world, policy, anchors


def pool_prompts(project: Project) -> list[SandboxPrompt]:
    """The project's sandbox prompts in the labeling pool (eval prompts stay held out)."""
    with project.store.session() as session:
        records = list_prompts(session, project_id=project.project_id, split="pool")
    prompts = [SandboxPrompt.from_meta(r.meta) for r in records if r.source == "sandbox"]
    if not prompts:
        raise TetherInputError("the project has no sandbox prompts yet; run 'tether sandbox build' first")
    return prompts
