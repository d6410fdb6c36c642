"""A simulated customer portfolio with known churn, for the account-health tests and benchmark.

:func:`simulate` writes, inside an app context, accounts with their contacts, invitations
(sent, some answered), responses (NPS, CSAT, CES) following each account's story over
``months``, comments in Danish and English as customers write them (scored by the real
sentiment module and stored as ``survey.responses.apply_sentiment`` stores them), cases
for some detractors, and ``churned_at`` for the accounts that left. It returns the truth:
each account's archetype, when its trouble began and when it churned.

The archetypes (see :data:`ARCHETYPES`), each with its own noise, and none of them clean:

- ``loyal``: happy and stable; now and then one bad delivery (a detractor, a case that is
  recovered) and a comment like "we have no plans to switch" that must not count as a cue;
- ``grumbler``: always unhappy, stable, answers a lot and complains; now and then threatens
  to leave ("one more mistake and we go elsewhere") and does not;
- ``recovered_dip``: a bad patch of one to four months (detractors, cases, mostly
  recovered), then back to where it was;
- ``sliding``: the mood slides over months, cases go unrecovered, answers thin out, late on
  some write of alternatives; most churn months after the slide began, some stay on low;
- ``silent``: stops answering (the invitations still go out); most churn months later, some
  are only tired of surveys;
- ``polite_churner``: middling scores, friendly words, then "we will not extend the
  contract" some months before leaving (now and then in words the scorer does not know,
  now and then only weeks before);
- ``dm_turns``: B2B; the decision maker turns negative while the other users stay happy;
  most churn, some are won back;
- ``surprise``: looks healthy and leaves anyway (a budget cut, a takeover): no warning can
  catch these, and they are in the mix so the figures are honest.

Rows are built in memory per account and bulk-inserted with SQLAlchemy core in batches,
with explicit ids, so ten thousand accounts and a million responses are practical (raise
``scale`` for more invitations per contact).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
import typing as t
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from loyalty import metrics, sentiment
from loyalty.db import db
from loyalty.models import Account, Answer, Case, Contact, Flag, Invitation, Response, utcnow

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
MONTH_DAYS = 30.44
SURVEY = "post-sale"

ARCHETYPES = (
    "loyal",
    "grumbler",
    "recovered_dip",
    "sliding",
    "silent",
    "polite_churner",
    "dm_turns",
    "surprise",
)
#: Named mixes (archetype weights, normalised); ``simulate(mix=...)`` takes any such dict.
MIXES: dict[str, dict[str, float]] = {
    # A portfolio much like a mid-sized Danish company's: most accounts fine.
    "balanced": {
        "loyal": 0.44,
        "grumbler": 0.10,
        "recovered_dip": 0.08,
        "sliding": 0.12,
        "silent": 0.07,
        "polite_churner": 0.06,
        "dm_turns": 0.08,
        "surprise": 0.015,
    },
    # More B2B trouble, more grumblers and dips to be fooled by.
    "troubled": {
        "loyal": 0.30,
        "grumbler": 0.15,
        "recovered_dip": 0.11,
        "sliding": 0.12,
        "silent": 0.08,
        "polite_churner": 0.08,
        "dm_turns": 0.13,
        "surprise": 0.02,
    },
    # Mostly quiet churn: silence and polite notices rather than complaints.
    "quiet": {
        "loyal": 0.45,
        "grumbler": 0.08,
        "recovered_dip": 0.06,
        "sliding": 0.06,
        "silent": 0.13,
        "polite_churner": 0.12,
        "dm_turns": 0.07,
        "surprise": 0.02,
    },
}
DEFAULT_MIX = MIXES["balanced"]
#: Of the accounts of an archetype, the share that churns.
CHURN_SHARE = {
    "loyal": 0.0,
    "grumbler": 0.0,
    "recovered_dip": 0.0,
    "sliding": 0.8,
    "silent": 0.75,
    "polite_churner": 1.0,
    "dm_turns": 0.8,
    "surprise": 1.0,
}
#: History before the first week a backtest should score: the signals need a past.
WARM_UP_MONTHS = 6


# --- what customers write ------------------------------------------------------------------

_TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "praise": {
        "da": (
            "Hurtig levering og venlig betjening, som altid.",
            "Super service! I svarer hurtigt og løser tingene.",
            "Meget tilfreds, det hele kørte bare.",
            "Dygtige folk, der ved hvad de taler om.",
            "Nemt at bestille, og varerne kom til tiden.",
            "Vi er rigtig glade for samarbejdet.",
            "Fin oplevelse, ingen problemer.",
            "top service",
            "Kan varmt anbefales.",
            "Jeres support er den bedste, vi har haft.",
        ),
        "en": (
            "Quick delivery and friendly people, as always.",
            "Great service, you answer fast and fix things.",
            "Very happy, everything just worked.",
            "Knowledgeable staff who know what they are talking about.",
            "Easy to order and it arrived on time.",
            "We really enjoy working with you.",
            "Good experience, no problems at all.",
            "great stuff",
            "Would recommend you to anyone.",
            "Best support team we have ever had.",
        ),
    },
    "mixed": {
        "da": (
            "Det var ok, men leveringen tog lidt lang tid.",
            "Fint nok. Prisen er lidt høj.",
            "Produktet er godt, men fakturaen var forkert igen.",
            "Ok oplevelse, ikke noget særligt.",
            "Det meste fungerer, men jeres hjemmeside er besværlig.",
            "Middel. Det kunne være bedre.",
        ),
        "en": (
            "It was fine, but delivery took a while.",
            "OK overall. A bit pricey.",
            "Product is good, but the invoice was wrong again.",
            "Average experience, nothing special.",
            "Most things work, but your website is a pain.",
            "Decent. Could be better.",
        ),
    },
    "complaint": {
        "da": (
            "Meget utilfreds. Ingen svarer på telefonen.",
            "Varen kom i stykker, og vi venter stadig på en ny.",
            "Elendig kundeservice, vi har ventet tre uger på svar.",
            "Leveringen var forsinket igen, og ingen gav besked.",
            "Det er for dårligt. Fejlen er ikke rettet efter flere henvendelser.",
            "Vi er skuffede over kvaliteten det sidste stykke tid.",
            "Jeres system har været nede flere gange denne måned.",
        ),
        "en": (
            "Very disappointed. Nobody answers the phone.",
            "The item arrived broken and we are still waiting for a new one.",
            "Terrible customer service, we waited three weeks for a reply.",
            "Delivery was late again and nobody told us.",
            "Not good enough. The bug is still not fixed after several emails.",
            "Quality has gone down lately and we are disappointed.",
            "Your system has been down several times this month.",
        ),
    },
    # What a decision maker writes when the relationship sours.
    "value": {
        "da": (
            "Vi får ikke værdi nok for pengene længere.",
            "Ledelsen er ikke tilfreds med udviklingen.",
            "Prisen hænger ikke sammen med det, vi får.",
            "Vi har bedt om en plan for forbedringer flere gange uden svar.",
        ),
        "en": (
            "The price does not match the value we get anymore.",
            "Management is not happy with how this has gone.",
            "We have asked for an improvement plan several times and heard nothing.",
            "Honestly we expected a lot more from this partnership.",
        ),
    },
    "grumble": {
        "da": (
            "Som sædvanlig for dyrt.",
            "Altid det samme med jeres leveringer. Men det virker da.",
            "Mjah. Supporten er langsom, men vi er vant til det.",
            "Priserne stiger hvert år, kvaliteten gør ikke.",
            "Ikke imponeret, men heller ikke værre end de andre.",
            "For mange mails fra jer, og fakturaerne er uoverskuelige.",
        ),
        "en": (
            "Too expensive, as usual.",
            "Same old delivery issues. It works in the end.",
            "Meh. Support is slow, but we are used to it.",
            "Prices go up every year, the quality doesn't.",
            "Not impressed, but no worse than the others.",
            "Too many emails from you and the invoices are confusing.",
        ),
    },
    # A grumbler's threat: a real cue, and they stay.
    "threat": {
        "da": (
            "Hvis det fortsætter, må vi finde en anden leverandør.",
            "Endnu en fejl, og vi skifter til en konkurrent.",
        ),
        "en": (
            "If this keeps happening we will have to look at other suppliers.",
            "One more mistake like this and we go elsewhere.",
        ),
    },
    "alternatives": {
        "da": (
            "Vi er begyndt at se os om efter en anden leverandør.",
            "Vi har fået et tilbud fra en konkurrent, og det ser bedre ud.",
            "Vi overvejer at skifte leverandør.",
        ),
        "en": (
            "We have started looking at alternatives.",
            "We got an offer from a competitor and it looks better.",
            "We are considering switching to another provider.",
        ),
    },
    "polite_end": {
        "da": (
            "Tak for samarbejdet. Vi forlænger desværre ikke aftalen, når den udløber.",
            "I har været søde at arbejde med, men vi fornyer ikke kontrakten til næste år.",
            "Vi har valgt at samle vores indkøb et andet sted, så vi fortsætter ikke efter "
            "sommeren. Tak for nu.",
            "Det bliver sidste gang vi bestiller hos jer, men tak for god service.",
        ),
        "en": (
            "Thank you for the cooperation. Unfortunately we will not extend the contract "
            "when it expires.",
            "You have been lovely to work with, but we won't renew next year.",
            "We have decided to consolidate with one supplier, so we will not continue after "
            "the summer. Thanks for everything.",
            "The contract will not be extended. Thanks for the good years.",
        ),
    },
    # The same news in words the cue list does not know: the scorer misses these.
    "polite_end_missed": {
        "da": (
            "Vi afslutter samarbejdet ved årets udgang. Tak for de gode år.",
            "Vores nye ejere har deres egen aftale, så det her bliver det sidste år.",
        ),
        "en": (
            "We are wrapping up our cooperation at year end. Thanks for the good years.",
            "Our new owners have their own supplier, so this will be our final year.",
        ),
    },
    "cancel": {
        "da": ("Jeg har opsagt mit abonnement.", "Vi opsiger aftalen pr. næste måned."),
        "en": (
            "Please cancel our subscription.",
            "I am cancelling my account at the end of the month.",
        ),
    },
    "escalation": {
        "da": (
            "Jeg vil have pengene tilbage for den defekte vare.",
            "Vi har bedt vores advokat om at se på sagen.",
        ),
        "en": (
            "I want a refund for the broken item.",
            "We have asked our lawyer to look into this.",
        ),
    },
    # Happy customers mentioning leaving only to deny it: the scorer suppresses these.
    "denied": {
        "da": (
            "Vi har ingen planer om at skifte leverandør, I gør det godt.",
            "Vi opsiger ikke, vi er glade for jer.",
        ),
        "en": (
            "We have no plans to switch to anyone else, you are doing great.",
            "We won't cancel, no worries, just fix the invoices.",
        ),
    },
    "improve": {
        "da": (
            "Bedre information om levering.",
            "Hurtigere svar på mails.",
            "Lavere fragtpriser.",
            "Intet, fortsæt sådan!",
            "En app ville være rart.",
        ),
        "en": (
            "Better delivery updates.",
            "Faster email replies.",
            "Cheaper shipping.",
            "Nothing, keep it up!",
            "An app would be nice.",
        ),
    },
}
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
    "Karen",
    "Søren",
    "Louise",
    "Thomas",
    "Maja",
    "Niels",
    "Sarah",
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
    "Taylor",
    "Brown",
    "Holm",
    "Kristensen",
    "Olsen",
    "Thomsen",
    "Poulsen",
    "Johansen",
    "Møller",
]
_COMPANY = [
    "Nordlys",
    "Havneby",
    "Fjordsen",
    "Kattegat",
    "Bryggen",
    "Lindholm",
    "Skovgaard",
    "Mølle",
    "Northwind",
    "Baltic",
    "Vesterhav",
    "Solbjerg",
    "Egeskov",
    "Limfjord",
    "Øresund",
    "Himmerland",
    "Amager",
    "Dalum",
]
_TRADE = [
    "Logistik",
    "Tømrer",
    "Revision",
    "Shipping",
    "Energi",
    "Arkitekter",
    "Data",
    "Bageri",
    "Trading",
    "Consult",
]
_FORM = ("A/S", "ApS", "Ltd", "I/S")


def _styled(text: str, rng: random.Random, positive: bool) -> str:
    """Customers do not write like copy-editors."""
    roll = rng.random()
    if roll < 0.15:
        text = text.lower()
    elif roll < 0.25:
        text = text.rstrip(".")
    if positive and rng.random() < 0.1:
        text += " :)"
    elif not positive and rng.random() < 0.08:
        text = text.rstrip(".") + "!!"
    return text


class _Scorer:
    """``sentiment.score`` memoised: simulated comments repeat, the scorer is pure."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str], sentiment.Sentiment] = {}

    def __call__(self, text: str, language: str) -> sentiment.Sentiment:
        key = (text, language)
        result = self.cache.get(key)
        if result is None:
            result = self.cache[key] = sentiment.score(text, language)
        return result


