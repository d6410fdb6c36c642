"""Demo data: a year of accounts, contacts, invitations and answers in Danish and English.

It goes through the same functions as real traffic (invitations, ``save_response``), so
every demo comment is scored by the real sentiment module.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import typing as t
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from . import metrics
from .accounts import rollup
from .accounts.services import normalise_email, put_contact, upsert_account
from .admin.staff import create_user
from .db import db
from .models import Account, Contact, Event, Invitation, Response, User, utcnow
from .outreach.invitations import create_invitation, survey_url
from .specs import surveys
from .survey import follow_ups
from .survey.responses import save_response
from .triage.settings import settings

DEMO_ADMIN = "admin@example.com"

_B2B = [
    "Nordlys Tømrer ApS",
    "Havneby Logistik A/S",
    "Fjordsen Revision",
    "Kattegat Shipping A/S",
    "Grøn Energi Partner ApS",
    "Bryggen Arkitekter",
    "Lindholm Data A/S",
    "Acme Nordic A/S",
    "Baltic Freight Ltd",
    "Skovgaard & Søn ApS",
    "Mølle Bageri ApS",
    "Northwind Traders Ltd",
]
_FIRST = [
    "Mette",
    "Lars",
    "Sofie",
    "Anders",
    "Camilla",
    "Jens",
    "Ida",
    "Mikkel",
    "Freja",
    "Rasmus",
    "Emma",
    "Oliver",
    "Hannah",
    "James",
    "Charlotte",
    "Peter",
    "Anne",
    "Thomas",
    "Louise",
    "Kim",
]
_LAST = [
    "Jensen",
    "Nielsen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Rasmussen",
    "Madsen",
    "Smith",
    "Brown",
    "Taylor",
    "Wilson",
    "Holm",
    "Kjær",
]
_PRODUCTS = ["Kontorstol Pro", "Standing desk", "Serviceaftale", "Laptop stand", "Lampe Nova"]

#: (reason, improvement) pairs by mood, in each language
_COMMENTS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "da": {
        "good": [
            ("Hurtig levering og rigtig venlig betjening.", "Intet, fortsæt sådan!"),
            ("Produktet er super godt, og det var nemt at bestille.", ""),
            ("Meget tilfreds med kvaliteten.", "Måske lidt billigere fragt."),
            ("Fantastisk service, de ringede selv og fulgte op.", ""),
            ("Fint", ""),
        ],
        "mixed": [
            (
                "Varen er god, men leveringen tog alt for lang tid.",
                "Bedre information om levering.",
            ),
            ("Ok oplevelse, ikke noget særligt.", "Hurtigere svar på mails."),
            ("Produktet virker, men fakturaen var forkert.", "Ret fejl i fakturaerne."),
        ],
        "bad": [
            ("Meget utilfreds. Ingen svarer på telefonen.", "Svar når kunderne ringer!"),
            ("Varen kom i stykker, og vi venter stadig på en ny.", "Pak varerne ordentligt."),
            ("Elendig kundeservice. Vi overvejer at skifte leverandør.", ""),
            ("Ikke tilfreds. Vi vil have pengene tilbage.", "Overhold jeres aftaler."),
            ("Vi forlænger ikke aftalen næste år.", ""),
        ],
    },
    "en": {
        "good": [
            ("Fast delivery and really friendly staff.", "Nothing, keep it up!"),
            ("Great product, easy to order.", ""),
            ("Very happy with the quality :)", "Maybe cheaper shipping."),
            ("Excellent support, they called us back the same day.", ""),
            ("Super", ""),
        ],
        "mixed": [
            ("The product is great but billing is a nightmare.", "Fix the invoices."),
            ("It was ok, nothing special.", "Answer emails faster."),
            ("Good quality, but delivery was late again.", "Better delivery estimates."),
        ],
        "bad": [
            ("Terrible support. Nobody answers the phone.", "Answer when customers call!"),
            ("The item arrived broken and we are still waiting.", "Pack things properly."),
            ("We will not renew next year.", ""),
            ("Very disappointed. I want a refund.", "Keep your promises."),
            ("We are switching to a competitor.", ""),
        ],
    },
}


class _Story(t.NamedTuple):
    """An account whose health tells a story a newcomer can see (``None``: random drift).

    ``mood`` maps days ago (0..365) to a mood from -1 to 1; ``silent_days``: nothing answered
    in the last so many days; ``churned_days``: the customer left that many days ago;
    ``cue``: a comment about leaving in the last ``cue_days``."""

    name: str
    mood: t.Callable[[float], float]
    silent_days: int = 0
    churned_days: int = 0
    cue: bool = False
    cue_days: int = 60


#: The first accounts seeded tell these stories; the rest drift at random.
_STORIES = [
    _Story("sliding", lambda ago: -0.9 + 1.6 * ago / 365),  # loved a year ago, angry now
    _Story("silent", lambda ago: 0.5, silent_days=200),  # was happy, stopped answering
    _Story("polite churner", lambda ago: 0.2, churned_days=25, cue=True, cue_days=120),
    _Story("stable grumbler", lambda ago: -0.35),  # never happy, never worse
    _Story("recovered dip", lambda ago: 0.6 - 1.3 * max(0.0, 1 - abs(ago - 200) / 90)),
    _Story("churned", lambda ago: -0.8 + 1.4 * ago / 365, churned_days=90),
    _Story("loyal", lambda ago: 0.85),
    _Story("churned", lambda ago: -0.6 + 1.2 * ago / 365, churned_days=150),
]


_CUES = {
    "da": "Samarbejdet har været fint, men vi forlænger ikke aftalen næste år.",
    "en": "It has been fine working with you, but we will not renew the contract next year.",
}


def is_empty() -> bool:
    return db.session.scalar(sa.select(sa.func.count(Account.id))) == 0


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _email(name: str, domain: str, rng: random.Random) -> str:
    local = name.lower().replace(" ", ".").replace("ø", "oe").replace("æ", "ae").replace("å", "aa")
    return f"{local}.{rng.randrange(1000)}@{domain}"


def seed_demo(
    *, accounts: int = 36, seed: int = 2026, progress: t.Callable[[int], t.Any] = lambda n: None
) -> None:
    """Create ``accounts`` accounts with a year of history, committing one account at a time."""
    rng = random.Random(seed)
    survey = surveys(current_app)["post-sale"]
    owners = _demo_staff()
    now = utcnow()
    b2b_names = iter(_B2B)
    used = set(db.session.scalars(sa.select(Account.name)))
    for i in range(accounts):
        name = next(b2b_names, None) if i % 3 == 0 else None
        b2b = name is not None  # every third account, while there are company names left
        if name is not None:
            domain = name.split()[0].lower().replace("ø", "oe").replace("ø", "oe") + ".example.com"
            owner = rng.choice(owners)
            value = Decimal(rng.randrange(50, 2000) * 1000)
            account = upsert_account(
                name=name, segment="b2b", external_ref=None, annual_value=value
            )
            people = [_person(rng) for _ in range(rng.randint(2, 5))]
        else:
            person = _person(rng)
            while person in used:
                person = _person(rng)
            used.add(person)
            owner = rng.choice(owners)
            value = Decimal(rng.randrange(1, 40) * 500)
            account = upsert_account(
                name=person, segment="b2c", external_ref=None, annual_value=value
            )
            domain, people = "mail.example.com", [person]
        account.owner = owner
        # Each account has a mood that drifts over the year: some improve, some slide; the
        # first ones tell the stories of account health (see _STORIES).
        start, drift = rng.uniform(-0.6, 0.9), rng.uniform(-0.9, 0.6)
        story = _STORIES[i] if i < len(_STORIES) else None
        contacts = []
        for j, person in enumerate(people):
            language = "en" if (rng.random() < 0.3 or name and "Ltd" in name) else "da"
            email = normalise_email(_email(person, domain, rng))
            contact = put_contact(account, email=email, name=person, language=language)
            contact.is_decision_maker = b2b and j == 0
            contacts.append(contact)
        # Answers arrive in time order, and support works the cases as time goes by, so the
        # triage queue holds only recent cases and the responsiveness page has a history.
        # A fifth of the surveys went out in the last three weeks: the queue has work in it.
        asked = sorted(
            (
                now
                - dt.timedelta(
                    days=rng.uniform(1, 365) if rng.random() > 0.2 else rng.uniform(0.1, 21)
                ),
                contact,
            )
            for contact in contacts
            for _ in range(rng.randint(2, 6))
        )
        gone = now - dt.timedelta(days=story.churned_days) if story and story.churned_days else None
        for sent, contact in asked:
            if gone is not None and sent > gone:
                continue  # a customer who left is not asked again
            _work_cases(account, sent, rng, owners)
            ago = (now - sent).total_seconds() / 86400
            mood = story.mood(ago) if story else start + drift * (1 - ago / 365)
            answers = not (story and story.silent_days and ago < story.silent_days)
            cue = bool(story and story.cue and ago < story.cue_days + story.churned_days)
            _demo_invitation(rng, survey, contact, sent, mood, now, answers=answers, cue=cue)
        _work_cases(account, now, rng, owners, days=12)  # the last fortnight stays open
        if gone is not None:
            account.churned_at = gone
        db.session.commit()
        progress(1)
    # Health history for the year, and today's scores: the accounts pages have a story.
    ends = rollup.week_ends(
        (now - dt.timedelta(days=365)).date(), now.date(), settings().calendar.tz
    )
    rollup.rebuild(ends)
    live = db.session.scalars(sa.select(Account.id).where(Account.churned_at.is_(None))).all()
    rollup.refresh(list(live), now=now)
    db.session.commit()


def _demo_invitation(
    rng, survey, contact, sent, mood: float, now, *, answers: bool = True, cue: bool = False
) -> None:
    event = Event(
        kind=rng.choice(["sale", "delivery"]),
        account=contact.account,
        contact=contact,
        occurred_at=sent - dt.timedelta(days=2),
        amount=Decimal(rng.randrange(200, 50000)),
        product=rng.choice(_PRODUCTS),
    )
    db.session.add(event)
    invitation = create_invitation(contact, survey.id, due_at=sent, event=event)
    invitation.status, invitation.sent_at = "sent", sent
    if rng.random() > 0.55 or not answers:  # about 45 % answer, as post-sale surveys do
        return
    mood = max(-1.0, min(1.0, mood + rng.gauss(0, 0.35)))
    nps = max(0, min(10, round(7 + mood * 4 + rng.gauss(0, 1))))
    kind = {"promoter": "good", "passive": "mixed", "detractor": "bad"}[metrics.nps_band(nps)]
    reason, improve = rng.choice(_COMMENTS[contact.language][kind])
    if cue:  # politely, the contract will not be extended
        reason = _CUES[contact.language]
    values = {
        "nps": nps,
        "csat": max(1, min(5, round(3.5 + mood * 1.6 + rng.gauss(0, 0.6)))),
        "ces": max(1, min(7, round(5 + mood * 2 + rng.gauss(0, 0.8)))),
        "reason": reason if rng.random() < 0.8 else None,
        "improve": improve or None,
    }
    answered = min(sent + dt.timedelta(hours=rng.uniform(0.2, 72)), now)
    db.session.flush()
    save_response(invitation, survey, values, complete=True, now=answered)
    # The story needs the answer's case now (support works it as time goes by): its
    # follow-up is done here, as a worker would seconds later (this commits).
    follow_ups.process_pending(now=answered)


def _work_cases(
    account: Account,
    until: dt.datetime,
    rng: random.Random,
    staff: list[User],
    *,
    days: int = 3,
) -> None:
    """Contact and resolve the account's cases opened more than ``days`` before ``until``.

    Old cases are marked notified so seeding sends no emails about them.
    """
    from .models import Case
    from .triage import cases

    open_cases = db.session.scalars(
        sa.select(Case).where(
            Case.account_id == account.id,
            Case.status != "resolved",
            Case.opened_at < until - dt.timedelta(days=days),
        )
    ).all()
    for case in open_cases:
        actor = case.assignee if case.assignee in staff else staff[1]
        case.notified_at = case.notified_at or case.opened_at
        contacted = case.opened_at + dt.timedelta(hours=rng.choice([1, 3, 6, 20, 30, 50]))
        channel = rng.choice(["phone", "email", "meeting"])
        cases.log_contact(case, actor, channel, "Talked the feedback through.", now=contacted)
        resolved = contacted + dt.timedelta(hours=rng.uniform(2, 100))
        outcome = rng.choices(["recovered", "not_recovered", "no_action_needed"], [5, 2, 2])[0]
        cases.resolve(case, actor, outcome, now=resolved)


def _demo_staff() -> list[User]:
    """The demo admin plus two support leads who own accounts."""
    users = []
    for email, role in [
        (DEMO_ADMIN, "admin"),
        ("support@example.com", "support"),
        ("lead@example.com", "support"),
        ("cfo@example.com", "executive"),
    ]:
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is None:
            password = secrets.token_urlsafe(12)
            user = create_user(email, role, password)
            if email == DEMO_ADMIN:  # the password demo info prints, kept for the next time
                kept = _password_file()
                kept.touch(mode=0o600)
                kept.write_text(password)
        users.append(user)
    return [u for u in users if u.role != "executive"]


def demo_login() -> tuple[str, str, str]:
    """The demo admin's password and an open survey link (one is made if none is open).

    The password is made once, when the demo makes its admin, and kept in the instance folder
    (``demo_password``), so the one ``make run`` printed keeps working. A password someone
    set by hand, or an ``admin@example.com`` a person made, is never reset.
    """
    kept = _password_file()
    user = db.session.scalar(sa.select(User).where(User.email == DEMO_ADMIN))
    if user is None:
        _demo_staff()
    password = kept.read_text().strip() if kept.exists() else ""
    user = db.session.scalar(sa.select(User).where(User.email == DEMO_ADMIN))
    if user is None or not password or not user.check_password(password):
        password = "(not the demo's any more: use the password you gave it)"
    now = utcnow()
    invitation = db.session.scalar(
        sa.select(Invitation)
        .outerjoin(Response)
        .where(Invitation.status == "sent", Invitation.expires_at > now, Response.id.is_(None))
        .order_by(Invitation.expires_at.desc())
        .limit(1)
    )
    if invitation is None:
        contact = db.session.scalar(sa.select(Contact).order_by(Contact.id).limit(1))
        if contact is None:
            db.session.commit()
            return DEMO_ADMIN, password, "(no contacts yet: run 'flask --app loyalty invite')"
        invitation = create_invitation(contact, "post-sale")
        invitation.status, invitation.sent_at = "sent", now
    db.session.commit()
    return DEMO_ADMIN, password, survey_url(invitation)


def _password_file() -> Path:
    return Path(current_app.instance_path) / "demo_password"
