"""``flask rollups`` (count the metric rollups every trend reads) and ``flask report``."""

from __future__ import annotations

import io
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import periods
from ..audit import log as audit_log
from ..dashboard import reports as rendering
from ..dashboard import rollups, schedule
from ..specs import REPORT_LANGUAGES, reports


@click.group("rollups")
def rollups_cli() -> None:
    """The daily metric rollups behind every trend."""


@rollups_cli.command("rebuild")
@with_appcontext
def rollups_rebuild() -> None:
    """Count every day from scratch, from the first answer or invitation to today, and every
    week's health bands (after a restore, or after changing SLA_TIMEZONE)."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label=f"Counting {total} days")
            bar.__enter__()
        bar.update(1)

    try:
        counted = rollups.rebuild(progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"Counted {counted} days.")


@rollups_cli.command("refresh")
@with_appcontext
def rollups_refresh() -> None:
    """Count the days marked stale again now (the dashboard and the dispatcher do it too)."""
    click.echo(f"Counted {rollups.refresh_stale()} stale days.")


@click.group("report")
def report_cli() -> None:
    """The reports of reports/: render one to a file, or email a scheduled one."""


@report_cli.command("render")
@click.argument("name")
@click.option("--from", "start", help="First day (YYYY-MM-DD); default: the report's days.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD), inclusive; default: today.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.option("--format", "kind", type=click.Choice(["html", "csv"]), default="html")
@click.option("--lang", "language", type=click.Choice(REPORT_LANGUAGES), default="en")
@with_appcontext
def report_render(
    name: str, start: str | None, end: str | None, output: str, kind: str, language: str
) -> None:
    """Write report NAME as one self-contained HTML file (plotly.js inlined: it opens
    offline) or as the CSV of its numbers."""
    spec = reports(current_app).get(name)
    if spec is None:
        known = ", ".join(sorted(reports(current_app))) or "none"
        raise click.UsageError(f"no report {name!r}; the reports are: {known}")
    try:
        period = periods.parse(
            {"from": start, "to": end}, today=periods.today(rollups.tz()), default_days=spec.days
        )
    except periods.PeriodError as exc:
        raise click.UsageError(str(exc)) from None
    if kind == "csv":
        buffer = io.StringIO()
        rendering.write_csv(spec, period, buffer)
        text = buffer.getvalue()
    else:
        text = rendering.render_html(spec, period, language=language, standalone=True)
    # Written whole at the end, so a failure leaves no half file behind.
    Path(output).write_text(text, encoding="utf-8", newline="")
    audit_log.exported(f"report.{kind}", report=spec.id, **period.args())
    click.echo(f"Wrote {spec.id} ({period.first} to {period.last}) to {output}.")


@report_cli.command("send")
@click.argument("name")
@with_appcontext
def report_send(name: str) -> None:
    """Email report NAME for the week, month or quarter that ended last, as REPORT_SCHEDULE
    says (for cron; the dispatcher sends it too). Once per period: a second run says so."""
    entries = {entry.report: entry for entry in schedule.schedule()}
    entry = entries.get(name)
    if entry is None:
        known = ", ".join(sorted(entries)) or "none"
        raise click.UsageError(f"{name!r} is not in REPORT_SCHEDULE; scheduled: {known}")
    period = schedule.last_period(entry.every, periods.today(rollups.tz()))
    if not schedule.recipients(entry.roles):
        raise click.ClickException(f"nobody has the roles {', '.join(entry.roles)}: not sent")
    earlier = schedule.delivered(name, period)
    if earlier is not None and earlier.sent_at is not None:
        click.echo(
            f"{name} for {period.first} to {period.last} went out {earlier.sent_at}; not again."
        )
        return
    if earlier is not None and earlier.claimed_at is not None:
        click.echo(f"{name} for {period.first} to {period.last} is being sent now; not again.")
        return
    sent = schedule.send_due(only=name)
    if not sent:
        raise click.ClickException(
            f"{name} not sent: the mail server refused it (see the log), "
            "or another process is sending it"
        )
    click.echo(f"Sent {name} ({period.first} to {period.last}) to {sent[0].recipients} people.")


COMMANDS = (rollups_cli, report_cli)
