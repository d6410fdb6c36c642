"""How well the early warnings would have served: warnings replayed against recorded churn.

Pure: the warnings (when, which account) and the accounts (churned when, worth how much) go
in; recall, precision, lead times and revenue come out, with the naive rules' figures
beside them when the caller computes those the same way.

- A churned account is **caught** when a warning was raised at least ``lead_days`` and at
  most ``horizon_days`` before it churned; its lead time is from its earliest such warning.
- **Recall**: caught churners / churners (who churned inside the period).
- **Precision**: of the accounts warned in the period (early enough that ``horizon_days``
  had passed, or they churned), the share that churned within ``horizon_days`` after a
  warning.
"""

from __future__ import annotations

import datetime as dt
import statistics
import typing as t
from dataclasses import dataclass
from decimal import Decimal

from .. import metrics
from . import health

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class AccountOutcome:
    account_id: int
    annual_value: Decimal
    churned_at: dt.datetime | None


@dataclass(frozen=True)
class Result:
    churners: int
    caught: int
    warned: int
    warned_churned: int
    lead_days: list[int]
    revenue_caught: Decimal
    revenue_missed: Decimal

    @property
    def recall(self) -> float | None:
        return self.caught / self.churners if self.churners else None

    @property
    def precision(self) -> float | None:
        return self.warned_churned / self.warned if self.warned else None

    @property
    def median_lead_days(self) -> float | None:
        return statistics.median(self.lead_days) if self.lead_days else None

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "churners": self.churners,
            "caught": self.caught,
            "warned": self.warned,
            "warned_churned": self.warned_churned,
            "recall": _round(self.recall),
            "precision": _round(self.precision),
            "median_lead_days": self.median_lead_days,
            "revenue_caught": float(self.revenue_caught),
            "revenue_missed": float(self.revenue_missed),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def evaluate(
    warnings: t.Iterable[tuple[int, dt.datetime]],
    accounts: t.Iterable[AccountOutcome],
    *,
    start: dt.datetime,
    end: dt.datetime,
    lead_days: int = 60,
    horizon_days: int = 270,
) -> Result:
    """Score ``warnings`` ((account id, raised at)) against what the accounts did."""
    lead, horizon = lead_days * DAY, horizon_days * DAY
    raised: dict[int, list[dt.datetime]] = {}
    for account_id, at in warnings:
        if start <= at <= end:
            raised.setdefault(account_id, []).append(at)
    churners = caught = warned = warned_churned = 0
    leads: list[int] = []
    revenue_caught = revenue_missed = Decimal(0)
    for account in accounts:
        times = sorted(raised.get(account.account_id, ()))
        gone = account.churned_at
        if gone is not None and start <= gone <= end:
            churners += 1
            early = [at for at in times if gone - horizon <= at <= gone - lead]
            if early:
                caught += 1
                leads.append((gone - early[0]).days)
                revenue_caught += account.annual_value
            else:
                revenue_missed += account.annual_value
        if not times:
            continue
        # Judged only when the horizon has passed, or the account churned meanwhile.
        judged = [at for at in times if at + horizon <= end or (gone is not None and at < gone)]
        if not judged:
            continue
        warned += 1
        if gone is not None and any(at < gone <= at + horizon for at in judged):
            warned_churned += 1
    return Result(churners, caught, warned, warned_churned, leads, revenue_caught, revenue_missed)


def naive_warnings(
    history: health.AccountHistory, ends: t.Sequence[dt.datetime], rule: str
) -> list[dt.datetime]:
    """When a naive rule would have warned, at each of ``ends``: the baselines to beat.

    ``nps_below_zero``: the account's NPS over the last 90 days is below 0 (at least one
    answer); ``latest_detractor``: its latest answer was a detractor.
    """
    fired = []
    for at in ends:
        known = [a for a in history.answers if a.at <= at and a.nps is not None]
        if not known:
            continue
        if rule == "nps_below_zero":
            score = metrics.nps(a.nps for a in known if a.at > at - 90 * DAY).score
            hit = score is not None and score < 0
        else:
            hit = metrics.is_detractor(max(known, key=lambda a: a.at).nps)
        if hit:
            fired.append(at)
    return fired
