"""`tether data import-preferences`: a team's existing preference data, stored as a source screened
like a rater.

(1) parse the file (`tether.labeling.import_formats`: HH-RLHF, TRL, UltraFeedback-binarized); (2) a
bad row stops the import with nothing written, unless ``skip_invalid``, which writes each rejected
row and its reason beside the file; (3) link each pair's prompt to an equal prompt already in the
project, or add it; (4) store each pair as a live task whose one slot the source's rater has filled
(`tether.store.imports`). Rows already imported (the same content, whatever the file) are skipped,
so a re-import is idempotent.

The source's rater has kind ``import``. It trains a reward model only while ``active``: at once with
``trust``, else after an audit by calibrated raters accepts it (`tether.labeling.audit`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.conversation import canonical_messages, last_user_turn, prompt_key, stored_messages
from tether.errors import TetherInputError
from tether.hashing import content_sha256
from tether.labeling.import_formats import ImportedPair, RowProblem, parse_file
from tether.project import Project
from tether.store import DbSession, NewPrompt, add_prompts
from tether.store.imports import ImportedLabel, add_imported_labels, imported_keys, prompt_ids_by_content
from tether.store.prompts import prompt_ids_by_key
from tether.store.raters import RaterRecord, add_rater, get_rater, set_rater_status

SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SHOWN_PROBLEMS = 20
PENDING_REASON = (
    "imported source: trains the reward model once an audit by calibrated raters accepts it "
    "(`tether label plan --audit NAME`, then `tether label audit NAME`), or when imported with --trust"
)


@dataclass(frozen=True)
class ImportResult:
    source: str
    format: str
    rows: int
    """Rows read from the file."""
    imported: int
    """Pairs stored by this import."""
    already: int
    """Pairs the source already held (a re-import)."""
    ties_dropped: int
    rejected: int
    rejected_file: Path | None
    prompts_added: int
    prompts_linked: int
    """Pairs whose prompt was already in the project (linked, not duplicated)."""
    status: str
    """The source's rater status after the import: active (trusted or accepted) or calibrating."""


