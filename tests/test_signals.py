"""The named events: every one declared in ``loyalty.signals`` is listened to by the app
``create_app`` builds (a new event without a receiver fails here), receivers belong to that
app alone, and the module depends on nothing of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import blinker
import pytest

from loyalty import signals

DECLARED = sorted(
    (name, value) for name, value in vars(signals).items() if isinstance(value, blinker.Signal)
)


def test_the_events_are_found():
    assert {name for name, _ in DECLARED} >= {"response_saved", "dispatch_tick"}
    assert all(isinstance(signal, blinker.NamedSignal) for _, signal in DECLARED)


@pytest.mark.parametrize(("name", "signal"), DECLARED, ids=[name for name, _ in DECLARED])
def test_every_event_has_a_receiver_in_the_app(app, name, signal):
    assert signal.has_receivers_for(app), f"signals.{name}: nothing in create_app listens"
    assert list(signal.receivers_for(app))
    assert signal.__doc__, f"signals.{name}: say what it carries"


@pytest.mark.parametrize(("name", "signal"), DECLARED, ids=[name for name, _ in DECLARED])
def test_receivers_are_connected_for_the_app_not_for_any_sender(app, name, signal):
    assert not signal.has_receivers_for(object())
    assert not list(signal.receivers_for(blinker.ANY))


def test_the_receivers_are_those_of_the_design(app):
    def names(signal: blinker.Signal) -> set[str]:
        return {f"{r.__module__}.{r.__qualname__}" for r in signal.receivers_for(app)}

    # In the answer's transaction only what must hold at its commit; the rest follows.
    assert names(signals.response_saved) == {
        "loyalty.outreach.dispatch.mark_answered",
        "loyalty.survey.follow_ups.queue_on_save",
    }
    assert names(signals.response_committed) == {
        "loyalty.triage.flagging.flag_on_save",
        "loyalty.outreach.webhooks.queue_response_created",
        "loyalty.accounts.rollup.on_response_saved",
        "loyalty.dashboard.rollups.on_response_saved",
        "loyalty.triage.clock.on_response_committed",
    }
    assert names(signals.dispatch_tick) == {
        "loyalty.survey.follow_ups.on_dispatch_tick",
        "loyalty.triage.notifications.on_dispatch_tick",
        "loyalty.accounts.rollup.on_dispatch_tick",
        "loyalty.dashboard.rollups.on_dispatch_tick",
        "loyalty.dashboard.schedule.on_dispatch_tick",
        "loyalty.triage.clock.on_dispatch_tick",
        "loyalty.privacy.retention.on_dispatch_tick",
    }
    assert names(signals.account_changed) == {"loyalty.dashboard.rollups.on_account_changed"}


def test_the_signals_module_imports_nothing_of_ours():
    tree = ast.parse(Path(signals.__file__).read_text(encoding="utf-8"))
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
    assert imported, "the parse found no imports at all"
    ours = [name for name in imported if name.startswith(".") or name.split(".")[0] == "loyalty"]
    assert ours == []
