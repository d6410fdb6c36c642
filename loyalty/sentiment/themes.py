"""Themes: what a comment is about (billing, delivery, ...), each with its own polarity.

The themes are data (``forms/themes.toml``, read and checked by :func:`load_themes`): an id, a
label per language and the words and phrases per language that signal the theme. A word may
end in ``*`` (any ending: "faktur*" is "faktura", "fakturaen", "fakturering") or start with
one (any first part of a compound: "*faktura" is "månedsfaktura"); ``not`` lists look-alikes
that are not the theme ("leverandør*" is a supplier, not a delivery); ``plain`` the theme words
that carry no sentiment of their own ("support" is positive in VADER's list).

A theme's polarity is read from the scorer's own weighted words (negation, intensifiers,
contrast and cues already applied): each sentiment word goes to the nearest theme word in its
clause, else in its sentence (a contrast word ends one), else to the only theme of the
comment. "The product is excellent but billing is a nightmare" is quality positive and billing
negative. A theme with no word of its own takes the comment's polarity when no theme has any.

Pure and thread-safe: a :class:`ThemeBook` is built once, with its regexes compiled; the only
thing it changes is its cache of which themes a word signals, a dict whose single-key reads
and writes are atomic (a word read twice by two threads gets the same answer twice).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
import re
import tomllib
import typing as t
from dataclasses import dataclass
from pathlib import Path

from .lexicon import _Lang
from .tokens import _CLAUSE_END, _Token

LANGUAGES = ("da", "en")
_SENTENCE_END = frozenset(".?!;")
_NEUTRAL_BAND = 0.05  # the scorer's; kept here so this module needs nothing of the package
_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")
_WORD = re.compile(r"\*?[^\W\d_]+(?:'[^\W\d_]+)*\*?")
_MIN_STEM = 3  # a wildcard word needs this many letters besides the star
_DEFAULT_FILE = "themes.toml"
# A theme with no sentiment word but a bare negator in its clause ("the parcel never came",
# "ingen ringede tilbage") is a complaint about it, about as strong as a mild negative word.
_FREE_NEGATION = -0.3


class ThemeDefinitionError(ValueError):
    """The themes file is broken; the message names the file and the field."""


@dataclass(frozen=True)
class ThemeSpec:
    """One theme as defined: its id, its label and its words per language."""

    id: str
    label: dict[str, str]
    words: dict[str, tuple[str, ...]]
    exclude: dict[str, tuple[str, ...]]
    #: theme words that carry no sentiment, whatever a word list says ("support", "quality")
    plain: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Theme:
    """A theme found in a comment: its own polarity, the theme words as written, and the
    sentiment words that gave it its polarity."""

    id: str
    polarity: float
    label: str
    words: tuple[str, ...]
    evidence: tuple[str, ...] = ()


class _Words(t.NamedTuple):
    """Single-word terms of one theme, by kind of wildcard."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]  # "faktur*"
    suffixes: tuple[str, ...]  # "*faktura"
    infixes: tuple[str, ...]  # "*faktur*"

    def match(self, word: str) -> bool:
        return (
            word in self.exact
            or word.startswith(self.prefixes)
            or word.endswith(self.suffixes)
            or any(part in word for part in self.infixes)
        )


class _Index(t.NamedTuple):
    """One language's themes, ready to read a comment with."""

    words: tuple[_Words, ...]  # per theme
    any_words: _Words  # every theme's words: most words are in none, and one test says so
    not_words: tuple[_Words, ...]
    phrases: re.Pattern[str] | None  # every theme's phrases, group t<theme>
    not_phrases: re.Pattern[str] | None  # every theme's look-alike phrases, group x<theme>
    anchors: frozenset[str]  # a word every phrase has: no phrase without one of them
    plain: tuple[frozenset[str], ...]
    cache: dict[str, tuple[int, ...]]  # word -> the themes it signals


@dataclass(frozen=True, eq=False)
class ThemeBook:
    """The loaded themes, indexed per language."""

    themes: tuple[ThemeSpec, ...]
    index: dict[str, _Index]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(theme.id for theme in self.themes)

    def label(self, theme_id: str, language: str = "en") -> str:
        for theme in self.themes:
            if theme.id == theme_id:
                return theme.label.get(language) or theme.label["en"]
        return theme_id


# --- the definitions --------------------------------------------------------------------


