"""VADER and TextBlob as the English score uses them, each answered without asking it when
the text has nothing it could score (they are the slow part of an English score).

Both shortcuts give exactly the library's answer: a text with none of VADER's words scores
neutral in VADER, and TextBlob assesses only the words of its lexicon, its emoticons and
"(!)", so with none of those its polarity is 0.0.
"""

from __future__ import annotations

import functools
import string
import typing as t

_NO_VADER_WORD = {"neg": 0.0, "neu": 1.0, "pos": 0.0, "compound": 0.0}


def _vader_scores(text: str, vader: t.Any) -> dict[str, float]:
    """VADER's scores; for a text with none of its words, VADER's answer without asking it
    (it would score every word 0): a third of news-like texts, and it is the slow part.

    VADER splits on white space and strips the punctuation around a word; both forms of
    every word are looked up here, so no word it could find is missed. Emoji (not ASCII)
    it translates first, so such texts always go to it.
    """
    if text.isascii():
        lexicon = vader.lexicon.keys()
        words = text.lower().split()
        if lexicon.isdisjoint(words) and lexicon.isdisjoint(
            [word.strip(_PUNCTUATION) for word in words]
        ):
            return dict(_NO_VADER_WORD) if words else vader.polarity_scores(text)
    return t.cast(dict[str, float], vader.polarity_scores(text))


_PUNCTUATION = string.punctuation


@functools.lru_cache(maxsize=1)
def _textblob_marks() -> frozenset[str]:
    """What TextBlob assesses besides its lexicon's words: its emoticons (which it compares
    in lower case) and the sarcasm mark "(!)"."""
    from textblob._text import EMOTICONS

    return frozenset({mark.lower() for marks in EMOTICONS.values() for mark in marks} | {"(!)"})


def _textblob_polarity(lexicon: t.Any, words: list[str]) -> float:
    """TextBlob's polarity of these (lower-case) words; ``lexicon`` is its Sentiment object.

    A text with no word TextBlob assesses has no assessment, whose average is 0.0.
    """
    if dict.keys(lexicon).isdisjoint(words) and _textblob_marks().isdisjoint(words):
        return 0.0
    return t.cast(float, lexicon(words)[0])