# --- the truth ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """What really happened to one account."""

    account_id: int
    archetype: str
    segment: str
    language: str
    churned_at: dt.datetime | None
    #: when its trouble began (a slide, the silence, the decision to leave); None if never
    trouble_at: dt.datetime | None
    annual_value: Decimal


@dataclass
class Portfolio:
    seed: int
    start: dt.datetime  # the first day of history
    now: dt.datetime
    mix: dict[str, float]
    accounts: dict[int, Truth]
    #: rows written per table
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def backtest_start(self) -> dt.datetime:
        """The first moment worth scoring: after ``WARM_UP_MONTHS`` of history."""
        return self.start + WARM_UP_MONTHS * MONTH_DAYS * DAY

    def churned(self) -> dict[int, dt.datetime]:
        return {i: a.churned_at for i, a in self.accounts.items() if a.churned_at is not None}

    def of(self, archetype: str) -> list[Truth]:
        return [a for a in self.accounts.values() if a.archetype == archetype]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for account in self.accounts.values():
            counts[account.archetype] = counts.get(account.archetype, 0) + 1
        return counts


# --- the stories ----------------------------------------------------------------------------


def _curve(knots: list[tuple[float, float]]) -> t.Callable[[float], float]:
    """Piecewise linear through (day, value) knots, flat beyond them."""
    knots = sorted(knots)
    days = [k[0] for k in knots]

    def value(day: float) -> float:
        i = bisect.bisect_right(days, day)
        if i == 0:
            return knots[0][1]
        if i == len(knots):
            return knots[-1][1]
        (d0, v0), (d1, v1) = knots[i - 1], knots[i]
        return v0 + (v1 - v0) * (day - d0) / (d1 - d0) if d1 > d0 else v1

    return value