def load_themes(path: str | Path) -> ThemeBook:
    """Read and check a themes file; a missing or broken one raises ThemeDefinitionError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ThemeDefinitionError(f"{path}: the themes file is missing") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThemeDefinitionError(f"{path}: not valid TOML: {exc}") from exc
    return build_book(_parse(path, data))


def _parse(path: Path, data: dict[str, t.Any]) -> tuple[ThemeSpec, ...]:
    def fail(field: str, problem: str) -> t.NoReturn:
        raise ThemeDefinitionError(f"{path}: {field}: {problem}")

    for key in data.keys() - {"themes"}:
        fail(key, "unknown field")
    raw = data.get("themes")
    if not isinstance(raw, list):
        fail("themes", "must be a list of [[themes]] tables")
    specs, seen = [], set()
    for index, item in enumerate(raw):
        where = f"themes[{index}]"
        if not isinstance(item, dict):
            fail(where, "must be a table")
        for key in item.keys() - {"id", "label", "words", "not", "plain"}:
            fail(f"{where}.{key}", "unknown field")
        theme_id = item.get("id")
        if not isinstance(theme_id, str) or not _ID.fullmatch(theme_id):
            fail(f"{where}.id", "must be lower-case letters, digits and _ (at most 32)")
        if theme_id in seen:
            fail(f"{where}.id", f"{theme_id!r} is used by another theme")
        seen.add(theme_id)
        label = item.get("label")
        if not isinstance(label, dict):
            fail(f"{where}.label", "must be a table with da and en")
        for lang in LANGUAGES:
            if not isinstance(label.get(lang), str) or not label[lang].strip():
                fail(f"{where}.label.{lang}", "text is missing")
        words: dict[str, tuple[str, ...]] = {}
        exclude: dict[str, tuple[str, ...]] = {}
        plain: dict[str, tuple[str, ...]] = {}
        lists = (("words", words, True), ("not", exclude, False), ("plain", plain, False))
        for key, target, required in lists:
            table = item.get(key, {} if not required else None)
            if not isinstance(table, dict):
                fail(f"{where}.{key}", "must be a table with da and en word lists")
            for lang in table.keys() - set(LANGUAGES):
                fail(f"{where}.{key}.{lang}", "unknown language (da or en)")
            for lang in LANGUAGES:
                terms = table.get(lang, [] if not required else None)
                if not isinstance(terms, list) or (required and not terms):
                    fail(f"{where}.{key}.{lang}", "must be a non-empty list of words")
                target[lang] = tuple(
                    _term(term, f"{where}.{key}.{lang}[{k}]", fail) for k, term in enumerate(terms)
                )
        specs.append(ThemeSpec(theme_id, dict(label), words, exclude, plain))
    return tuple(specs)


def _term(term: t.Any, field: str, fail: t.Callable[[str, str], t.NoReturn]) -> str:
    """One word or phrase, lower case, split as the tokenizer splits ("e-mail" -> "e mail")."""
    if not isinstance(term, str) or not term.strip():
        fail(field, "must be a word or phrase")
    words = term.lower().replace("\u2019", "'").replace("-", " ").split()
    for word in words:
        if not _WORD.fullmatch(word):
            fail(field, f"{word!r}: letters only, with * at the start or end")
        if "*" in word and len(word.strip("*")) < _MIN_STEM:
            fail(field, f"{word!r}: a word with * needs at least {_MIN_STEM} letters")
    return " ".join(words)


def _term_regex(term: str) -> str:
    parts = []
    for word in term.split():
        head = "\\S*" if word.startswith("*") else ""
        tail = "\\S*" if word.endswith("*") else ""
        parts.append(head + re.escape(word.strip("*")) + tail)
    return " ".join(parts)


def build_book(themes: tuple[ThemeSpec, ...]) -> ThemeBook:
    """Index each language's terms: single words by their kind of wildcard (read once per
    distinct word, then cached), phrases in one regex over the space-joined words.

    Words are matched theme by theme, so one word can signal two themes
    ("ordrebekræftelse" is ordering and communication); a theme's look-alikes ("no
    complaints") hide only that theme's words.
    """
    index: dict[str, _Index] = {}
    for lang in LANGUAGES:
        words: list[_Words] = []
        not_words: list[_Words] = []
        plain: list[frozenset[str]] = []
        phrases: dict[str, list[str]] = {}
        not_phrases: dict[str, list[str]] = {}
        anchors: set[str] = set()
        for number, theme in enumerate(themes):
            for terms, singles, multi in (
                (theme.words[lang], words, phrases),
                (theme.exclude[lang], not_words, not_phrases),
            ):
                singles.append(_single_words([w for w in terms if " " not in w]))
                several = [w for w in terms if " " in w]
                if several:
                    multi[f"{'t' if multi is phrases else 'x'}{number}"] = several
                for phrase in several:
                    literal = [w for w in phrase.split() if "*" not in w]
                    anchors.add(max(literal, key=len) if literal else "")
            plain.append(frozenset(theme.plain[lang]))
        every = [w for theme in themes for w in theme.words[lang] if " " not in w]
        index[lang] = _Index(
            tuple(words),
            _single_words(every),
            tuple(not_words),
            _groups(phrases),
            _groups(not_phrases),
            frozenset(anchors),
            tuple(plain),
            {},
        )
    return ThemeBook(tuple(themes), index)


def _single_words(terms: list[str]) -> _Words:
    def kind(starts: bool, ends: bool) -> tuple[str, ...]:
        return tuple(
            w.strip("*") for w in terms if (w[0] == "*") == starts and (w[-1] == "*") == ends
        )

    return _Words(
        frozenset(kind(False, False)), kind(False, True), kind(True, False), kind(True, True)
    )


def _groups(groups: dict[str, list[str]]) -> re.Pattern[str] | None:
    if not groups:
        return None
    alternatives = (
        f"(?P<{name}>" + "|".join(map(_term_regex, sorted(terms, key=lambda w: -len(w)))) + ")"
        for name, terms in groups.items()
    )
    return re.compile(r"(?<!\S)(?:" + "|".join(alternatives) + r")(?!\S)")


@functools.lru_cache(maxsize=1)
def default_book() -> ThemeBook:
    """The themes that ship with the app: ``forms/themes.toml`` of the checkout, or the
    copy a wheel carries inside the package (as ``config.bundled_folder`` finds forms/)."""
    here = Path(__file__).resolve()
    checkout = here.parents[2] / "forms" / _DEFAULT_FILE
    wheel = here.parents[1] / "forms" / _DEFAULT_FILE
    return load_themes(checkout if checkout.is_file() else wheel)


# --- finding them in a comment ----------------------------------------------------------


def find_themes(
    text: str,
    tokens: list[_Token],
    spans: t.Sequence[tuple[int, int, float]],
    language: str,
    rules: _Lang | None,
    polarity: float,
    book: ThemeBook,
) -> tuple[Theme, ...]:
    """The themes of one scored comment; ``spans`` are the scorer's (first, last, weight),
    ``rules`` the language's word lists (contrast words and negators)."""
    index = book.index.get(language)
    if index is None:
        return ()
    words = [k for k, tok in enumerate(tokens) if tok.kind == "word"]
    if not words:
        return ()
    mentions, plain = _mentions(index, tokens, words)
    if not mentions:
        return ()
    contrast = rules.contrast if rules else frozenset()
    where = _clauses(tokens, contrast)
    free: set[int] = set()  # clauses with a negator that negates no sentiment word
    negators = []
    if rules and not rules.negators.isdisjoint([tok.low for tok in tokens]):
        negators = [k for k, tok in enumerate(tokens) if tok.low in rules.negators]
    if negators:  # "nobody called back"
        covered = {k for first, last, _ in spans for k in range(first, last + 1)}
        free = {where[k][0] for k in negators if k not in covered}
    found = sorted({theme for theme, _, _ in mentions})
    evidence: dict[int, list[tuple[int, int, float]]] = {theme: [] for theme in found}
    for span in spans:
        if span[:2] in plain:
            continue
        theme = _owner(span, mentions, where, len(found) == 1)
        if theme is not None:
            evidence[theme].append(span)
    # One word of two themes ("Ordrebekræftelsen": ordering and communication): what is
    # said of the word is said of both.
    sharing: dict[tuple[int, int], set[int]] = {}
    for theme, first, last in mentions:
        sharing.setdefault((first, last), set()).add(theme)
    owned = {theme: list(spans_of) for theme, spans_of in evidence.items()}
    for theme in found:
        if not owned[theme]:
            others = {o for th, f, la in mentions if th == theme for o in sharing[(f, la)]}
            evidence[theme] = [span for other in sorted(others) for span in owned[other]]
    any_evidence = any(evidence.values())
    result = []
    for theme in found:
        own = evidence[theme]
        if own:
            value = math.tanh(sum(w for _, _, w in own) / math.sqrt(len(own)))
        elif any(where[f][0] in free for th, f, _ in mentions if th == theme):
            value = min(polarity, _FREE_NEGATION)
        else:
            value = polarity if not any_evidence else 0.0
        value = round(max(-1.0, min(1.0, value)), 3)
        result.append(
            Theme(
                id=book.themes[theme].id,
                polarity=value,
                label=_label(value),
                words=_unique(text, tokens, [(f, la) for th, f, la in mentions if th == theme]),
                evidence=_unique(text, tokens, [(f, la) for f, la, _ in own]),
            )
        )
    return tuple(result)


