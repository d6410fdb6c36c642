"""App-wide template filters and globals, registered once by the factory.

``_()`` translates in the page's language; ``local`` shows a stored UTC moment in the SLA
clock's zone as staff read times; ``hours``, ``severity`` and ``nps_band`` format figures
with the one definition each has; ``highlight`` marks the words that moved a comment's
sentiment, escaping the customer's text first.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

from jinja2 import pass_context
from markupsafe import Markup, escape

from . import periods, sentiment, storage
from .i18n import plural
from .i18n import text as ui_text
from .metrics import nps_band
from .triage.flags import severity_name
from .triage.settings import settings

if t.TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    app.add_template_global(_translate, "_")
    app.add_template_global(_translate_plural, "_n")
    app.add_template_filter(_local_time, "local")
    app.add_template_filter(hours_text, "hours")
    app.add_template_filter(duration_text, "duration")
    app.add_template_filter(severity_name, "severity")
    app.add_template_filter(nps_band, "nps_band")
    # Asked by staff pages only (base.html): whether the database refuses to store anything.
    app.add_template_global(storage.in_trouble, "storage_trouble")


@pass_context
def _translate(context: t.Any, key: str, **values: t.Any) -> str:
    return ui_text(key, context.get("language") or "en", **values)


@pass_context
def _translate_plural(context: t.Any, key: str, n: int, **values: t.Any) -> str:
    return plural(key, context.get("language") or "en", n, **values)


@pass_context
def _local_time(context: t.Any, moment: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC moment in the SLA clock's time zone, as staff read times, the zone
    named after a time of day (:func:`periods.local_text`, the one rule for pages and emails).

    Pages that show many times pass ``tz`` in, so the settings are read once a page."""
    if moment is None:
        return ""
    tz = context.get("tz") or settings().calendar.tz
    return periods.local_text(moment, tz, fmt)


def hours_text(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} h" if value < 100 else f"{value:,.0f} h"


def duration_text(value: dt.timedelta) -> str:
    """A definition's delay as people say it: "3 days", "12 hours", "90 minutes"."""
    seconds = int(value.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} seconds"


def highlight(
    text: str | None,
    highlights: t.Iterable[sentiment.Highlight],
    themes: t.Iterable[t.Mapping[str, t.Any]] = (),
    theme_label: t.Callable[[str], str] = str,
) -> Markup:
    """``text`` escaped, with each highlighted word or phrase wrapped in ``<mark>``.

    Matches are found in the raw text and every piece is escaped on its own, so a highlight
    can never match inside an escaped entity nor let customer text become HTML. ``themes``
    (as stored with the answer) mark each theme's words with that theme's own polarity.
    """
    if not text:
        return Markup("")
    # (start, end, weight, theme id or "")
    spans: list[tuple[int, int, float, str]] = []

    def find(phrase: str, weight: float, theme: str) -> None:
        if not phrase or not phrase.strip():
            return
        pattern = re.escape(phrase)
        if phrase[0].isalnum():
            pattern = r"(?<!\w)" + pattern
        if phrase[-1].isalnum():
            pattern += r"(?!\w)"
        spans.extend((m.start(), m.end(), weight, theme) for m in re.finditer(pattern, text))

    for theme in themes:
        polarity = theme.get("polarity")
        weight = float(polarity) if isinstance(polarity, int | float) else 0.0
        for word in theme.get("words") or ():
            if isinstance(word, str):
                find(word, weight, str(theme["id"]))
    for item in highlights:
        find(item.text, item.weight, "")
    out, pos = [], 0
    for start, end, weight, theme_id in sorted(spans, key=lambda s: (s[0], s[0] - s[1])):
        if start < pos:
            continue
        out.append(escape(text[pos:start]))
        tone = "negative" if weight < 0 else "positive"
        if theme_id:
            tone = "negative" if weight < -0.05 else "positive" if weight > 0.05 else "neutral"
            out.append(
                Markup(
                    '<mark class="theme {}" data-theme="{}" title="{}: {} ({:+.2f})">{}</mark>'
                ).format(tone, theme_id, theme_label(theme_id), tone, weight, text[start:end])
            )
        else:
            out.append(
                Markup('<mark class="{}" title="{} ({:+.2f})">{}</mark>').format(
                    tone, tone, weight, text[start:end]
                )
            )
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def comment_highlights(answer_text: str, language: str) -> tuple[sentiment.Highlight, ...]:
    return sentiment.score(answer_text, language).highlights
