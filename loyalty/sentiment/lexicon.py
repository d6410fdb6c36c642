"""The word lists: read from AFINN, VADER, TextBlob, DDS and ``data/``, built once under a lock.

Everything the scorer and the cue finder look up lives here, in one immutable ``_Resources``
built on first use: per language the lexicon (with Danish inflected forms), negators,
intensifiers, contrast words, stopwords and the typo indexes; the emoji; and the cue phrases
compiled into regexes. ``_lookup`` reads one word against a language's lists, tolerating
elongation, typos and (Danish) word formation. Nothing here tokenizes or scores.
"""

from __future__ import annotations

import functools
import re
import threading
import tomllib
import typing as t
from dataclasses import dataclass
from pathlib import Path

#: Cue names, in the order they are reported.
CUE_NAMES = ("cancel", "refund", "switch_competitor", "not_renew", "legal")

_DATA = Path(__file__).with_name("data")
# A compound's last part needs this many letters to stand for the whole ("leverings|problemer").
_MIN_HEAD = 6
_REPEATS = re.compile(r"(\w)\1+")


@dataclass(frozen=True, eq=False)  # hashed by identity, so _lookup can be cached
class _Lang:
    """One language's word lists for the word-list scorer."""

    lexicon: dict[str, float]
    phrases: dict[str, tuple[int, ...]]  # first word of multi-word entries -> their lengths
    negators: frozenset[str]
    intensifiers: dict[str, float]
    contrast: frozenset[str]
    stopwords: frozenset[str]
    markers: frozenset[str]
    negate_before: bool
    compound_prefixes: tuple[str, ...]
    negating_prefix: str  # "u": "uhjælpsom" is the opposite of "hjælpsom" (Danish only)
    privative_suffixes: tuple[str, ...]  # "-løs", "-fri": "without" (Danish only)
    compound_heads: bool  # read an unknown compound by its last part (Danish only)
    lukewarm: frozenset[str]  # "fine", "ok", "fint": neutral when nothing else is said
    wishes: frozenset[str]  # "would be", "ville være": a positive word after them is a wish
    persons: frozenset[str]  # "I", "we": "I would be happy to ..." is no wish
    sarcasm_links: frozenset[str]  # "how", "at": "Love how nobody reads my emails"
    repeats: frozenset[str]  # "again", "igen": after a lone "Great," they are sarcasm
    loyal_verbs: frozenset[str]  # "order", "bestille": "order again" is loyalty, not sarcasm
    requests: frozenset[str]  # "please", "venligst": a request with no sentiment word is neutral
    hedges: frozenset[str]  # "so far", "indtil videre": beside courtesy words, lukewarm
    courtesy: frozenset[str]  # "thanks", "tak": no opinion beside a lukewarm word
    soft: frozenset[str]  # lukewarm | courtesy
    detect: frozenset[str]  # words that tell the language: the lexicon without DDS's forms
    known_words: frozenset[str]  # correctly spelled words never "corrected" (English only)
    deletes: dict[str, str]  # typo index: word minus one letter -> word (English only)
    squeezed: dict[str, str]  # typo index: word with repeated letters collapsed -> word


@dataclass(frozen=True)
class _Resources:
    langs: dict[str, _Lang]
    emoji: dict[str, float]
    other_stopwords: frozenset[str]
    cues: tuple[tuple[str, re.Pattern[str]], ...]
    any_cue: re.Pattern[str]  # all cue phrases in one regex: most texts have none
    suppress_before: re.Pattern[str]
    suppress_after: frozenset[str]
    not_cue: re.Pattern[str]  # phrases that look like a cue and are not ("switched to the plan")
    events: re.Pattern[str]  # failures told as events, both languages
    weak_events: re.Pattern[str]  # events that count in answer-length texts only
    praise: re.Pattern[str]  # praise in idioms, often through a negation ("can't fault")
    vader: t.Any
    textblob: t.Any


_lock = threading.Lock()
_resources_cache: _Resources | None = None


def _resources() -> _Resources:
    """Build the word lists once; importing TextBlob takes a while, so not at import time."""
    global _resources_cache
    if _resources_cache is None:
        with _lock:
            if _resources_cache is None:
                _resources_cache = _build_resources()
    return _resources_cache


def _read_afinn(language: str) -> dict[str, float]:
    """Read the AFINN word list that ships inside the ``afinn`` package (no regex build)."""
    from afinn import afinn

    path = Path(afinn.__file__).with_name("data") / afinn.LANGUAGE_TO_FILENAME[language]
    lexicon: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, _, value = line.rpartition("\t")
        if word:
            lexicon[word.strip().lower()] = float(value)
    return lexicon