@dataclass
class _Person:
    contact_id: int
    language: str
    decision_maker: bool
    #: invitations per year
    rate: float
    #: the chance of answering one, before the story changes it
    propensity: float
    mood: t.Callable[[float], float]
    #: multiplies the propensity at a day (silence, disengagement)
    engagement: t.Callable[[float], float]
    #: (from day, to day, category, chance): what this person writes about in that period
    themes: list[tuple[float, float, str, float]] = field(default_factory=list)


@dataclass
class _Story:
    archetype: str
    segment: str
    language: str
    churn_day: float | None
    trouble_day: float | None
    people: list[_Person]
    #: the chance that a case ends recovered, by period: (from, to, recovered share)
    recovery: list[tuple[float, float, float]]
    #: a one-off bad experience: the chance per answer
    mishap: float = 0.02


class _Builder:
    def __init__(
        self,
        *,
        seed: int,
        start: dt.datetime,
        now: dt.datetime,
        scale: float,
        throttle_days: float,
        batch: int,
    ) -> None:
        self.seed, self.start, self.now, self.scale, self.batch = seed, start, now, scale, batch
        #: a contact is asked at most once within this many days (``CONTACT_THROTTLE_DAYS``)
        self.throttle = throttle_days / max(1.0, scale)
        self.days = (now - start) / DAY
        self.score = _Scorer()
        self.next_id = {
            name: (db.session.scalar(sa.select(sa.func.max(model.id))) or 0) + 1
            for name, model in _TABLES.items()
        }
        self.rows: dict[str, list[dict[str, t.Any]]] = {name: [] for name in _TABLES}
        self.written: dict[str, int] = dict.fromkeys(_TABLES, 0)

    def new_id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def at(self, day: float) -> dt.datetime:
        return self.start + day * DAY

    # -- writing

    def flush(self, force: bool = False) -> None:
        if not force and sum(len(r) for r in self.rows.values()) < self.batch:
            return
        for name, model in _TABLES.items():
            rows = self.rows[name]
            for first in range(0, len(rows), self.batch):
                db.session.execute(sa.insert(model), rows[first : first + self.batch])
            self.written[name] += len(rows)
            rows.clear()

    # -- one account

    def account(self, index: int, archetype: str, b2b_share: float) -> Truth:
        rng = random.Random(f"{self.seed}:{index}")
        account_id = self.new_id("accounts")
        # Contracts are B2B: polite notices and silent companies mostly are too.
        b2b = archetype in ("polite_churner", "silent") and rng.random() < 0.8
        b2b = b2b or archetype == "dm_turns" or rng.random() < b2b_share
        segment = "b2b" if b2b else "b2c"
        language = "en" if rng.random() < 0.3 else "da"
        story = self.story(rng, archetype, segment, language)
        if b2b:
            name = f"{rng.choice(_COMPANY)} {rng.choice(_TRADE)} {rng.choice(_FORM)} #{account_id}"
            value = Decimal(rng.randrange(40, 2000) * 1000)
        else:
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)} #{account_id}"
            value = Decimal(rng.randrange(2, 60) * 250)
        churned_at = None if story.churn_day is None else self.at(story.churn_day)
        self.rows["accounts"].append(
            {
                "id": account_id,
                "name": name,
                "external_ref": f"sim-{self.seed}-{account_id}",
                "segment": segment,
                "annual_value": value,
                "created_at": self.start - rng.uniform(20, 2000) * DAY,
                "churned_at": churned_at,
                "health_stale": True,
            }
        )
        for person in story.people:
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            self.rows["contacts"].append(
                {
                    "id": person.contact_id,
                    "account_id": account_id,
                    "email": f"{first}.{last}.{person.contact_id}@sim.example.com".lower(),
                    "name": f"{first} {last}",
                    "language": person.language,
                    "is_decision_maker": person.decision_maker,
                    "created_at": self.start - 10 * DAY,
                }
            )
        self.surveys(rng, account_id, story)
        return Truth(
            account_id=account_id,
            archetype=archetype,
            segment=segment,
            language=language,
            churned_at=churned_at,
            trouble_at=None if story.trouble_day is None else self.at(story.trouble_day),
            annual_value=value,
        )

    def story(self, rng: random.Random, archetype: str, segment: str, language: str) -> _Story:
        days = self.days
        warm = WARM_UP_MONTHS * MONTH_DAYS
        churns = rng.random() < CHURN_SHARE[archetype]
        # Churn falls well after the warm-up (a backtest that starts there can see it
        # coming: its warnings count from its first week), never in the last week.
        churn_day = rng.uniform(warm + 90, days - 7) if churns else None

        def leaving(lag: float) -> float:
            """When a churner whose trouble starts ``lag`` days before leaving leaves: after
            the warm-up, and late enough that the trouble starts inside the history (a
            backtest needs the account as it was before)."""
            return rng.uniform(max(warm + 90, 120 + lag), days - 7)

        month = MONTH_DAYS
        flat = rng.uniform(0.35, 0.85)
        wiggle = rng.uniform(0, 0.12)
        phase = rng.uniform(0, 2 * math.pi)
        period = rng.uniform(150, 400)

        def steady(level: float) -> t.Callable[[float], float]:
            return lambda d: level + wiggle * math.sin(phase + 2 * math.pi * d / period)

        # Survey fatigue: everyone answers a little less as time goes by.
        fatigue_per_day = rng.uniform(0, 0.25) / 365

        def tired(d: float) -> float:
            return max(0.3, 1 - fatigue_per_day * d)

        mood: t.Callable[[float], float] = steady(flat)
        engagement: t.Callable[[float], float] = tired
        themes: list[tuple[float, float, str, float]] = [(0, days, "denied", 0.03)]
        dm_mood: t.Callable[[float], float] | None = None
        dm_engagement: t.Callable[[float], float] | None = None
        dm_themes: list[tuple[float, float, str, float]] | None = None
        recovery = [(-1e9, 1e9, 0.7)]
        trouble: float | None = None
        mishap = 0.02
        if archetype == "grumbler":
            mood = steady(rng.uniform(-0.55, -0.15))
            themes = [(0, days, "grumble", 0.55), (0, days, "threat", 0.01)]
            themes.append((0, days, "escalation", 0.02))
            recovery = [(-1e9, 1e9, 0.35)]
            base_prop = rng.uniform(0.45, 0.75)  # grumblers are vocal
        elif archetype == "recovered_dip":
            trouble = rng.uniform(3 * month, days - 3 * month)
            length = rng.uniform(1, 2.5) * month
            low = rng.uniform(-0.6, -0.1)
            mood = _curve(
                [
                    (trouble, flat),
                    (trouble + 10, low),
                    (trouble + length, low),
                    (trouble + length + rng.uniform(20, 60), flat),
                ]
            )
            themes += [(trouble, trouble + length, "complaint", 0.5)]
            recovery = [(trouble - 1, trouble + length + 60, 0.85)]
            base_prop = rng.uniform(0.35, 0.7)
        elif archetype == "sliding":
            lag = rng.uniform(5, 11) * month  # from the first signs to leaving
            if churn_day is not None:
                churn_day = leaving(lag)
                trouble = churn_day - lag
            else:
                trouble = rng.uniform(0, days - 4 * month)
            slide = min(lag * rng.uniform(0.4, 0.7), rng.uniform(2, 6) * month)
            low = rng.uniform(-1.0, -0.45)
            mood = _curve([(trouble, flat), (trouble + slide, low)])
            engagement = _curve([(trouble, 1.0), (trouble + slide, rng.uniform(0.8, 1.1))])
            themes += [
                (trouble, days, "complaint", 0.35),
                (trouble + slide * 0.5, days, "alternatives", rng.choice([0.0, 0.15, 0.3])),
            ]
            if churn_day is not None:  # some say so in the last weeks, too late to matter
                themes.append((churn_day - 30, days, "cancel", 0.3))
            recovery = [(-1e9, trouble, 0.7), (trouble, 1e9, 0.2)]
            base_prop = rng.uniform(0.35, 0.7)
        elif archetype == "silent":
            lag = rng.uniform(4, 10) * month
            if churn_day is not None:
                churn_day = leaving(lag)
                trouble = churn_day - lag
            else:
                trouble = rng.uniform(2 * month, days - 4 * month)
            flat = rng.uniform(0.0, 0.6)
            mood = _curve([(trouble - 60, flat), (trouble, flat - rng.uniform(0, 0.3))])
            left = rng.uniform(0.0, 0.08)
            engagement = _curve([(trouble - 20, tired(trouble)), (trouble + 20, left)])
            base_prop = rng.uniform(0.35, 0.7)
        elif archetype == "polite_churner":
            flat = rng.uniform(-0.05, 0.45)
            assert churn_day is not None
            # Notice is mostly a contract's months; now and then only weeks.
            notice = rng.uniform(20, 55) if rng.random() < 0.08 else rng.uniform(90, 240)
            churn_day = leaving(notice)
            trouble = churn_day - notice
            mood = _curve([(trouble - 90, flat), (trouble, flat - rng.uniform(0, 0.25))])
            words = "polite_end_missed" if rng.random() < 0.1 else "polite_end"
            # A consumer says it; in a company the decision maker does, the users rarely.
            dm_themes = [*themes, (trouble, days, words, 0.9)]
            themes += [(trouble, days, words, 0.85 if segment == "b2c" else 0.25)]
            base_prop = rng.uniform(0.4, 0.75)
            engagement = _curve([(trouble - 1, tired(trouble)), (trouble, 1.2)])
        elif archetype == "dm_turns":
            lag = rng.uniform(5, 11) * month
            if churn_day is not None:
                churn_day = leaving(lag)
                trouble = churn_day - lag
            else:
                trouble = rng.uniform(0, days - 5 * month)
            turn = rng.uniform(1, 3) * month
            low = rng.uniform(-1.0, -0.5)
            dm_mood = _curve([(trouble, flat), (trouble + turn, low)])
            # An unhappy decision maker makes the point: answers more, not less.
            dm_engagement = _curve([(trouble, 1.0), (trouble + turn, 1.4)])
            dm_themes = [
                (0, days, "denied", 0.03),
                (trouble, days, "value", 0.7),
                (trouble + turn * 0.5, days, "alternatives", rng.choice([0.0, 0.25, 0.5])),
            ]
            recovery = [(-1e9, trouble, 0.7), (trouble, 1e9, 0.3)]
            base_prop = rng.uniform(0.35, 0.7)
        elif archetype == "surprise":
            base_prop = rng.uniform(0.35, 0.7)
        else:  # loyal
            mishap = 0.025
            base_prop = rng.uniform(0.3, 0.7)
        people = []
        if segment == "b2c":
            people.append(
                _Person(
                    self.new_id("contacts"),
                    language,
                    False,
                    rate=rng.uniform(12, 36) * self.scale,
                    propensity=base_prop,
                    mood=mood,
                    engagement=engagement,
                    themes=list(themes),
                )
            )
        else:
            deciders = 2 if rng.random() < 0.2 else 1
            users = rng.randint(3, 8)
            for j in range(deciders + users):
                dm = j < deciders
                offset = rng.gauss(0, 0.12)
                own = dm_mood if (dm and dm_mood is not None) else mood
                people.append(
                    _Person(
                        self.new_id("contacts"),
                        "en" if rng.random() < 0.12 else language,
                        dm,
                        rate=(rng.uniform(12, 24) if dm else rng.uniform(8, 20)) * self.scale,
                        # a decision maker in an account relationship answers a bit more
                        propensity=min(0.9, max(0.1, base_prop + 0.1 * dm + rng.gauss(0, 0.1))),
                        mood=_shifted(own, offset),
                        engagement=dm_engagement if (dm and dm_engagement) else engagement,
                        themes=list(dm_themes if (dm and dm_themes is not None) else themes),
                    )
                )
        return _Story(archetype, segment, language, churn_day, trouble, people, recovery, mishap)

    def surveys(self, rng: random.Random, account_id: int, story: _Story) -> None:
        end = self.days if story.churn_day is None else story.churn_day
        answers: list[tuple[float, _Person, int]] = []  # (day, person, invitation id)
        for person in story.people:
            # Purchases, deliveries and cases come when they come; the contact throttle
            # keeps a contact from being asked more often.
            day = rng.uniform(0, self.throttle) + rng.expovariate(person.rate / 365)
            while day < end:
                invitation_id = self.new_id("invitations")
                sent = self.at(day)
                answered: dt.datetime | None = None
                status = "sent"
                if rng.random() < 0.02:
                    status = "failed"  # bounced: never delivered
                elif rng.random() < min(0.95, person.propensity * person.engagement(day)):
                    delay = rng.expovariate(1 / 8) if rng.random() < 0.8 else rng.uniform(24, 120)
                    answered = sent + delay * HOUR
                    if answered > self.at(end):  # after leaving (or after now): never
                        answered = None
                self.rows["invitations"].append(
                    {
                        "id": invitation_id,
                        "contact_id": person.contact_id,
                        "survey": SURVEY,
                        "token_nonce": f"sim{invitation_id:x}{rng.getrandbits(64):016x}",
                        "token_hash": f"{invitation_id:016x}{rng.getrandbits(192):048x}",
                        "status": status,
                        "due_at": sent,
                        "expires_at": sent + 14 * DAY,
                        "sent_at": sent if status == "sent" else None,
                        "answered_at": answered,
                        "attempts": 1,
                        "last_error": "550 mailbox unavailable" if status == "failed" else None,
                        "created_at": sent - 2 * DAY,
                        "reminder_attempts": 0,
                    }
                )
                if answered is not None:
                    answers.append(((answered - self.start) / DAY, person, invitation_id))
                day += max(self.throttle, rng.expovariate(person.rate / 365))
        open_case_until = -1.0
        for day, person, invitation_id in sorted(answers, key=lambda a: a[0]):
            open_case_until = self.response(
                rng, account_id, story, day, person, invitation_id, open_case_until
            )

    def response(
        self,
        rng: random.Random,
        account_id: int,
        story: _Story,
        day: float,
        person: _Person,
        invitation_id: int,
        open_case_until: float,
    ) -> float:
        """One answered invitation; returns until when the account has an open case."""
        mood = max(-1.0, min(1.0, person.mood(day) + rng.gauss(0, 0.2)))
        mishap = rng.random() < story.mishap
        nps = round(7.2 + 3.2 * mood + rng.gauss(0, 0.9))
        if mishap:
            nps = rng.randint(1, 6)
        nps = max(0, min(10, nps))
        csat = (
            None
            if rng.random() < 0.15
            else max(1, min(5, round(3.6 + 1.5 * mood + rng.gauss(0, 0.6))))
        )
        if mishap and csat is not None:
            csat = rng.randint(1, 3)
        ces = (
            None if rng.random() < 0.25 else max(1, min(7, round(5 + 2 * mood + rng.gauss(0, 0.9))))
        )
        at = self.at(day)
        response_id = self.new_id("responses")
        language = person.language
        self.rows["responses"].append(
            {
                "id": response_id,
                "invitation_id": invitation_id,
                "source": "survey",
                "contact_id": person.contact_id,
                "account_id": account_id,
                "survey": SURVEY,
                "survey_version": 1,
                "language": language,
                "nps": nps,
                "csat": csat,
                "ces": ces,
                "complete": True,
                "submitted_at": at,
                "updated_at": at,
            }
        )
        # What they write: a theme of their story, or what the score says.
        band = metrics.nps_band(nps)
        category: str | None = None
        for first, last, theme, chance in person.themes:
            if first <= day < last and rng.random() < chance:
                category = theme
                break
        if category is None and not mishap and rng.random() < 0.5:
            return open_case_until  # no comment
        if category is None:
            if mishap or band == "detractor":
                category = "complaint"
            elif band == "passive":
                category = "mixed" if rng.random() < 0.7 else "praise"
            else:
                category = "praise" if rng.random() < 0.9 else "mixed"
        text = _styled(rng.choice(_TEXTS[category][language]), rng, nps >= 7)
        cues = self.comment(response_id, "reason", text, language)
        if rng.random() < 0.25:
            self.comment(response_id, "improve", rng.choice(_TEXTS["improve"][language]), language)
        # Detractors and churn cues go to a case, one open case per account at a time.
        if day < open_case_until:
            return open_case_until
        leaving = bool(set(cues) & {"cancel", "switch_competitor", "not_renew", "legal", "refund"})
        if not (band == "detractor" and rng.random() < 0.6) and not (
            leaving and rng.random() < 0.9
        ):
            return open_case_until
        return self.case(rng, account_id, story, day, response_id, nps, cues, language)

    def comment(self, response_id: int, question: str, text: str, language: str) -> tuple[str, ...]:
        result = self.score(text, language)
        self.rows["answers"].append(
            {
                "id": self.new_id("answers"),
                "response_id": response_id,
                "question": question,
                "text": text,
                # as survey.responses.apply_sentiment stores it
                "polarity": round(result.polarity, 4),
                "sentiment": result.label,
                "sentiment_language": result.language,
                "cues": ",".join(result.cues) or None,
                "scorer_version": result.version,
            }
        )
        return result.cues

    def case(
        self,
        rng: random.Random,
        account_id: int,
        story: _Story,
        day: float,
        response_id: int,
        nps: int,
        cues: tuple[str, ...],
        language: str,
    ) -> float:
        opened = self.at(day) + rng.uniform(1, 30) * dt.timedelta(minutes=1)
        due = opened + 24 * HOUR
        roll = rng.random()
        if roll < 0.8:
            contacted: dt.datetime | None = opened + rng.uniform(0.5, 20) * HOUR
        elif roll < 0.95:
            contacted = opened + rng.uniform(26, 120) * HOUR  # late
        else:
            contacted = None  # forgotten
        resolved: dt.datetime | None = (contacted or opened) + rng.uniform(0.2, 14) * DAY
        if contacted is None:
            resolved = None if rng.random() < 0.5 else opened + rng.uniform(20, 90) * DAY
        share = next((s for a, b, s in story.recovery if a <= day < b), 0.6)
        outcome: str | None = rng.choices(
            ["recovered", "not_recovered", "no_action_needed"],
            [share, (1 - share) * 0.7, (1 - share) * 0.3],
        )[0]
        if resolved is not None and resolved > self.now:
            resolved = None
        if contacted is not None and contacted > self.now:
            contacted = None
        if resolved is None:
            outcome = None
            status = "open" if contacted is None else "in_progress"
        else:
            status = "resolved"
        severity = 3 if nps <= 3 or cues else 2 if nps <= 5 else 1
        case_id = self.new_id("cases")
        self.rows["cases"].append(
            {
                "id": case_id,
                "account_id": account_id,
                "status": status,
                "outcome": outcome,
                "severity": severity,
                "opened_at": opened,
                "first_contact_due_at": due,
                "first_contact_at": contacted,
                "resolved_at": resolved,
                "updated_at": resolved or contacted or opened,
                "notified_at": opened,  # no emails about history
                "language": language,
            }
        )
        rules = ",".join(["detractor"] * metrics.is_detractor(nps) + ["churn_cue"] * bool(cues))
        self.rows["flags"].append(
            {
                "id": self.new_id("flags"),
                "response_id": response_id,
                "case_id": case_id,
                "rules": rules or "detractor",
                "severity": severity,
                "created_at": opened,
                "updated_at": opened,
            }
        )
        until = resolved or self.now
        return (until - self.start) / DAY


