"""Charts: rows in, Plotly figures out, and the JSON a page hands to ``Plotly.newPlot``.

Pages never build figures by hand. They turn their rows into :class:`Bar` or :class:`Point`
values and call :func:`bar_chart` (one bar per item, positive and negative told apart by
colour) or :func:`line_chart` (lines over time, with horizontal threshold lines and marked
moments). Every text that reaches Plotly (labels, hover texts, titles, legend names) goes
through :func:`label` in this module and nowhere else: Plotly reads ``<b>``, ``<br>`` and
``<a href>`` in its labels, so customer and account text is escaped with ``html.escape``
first (Plotly shows ``&lt;b&gt;`` as the characters ``<b>``).

:func:`figure_json` makes the JSON safe to sit inside ``<script type="application/json">``
(no ``<``, ``>``, ``&`` or ``'`` left in it), so a page carries no inline script;
``static/charts.js`` draws every such tag with ``Plotly.newPlot``. plotly.js itself is the
copy the Python ``plotly`` package ships (``package_data/plotly.min.js``), served by
:data:`bp` under a versioned URL, never from a CDN; templates write both script tags with
``{{ chart_scripts() }}``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import typing as t
from dataclasses import dataclass
from pathlib import Path

import plotly  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]
from flask import Blueprint, abort, send_file, url_for
from markupsafe import Markup
from plotly.offline import get_plotlyjs_version  # type: ignore[import-untyped]
from plotly.utils import PlotlyJSONEncoder  # type: ignore[import-untyped]

from .. import metrics

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from flask.blueprints import BlueprintSetupState

#: The colours of style.css: good, bad, the accent, muted ink, the grid.
GOOD, BAD, ACCENT, MUTED, LINE = "#067647", "#b42318", "#3451b2", "#5b6475", "#d0d5dd"
FONT = 'system-ui, -apple-system, "Segoe UI", sans-serif'
#: Passed to Plotly.newPlot with every figure: no toolbar, resizes with the page.
CONFIG = {"displayModeBar": False, "responsive": True, "displaylogo": False}

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_JS_VERSION = get_plotlyjs_version()
#: A year: the URL names the version, so a new plotly release is a new URL.
ASSET_MAX_AGE = 365 * 24 * 3600


def label(text: object) -> str:
    """Text as Plotly must get it: escaped, so no tag in it is ever read as markup. Quotes
    become numeric entities: Plotly turns those back, but not ``&quot;``."""
    escaped = html.escape("" if text is None else str(text), quote=False)
    return escaped.replace('"', "&#34;").replace("'", "&#x27;")


# --- bar charts ----------------------------------------------------------------------------

#: a bar's label on a narrow screen (static/charts.js swaps these in below 480 px)
NARROW_LABEL = 16


def _shortened(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


@dataclass(frozen=True)
class Bar:
    """One bar: what it is, how long (negative to the left), what hovering it says."""

    label: str
    value: float
    hover: str = ""
    #: where clicking the bar leads (a path on this site), if anywhere
    link: str = ""


def _signed_range(values: list[float], reach: float) -> list[float]:
    """The value axis: as far as ``reach`` on each side that has a bar, a sliver of the
    other (zero stays in sight), and the whole of both with no bar at all."""
    left = any(v < 0 for v in values) or not any(v > 0 for v in values)
    right = any(v > 0 for v in values) or not any(v < 0 for v in values)
    return [-reach if left else -reach / 20, reach if right else reach / 20]


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str = "",
    axis_title: str = "",
    signed: bool = True,
    value_format: str = "{:+g}",
) -> dict[str, t.Any]:
    """Horizontal bars, top to bottom in the order given, around a zero line.

    Each bar has a row of its own (rows are numbers, the labels their tick texts): two bars
    with the same label, such as two customers who wrote the same words, stay two bars
    rather than one category that stacks both.

    ``signed`` colours positive bars good and negative ones bad (zero in the middle when
    there are both, and a side with no bar takes no room: a phone has none to spare);
    otherwise every bar is the accent colour. A plain figure dict (as
    :func:`trend_chart`): plotly's validation of a ``go.Figure`` costs tens of milliseconds.
    """
    values = [float(b.value) for b in bars]
    colours = [(GOOD if v >= 0 else BAD) if signed else ACCENT for v in values]
    bar = {
        "type": "bar",
        "x": values,
        "y": list(range(len(bars))),
        "orientation": "h",
        "marker": {"color": colours},
        "text": [label(value_format.format(v)) for v in values],
        "textposition": "outside",
        "cliponaxis": False,
        "hovertext": [label(b.hover or b.label) for b in bars],
        "hoverinfo": "text",
        "customdata": [b.link for b in bars],
    }
    reach = max([abs(v) for v in values] + [1.0]) * 1.25
    layout = _layout(title, height=max(140, 60 + 30 * len(bars)))
    layout.pop("template")  # go.Figure's name for "no theme"; plotly.js has none anyway
    layout.update(
        showlegend=False,
        bargap=0.3,
        xaxis={
            "title": {"text": label(axis_title)},
            "range": _signed_range(values, reach) if signed else [0, reach],
            "zeroline": True,
            "zerolinecolor": MUTED,
            "zerolinewidth": 1,
            "gridcolor": LINE,
            "fixedrange": True,
        },
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(len(bars))),
            "ticktext": [label(b.label) for b in bars],
            "autorange": "reversed",
            "automargin": True,
            "fixedrange": True,
        },
    )
    # Plotly keeps ``meta`` as it is: where charts.js finds the labels for a phone.
    layout["meta"] = {"narrow_ticktext": [label(_shortened(b.label, NARROW_LABEL)) for b in bars]}
    return {"data": [bar], "layout": layout}


# --- line charts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """A value at a moment (a date, or an aware datetime shown as its date and time)."""

    at: dt.date | dt.datetime
    value: float
    hover: str = ""


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]
    colour: str = ACCENT


@dataclass(frozen=True)
class Threshold:
    """A horizontal line across the chart at ``value``, named at its right end."""

    value: float
    label: str
    colour: str = MUTED


def line_chart(
    series: Sequence[Series],
    *,
    thresholds: Sequence[Threshold] = (),
    markers: Sequence[Point] = (),
    marker_name: str = "",
    title: str = "",
    axis_title: str = "",
    value_range: tuple[float, float] | None = None,
) -> go.Figure:
    """Lines over time, with horizontal ``thresholds`` and marked moments (``markers``)."""
    figure = go.Figure()
    for line in series:
        figure.add_trace(
            go.Scatter(
                x=[_moment(p.at) for p in line.points],
                y=[p.value for p in line.points],
                name=label(line.name),
                mode="lines+markers",
                line={"color": line.colour, "width": 2},
                marker={"size": 5},
                hovertext=[label(p.hover or f"{p.value:g}") for p in line.points],
                hoverinfo="text",
            )
        )
    if markers:
        figure.add_trace(
            go.Scatter(
                x=[_moment(p.at) for p in markers],
                y=[p.value for p in markers],
                name=label(marker_name),
                mode="markers",
                cliponaxis=False,  # a warning at 0 or 100 shows whole
                marker={
                    "symbol": "triangle-down",
                    "size": 13,
                    "color": BAD,
                    "line": {"color": "#fff", "width": 1},
                },
                hovertext=[label(p.hover) for p in markers],
                hoverinfo="text",
            )
        )
    figure.update_layout(
        **_layout(title, height=320),
        showlegend=len(series) + bool(markers) > 1,
        legend={"orientation": "h", "y": -0.2},
        hovermode="closest",
        shapes=[
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": th.value,
                "y1": th.value,
                "line": {"color": th.colour, "width": 1, "dash": "dash"},
            }
            for th in thresholds
        ],
        annotations=[
            {
                "xref": "paper",
                "x": 1,
                "xanchor": "right",
                "yref": "y",
                "y": th.value,
                "yanchor": "bottom",
                "text": label(th.label),
                "showarrow": False,
                "font": {"color": th.colour, "size": 11},
            }
            for th in thresholds
        ],
    )
    figure.update_xaxes(type="date", gridcolor=LINE, automargin=True)
    figure.update_yaxes(
        title_text=label(axis_title),
        range=list(value_range) if value_range else None,
        gridcolor=LINE,
        fixedrange=True,
        automargin=True,
    )
    return figure


@dataclass(frozen=True)
class TrendPoint:
    """One bucket of a trend: its first day, value (None: no answers), margin of error, n,
    whether n is too low to read, and where clicking it leads (a same-site path)."""

    at: dt.date
    value: float | None
    moe: float | None
    n: int
    low_confidence: bool
    name: str = ""
    link: str = ""
    #: the interval's ends, where they are not value ± moe (``metrics.Reading``)
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(
        cls, at: dt.date, reading: metrics.Reading, name: str = "", link: str = ""
    ) -> TrendPoint:
        """The point of a metric's reading."""
        r = reading
        low, high = r.bounds or (None, None)
        return cls(at, r.value, r.moe, r.n, r.low_confidence, name, link, low, high)

    def band(self) -> tuple[float, float]:
        """The band's (lower, upper) ends, as the reading defines them (the interval, or
        value ± moe); for a point with a value and a margin."""
        reading = metrics.Reading(
            self.value, self.moe, self.n, self.low_confidence, self.low, self.high
        )
        return t.cast(tuple[float, float], reading.bounds)


