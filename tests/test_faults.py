"""Nothing lost under load and ``kill -9`` (issue 15): the short version of
``tests/benchmarks/bench_faults.py`` on the test's database.

gunicorn as the README deploys it, ``flask dispatch --loop`` sending to an SMTP server on
loopback, 16 clients answering the links they are emailed and posting events; mid-load the
gunicorn master and workers and the dispatcher get SIGKILL and are started again. Then every
answer that got its 303 is stored once as last sent, every acknowledged event is stored, no
link was emailed twice, the database passes its integrity check, and no 5xx came outside
the kill's window. About 30 s each ("slow" in the names: ``-k "not slow"`` leaves them out).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PG_URL
from fault_checks import MUST_BE_ZERO, nothing_lost
from faults import Plan, run


def _assert_nothing_lost(result: dict) -> None:
    summary = json.dumps(result)
    assert nothing_lost(result), summary
    assert all(result[name] == 0 for name in MUST_BE_ZERO), summary
    # the run did what it says: answers, changes, events and emails all happened
    assert result["answers_acknowledged"] >= 5 and result["changes"] >= 1, summary
    assert result["events_acknowledged"] >= 5 and result["emails"] >= 20, summary


def test_slow_kill_9_of_gunicorn_and_the_dispatcher_mid_load_loses_nothing(
    database_url: str, tmp_path: Path
):
    result = run(Plan(database_url, tmp_path, seconds=8, kills=1, workers=1, invitations=40))

    assert result["kills"] == 1
    _assert_nothing_lost(result)


@pytest.mark.skipif(not PG_URL, reason="several machines share one PostgreSQL")
def test_slow_two_servers_and_two_dispatchers_on_one_postgresql_send_each_link_once(
    database_url: str, tmp_path: Path
):
    """Two gunicorn servers (the clients fail over between them, as behind a load
    balancer) and two dispatchers claiming from one queue, each of them killed in turn."""
    plan = Plan(
        database_url,
        tmp_path,
        seconds=20,
        kills=2,
        servers=2,
        dispatchers=2,
        workers=1,
        invitations=80,
    )

    result = run(plan)

    assert result["kills"] == 2
    _assert_nothing_lost(result)
    # both dispatchers sent: the queue was shared, not drained by one of them
    assert all(sent > 0 for sent in result["sent_by_dispatcher"]), json.dumps(result)
