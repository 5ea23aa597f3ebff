"""Documentation stays runnable: examples in docs parse with the code that reads them."""

from __future__ import annotations

import re
from pathlib import Path

from tether.sandbox.raters import load_pool

ROOT = Path(__file__).resolve().parents[1]


def test_rater_pool_example_in_sandbox_docs_loads(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block is not None
    pool = tmp_path / "pool.yaml"
    pool.write_text(block.group(1), encoding="utf-8")
    assert len(load_pool(pool)) == 8


def test_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme
    assert "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
