"""``flask export audit``: the audit log as CSV, like the other exports."""

from __future__ import annotations

import sys

import click

from .. import periods
from ..audit import log as audit_log
from ..triage.settings import settings
from .data import export_cli


@export_cli.command("audit")
@click.option("--from", "start", help="First day (YYYY-MM-DD); default: 30 days ago.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD), inclusive; default: today.")
@click.option("--who", default="", help="Part of who acted: a staff email, or cli:.")
@click.option("--what", default="", help="An action, or a family of them (sign_in, export).")
def export_audit(start: str | None, end: str | None, who: str, what: str) -> None:
    """Write the audit log's events as CSV, newest first (spreadsheet-safe)."""
    tz = settings().calendar.tz
    try:
        period = periods.parse({"from": start, "to": end}, today=periods.today(tz), default_days=30)
    except periods.PeriodError as exc:
        raise click.UsageError(str(exc)) from None
    since, until = period.bounds(tz)
    filters = audit_log.Filters(actor=who, action=what, since=since, until=until)
    rows = audit_log.write_csv(filters, sys.stdout)
    audit_log.exported("audit", rows=rows, **period.args())


COMMANDS = ()