def trend_chart(
    lines: Sequence[tuple[str, Sequence[TrendPoint]]],
    *,
    unit: str = "",
    value_range: tuple[float, float] | None = None,
    band: bool = True,
    min_n: int = 30,
) -> dict[str, t.Any]:
    """A metric over time, honest about noise: each line with its 95% margin of error as a
    shaded band (``band``, with one line), points with too few answers drawn hollow with a
    hover that says why, and no point where a bucket has no answers. Clicking a point
    follows its ``link`` (static/charts.js).

    A plain figure dict, not a ``go.Figure``: the dashboard draws several per request, and
    plotly's validation of each would be most of the page's time."""
    colours = [ACCENT, "#b54708", GOOD, "#7a2e98", MUTED, BAD]
    data: list[dict[str, t.Any]] = []
    for index, (name, points) in enumerate(lines):
        colour = colours[index % len(colours)]
        known = [p for p in points if p.value is not None]
        edged = [p for p in known if p.moe is not None]
        if band and len(lines) == 1 and edged:
            upper = [p.band()[1] for p in edged]
            lower = [p.band()[0] for p in reversed(edged)]
            data.append(
                {
                    "type": "scatter",
                    "x": [_moment(p.at) for p in edged] + [_moment(p.at) for p in reversed(edged)],
                    "y": upper + lower,
                    "fill": "toself",
                    "fillcolor": "rgba(52, 81, 178, 0.13)",
                    "line": {"width": 0},
                    "hoverinfo": "skip",
                    "name": label("95% margin of error"),
                }
            )
        hovers = []
        for p in known:
            margin = f" ± {p.moe:.1f}" if p.moe is not None else ""
            text = f"{p.name}: {p.value:.1f}{margin} {unit} (n={p.n})"
            if p.low_confidence:
                text += f"; fewer than {min_n} answers, too few to read"
            hovers.append(label(text))
        data.append(
            {
                "type": "scatter",
                "x": [_moment(p.at) for p in known],
                "y": [p.value for p in known],
                "name": label(name),
                "mode": "lines+markers",
                "line": {"color": colour, "width": 2},
                "marker": {
                    "size": 9,
                    "color": ["#fff" if p.low_confidence else colour for p in known],
                    "line": {"color": colour, "width": 2},
                },
                "hovertext": hovers,
                "hoverinfo": "text",
                "customdata": [p.link for p in known],
            }
        )
    plain_layout = _layout("", height=320)
    plain_layout.pop("template")  # go.Figure's name for "no theme"; plotly.js has none anyway
    layout = {
        **plain_layout,
        "showlegend": len(lines) > 1,
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "closest",
        "xaxis": {"type": "date", "gridcolor": LINE, "automargin": True},
        "yaxis": {
            "title": {"text": label(unit)},
            "range": list(value_range) if value_range else None,
            "gridcolor": LINE,
            "fixedrange": True,
            "automargin": True,
        },
    }
    return {"data": data, "layout": layout}


