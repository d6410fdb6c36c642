"""Commands about account health: refresh, rebuild the history, backtest, export."""

from __future__ import annotations

import csv
import json
import sys
import typing as t

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from .. import periods
from ..accounts import health, rollup
from ..audit import log as audit_log
from ..checks import spreadsheet_safe
from ..db import db
from ..models import Account, HealthSnapshot, HealthWarning
from ..periods import PeriodError
from ..triage.settings import settings
from .data import export_cli

health_cli = AppGroup("health", help="Account health: today's scores, history, backtest.")


def _period(start: str | None, end: str | None, default_days: int) -> periods.Period:
    tz = settings().calendar.tz
    try:
        return periods.parse(
            {"from": start, "to": end}, today=periods.today(tz), default_days=default_days
        )
    except PeriodError as exc:
        raise click.UsageError(str(exc)) from None


@health_cli.command("refresh")
def health_refresh() -> None:
    """Recompute today's health of every live account now (the dispatcher does the changed
    ones on each pass)."""
    ids = list(db.session.scalars(sa.select(Account.id).where(Account.churned_at.is_(None))))
    with click.progressbar(length=len(ids), label="Scoring accounts") as bar:
        for start in range(0, len(ids), 500):
            rollup.refresh(ids[start : start + 500])
            db.session.commit()
            bar.update(len(ids[start : start + 500]))
    click.echo(f"Scored {len(ids)} accounts.")


@health_cli.command("rebuild")
@click.option("--from", "start", help="First day (YYYY-MM-DD); default: a year ago.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD), inclusive; default: today.")
def health_rebuild(start: str | None, end: str | None) -> None:
    """Recompute the weekly history from the data as it was known at each week's end,
    raising the warnings it would have raised then (safe to run again)."""
    period = _period(start, end, 365)
    ends = rollup.week_ends(period.first, period.last, settings().calendar.tz)
    total = db.session.scalar(sa.select(sa.func.count(Account.id))) or 0
    with click.progressbar(length=total, label=f"Rebuilding {len(ends)} weeks") as bar:
        written, raised = rollup.rebuild(ends, progress=bar.update)
    click.echo(f"Wrote {written} weekly snapshots; {raised} warnings raised.")


@health_cli.command("backtest")
@click.option("--from", "start", help="First day replayed (YYYY-MM-DD); default: 2 years ago.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD), inclusive; default: today.")
@click.option("--lead-days", default=60, show_default=True, type=click.IntRange(0, 3650))
@click.option("--horizon-days", default=270, show_default=True, type=click.IntRange(1, 3650))
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
def health_backtest(
    start: str | None, end: str | None, lead_days: int, horizon_days: int, as_json: bool
) -> None:
    """How well the warnings of the rebuilt history foresaw the churn recorded on accounts,
    beside two naive rules (run `health rebuild` over the same period first)."""
    period = _period(start, end, 730)
    first, last = period.bounds(settings().calendar.tz)
    result = rollup.backtest(first, last, lead_days=lead_days, horizon_days=horizon_days)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"Backtest {period.first} to {period.last}: warned at least {lead_days} and at most "
        f"{horizon_days} days before churning"
    )
    for name, figures in result.items():
        recall, precision = figures["recall"], figures["precision"]
        click.echo(
            f"  {name:18} recall {_pct(recall)}, precision {_pct(precision)}, "
            f"median lead {figures['median_lead_days'] or '–'} days; "
            f"{figures['caught']} of {figures['churners']} churners caught "
            f"(revenue {figures['revenue_caught']:,.0f} caught, "
            f"{figures['revenue_missed']:,.0f} missed)"
        )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


@export_cli.command("health")
@click.option("--history", is_flag=True, help="The weekly snapshots instead of today's scores.")
@click.option("--from", "start", help="With --history: first day (YYYY-MM-DD).")
@click.option("--to", "end", help="With --history: last day (YYYY-MM-DD), inclusive.")
def export_health(history: bool, start: str | None, end: str | None) -> None:
    """Write account health as CSV: one column per signal's contribution."""
    writer = csv.writer(sys.stdout)
    writer.writerow(["account_ref", "account", "segment", "at", "score", "band", *health.SIGNALS])
    rows: t.Iterable[tuple[t.Any, ...]]
    if history:
        period = _period(start, end, 365)
        first, last = period.bounds(settings().calendar.tz)
        rows = db.session.execute(
            sa.select(
                Account.external_ref,
                Account.name,
                Account.segment,
                HealthSnapshot.at,
                HealthSnapshot.score,
                HealthSnapshot.band,
                HealthSnapshot.contributions,
            )
            .join(Account, Account.id == HealthSnapshot.account_id)
            .where(HealthSnapshot.at >= first, HealthSnapshot.at <= last)
            .order_by(Account.name, HealthSnapshot.at)
        )
    else:
        rows = db.session.execute(
            sa.select(
                Account.external_ref,
                Account.name,
                Account.segment,
                Account.health_at,
                Account.health_score,
                Account.health_band,
                Account.health_contributions,
            )
            .where(Account.churned_at.is_(None), Account.health_at.is_not(None))
            .order_by(Account.name)
        )
    for ref, name, segment, at, score, band, stored in rows:
        points = {c.get("signal"): c.get("points") for c in rollup.contributions(stored)}
        row = [ref or "", name, segment, _iso(at), score, band]
        writer.writerow(
            [spreadsheet_safe(v) for v in row + [points.get(s, 0) for s in health.SIGNALS]]
        )
    audit_log.exported("health", history=history, **{"from": start, "to": end})


@export_cli.command("warnings")
@click.option("--from", "start", help="First day raised (YYYY-MM-DD); default: a year ago.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD), inclusive; default: today.")
def export_warnings(start: str | None, end: str | None) -> None:
    """Write the early warnings raised in a period as CSV."""
    period = _period(start, end, 365)
    first, last = period.bounds(settings().calendar.tz)
    writer = csv.writer(sys.stdout)
    writer.writerow(["account_ref", "account", "raised_at", "kind", "reasons", "score", "status"])
    query = (
        sa.select(HealthWarning, Account.external_ref, Account.name)
        .join(Account, Account.id == HealthWarning.account_id)
        .where(HealthWarning.raised_at >= first, HealthWarning.raised_at < last)
        .order_by(HealthWarning.raised_at, HealthWarning.id)
    )
    for warning, ref, name in db.session.execute(query):
        reasons = "; ".join(rollup.warning_reasons(warning))
        row = [ref or "", name, _iso(warning.raised_at), warning.kind, reasons, warning.score,
               warning.status]  # fmt: skip
        writer.writerow([spreadsheet_safe(v) for v in row])
    audit_log.exported("warnings", **period.args())


_iso = periods.csv_time  # ISO 8601 with the offset and whole seconds, as every CSV of ours


COMMANDS = (health_cli,)
