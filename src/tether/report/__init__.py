"""`tether report`: one self-contained, offline HTML page about every loop iteration.

    from tether.report import collect, write_report
    write_report(collect(project), Path("report.html"))

- `collect`: iterations, spec versions and alerts from the store plus each RL run's metrics.jsonl,
  shaped into frozen dataclasses (`model`), tolerant of iterations that stopped early;
- `svg`: pure chart geometry as inline SVG; `html`: the page (Jinja2, autoescaped, no scripts);
- `screenshot`: open a report in headless Chromium with the network blocked and save a PNG.
"""

from tether.report.collect import collect
from tether.report.html import render_report, write_report
from tether.report.model import ReportData

__all__ = ["ReportData", "collect", "render_report", "write_report"]
