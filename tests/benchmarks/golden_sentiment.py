"""Golden outputs of loyalty.sentiment.score: write them once, then check that none changed.

A speed-up of the scorer must not move a single score, since stored scores keep their
``SCORER_VERSION``. This scores every text of our labelled comments (tests/data/*.csv) and of
the public sets bench_sentiment.py reads, each with its own language, with no language and
with the other language (so detection and both rule sets see every text), and records every
field of each answer (polarity, label, language, highlights, cues, themes, mixed).

    python tests/benchmarks/golden_sentiment.py --write /tmp/golden.jsonl   # before a change
    python tests/benchmarks/golden_sentiment.py --check /tmp/golden.jsonl   # after it
    python tests/benchmarks/golden_sentiment.py --small tests/data/sentiment_golden.jsonl

``--small`` writes the in-repository check that tests/test_sentiment_golden.py reads (our own
comments only: the public sets stay outside the repository). --check prints the first
differences and, as a last line, JSON with the counts; the exit status is 1 on any difference.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from bench_sentiment import DA_SETS, EN_SETS, data_dir, read_danish, read_english  # noqa: E402

OTHER = {"en": "da", "da": "en"}
#: hints each of our own comments is scored with: its language, none, the other one
OWN_HINTS = ("own", None, "other")
#: of each public set, this many texts are also scored with no hint and the other language
PUBLIC_EXTRA = 1500
#: the in-repository check: every SMALL_OWN-th comment with its language, every
#: SMALL_OTHER-th also with the other hints (a few hundred texts, a few hundred kB)
SMALL_OWN, SMALL_OTHER = 4, 12


def own_comments() -> Iterator[tuple[str, str, str]]:
    """(source, text, language) of every comment in tests/data/*.csv, in a fixed order."""
    for path in sorted((REPO / "tests" / "data").glob("*.csv")):
        language = "da" if path.stem.endswith("_da") else "en"
        with path.open(encoding="utf-8", newline="") as f:
            for k, row in enumerate(csv.DictReader(f)):
                yield f"{path.name}:{k}", row["text"], language


def public_texts() -> Iterator[tuple[str, str, str]]:
    root = data_dir()
    for name, file in EN_SETS.items():
        for k, (text, _) in enumerate(read_english(root / "en" / file)):
            yield f"{name}:{k}", text, "en"
    for name, files in DA_SETS.items():
        for k, (text, _) in enumerate(read_danish([root / "da" / f for f in files])):
            yield f"{name}:{k}", text, "da"


def cases(full: bool) -> Iterator[tuple[str, str, str | None]]:
    """(key, text, hint): own comments with each hint (full: all, else a sample), then
    (full) the public sets."""
    for n, (source, text, language) in enumerate(own_comments()):
        if not full and n % SMALL_OWN:
            continue
        for hint in OWN_HINTS if full or n % SMALL_OTHER == 0 else ("own",):
            lang = language if hint == "own" else OTHER[language] if hint == "other" else None
            yield f"{source}:{hint or 'none'}", text, lang
        if full or n % SMALL_OTHER == 0:
            yield f"{source}:upper", text.upper(), language  # capitals ("TERRIBLE")
    if full:
        for source, text, language in public_texts():
            yield f"{source}:own", text, language
            if int(source.rsplit(":", 1)[1]) < PUBLIC_EXTRA:
                yield f"{source}:none", text, None
                yield f"{source}:other", text, OTHER[language]


def output(sentiment, text: str, hint: str | None) -> dict:
    """Every field of one answer, as plain JSON (floats keep their exact repr)."""
    return dataclasses.asdict(sentiment.score(text, hint))


def load_sentiment():
    sys.path.insert(0, str(REPO))
    import loyalty.sentiment as sentiment

    return sentiment


def write(path: Path, full: bool, keep_text: bool) -> int:
    sentiment = load_sentiment()
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for key, text, hint in cases(full):
            row = {"key": key, "hint": hint, "out": output(sentiment, text, hint)}
            if keep_text:
                row["text"] = text
            line = json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            f.write(line + "\n")
            count += 1
    return count


def check(path: Path, full: bool, show: int = 10) -> dict:
    sentiment = load_sentiment()
    expected = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        expected[row["key"]] = row["out"]
    digest = hashlib.sha256()
    compared = differences = missing = 0
    for key, text, hint in cases(full):
        got = output(sentiment, text, hint)
        digest.update(json.dumps(got, sort_keys=True).encode())
        if key not in expected:
            missing += 1
            continue
        compared += 1
        # compared as JSON, as written: a tuple and a list of the same items are equal
        if json.loads(json.dumps(got)) != expected[key]:
            differences += 1
            if differences <= show:
                print(f"DIFF {key} hint={hint}: {text[:80]!r}")
                print(f"  expected {json.dumps(expected[key], ensure_ascii=False)}")
                print(f"  got      {json.dumps(got, ensure_ascii=False)}")
    return {
        "compared": compared,
        "differences": differences,
        "missing": missing,
        "expected": len(expected),
        "sha256": digest.hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="write all golden outputs here")
    group.add_argument("--check", type=Path, help="compare with outputs written by --write")
    group.add_argument("--small", type=Path, help="write our own comments' outputs only")
    args = parser.parse_args()
    if args.write:
        print(json.dumps({"written": write(args.write, full=True, keep_text=False)}))
    elif args.small:
        print(json.dumps({"written": write(args.small, full=False, keep_text=True)}))
    else:
        result = check(args.check, full=True)
        print(json.dumps(result))
        sys.exit(1 if result["differences"] or result["missing"] else 0)


if __name__ == "__main__":
    main()