def _shifted(curve: t.Callable[[float], float], offset: float) -> t.Callable[[float], float]:
    return lambda day: curve(day) + offset


_TABLES: dict[str, t.Any] = {
    "accounts": Account,
    "contacts": Contact,
    "invitations": Invitation,
    "responses": Response,
    "answers": Answer,
    "cases": Case,
    "flags": Flag,
}


def simulate(
    *,
    accounts: int,
    seed: int,
    months: int = 24,
    mix: t.Mapping[str, float] | None = None,
    now: dt.datetime | None = None,
    b2b_share: float = 0.5,
    scale: float = 1.0,
    throttle_days: float = 14,
    batch: int = 5000,
) -> Portfolio:
    """Write a portfolio of ``accounts`` accounts with ``months`` of history up to ``now``.

    ``mix`` weighs the archetypes (:data:`MIXES` has some; missing ones weigh 0); each
    account's archetype is drawn from it, so a seed gives the same portfolio every time.
    ``b2b_share`` is the share of B2B accounts among those whose story does not decide it;
    ``scale`` multiplies the invitations per contact (10 gives about a hundred answers per
    account over two years). Commits; returns the truth.
    """
    weights = dict(mix or DEFAULT_MIX)
    unknown = set(weights) - set(ARCHETYPES)
    if unknown:
        raise ValueError(f"unknown archetypes {sorted(unknown)}; known: {ARCHETYPES}")
    if not weights or sum(weights.values()) <= 0 or min(weights.values()) < 0:
        raise ValueError("mix: the weights must be positive")
    total = sum(weights.values())
    weights = {k: v / total for k, v in weights.items()}
    now = (now or utcnow()).astimezone(dt.UTC)
    start = now - months * MONTH_DAYS * DAY
    rng = random.Random(seed)
    # Archetypes by quota (largest remainder), then shuffled: a small portfolio still has
    # each archetype in its share, and the order tells nothing.
    quota = {k: int(w * accounts) for k, w in weights.items()}
    rest = sorted(weights, key=lambda k: weights[k] * accounts - quota[k], reverse=True)
    for k in rest[: accounts - sum(quota.values())]:
        quota[k] += 1
    kinds = [k for k in ARCHETYPES for _ in range(quota.get(k, 0))]
    rng.shuffle(kinds)
    builder = _Builder(
        seed=seed, start=start, now=now, scale=scale, throttle_days=throttle_days, batch=batch
    )
    truth: dict[int, Truth] = {}
    for index, archetype in enumerate(kinds):
        account = builder.account(index, archetype, b2b_share)
        truth[account.account_id] = account
        builder.flush()
    builder.flush(force=True)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":  # explicit ids: move the sequences on
        for name in _TABLES:
            db.session.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT max(id) FROM {name}))"
                )
            )
        db.session.commit()
    return Portfolio(seed, start, now, weights, truth, dict(builder.written))
