"""``flask rollups``: count the metric rollups the dashboard, the API and the reports read."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..dashboard import rollups


@click.group("rollups")
def rollups_cli() -> None:
    """The daily metric rollups behind every trend."""


@rollups_cli.command("rebuild")
@with_appcontext
def rollups_rebuild() -> None:
    """Count every day from scratch, from the first answer or invitation to today (after a
    restore, or after changing SLA_TIMEZONE)."""
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


COMMANDS = (rollups_cli,)
