"""Nothing lost under load and ``kill -9``: the app as deployed, with faults (issue 15).

gunicorn with the repository's ``gunicorn.conf.py`` (``--workers 2``), ``flask dispatch
--loop`` sending to an SMTP server on loopback, 16 customers answering the survey links the
dispatcher emails them (open the page, submit a complete answer, sometimes change it
later) and posting new events to the API. ``--kills`` times during ``--seconds`` the
gunicorn master and its workers and the dispatcher are killed with SIGKILL and started
again; with ``--pg-cluster 15/faults --pg-restarts N`` that PostgreSQL cluster is also
restarted (``pg_ctlcluster ... restart -m immediate``, a crash and its recovery) N times.
What the harness does is in ``tests/faults.py``.

At the end: every answer that got its 303 is stored once, with what the customer sent
last; every event the API acknowledged is stored; no survey link was emailed twice; the
database passes its integrity check (SQLite: ``PRAGMA integrity_check`` and
``foreign_key_check``; PostgreSQL: no invalid index, no orphaned row); no client saw a 5xx
outside the fault windows. Human-readable lines first; the last line is one JSON object;
the exit status is 1 if any count is not zero.

    .venv/bin/python tests/benchmarks/bench_faults.py [--seconds 60] [--kills 4]
    .venv/bin/python tests/benchmarks/bench_faults.py --database-url \\
        postgresql+psycopg://loyalty:loyalty@127.0.0.1:55433/loyalty_faults \\
        --pg-cluster 15/faults --pg-restarts 2       # the database is WIPED
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import fault_checks  # noqa: E402
import faults  # noqa: E402


def migrate(database_url: str, folder: Path) -> None:
    """An empty database at the newest migration (a PostgreSQL one is emptied first)."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from loyalty.db import db

    app = faults.make_app(database_url, folder)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()


def restarter(cluster: str):
    """Restart that cluster as a crash would leave it (``-m immediate``: recovery from WAL)."""
    version, name = cluster.split("/")
    command = ["pg_ctlcluster", version, name, "restart", "-m", "immediate"]
    command = ["runuser", "-u", "postgres", "--", *command]

    def restart() -> None:
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    return restart


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (WIPED); default: SQLite file")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--kills", type=int, default=4, help="kill -9 of server + dispatcher")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--servers", type=int, default=1, help="gunicorn servers")
    parser.add_argument("--dispatchers", type=int, default=1)
    parser.add_argument("--pg-cluster", help="VERSION/NAME of the cluster to restart mid-load")
    parser.add_argument("--pg-restarts", type=int, default=0)
    args = parser.parse_args(argv)
    if args.pg_restarts and not args.pg_cluster:
        parser.error("--pg-restarts needs --pg-cluster")

    folder = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    try:
        url = args.database_url or f"sqlite:///{folder / 'loyalty.db'}"
        migrate(url, folder)
        print(f"folder {folder}; {args.clients} clients, {args.servers} server(s) x "
              f"{args.workers} workers, {args.dispatchers} dispatcher(s); {args.seconds:g} s, "
              f"{args.kills} kills, {args.pg_restarts} database restarts")  # fmt: skip
        plan = faults.Plan(
            database_url=url,
            folder=folder,
            seconds=args.seconds,
            kills=args.kills,
            clients=args.clients,
            servers=args.servers,
            dispatchers=args.dispatchers,
            workers=args.workers,
            restart_database=restarter(args.pg_cluster) if args.pg_cluster else None,
            database_restarts=args.pg_restarts,
        )
        result = faults.run(plan)
        for name in ("lost", "duplicated", "sent_twice", "server_errors_outside_faults"):
            print(f"{name:<30} {result[name]}")
        print(f"{'integrity':<30} {result['integrity']}")
        print(f"{'requests served':<30} {result['requests_served']} "
              f"({result['answers_acknowledged']} answers, {result['changes']} changes, "
              f"{result['events_acknowledged']} events, {result['emails']} emails)")  # fmt: skip
        print(json.dumps(result))
        return 0 if fault_checks.nothing_lost(result) else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
