"""VADER as the English score uses it, with the same results in less time.

vaderSentiment 3.3.2 (C.J. Hutto, MIT licence) lower-cases the whole text again for every
check around every sentiment word, looks negators up in a list, and walks every character
for emoji. On our texts that made it a sixth of the scorer's time. ``_Vader`` lower-cases
once per text and keeps the rest of VADER's rules as they are: the methods below follow
vaderSentiment's ``polarity_scores``, ``sentiment_valence``, ``_negation_check`` and
``_special_idioms_check`` line by line. ``tests/test_sentiment.py`` checks that the scores
equal VADER's own.
"""

from __future__ import annotations

import typing as t

from vaderSentiment import vaderSentiment as _v

_NEGATE = frozenset(_v.NEGATE)
_BOOSTERS = _v.BOOSTER_DICT
_SPECIAL = _v.SPECIAL_CASES


def _negated(word: str) -> bool:
    """vaderSentiment.negated([word]), with a set instead of a list."""
    return word in _NEGATE or "n't" in word


class _Vader(_v.SentimentIntensityAnalyzer):
    def polarity_scores(self, text: str) -> dict[str, float]:
        if not text.isascii():  # VADER's emoji are none of them ASCII
            return super().polarity_scores(text)
        sentitext = _v.SentiText(text.strip())
        words = sentitext.words_and_emoticons
        lower = [w.lower() for w in words]
        sentiments: list[float] = []
        for i, item in enumerate(lower):
            if item in _BOOSTERS or (
                item == "kind" and i < len(words) - 1 and lower[i + 1] == "of"
            ):
                sentiments.append(0)
                continue
            sentiments.append(self._valence(sentitext, words, lower, i))
        sentiments = self._but_check(words, sentiments)
        return t.cast(dict[str, float], self.score_valence(sentiments, sentitext.text))

    def _valence(self, sentitext: t.Any, words: list[str], lower: list[str], i: int) -> float:
        item, item_lower = words[i], lower[i]
        lexicon = self.lexicon
        if item_lower not in lexicon:
            return 0
        valence = lexicon[item_lower]
        if item_lower == "no" and i != len(words) - 1 and lower[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and lower[i - 1] == "no")
            or (i > 1 and lower[i - 2] == "no")
            or (i > 2 and lower[i - 3] == "no" and lower[i - 1] in ["or", "nor"])
        ):
            valence = lexicon[item_lower] * _v.N_SCALAR
        is_cap_diff = sentitext.is_cap_diff
        if item.isupper() and is_cap_diff:
            valence = valence + _v.C_INCR if valence > 0 else valence - _v.C_INCR
        for start_i in range(0, 3):
            if i > start_i and lower[i - (start_i + 1)] not in lexicon:
                s = _v.scalar_inc_dec(words[i - (start_i + 1)], valence, is_cap_diff)
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = _negation_check(valence, lower, start_i, i)
                if start_i == 2:
                    valence = _special_idioms_check(valence, lower, i)
        # _least_check
        if i > 1 and lower[i - 1] not in lexicon and lower[i - 1] == "least":
            if lower[i - 2] != "at" and lower[i - 2] != "very":
                valence = valence * _v.N_SCALAR
        elif i > 0 and lower[i - 1] not in lexicon and lower[i - 1] == "least":
            valence = valence * _v.N_SCALAR
        return valence


def _negation_check(valence: float, lower: list[str], start_i: int, i: int) -> float:
    if start_i == 0 and _negated(lower[i - 1]):
        valence = valence * _v.N_SCALAR
    if start_i == 1:
        if lower[i - 2] == "never" and (lower[i - 1] == "so" or lower[i - 1] == "this"):
            valence = valence * 1.25
        elif lower[i - 2] == "without" and lower[i - 1] == "doubt":
            pass
        elif _negated(lower[i - 2]):
            valence = valence * _v.N_SCALAR
    if start_i == 2:
        if (
            lower[i - 3] == "never"
            and (lower[i - 2] == "so" or lower[i - 2] == "this")
            or (lower[i - 1] == "so" or lower[i - 1] == "this")
        ):
            valence = valence * 1.25
        elif lower[i - 3] == "without" and (lower[i - 2] == "doubt" or lower[i - 1] == "doubt"):
            pass
        elif _negated(lower[i - 3]):
            valence = valence * _v.N_SCALAR
    return valence


def _special_idioms_check(valence: float, lower: list[str], i: int) -> float:
    # Called for i >= 3 only, as in VADER.
    onezero = f"{lower[i - 1]} {lower[i]}"
    twoonezero = f"{lower[i - 2]} {lower[i - 1]} {lower[i]}"
    twoone = f"{lower[i - 2]} {lower[i - 1]}"
    threetwoone = f"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}"
    threetwo = f"{lower[i - 3]} {lower[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in _SPECIAL:
            valence = _SPECIAL[seq]
            break
    if len(lower) - 1 > i:
        zeroone = f"{lower[i]} {lower[i + 1]}"
        if zeroone in _SPECIAL:
            valence = _SPECIAL[zeroone]
    if len(lower) - 1 > i + 1:
        zeroonetwo = f"{lower[i]} {lower[i + 1]} {lower[i + 2]}"
        if zeroonetwo in _SPECIAL:
            valence = _SPECIAL[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in _BOOSTERS:
            valence = valence + _BOOSTERS[n_gram]
    return valence
