"""Reports as data (``loyalty.dashboard.reports`` and ``specs.load_reports``): every real
file loads, a broken one names its file and field, ``/reports/<name>`` shows one, and
``report render`` writes a self-contained HTML file or the CSV of its numbers."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from loyalty import config, specs

REAL = config.bundled_folder("reports")


def test_every_real_report_loads():
    loaded = specs.load_reports(REAL)
    assert {"executive-monthly", "support-weekly"} <= set(loaded)
    for report in loaded.values():
        assert report.panels and all(p.title["da"] and p.title["en"] for p in report.panels)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('id = "other"', "id: must match the file name"),
        ('id = "r"\ncolour = 1', "colour: unknown field"),
        (
            'id = "r"\n[title]\nen = "T"\nda = "T"\n[intro]\nen = "I"\nda = "I"',
            "panels: is missing",
        ),
        (
            'id = "r"\n[title]\nen = "T"\nda = "T"\n[intro]\nen = "I"\nda = "I"\n'
            '[[panels]]\nmetric = "happiness"',
            "panels[0].metric: must be one of nps",
        ),
        (
            'id = "r"\n[title]\nen = "T"\nda = "T"\n[intro]\nen = "I"\nda = "I"\n'
            '[[panels]]\nmetric = "nps"\ngrain = "day"',
            "panels[0].grain: must be one of week",
        ),
        (
            'id = "r"\n[title]\nen = "T"\n[intro]\nen = "I"\nda = "I"',
            "title.da: text is missing",
        ),
        ("id = ", "not valid TOML"),
    ],
)
def test_a_broken_report_names_its_file_and_field(tmp_path: Path, text: str, field: str):
    (tmp_path / "r.toml").write_text(text, encoding="utf-8")
    with pytest.raises(specs.ReportDefinitionError) as caught:
        specs.load_reports(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "r.toml")) and field in str(caught.value)


def test_a_broken_report_stops_start_up(tmp_path: Path, database_url):
    from loyalty import create_app

    (tmp_path / "r.toml").write_text('id = "r"', encoding="utf-8")
    with pytest.raises(specs.ReportDefinitionError, match="r.toml: title: is missing"):
        create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "x",
                "DATABASE_URL": database_url,
                "REPORTS_FOLDER": str(tmp_path),
                "INSTANCE_PATH": tmp_path,
            }
        )


def test_a_report_page(client, auth, stored_answer):
    stored_answer("Report A/S", days_ago=3, nps=10)
    auth.login("executive")
    reply = client.get("/reports/executive-monthly?lang=da")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "Loyalitet, måned for måned" in html
    assert html.count('data-chart="panel-') == 4
    assert client.get("/reports/nope").status_code == 404
    assert client.get("/reports/executive-monthly?from=2026-02-30").status_code == 400


def test_render_writes_a_self_contained_file(runner, stored_answer, tmp_path: Path):
    stored_answer("<b>Bold</b> A/S", days_ago=3, nps=2)
    out = tmp_path / "report.html"
    result = runner.invoke(args=["report", "render", "executive-monthly", "--output", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "Plotly" in html and len(html) > 1_000_000  # plotly.js inlined
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # the page, not plotly.js
    assert not re.search(r'(src|href)="(https?:)?//', markup)  # nothing fetched from anywhere
    assert "<script src=" not in html and 'rel="stylesheet"' not in html


def test_render_csv_gives_the_numbers(runner, stored_answer, tmp_path: Path):
    for days, nps in ((3, 10), (4, 0), (5, 9)):
        stored_answer("Csv A/S", days_ago=days, nps=nps)
    out = tmp_path / "report.csv"
    result = runner.invoke(
        args=["report", "render", "support-weekly", "--format", "csv", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    nps = [r for r in rows if r["metric"] == "nps"]
    assert sum(int(r["n"]) for r in nps) == 3
    assert {r["low_confidence"] for r in nps} == {"true"}
    answered = [r for r in nps if r["n"] != "0"]
    assert answered and all(
        -100 <= float(r["low"]) <= float(r["value"]) <= float(r["high"]) <= 100 for r in answered
    )


def test_render_refuses_an_unknown_report_and_bad_dates(runner, tmp_path: Path):
    out = tmp_path / "x.html"
    result = runner.invoke(args=["report", "render", "nope", "--output", str(out)])
    assert result.exit_code == 2 and "no report 'nope'" in result.output
    result = runner.invoke(
        args=["report", "render", "support-weekly", "--from", "x", "--output", str(out)]
    )
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output and not out.exists()