def _moment(at: dt.date | dt.datetime) -> str:
    """Plotly reads dates as "YYYY-MM-DD" or "YYYY-MM-DD HH:MM" (already in local time)."""
    if isinstance(at, dt.datetime):
        return at.strftime("%Y-%m-%d %H:%M")
    return at.isoformat()


def _layout(title: str, *, height: int) -> dict[str, t.Any]:
    return {
        "template": "none",
        "title": {"text": label(title), "x": 0, "font": {"size": 15}} if title else None,
        "height": height,
        "margin": {"l": 10, "r": 20, "t": 40 if title else 10, "b": 40},
        "font": {"family": FONT, "color": "#1d2330", "size": 13},
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
    }


# --- into the page ---------------------------------------------------------------------------

#: What may not appear raw inside a <script> element (nor in an attribute, nor in JS).
_HTML_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "'": "\\u0027",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def figure_dict(figure: go.Figure | dict[str, t.Any]) -> dict[str, t.Any]:
    """The figure as ``{"data", "layout", "config"}``, what ``Plotly.newPlot`` takes."""
    plain = figure if isinstance(figure, dict) else figure.to_plotly_json()
    return {"data": plain["data"], "layout": plain["layout"], "config": CONFIG}


def figure_json(figure: go.Figure | dict[str, t.Any]) -> Markup:
    """The figure's JSON, safe inside ``<script type="application/json">``: every ``<``,
    ``>``, ``&`` and ``'`` is a JSON escape, which ``JSON.parse`` turns back."""
    text = json.dumps(figure_dict(figure), cls=PlotlyJSONEncoder, ensure_ascii=False)
    for char, escaped in _HTML_UNSAFE.items():
        text = text.replace(char, escaped)
    return Markup(text)


# --- plotly.js, served by the app -------------------------------------------------------------

bp = Blueprint("charts", __name__, url_prefix="/charts")


@bp.get("/plotly-<version>.min.js")
def plotly_js(version: str):
    """plotly.js from the installed ``plotly`` package; cached for a year (the URL has the
    version in it). Public, like every static file: it is a published library."""
    if version != PLOTLY_JS_VERSION:
        abort(404)
    return send_file(PLOTLY_JS, mimetype="text/javascript", max_age=ASSET_MAX_AGE, conditional=True)


@bp.record_once
def _add_template_global(state: BlueprintSetupState) -> None:
    """``{{ chart_scripts() }}``: the two script tags a page with charts needs, wherever
    this blueprint is registered (on the app, or nested in another blueprint)."""
    endpoint = f"{state.name_prefix}.{state.name}.plotly_js".lstrip(".")

    def chart_scripts() -> Markup:
        return Markup('<script src="{}" defer></script>\n<script src="{}" defer></script>').format(
            url_for(endpoint, version=PLOTLY_JS_VERSION),
            url_for("static", filename="charts.js"),
        )

    state.app.add_template_global(chart_scripts, "chart_scripts")
