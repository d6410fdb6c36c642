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


def _find_cues(tokens: list[_Token], res: _Resources) -> list[tuple[str, int, int]]:
    """Return (cue name, first token, last token) for each churn/escalation cue found."""
    words = [k for k, tok in enumerate(tokens) if tok.kind == "word"]
    if not words:
        return []
    joined = "".join(tokens[k].low + " " for k in words)
    if not res.any_cue.search(joined):
        return []
    offsets, pos = [], 0
    for k in words:
        offsets.append(pos)
        pos += len(tokens[k].low) + 1
    found = []
    for name, pattern in res.cues:
        for m in pattern.finditer(joined):
            first = bisect.bisect_right(offsets, m.start()) - 1
            last = bisect.bisect_right(offsets, m.end() - 2) - 1
            if name != "not_renew":
                if res.suppress_before.search(joined[: m.start()]):
                    continue
                if first + 1 < len(words) and tokens[words[first + 1]].low in res.suppress_after:
                    continue
            found.append((name, words[first], words[last]))
            break
    return found
