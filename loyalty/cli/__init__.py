"""The ``flask --app loyalty …`` commands: thin click wrappers around functions tests call.

One module per area, each a leaf that nothing else imports; :func:`register` is called by
the factory alone. Every command is listed in the README (a test checks that).
"""

from __future__ import annotations

import typing as t

from . import accounts, audit, dashboard, data, outreach, people, privacy, triage

if t.TYPE_CHECKING:
    from flask import Flask


def register(app: Flask) -> None:
    """Add every command group to the app's ``flask`` command."""
    groups = (people, outreach, triage, accounts, dashboard, data, privacy, audit)
    for command in (command for group in groups for command in group.COMMANDS):
        app.cli.add_command(command)