def _mentions(
    index: _Index, tokens: list[_Token], words: list[int]
) -> tuple[list[tuple[int, int, int]], set[tuple[int, int]]]:
    """(theme, first token, last token) of every theme word or phrase; and the spans of
    those that carry no sentiment of their own (the theme's ``plain`` words)."""
    mentions: list[tuple[int, int, int]] = []
    plain: set[tuple[int, int]] = set()
    cache = index.cache
    lows = [tokens[k].low for k in words]
    # most words signal no theme, and are known: only the cache's own look-up for them
    for k, low, found in zip(words, lows, map(cache.get, lows), strict=True):
        if found is None:
            found = (
                tuple(
                    number
                    for number, (terms, hidden) in enumerate(
                        zip(index.words, index.not_words, strict=True)
                    )
                    if terms.match(low) and not hidden.match(low)
                )
                if index.any_words.match(low)
                else ()
            )
            if len(cache) > 50_000:  # words in no list keep coming: start again
                cache.clear()
            cache[low] = found
        for number in found:
            mentions.append((number, k, k))
            if low in index.plain[number]:
                plain.add((k, k))
    if index.phrases is None or ("" not in index.anchors and index.anchors.isdisjoint(lows)):
        return mentions, plain
    joined = " ".join(lows) + " "
    offsets, pos = [], 0
    for low in lows:
        offsets.append(pos)
        pos += len(low) + 1

    def token_span(a: int, b: int) -> tuple[int, int]:
        return (
            words[bisect.bisect_right(offsets, a) - 1],
            words[bisect.bisect_right(offsets, b - 1) - 1],
        )

    hidden: list[tuple[int, int, int]] = []
    if index.not_phrases is not None:
        for m in index.not_phrases.finditer(joined):
            hidden.append((int(t.cast(str, m.lastgroup)[1:]), *token_span(*m.span())))
    for m in index.phrases.finditer(joined):
        number = int(t.cast(str, m.lastgroup)[1:])
        first, last = token_span(*m.span())
        mentions = [  # the phrase holds the theme's single word: "customer service"
            mention
            for mention in mentions
            if not (mention[0] == number and first <= mention[1] <= last)
        ]
        mentions.append((number, first, last))
        if m.group() in index.plain[number]:
            plain.add((first, last))
    if hidden:
        mentions = [
            (number, first, last)
            for number, first, last in mentions
            if not any(h == number and a <= last and first <= b for h, a, b in hidden)
        ]
    return mentions, plain