def _check_options(project: Project, source: str, dimension: str | None, split: str) -> str:
    if not SOURCE_NAME.match(source):
        raise TetherInputError(
            f"--source {source!r}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if split not in ("pool", "eval"):
        raise TetherInputError(f"--split must be pool or eval, got {split!r}")
    dims = project.spec.dimension_ids
    if dimension is not None and dimension not in dims:
        raise TetherInputError(f"--dimension {dimension!r} is not in the spec; use one of {', '.join(dims)}")
    return dimension or dims[0]


def _refuse(path: Path, problems: Sequence[RowProblem], rows: int) -> TetherInputError:
    shown = "\n".join(f"  - {p}" for p in problems[:SHOWN_PROBLEMS])
    more = f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    return TetherInputError(
        f"{path}: {len(problems)} of {rows} rows are invalid; nothing was imported\n{shown}{more}\n"
        "(--skip-invalid imports the valid rows and writes each rejected one, with its reason, "
        "beside the file)"
    )


def rejected_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.rejected.jsonl")


def _write_rejected(path: Path, problems: Sequence[RowProblem]) -> Path:
    target = rejected_path(path)
    partial = target.with_name(f".{target.name}.partial")
    lines = (
        json.dumps({"row": p.row, "field": p.field, "reason": p.message}, ensure_ascii=False)
        for p in problems
    )
    partial.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    partial.replace(target)
    return target


def _source_rater(project: Project, session: DbSession, source: str, trust: bool) -> RaterRecord:
    """The source's rater, made on its first import; ``trust`` makes it active at once."""
    found: RaterRecord | None
    try:
        found = get_rater(session, project_id=project.project_id, name=source)
    except TetherInputError:
        found = None
    if found is not None and found.kind != "import":
        raise TetherInputError(
            f"--source {source!r} is the name of a {found.kind} rater; choose another name"
        )
    rater = found or add_rater(
        session, project_id=project.project_id, name=source, kind="import", spec_hash=project.spec_hash
    )
    if trust and rater.status != "active":
        reason = "imported with --trust: its labels train the reward model without an audit"
        return set_rater_status(
            session, rater_id=rater.id, status="active", reason=reason, spec_hash=project.spec_hash
        )
    if found is None:
        return set_rater_status(
            session,
            rater_id=rater.id,
            status="calibrating",
            reason=PENDING_REASON,
            spec_hash=project.spec_hash,
        )
    return rater


def _prompt_ids(
    project: Project, session: DbSession, pairs: Sequence[ImportedPair], dimension: str, split: str
) -> tuple[list[int], int]:
    """Each pair's prompt id, an equal existing prompt's where there is one; and how many were linked."""
    existing = prompt_ids_by_content(session, project_id=project.project_id)
    # (last user turn, canonical messages): the lookup key of each pair's prompt, computed once.
    contents = [(last_user_turn(p.prompt), canonical_messages(stored_messages(p.prompt))) for p in pairs]
    keys = {
        c: "imp-" + prompt_key(p.prompt)[:24]
        for c, p in zip(contents, pairs, strict=True)
        if c not in existing
    }
    new = {
        key: NewPrompt(
            key=key,
            text=c[0],
            messages=stored_messages(pair.prompt),
            dimension=dimension,
            stratum="routine",
            split=split,
            source="import",
        )
        for c, pair in zip(contents, pairs, strict=True)
        if (key := keys.get(c)) is not None
    }
    add_prompts(
        session, project_id=project.project_id, prompts=list(new.values()), spec_hash=project.spec_hash
    )
    added = prompt_ids_by_key(session, project_id=project.project_id, keys=list(new))
    ids = [existing.get(c) or added[keys[c]] for c in contents]
    return ids, sum(c in existing for c in contents)


def import_preferences(
    project: Project,
    path: Path,
    *,
    source: str,
    fmt: str = "auto",
    dimension: str | None = None,
    split: str = "pool",
    keep_ties: bool = False,
    skip_invalid: bool = False,
    trust: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Steps (1)-(4) of the module docstring, in one transaction: all or nothing."""
    dimension = _check_options(project, source, dimension, split)
    parsed = parse_file(path, fmt, progress=progress)
    if parsed.problems and not skip_invalid:
        raise _refuse(path, parsed.problems, parsed.rows)
    pairs = [p for p in parsed.pairs if keep_ties or not p.tie]
    file_hash = content_sha256(path)
    with project.store.session() as session:
        rater = _source_rater(project, session, source, trust)
        done = imported_keys(session, rater_id=rater.id)
        fresh = list({p.key: p for p in pairs if p.key not in done}.values())  # a file may repeat a row
        prompt_ids, linked = _prompt_ids(project, session, fresh, dimension, split)
        labels = [
            ImportedLabel(
                prompt_id=pid,
                chosen=p.chosen,
                rejected=p.rejected,
                tie=p.tie,
                key=p.key,
                rationale=f"imported from {path.name}, row {p.row}",
                meta={
                    "source_row": p.row,
                    "margin": p.margin,
                    "file_sha256": file_hash,
                    "format": parsed.format,
                },
            )
            for pid, p in zip(prompt_ids, fresh, strict=True)
        ]
        add_imported_labels(
            session,
            project_id=project.project_id,
            rater_id=rater.id,
            source=source,
            labels=labels,
            spec_hash=project.spec_hash,
        )
    rejected = _write_rejected(path, parsed.problems) if parsed.problems else None
    return ImportResult(
        source=source,
        format=parsed.format,
        rows=parsed.rows,
        imported=len(fresh),
        already=len(pairs) - len(fresh),
        ties_dropped=len(parsed.pairs) - len(pairs),
        rejected=len(parsed.problems),
        rejected_file=rejected,
        prompts_added=len(fresh) - linked,
        prompts_linked=linked,
        status=rater.status,
    )