# DDS words count this much of their listed polarity, and only from this strength up: the
# weak ones (+-1) are mostly news and parliament words used in a neutral sense.
_DDS_SCALE, _DDS_MIN = 0.6, 2.0


def _read_dds() -> dict[str, float]:
    """The word forms derived from DDS that AFINN-da lacks (data/dds_da.tsv, CC BY-SA 4.0)."""
    words: dict[str, float] = {}
    for line in (_DATA / "dds_da.tsv").read_text(encoding="utf-8").splitlines():
        word, _, value = line.partition("\t")
        if value and len(word) >= 3 and abs(float(value)) >= _DDS_MIN:
            words[word] = float(value) * _DDS_SCALE
    return words


def _danish_forms(lexicon: dict[str, float]) -> dict[str, float]:
    """Add inflected forms (definite, plural, -t, -e, -ede) that AFINN-da lists only once.

    Words of three letters only get -e and -t ("god" -> "gode", "godt"): their other forms
    are too often different words ("tro" -> "tror", "I think").
    """
    forms = dict(lexicon)
    for word, value in lexicon.items():
        if " " in word or len(word) < 3:
            continue
        endings = ["e", "t"]
        if len(word) >= 4:
            endings += ["s", "r", "er", "en", "et", "ne", "ene", "erne", "ere", "est", "este"]
        variants = [word + s for s in endings]
        if word.endswith("et"):
            variants += [word[:-2] + "ede", word[:-2] + "e"]
        if word.endswith("e"):
            variants += [word + "de", word + "nde", word[:-1] + "ing", word[:-1] + "inger"]
        for form in variants:
            forms.setdefault(form, value)
    return forms


def _phrase_index(lexicon: dict[str, float]) -> dict[str, tuple[int, ...]]:
    """First word of each multi-word entry -> the entries' lengths in words, longest first
    (only those lengths are worth a look-up where the word stands)."""
    sizes: dict[str, set[int]] = {}
    for entry in lexicon:
        words = entry.split()
        if len(words) > 1:
            sizes.setdefault(words[0], set()).add(len(words))
    return {word: tuple(sorted(found, reverse=True)) for word, found in sizes.items()}


def _deletes(words: t.Iterable[str]) -> dict[str, str]:
    """Index every lexicon word of 5+ letters by each one-letter deletion, for typos."""
    index: dict[str, str] = {}
    ambiguous: set[str] = set()
    for word in words:
        if len(word) < 5 or not word.isalpha():
            continue
        for i in range(len(word)):
            key = word[:i] + word[i + 1 :]
            if index.get(key, word) != word:
                ambiguous.add(key)
            index[key] = word
    for key in ambiguous:
        del index[key]
    return index


def _squeezed(lexicon: dict[str, float]) -> dict[str, str]:
    """Index lexicon words by their squeezed form, dropping forms two words share."""
    index: dict[str, str] = {}
    clashes: set[str] = set()
    for word in lexicon:
        if len(word) >= 4 and word.isalpha():
            key = _squeeze(word)
            if index.setdefault(key, word) != word:
                clashes.add(key)
    return {k: v for k, v in index.items() if k not in clashes}


