"""Sentiment of free-text survey answers in Danish and English, with churn cues.

English is scored by TextBlob (what the product has always promised), VADER and an AFINN
word-list scorer, combined with weights fitted on public English data (tweets and movie
snippets); together they agree with human ratings far better than any one of them. Danish is
scored by the same word-list scorer over AFINN's Danish list plus our own word lists
(negation in both word orders, intensifiers, contrast, inflected forms) and word formation
("super-", "u-", "-løs", "-fri", and compounds read by their last part), because TextBlob
calls almost all Danish neutral. The survey's language is trusted unless
the words clearly belong to the other language; text in neither language is neutral.
Churn and escalation cues ("opsiger", "won't renew", "advokat") are found separately and
pull the polarity negative, since polite churn is still bad news.

Pure Python and thread-safe: the word lists are built once, under a lock, on first use;
scoring shares nothing mutable between calls.

The package, from the bottom up: ``lexicon`` (the word lists and word lookup), ``tokens``
(tokenizer and language detection), ``cues`` (churn and escalation cues) and ``scorer``
(the polarity); ``score()`` here puts them together. Only the names in ``__all__`` are public.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cues import _CUE_PULL, _CUE_PULL_MORE, _find_cues, _joined
from .lexicon import CUE_NAMES, _resources
from .lexicon import _lookup as _lookup  # re-exported: the tests check its cache
from .scorer import (
    _DA_WEIGHTS,
    _EN_WEIGHTS,
    _SCALE,
    _combine,
    _danish_parts,
    _english_parts,
    _Item,
)
from .themes import Theme, ThemeBook, default_book, find_themes
from .tokens import _detect_language, _normalise_language, _tokenize

__all__ = [
    "CUE_NAMES",
    "MAX_CHARS",
    "MAX_HIGHLIGHTS",
    "SCORER_VERSION",
    "Highlight",
    "Sentiment",
    "Theme",
    "ThemeBook",
    "label_for",
    "score",
]


# 5: wishes, praise idioms, sarcasm after a lone "Great,", more events (issue 12, third round)
# 4: post-sale readings (events, mixed, lukewarm, DDS) and themes (issue 12)
SCORER_VERSION = 5

#: Texts are cut to this many characters so one pasted novel cannot stall a request.
MAX_CHARS = 5_000
#: At most this many highlights are returned, strongest first.
MAX_HIGHLIGHTS = 6

_NEUTRAL_BAND = 0.05


@dataclass(frozen=True)
class Highlight:
    """A word or phrase, as written in the input, that moved the score; weight > 0 is positive."""

    text: str
    weight: float


@dataclass(frozen=True)
class Sentiment:
    """The scored comment; stored with ``version`` so old scores can be found and redone."""

    polarity: float
    label: str
    language: str
    highlights: tuple[Highlight, ...]
    cues: tuple[str, ...]
    version: int
    #: what the comment is about, each theme with its own polarity (``themes.py``)
    themes: tuple[Theme, ...] = ()
    #: praise and a complaint together (or sarcasm): labelled negative so that it is flagged,
    #: and said to be mixed so that a reader can tell it from a plain complaint
    mixed: bool = False


def label_for(polarity: float) -> str:
    """Return the 3-class label used everywhere (the band matches the benchmark's gold)."""
    if polarity > _NEUTRAL_BAND:
        return "positive"
    if polarity < -_NEUTRAL_BAND:
        return "negative"
    return "neutral"


def score(
    text: str | None, language: str | None = None, themes: ThemeBook | None = None
) -> Sentiment:
    """Score one free-text answer; ``language`` is the survey's language ("da"/"en").

    Text is cut to MAX_CHARS. Empty text is neutral; text in neither language is "unknown"
    and neutral, but its cues are still reported. ``themes`` are the app's theme
    definitions (default: the ones that ship, ``forms/themes.toml``).
    """
    hint = _normalise_language(language)
    if text is None or not text.strip():
        lang = hint if hint in ("da", "en") else "unknown"
        return Sentiment(0.0, "neutral", lang, (), (), SCORER_VERSION)
    text = text[:MAX_CHARS]
    res = _resources()
    tokens = _tokenize(text)
    lang = _detect_language(tokens, hint, res)
    joined = _joined(tokens)
    cues = _find_cues(tokens, res, joined)
    items: list[_Item] = []
    polarity = 0.0
    parts: dict[str, float] = {}
    if lang in ("en", "da"):
        if lang == "en":
            parts, items = _english_parts(text, tokens, res, joined)
        else:
            parts, items = _danish_parts(tokens, res, joined)
        polarity = _combine(parts, _EN_WEIGHTS if lang == "en" else _DA_WEIGHTS)
    spans = [(it.first, it.last, it.value / _SCALE) for it in items if it.value]
    if cues and lang != "unknown":
        pull = _CUE_PULL + _CUE_PULL_MORE * (len(cues) - 1)
        polarity = max(-1.0, polarity - pull)
        spans += [(first, last, -pull / len(cues)) for _, first, last in cues]
    polarity = round(polarity, 4)
    merged: dict[tuple[int, int], float] = {}
    for first, last, weight in spans:  # a word that is also a cue is highlighted once
        merged[first, last] = merged.get((first, last), 0.0) + weight
    spans = sorted(((f, la, w) for (f, la), w in merged.items()), key=lambda s: -abs(s[2]))
    highlights = tuple(
        Highlight(text[tokens[first].start : tokens[last].end], round(max(-1, min(1, weight)), 3))
        for first, last, weight in spans[:MAX_HIGHLIGHTS]
    )
    return Sentiment(
        polarity=polarity,
        label=label_for(polarity),
        language=lang,
        highlights=highlights,
        cues=tuple(name for name, _, _ in cues),
        version=SCORER_VERSION,
        themes=find_themes(
            text,
            tokens,
            spans,
            lang,
            res.langs.get(lang),
            polarity,
            default_book() if themes is None else themes,
        ),
        mixed=bool(parts.get("mixed")) and not parts.get("sarcasm"),
    )
