"""Commands about cases: the daily digest and the cases export with their SLA figures."""

from __future__ import annotations

import csv
import datetime as dt
import sys

import click

from ..audit import log as audit_log
from ..periods import PeriodError
from ..triage.notifications import notify_pending, send_digests
from ..triage.responsiveness import (
    case_facts,
    case_rows,
    parse_period,
    period_bounds,
    summarize,
    summary_rows,
)
from .data import export_cli


@click.command("digest")
@click.option("--force", is_flag=True, help="Send now to everyone, even if sent today.")
def digest_command(force: bool) -> None:
    """Email the daily digest of new and overdue cases (run from cron, or by the dispatcher)."""
    sent = send_digests(force=force)
    retried = notify_pending()
    click.echo(f"digests sent {sent}; severe-case emails sent {retried}")


@export_cli.command("cases")
@click.option("--from", "start", help="First day (YYYY-MM-DD) of cases opened; default: all.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD), inclusive; default: today.")
@click.option("--summary", is_flag=True, help="The responsiveness figures instead of cases.")
def export_cases(start: str | None, end: str | None, summary: bool) -> None:
    """Write cases with their SLA clock figures (or --summary) as CSV to standard output."""
    try:
        if start is None:  # everything up to the end day
            last = parse_period(end, end).last if end else parse_period(None, None).last
            bounds: tuple[dt.datetime | None, dt.datetime] = (None, period_bounds(last, last)[1])
        else:
            bounds = period_bounds(*parse_period(start, end))
    except PeriodError as exc:
        raise click.UsageError(str(exc)) from None
    facts = case_facts(*bounds)
    rows = summary_rows(summarize(facts)) if summary else case_rows(facts)
    csv.writer(sys.stdout).writerows(rows)
    audit_log.exported("cases", **{"from": start, "to": end, "summary": summary})


COMMANDS = (digest_command,)