def _build_resources() -> _Resources:
    from textblob.en import sentiment as textblob_sentiment
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    len(textblob_sentiment)  # TextBlob loads its lexicon lazily; do it here, under our lock
    rules = tomllib.loads((_DATA / "rules.toml").read_text(encoding="utf-8"))
    cues = tomllib.loads((_DATA / "cues.toml").read_text(encoding="utf-8"))
    feedback = tomllib.loads((_DATA / "feedback.toml").read_text(encoding="utf-8"))
    spelling = Path(textblob_sentiment.path).with_name("en-spelling.txt")
    known_en = frozenset(
        line.split()[0]
        for line in spelling.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith(";")
    )
    vader = SentimentIntensityAnalyzer()
    langs: dict[str, _Lang] = {}
    for code in ("en", "da"):
        spec = rules[code]
        lexicon = _read_afinn(code)
        if code == "da":
            lexicon = _danish_forms(lexicon)
        detect = frozenset(lexicon) | {k.lower() for k in spec.get("words", {})}
        if code == "da":  # DDS has many short words that are English too ("so", "far")
            for word, value in _read_dds().items():
                lexicon.setdefault(word, value)
        else:  # VADER's words that AFINN lacks, on AFINN's scale, so highlights find them too
            for word, value in vader.lexicon.items():
                if word.isalpha() and word not in lexicon:
                    lexicon[word] = round(value * 1.25, 2)
        lexicon.update({k.lower(): float(v) for k, v in spec.get("words", {}).items()})
        for entry in [k for k in lexicon if " " in k and "'" in k]:  # "havent needed"
            lexicon.setdefault(entry.replace("'", ""), lexicon[entry])
        if code == "en":  # our own feedback words, for our private VADER instance too
            for word, value in spec.get("words", {}).items():
                if word.isalpha():
                    vader.lexicon.setdefault(word.lower(), value / 1.25)
        negators = frozenset(spec["negators"])
        for word in negators:  # "no" is a negator here, not a negative word
            lexicon.pop(word, None)
        langs[code] = _Lang(
            lexicon=lexicon,
            phrases=_phrase_index(lexicon),
            negators=negators,
            intensifiers={k: float(v) for k, v in spec["intensifiers"].items()},
            contrast=frozenset(spec["contrast"]),
            stopwords=frozenset(spec["stopwords"]),
            markers=frozenset(spec.get("markers", ())),
            negate_before=bool(spec.get("negate_before", False)),
            compound_prefixes=tuple(spec.get("intensifying_prefixes", ())),
            negating_prefix=spec.get("negating_prefix", ""),
            privative_suffixes=tuple(spec.get("privative_suffixes", ())),
            compound_heads=bool(spec.get("compound_heads", False)),
            detect=detect,
            lukewarm=frozenset(feedback["lukewarm"][code]),
            wishes=frozenset(feedback["wishes"][code]),
            persons=frozenset(feedback["wishes"][f"persons_{code}"]),
            sarcasm_links=frozenset(feedback["sarcasm"][f"links_{code}"]),
            repeats=frozenset(feedback["sarcasm"][f"repeats_{code}"]),
            loyal_verbs=frozenset(feedback["sarcasm"][f"loyal_{code}"]),
            requests=frozenset(feedback["requests"][code]),
            hedges=frozenset(feedback["requests"][f"hedges_{code}"]),
            courtesy=frozenset(feedback["courtesy"][code]),
            soft=frozenset(feedback["lukewarm"][code] + feedback["courtesy"][code]),
            known_words=known_en if code == "en" else frozenset(),
            deletes=_deletes(lexicon) if code == "en" else {},
            squeezed=_squeezed(lexicon),
        )
    return _Resources(
        langs=langs,
        emoji={k.lower(): float(v) for k, v in rules["emoji"].items()},
        other_stopwords=frozenset(rules["other"]["stopwords"]),
        cues=tuple(
            (name, _cue_regex(cues["cues"][name]["en"] + cues["cues"][name]["da"]))
            for name in CUE_NAMES
        ),
        any_cue=_cue_regex(
            [p for name in CUE_NAMES for p in cues["cues"][name]["en"] + cues["cues"][name]["da"]]
        ),
        suppress_before=re.compile(
            r"(?:^| )(?:"
            + "|".join(re.escape(p) for p in cues["suppress"]["before"])
            + r")(?: \S+){0,3} $"
        ),
        suppress_after=frozenset(cues["suppress"]["after"]),
        not_cue=_cue_regex(cues["suppress"]["not_cues"]),
        events=_cue_regex(feedback["events"]["en"] + feedback["events"]["da"]),
        weak_events=_cue_regex(feedback["events"]["weak_en"] + feedback["events"]["weak_da"]),
        praise=_cue_regex(feedback["praise"]["en"] + feedback["praise"]["da"]),
        vader=vader,
        textblob=_plain_dict_copy(textblob_sentiment),
    )


def _plain_dict_copy(lexicon: t.Any) -> t.Any:
    """A copy of TextBlob's (loaded) lexicon that looks words up as a plain dict does.

    TextBlob's lexicon is a "lazy dict" that routes every ``word in lexicon`` and
    ``lexicon[word]`` through a Python method to load itself on first use; that costs a
    quarter of TextBlob's time here. The copy has the same class, data and attributes, with
    dict's own lookups; scores are identical.
    """
    fast_class = type(
        "_PlainSentiment",
        (type(lexicon),),
        {"__contains__": dict.__contains__, "__getitem__": dict.__getitem__},
    )
    fast: dict[str, t.Any] = dict.__new__(fast_class)
    fast.__dict__.update(lexicon.__dict__)
    dict.update(fast, dict.items(lexicon))
    return fast


