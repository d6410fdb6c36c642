"""Reports as data: a :class:`~loyalty.specs.ReportSpec` and a period become panels of
trends (from :mod:`.queries`, as the dashboard reads them), a page, a self-contained HTML
file (plotly.js inlined: it opens offline and asks no network for anything) or the CSV of
the numbers behind it."""

from __future__ import annotations

import csv
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, has_request_context, render_template
from markupsafe import Markup

from .. import metrics, periods
from ..checks import spreadsheet_safe
from ..db import db
from ..models import User
from ..specs import Panel, ReportSpec
from . import charts, queries, rollups

CSV_HEADER = ["panel", "metric", "grain", "split", "series", "period", "start", "n", "value"]
CSV_HEADER += ["moe", "low", "high", "low_confidence"]


@dataclass(frozen=True)
class Shown:
    """A panel ready to show: its title, the series (name -> points), the figure."""

    panel: Panel
    title: str
    series: dict[str, list[queries.Point]]
    figure: Markup | None
    unit: str
    min_n: int


def series_name(split: str, key: t.Any, owners: dict[int, str]) -> str:
    """How a split's series is named: B2B, da, post-sale, an owner's e-mail."""
    if split == "owner_id":
        return owners.get(int(key or 0), "no owner")
    return str(key).upper() if split == "segment" else str(key)


def build(report: ReportSpec, period: periods.Period, language: str = "en") -> list[Shown]:
    """Every panel of ``report`` over ``period`` (the rollups counted up to date first)."""
    rollups.refresh_stale()
    owners = dict(db.session.execute(sa.select(User.id, User.email)).all())
    shown = []
    for panel in report.panels:
        min_n = panel.min_n or current_app.config["MIN_N"]
        title, unit = metrics.NAMED[panel.metric]
        trend = queries.trend(panel.metric, panel.grain, period, split=panel.split, min_n=min_n)
        series = {
            (title if panel.split is None else series_name(panel.split, key, owners)): points
            for key, points in trend.items()
        }
        figure = None
        if panel.chart == "line":
            lines = [(name, [_chart_point(p) for p in points]) for name, points in series.items()]
            figure = charts.figure_json(charts.trend_chart(lines, unit=unit, min_n=min_n))
        shown.append(Shown(panel, panel.title[language], series, figure, unit, min_n))
    return shown


def _chart_point(point: queries.Point) -> charts.TrendPoint:
    return charts.TrendPoint.of(point.start, point.reading, point.name)


def render_html(
    report: ReportSpec, period: periods.Period, *, language: str = "en", standalone: bool
) -> str:
    """The report as a page; ``standalone``: one file with plotly.js and the drawing script
    inlined, for email attachments and archives."""
    scripts = css = None
    if standalone:
        with open(f"{current_app.static_folder}/style.css", encoding="utf-8") as file:
            css = Markup(file.read().replace("</style", "<\\/style"))
        source = charts.PLOTLY_JS.read_text(encoding="utf-8").replace("</script", "<\\/script")
        with open(f"{current_app.static_folder}/charts.js", encoding="utf-8") as file:
            scripts = Markup("<script>{}</script>\n<script>{}</script>").format(
                Markup(source), Markup(file.read())
            )
    if not has_request_context():  # a command: links are built from BASE_URL
        with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
            return _render(report, period, language, standalone, scripts, css)
    return _render(report, period, language, standalone, scripts, css)


def _render(
    report: ReportSpec,
    period: periods.Period,
    language: str,
    standalone: bool,
    scripts: Markup | None,
    css: Markup | None,
) -> str:
    return render_template(
        "reports/report.html",
        report=report,
        period=period,
        language=language,
        panels=build(report, period, language),
        standalone=standalone,
        inline_scripts=scripts,
        inline_css=css,
    )


def write_csv(report: ReportSpec, period: periods.Period, out: t.TextIO) -> None:
    """The numbers behind every panel, one row per point (text cells spreadsheet-safe)."""
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for shown in build(report, period):
        panel = shown.panel
        for name, points in shown.series.items():
            for p in points:
                r = p.reading
                ends = ["", ""] if r.bounds is None else [round(end, 2) for end in r.bounds]
                writer.writerow(
                    [
                        spreadsheet_safe(shown.title),
                        panel.metric,
                        panel.grain,
                        panel.split or "",
                        spreadsheet_safe(name),
                        p.name,
                        p.start.isoformat(),
                        r.n,
                        "" if r.value is None else round(r.value, 2),
                        "" if r.moe is None else round(r.moe, 2),
                        *ends,
                        "true" if r.low_confidence else "false",
                    ]
                )