def _clauses(tokens: list[_Token], contrast: frozenset[str]) -> list[tuple[int, int, int]]:
    """Each token's clause (ended by punctuation or a contrast word), sentence (ended by
    . ? ! ; or a contrast word: "great product, but billing ..." are two) and part (ended by
    a contrast word only).

    A contrast word starts a new clause, sentence and part itself; punctuation starts them
    after it. So each number is a running count, summed with map() and accumulate() rather
    than token by token.
    """
    lows = [tok.low for tok in tokens]
    parts = list(itertools.accumulate(map(contrast.__contains__, lows), initial=0))[1:]
    ends = itertools.accumulate(map(_CLAUSE_END.__contains__, lows), initial=0)
    stops = itertools.accumulate(map(_SENTENCE_END.__contains__, lows), initial=0)
    clauses, sentences = map(operator.add, parts, ends), map(operator.add, parts, stops)
    return list(zip(clauses, sentences, parts, strict=True))


def _owner(
    span: tuple[int, int, float],
    mentions: list[tuple[int, int, int]],
    where: list[tuple[int, int, int]],
    only_one: bool,
) -> int | None:
    """The theme a sentiment span belongs to: the nearest mention in its clause, else in its
    sentence, else the comment's only theme unless a contrast word stands between them. On a
    tie the mention before it wins: "Fakturaen var fin og leveringen hurtig" (tried both
    ways on the labelled comments: the same figures, so the reading that is right here)."""
    first, last, _ = span
    for level in (0, 1):
        near = [m for m in mentions if where[m[1]][level] == where[first][level]]
        if near:

            def distance(m: tuple[int, int, int]) -> tuple[int, int]:
                if m[1] <= last and first <= m[2]:
                    return (0, 0)  # the sentiment word is a theme word: "overpriced"
                gap = m[1] - last if m[1] > last else first - m[2]
                return (gap, 1 if m[1] > last else 0)

            return min(near, key=distance)[0]
    if only_one and where[mentions[0][1]][2] == where[first][2]:
        return mentions[0][0]
    return None


def _unique(text: str, tokens: list[_Token], spans: t.Iterable[tuple[int, int]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for first, last in sorted(spans):
        seen.setdefault(text[tokens[first].start : tokens[last].end], None)
    return tuple(seen)


def _label(polarity: float) -> str:
    if polarity > _NEUTRAL_BAND:
        return "positive"
    if polarity < -_NEUTRAL_BAND:
        return "negative"
    return "neutral"