# A cue or event word also matches as customers write it: "nobody" as "noone" or "no one".
_SPELLINGS = {"nobody": ("nobody", "noone", "no one"), "no one": ("no one", "noone", "nobody")}
_GAP, _STAR, _END = "(?:\\S+ ){0,3}", "\\S* ", " "


def _variants(phrase: str) -> list[list[str]]:
    """A phrase's words in every spelling: "didn't show*" is also "didnt show*"."""
    out: list[list[str]] = [[]]
    for word in phrase.replace("no one", "no_one").split():
        word = word.replace("no_one", "no one")
        forms = set(_SPELLINGS.get(word, (word,)))
        forms |= {form.replace("'", "") for form in forms if "'" in form}
        out = [done + form.split() for done in out for form in sorted(forms)]
    return out


def _cue_regex(phrases: list[str]) -> re.Pattern[str]:
    """Compile cue phrases into one regex over the space-joined lower-case words.

    "word*" is any ending, "..." up to three other words. The phrases are merged into a trie
    (common beginnings written once), so the regex tries a few first letters at each word
    rather than every phrase in turn: three times faster on texts with no cue.
    """
    trie: dict[str, t.Any] = {}
    for phrase in phrases:
        for words in _variants(phrase):
            node = trie
            for word in words:
                if word == "...":
                    atoms = [_GAP]
                elif word.endswith("*"):
                    atoms = [*word[:-1], _STAR]
                else:
                    atoms = [*word, _END]
                for atom in atoms:
                    node = node.setdefault(atom, {})
            node[""] = {}  # the phrase may end here
    return re.compile(r"(?<!\S)" + _trie_pattern(trie))


def _trie_pattern(node: dict[str, t.Any]) -> str:
    ends = "" in node
    alternatives = [
        (re.escape(atom) if len(atom) == 1 else atom) + _trie_pattern(child)
        for atom, child in node.items()
        if atom
    ]
    if not alternatives:
        return ""
    if len(alternatives) == 1 and not ends:
        return alternatives[0]
    return "(?:" + "|".join(alternatives) + ")" + ("?" if ends else "")


def _squeeze(word: str) -> str:
    """Collapse repeated letters, so "sooo", "dissapointed" and "terible" meet their word."""
    return _REPEATS.sub(r"\1", word)


@functools.lru_cache(maxsize=50_000)
def _lookup(word: str, lang: _Lang) -> tuple[float, float, str] | None:
    """Valence of one word, tolerating elongation, typos and (Danish) compounds.

    Returns (valence, multiplier from an intensifying compound prefix, word found) or None.
    Pure, so cached: the typo search for words in no list is the slow part of scoring, and
    the same words come back in every answer (lru_cache is thread-safe).
    """
    value = lang.lexicon.get(word)
    if value is not None:
        return value, 1.0, word
    if len(word) < 4 or word in lang.stopwords or word in lang.negators:
        return None
    if word not in lang.known_words and len(word) >= 5:
        fixed = lang.squeezed.get(_squeeze(word))
        if fixed is None and lang.deletes:
            fixed = lang.deletes.get(word)  # a letter left out: "awsome"
            for i in range(len(word)) if fixed is None else ():  # one too many: "greeat"
                if (cand := word[:i] + word[i + 1 :]) in lang.lexicon and len(cand) >= 5:
                    fixed = cand
                    break
        if fixed is not None:
            return lang.lexicon[fixed], 1.0, fixed
    for prefix in lang.compound_prefixes:  # "supergod", "kæmpeskuffelse"
        if word.startswith(prefix) and (head := word[len(prefix) :]) in lang.lexicon:
            return lang.lexicon[head], 1.3, word
    prefix = lang.negating_prefix
    if prefix and word.startswith(prefix) and len(word) - len(prefix) >= 5:
        value = lang.lexicon.get(word[len(prefix) :])
        if value is not None and value > 0:  # "uhjælpsom"; "u-" + a negative word is rare
            return -value, 1.0, word
    for suffix in lang.privative_suffixes:  # "hjælpe|løs", "fejl|fri", "bekymrings|løst"
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            for base in (stem, stem[:-1] if stem[-1:] in ("s", "e") else ""):
                if len(base) >= 3 and (value := lang.lexicon.get(base)) is not None:
                    return -value, 1.0, word
    if lang.compound_heads:
        # Longest known last part first. Short parts are too often a different word at the
        # end of an unrelated compound ("Frankrige" is not "rige", rich), so they must have
        # _MIN_HEAD letters, after a first part of at least three.
        for i in range(3, len(word) - _MIN_HEAD + 1):
            value = lang.lexicon.get(word[i:])
            if value is not None:
                return value, 1.0, word
    return None
