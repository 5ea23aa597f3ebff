"""Writing files and directories whole: a reader sees the old version or the new one, never half.

- `staged_dir`: build a directory (a checkpoint, an export) in a hidden sibling and rename it into
  place when the block succeeds; remove it when the block fails.
- `write_text_atomic`: the same for one text file (a report).

Both rely on rename(2) within one directory being atomic: it replaces an empty directory or any file,
and refuses a non-empty directory, which also catches a target that filled up while we wrote.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tether.errors import TetherInputError


def check_free_dir(out: Path, *, hint: str = "choose a new --out") -> None:
    """Raise unless `out` can become a new directory: missing, or an empty directory."""
    if out.exists() and not out.is_dir():
        raise TetherInputError(f"{out}: exists and is not a directory; {hint}")
    if out.is_dir() and any(out.iterdir()):
        raise TetherInputError(
            f"{out}: already exists and is not an empty directory (one that is not empty is never "
            f"overwritten); {hint}"
        )


@contextmanager
def staged_dir(out: Path, *, hint: str = "choose a new --out", enabled: bool = True) -> Iterator[Path | None]:
    """A hidden sibling of `out` to write into, renamed to `out` when the block succeeds and removed
    when it fails. Yields None when not `enabled` (the other processes of a data-parallel run, which
    write nothing). `hint` ends the message when `out` is taken."""
    if not enabled:
        yield None
        return
    check_free_dir(out, hint=hint)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        stage.chmod(0o755)  # mkdtemp makes it 0o700; checkpoints and exports are not secrets
        yield stage
        try:
            os.replace(stage, out)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise TetherInputError(f"{out}: became non-empty while it was written; {hint}") from exc
            raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temporary sibling, so `path` is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make a page meant for sharing unreadable to others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
