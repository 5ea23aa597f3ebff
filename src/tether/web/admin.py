"""The admin dashboard: progress, the rater table, pool agreement, decisions and export download."""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tether.errors import TetherInputError
from tether.labeling import raters as rater_ops
from tether.store.grading import grading_summary
from tether.store.raters import RaterRecord
from tether.store.tasks import progress_by_cell
from tether.web.authz import AdminPage
from tether.web.deps import Db, PageRater, State, check_csrf, refuse_nul, require_admin
from tether.web.pages import render

router = APIRouter(prefix="/admin", include_in_schema=False)
Action = Literal["exclude", "readmit", "recalibrate"]


def _bars(rows: list[tuple[str, float]], *, width: int = 240) -> list[dict[str, Any]]:
    """Bar geometry for the inline SVG charts (no JavaScript, no CDN)."""
    return [
        {"label": label, "value": value, "px": round(max(0.0, min(1.0, value)) * width)}
        for label, value in rows
    ]


@router.get("")
def dashboard(request: Request, user: PageRater, session: Db, state: State) -> HTMLResponse:
    require_admin(user)
    return _dashboard_view(request, user, session, state)


def _dashboard_view(
    request: Request, user: RaterRecord, session: Db, state: State, error: str | None = None
) -> HTMLResponse:
    """The dashboard; `error` comes from a refused action, never the URL."""
    from tether.labeling.report import raters_status

    cells = progress_by_cell(session, project_id=state.project.project_id)
    report = raters_status(state.project)
    alpha = report["pool"]["alpha_by_dimension"]
    return render(
        request,
        "admin.html",
        user=user,
        cells=cells,
        progress=_bars([(f"{d} / {s}", done / total if total else 0.0) for d, s, done, total in cells]),
        report=report,
        alpha=_bars([(d, a if a is not None else 0.0) for d, a in alpha.items()]),
        grading=grading_summary(session, project_id=state.project.project_id, by_origin=True),
        error=error,
    )


@router.post("/raters/{name:path}/{action}")
def rater_action(
    request: Request,
    name: str,
    action: Action,
    user: AdminPage,
    session: Db,
    state: State,
    reason: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    try:
        refuse_nul(name=name, reason=reason)
        if action == "exclude":
            rater_ops.exclude(state.project, name=name, reason=reason)
        elif action == "readmit":
            rater_ops.readmit(state.project, name=name, reason=reason)
        else:
            rater_ops.recalibrate(
                state.project, name=name, reason=reason or "recalibration requested by an admin"
            )
    except TetherInputError as exc:
        return _dashboard_view(request, user, session, state, error=str(exc))
    return RedirectResponse("/admin", status_code=303)


@router.get("/export.zip")
def download_export(user: AdminPage, state: State, include_excluded: bool = False) -> Response:
    """The preference export as a zip (registered as an artifact like `tether data export`)."""
    from tether.labeling.dataset import export_preferences

    out = state.project.path("exports", "web", "x").parent
    target = Path(tempfile.mkdtemp(prefix="export-", dir=out))
    shutil.rmtree(target)
    try:
        export_preferences(state.project, out=target, include_excluded=include_excluded)
    except TetherInputError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(target.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(target))
    headers = {"Content-Disposition": f'attachment; filename="{target.name}.zip"'}
    return Response(buffer.getvalue(), media_type="application/zip", headers=headers)
