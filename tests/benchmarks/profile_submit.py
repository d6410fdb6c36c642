"""Where a survey submit's time goes: SQL statements per request and a cProfile summary.

Runs the app in this process (Flask's test client, SQLite in a temporary folder, migrated),
answers ``--submits`` new invitations with the bodies ``bench_survey.py`` sends, and prints
the SQL statements per submit and per survey page (counted with SQLAlchemy's
``before_cursor_execute`` event), the statements of one submit, and the top functions of
a cProfile of all submits by cumulative and by own time. With ``--follow-ups`` the
follow-ups the submits left in the outbox are processed afterwards, counted apart.

    .venv/bin/python tests/benchmarks/profile_submit.py [--submits 300] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import tempfile
import typing as t
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from bench_survey import SECRET_KEY, answer_body, link_form_token  # noqa: E402


class Statements:
    """Counts (and, when asked, keeps) the SQL statements run on an engine."""

    def __init__(self, engine: t.Any) -> None:
        import sqlalchemy as sa

        self.count = 0
        self.keep: list[str] | None = None
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, _params, _context, _many) -> None:
        self.count += 1
        if self.keep is not None:
            self.keep.append(" ".join(statement.split())[:160])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)

    from flask_migrate import upgrade

    from loyalty import create_app
    from loyalty.accounts.services import Invitee, upsert_contact
    from loyalty.db import db
    from loyalty.outreach.invitations import create_invitation, token_for

    tmp = Path(tempfile.mkdtemp(prefix="profile-submit-"))
    app = create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": f"sqlite:///{tmp / 'loyalty.db'}",
            "INSTANCE_PATH": str(tmp),
            "MAIL_URL": f"outbox:{tmp / 'outbox'}",
            "BASE_URL": "http://127.0.0.1",
            "RATELIMIT_ENABLED": False,  # one client posting hundreds of answers
            # Counted apart: the follow-ups are done after the submits, below.
            "FOLLOW_UPS_IN_APP": False,
        }
    )
    with app.app_context():
        upgrade()
        links = []
        for n in range(args.submits + 20):
            language = ("da", "en")[n % 2]
            invitee = Invitee(
                f"c{n}@bench.example.com", f"Kunde {n}", f"Account {n % 40}", "b2b", language
            )
            invitation = create_invitation(upsert_contact(invitee), "post-sale")
            links.append((token_for(invitation), language))
        db.session.commit()
        db.session.remove()
        statements = Statements(db.engine)

    client = app.test_client()
    rng = random.Random(1)

    def submit(token: str, language: str) -> None:
        body = answer_body(rng, language, link_form_token(token))
        reply = client.post(
            f"/s/{token}", data=body, content_type="application/x-www-form-urlencoded"
        )
        assert reply.status_code == 303, reply.status_code

    # Warm-up: first requests build forms and caches.
    for token, language in links[:20]:
        client.get(f"/s/{token}")
        submit(token, language)
    statements.count, statements.keep = 0, []
    submit(*links[20])
    one_submit = statements.keep
    statements.keep = None
    before = statements.count
    for token, _ in links[21:41]:
        client.get(f"/s/{token}")
    page_statements = (statements.count - before) / 20

    profile = cProfile.Profile()
    statements.count = 0
    profile.enable()
    for token, language in links[21 : 21 + args.submits]:
        submit(token, language)
    profile.disable()
    submit_statements = statements.count / args.submits

    follow_up_statements = None
    with app.app_context():
        try:
            from loyalty.survey.follow_ups import process_pending
        except ImportError:
            process_pending = None
        if process_pending is not None:
            statements.count = 0
            done = process_pending()
            follow_up_statements = statements.count / done if done else None

    print(f"SQL statements per submit: {submit_statements:.2f}")
    print(f"SQL statements per survey page: {page_statements:.2f}")
    if follow_up_statements is not None:
        print(f"SQL statements per follow-up (in the background): {follow_up_statements:.2f}")
    print("statements of one submit:")
    for line in one_submit:
        print(f"  {line}")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order)
        stats.print_stats(args.top)
        print(f"--- top {args.top} by {order} ({args.submits} submits) ---")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats("/loyalty/", args.top)
    print(f"--- top {args.top} of loyalty's own functions by cumulative ---")
    root = str(HERE.parent.parent) + "/"
    print(
        "\n".join(line.replace(root, "") for line in out.getvalue().splitlines()[-args.top - 2 :])
    )
    total = pstats.Stats(profile).total_tt
    print(
        json.dumps(
            {
                "submits": args.submits,
                "statements_per_submit": round(submit_statements, 2),
                "statements_per_page": round(page_statements, 2),
                "statements_per_follow_up": follow_up_statements and round(follow_up_statements, 2),
                "profiled_ms_per_submit": round(1000 * total / args.submits, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
