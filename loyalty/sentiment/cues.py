"""Churn and escalation cues ("opsiger", "won't renew", "advokat") found in the tokens.

Kept apart from the polarity: a cue is reported by name (the flag rules read them) and pulls
the polarity negative, whatever the words around it say. The phrases themselves are
``data/cues.toml``, compiled into regexes by ``lexicon``.
"""

from __future__ import annotations

import bisect

from .lexicon import _Resources
from .tokens import _Token

# A churn/escalation cue moves polarity this far towards negative (less for each further cue).
_CUE_PULL, _CUE_PULL_MORE = 0.5, 0.15


#: the word tokens' indexes and their joined text, found once and shared by cues and events
_Joined = tuple[list[int], str]


def _joined(tokens: list[_Token]) -> _Joined:
    """The word tokens' indexes, and their lower-case text joined by spaces (what cues match)."""
    words = [k for k, tok in enumerate(tokens) if tok.kind == "word"]
    return words, " ".join([tokens[k].low for k in words]) + " " if words else ""


def _offsets(tokens: list[_Token], words: list[int]) -> list[int]:
    offsets, pos = [], 0
    for k in words:
        offsets.append(pos)
        pos += len(tokens[k].low) + 1
    return offsets


# Weak events count in texts of up to this many words (an answer, not a news sentence).
_SHORT = 12


def _find_events(
    tokens: list[_Token], res: _Resources, joined: _Joined | None = None
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Token spans (first, last) of failures told as events ("never showed up", "on hold"),
    and of praise told as idioms ("can't thank you enough", "kunne ikke have fået bedre").

    The phrases are ``data/feedback.toml``'s events and praise, in the cues' phrase syntax.
    """
    words, text = joined or _joined(tokens)
    if not words:
        return [], []
    patterns = [res.events] + ([res.weak_events] if len(words) <= _SHORT else [])
    events = [m.span() for pattern in patterns for m in pattern.finditer(text)]
    praise = [m.span() for m in res.praise.finditer(text)]
    if not events and not praise:
        return [], []
    offsets = _offsets(tokens, words)

    def spans(found: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [
            (
                words[bisect.bisect_right(offsets, start) - 1],
                words[bisect.bisect_right(offsets, end - 2) - 1],
            )
            for start, end in sorted(found)
        ]

    return spans(events), spans(praise)


def _find_cues(
    tokens: list[_Token], res: _Resources, joined: _Joined | None = None
) -> list[tuple[str, int, int]]:
    """Return (cue name, first token, last token) for each churn/escalation cue found."""
    words, text = joined or _joined(tokens)
    if not words or not res.any_cue.search(text):
        return []
    if res.not_cue.search(text):  # "switched to the yearly plan" is no churn
        text = res.not_cue.sub(lambda m: "_" * (len(m.group()) - 1) + " ", text)
    offsets = _offsets(tokens, words)
    found = []
    for name, pattern in res.cues:
        for m in pattern.finditer(text):
            first = bisect.bisect_right(offsets, m.start()) - 1
            last = bisect.bisect_right(offsets, m.end() - 2) - 1
            if name != "not_renew":
                if res.suppress_before.search(text[: m.start()]):
                    continue
                if first + 1 < len(words) and tokens[words[first + 1]].low in res.suppress_after:
                    continue
            found.append((name, words[first], words[last]))
            break
    return found
