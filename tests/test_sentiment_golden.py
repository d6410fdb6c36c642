"""Every field of score() on a sample of our own comments equals what scorer version 5 gave.

The stored scores carry SCORER_VERSION and stay valid only while the same text gets the same
answer; a change that moves one (a speed-up, a word-list edit) must be noticed here, and then
either undone or shipped with a new version and tests/data/sentiment_golden.jsonl written
again (``python tests/benchmarks/golden_sentiment.py --small tests/data/sentiment_golden.jsonl``).
The rows hold their text, so editing the labelled CSVs does not break this test.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from loyalty.sentiment import SCORER_VERSION, score

GOLDEN = Path(__file__).with_name("data") / "sentiment_golden.jsonl"


def _rows() -> list[dict]:
    return [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]


def test_golden_outputs_are_unchanged() -> None:
    rows = _rows()
    assert len(rows) > 500
    assert {row["out"]["version"] for row in rows} == {SCORER_VERSION}
    differ = []
    for row in rows:
        got = json.loads(json.dumps(dataclasses.asdict(score(row["text"], row["hint"]))))
        if got != row["out"]:
            differ.append((row["key"], row["out"], got))
    assert not differ, f"{len(differ)} of {len(rows)} differ, first: {differ[0]}"


def test_golden_sample_covers_both_languages_and_all_hints() -> None:
    rows = _rows()
    assert {row["hint"] for row in rows} == {"da", "en", None}
    assert {row["out"]["language"] for row in rows} >= {"da", "en"}
    assert any(row["out"]["themes"] for row in rows)
    assert any(row["out"]["cues"] for row in rows)
    assert any(row["out"]["mixed"] for row in rows)
