"""Helpers of `bench/own_model_transcript.sh` (run from the repository root).

own_model_label.py model DIR              # the tiny Llama of tests/tiny_llama.py, saved to DIR
own_model_label.py prompts FILE N_PER_DIM # tagged prompts over the assistant spec's dimensions and strata
own_model_label.py flagged FILE           # a few flagged production items (docs/feedback.md)
own_model_label.py label PROJECT TOKENS   # what `tether label serve` is for, without people:
                                          # every rater calibrates and labels through /api/v1
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.api_raters import label_all, read_tokens
from tests.tiny_llama import save_tiny_llama

DIMENSIONS = ("safety", "accuracy", "honesty", "helpfulness", "concision")
STRATA_SHARE = {"routine": 0.7, "hard": 0.1, "adversarial": 0.1, "edge": 0.1}
TOPICS = ("lists", "files", "trains", "bread", "loops", "tides", "maps", "bees", "tax", "rust")


def prompts(path: Path, per_dimension: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for dim in DIMENSIONS:
            for stratum, share in STRATA_SHARE.items():
                for i in range(round(per_dimension * share)):
                    text = f"[{dim}/{stratum}] Tell me about {TOPICS[i % len(TOPICS)]}, case {i}."
                    out.write(json.dumps({"text": text, "dimension": dim, "stratum": stratum}) + "\n")


def flagged(path: Path) -> None:
    items = [
        {
            "idempotency_key": f"prod-{i}",
            "prompt": f"Tell me about {topic}.",
            "response": f"I am not sure about {topic}.",
            "model_version": "my-sft",
            "reason": f"{dim}: flagged by a user",
        }
        for i, (topic, dim) in enumerate(zip(TOPICS, DIMENSIONS * 2, strict=True))
    ]
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")


def label(project_dir: Path, tokens: Path) -> None:
    from tether.project import Project

    done = label_all(Project.open(project_dir), read_tokens(tokens))
    for name, counts in done.items():
        print(f"{name}: {counts['calibration']} calibration, {counts['task']} tasks through /api/v1")


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "model":
        save_tiny_llama(Path(args[0]))
    elif command == "prompts":
        prompts(Path(args[0]), int(args[1]))
    elif command == "flagged":
        flagged(Path(args[0]))
    elif command == "label":
        label(Path(args[0]), Path(args[1]))
    else:
        raise SystemExit(f"unknown command {command!r}; see the module's docstring")


if __name__ == "__main__":
    main(sys.argv[1:])
