"""Charts: every label escaped in one place, thresholds and markers present, the figure JSON
safe inside a <script> element, and plotly.js served by the app from the plotly package."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from loyalty import metrics
from loyalty.dashboard import charts

EVIL = "<b>Evil</b> A/S & <a href='x'>co</a>"
ESCAPED = "&lt;b&gt;Evil&lt;/b&gt; A/S &amp; &lt;a href=&#x27;x&#x27;&gt;co&lt;/a&gt;"


def test_label_escapes_what_plotly_would_read_as_markup():
    assert charts.label(EVIL) == ESCAPED
    assert charts.label("<br>") == "&lt;br&gt;"
    assert charts.label(None) == "" and charts.label(12) == "12"


def test_bar_chart_escapes_every_label_and_colours_by_sign():
    figure = charts.bar_chart(
        [charts.Bar(EVIL, 12.5, hover=f"{EVIL} hover"), charts.Bar("cases", -8)],
        title=f"Why {EVIL}",
        axis_title="<i>points</i>",
    )
    plain = charts.figure_dict(figure)
    (bar,) = plain["data"]
    assert bar["type"] == "bar" and bar["orientation"] == "h"
    assert list(bar["y"]) == [0, 1]  # a row each, labelled by its tick
    assert list(plain["layout"]["yaxis"]["ticktext"]) == [ESCAPED, "cases"]
    assert list(bar["x"]) == [12.5, -8.0]
    assert bar["hovertext"][0] == f"{ESCAPED} hover" and bar["hovertext"][1] == "cases"
    assert list(bar["marker"]["color"]) == [charts.GOOD, charts.BAD]
    assert list(bar["text"]) == ["+12.5", "-8"]
    layout = plain["layout"]
    assert layout["title"]["text"] == f"Why {ESCAPED}"
    assert layout["xaxis"]["title"]["text"] == "&lt;i&gt;points&lt;/i&gt;"
    low, high = layout["xaxis"]["range"]
    assert low == -high and high > 12.5  # zero in the middle, every bar inside
    assert layout["yaxis"]["autorange"] == "reversed"  # read top to bottom in order
    assert plain["config"]["displayModeBar"] is False


def test_a_side_with_no_bar_takes_no_room():
    """All comments are negative: the axis is the negative side and a sliver past zero."""
    low, high = charts.bar_chart([charts.Bar("a", -0.9), charts.Bar("b", -0.2)])["layout"]["xaxis"][
        "range"
    ]
    assert low < -0.9 and 0 < high <= -low / 10
    low, high = charts.bar_chart([charts.Bar("a", 7)])["layout"]["xaxis"]["range"]
    assert high > 7 and -high / 10 <= low < 0


def test_an_unsigned_bar_chart_is_one_colour_from_zero():
    plain = charts.figure_dict(charts.bar_chart([charts.Bar("a", 3)], signed=False))
    assert list(plain["data"][0]["marker"]["color"]) == [charts.ACCENT]
    assert plain["layout"]["xaxis"]["range"][0] == 0


def test_an_empty_bar_chart_still_draws():
    plain = charts.figure_dict(charts.bar_chart([]))
    assert list(plain["data"][0]["x"]) == [] and plain["layout"]["height"] >= 140


def test_line_chart_has_the_thresholds_and_the_markers():
    points = [
        charts.Point(dt.date(2026, 1, 5), 70, "first"),
        charts.Point(dt.date(2026, 1, 12), 35),
        charts.Point(dt.datetime(2026, 1, 14, 9, 30), 30, "today"),
    ]
    figure = charts.line_chart(
        [charts.Series(f"Health of {EVIL}", points)],
        thresholds=[
            charts.Threshold(65, "healthy from 65", charts.GOOD),
            charts.Threshold(40, "<b>at risk</b> below 40", charts.BAD),
        ],
        markers=[charts.Point(dt.date(2026, 1, 12), 35, f"at risk: {EVIL}")],
        marker_name="warnings",
        title=EVIL,
        value_range=(0, 100),
    )
    plain = charts.figure_dict(figure)
    line, marks = plain["data"]
    assert line["name"] == f"Health of {ESCAPED}"
    assert list(line["x"]) == ["2026-01-05", "2026-01-12", "2026-01-14 09:30"]
    assert list(line["y"]) == [70, 35, 30]
    assert list(line["hovertext"]) == ["first", "35", "today"]
    assert marks["mode"] == "markers" and list(marks["hovertext"]) == [f"at risk: {ESCAPED}"]
    layout = plain["layout"]
    assert [(s["y0"], s["y1"], s["xref"]) for s in layout["shapes"]] == [
        (65, 65, "paper"),
        (40, 40, "paper"),
    ]
    assert [a["text"] for a in layout["annotations"]] == [
        "healthy from 65",
        "&lt;b&gt;at risk&lt;/b&gt; below 40",
    ]
    assert layout["title"]["text"] == ESCAPED
    assert list(layout["yaxis"]["range"]) == [0, 100]
    assert layout["xaxis"]["type"] == "date"
    assert layout["showlegend"] is True


def test_a_single_line_without_thresholds_has_no_legend_and_no_lines():
    plain = charts.figure_dict(charts.line_chart([charts.Series("a", [])]))
    assert plain["layout"]["showlegend"] is False
    assert not plain["layout"].get("shapes") and not plain["layout"].get("annotations")


def test_bars_with_the_same_label_stay_apart():
    """Two customers who wrote the same words are two bars, not one category stacking both."""
    figure = charts.bar_chart([charts.Bar("Too slow", -0.9), charts.Bar("Too slow", -0.4)])
    (bar,) = figure["data"]
    assert len(set(bar["y"])) == 2 and list(bar["x"]) == [-0.9, -0.4]
    assert figure["layout"]["yaxis"]["ticktext"] == ["Too slow", "Too slow"]
    assert figure["layout"]["yaxis"]["tickvals"] == list(bar["y"])


def test_figure_json_is_safe_inside_a_script_element_and_parses_back():
    figure = charts.bar_chart(
        [charts.Bar("</script><script>alert(1)</script>", 1)], title="it's <!-- & \u2028"
    )
    text = str(charts.figure_json(figure))
    assert not re.search("[<>&'\u2028]", text)
    parsed = json.loads(text)
    assert parsed["layout"]["yaxis"]["ticktext"] == [
        "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    ]
    assert parsed["layout"]["title"]["text"] == "it&#x27;s &lt;!-- &amp; \u2028"
    assert set(parsed) == {"data", "layout", "config"}
    assert "template" not in parsed["layout"]  # not plotly.py's whole default theme
    assert len(text) < 2000


def test_plotly_js_is_the_packaged_copy_served_by_the_app(client):
    assert charts.PLOTLY_JS.is_file() and charts.PLOTLY_JS.name == "plotly.min.js"
    reply = client.get(f"/charts/plotly-{charts.PLOTLY_JS_VERSION}.min.js")
    assert reply.status_code == 200
    assert reply.mimetype == "text/javascript"
    assert reply.headers["Cache-Control"] == f"public, max-age={charts.ASSET_MAX_AGE}"
    body = reply.get_data()
    assert body == charts.PLOTLY_JS.read_bytes()
    assert charts.PLOTLY_JS_VERSION.encode() in body[:400]
    reply.close()
    assert client.get("/charts/plotly-0.0.1.min.js").status_code == 404
    script = client.get("/static/charts.js")
    assert script.status_code == 200 and b"Plotly.newPlot" in script.get_data()
    script.close()


def test_chart_scripts_names_local_urls_only(app):
    with app.test_request_context("/"):
        scripts = app.jinja_env.globals["chart_scripts"]()
    assert scripts == (
        f'<script src="/charts/plotly-{charts.PLOTLY_JS_VERSION}.min.js" defer></script>\n'
        '<script src="/static/charts.js" defer></script>'
    )
    assert "http" not in scripts and "cdn" not in scripts.lower()


@pytest.mark.parametrize("value", [1, -1, 0, 2.5])
def test_bar_values_keep_their_sign_in_the_text(value):
    plain = charts.figure_dict(charts.bar_chart([charts.Bar("x", value)]))
    assert plain["data"][0]["text"][0] == f"{value:+g}"


def test_a_trend_band_is_the_readings_interval():
    """The band is drawn between the reading's interval ends when it has them (a share at
    100 % stops at 100), else value ± margin."""
    capped = charts.TrendPoint.of(
        dt.date(2026, 1, 1), metrics.read("csat", {"csat_n": 5, "csat_satisfied": 5})
    )
    plain = charts.TrendPoint(dt.date(2026, 2, 1), 50.0, 10.0, 40, False)
    figure = charts.trend_chart([("CSAT", [capped, plain])])
    band = figure["data"][0]
    assert band["fill"] == "toself"
    assert max(band["y"]) == pytest.approx(100.0)
    assert list(band["y"]) == pytest.approx([capped.high, 60.0, 40.0, capped.low])
