"""CPU time of loyalty.sentiment.score per text: our short comments and the public sets.

bench_sentiment.py gives our speed as a ratio to TextBlob's; this gives plain texts per
CPU-second, so two checkouts can be compared (run each in turn, a few times: the machine is
shared). Short comments are our own post-sale comments (tests/data/feedback*.csv and
themes*.csv, 10-40 words mostly), scored with their survey's language after one warm-up pass
(a running app has its word caches warm too). With --profile, a cProfile of the short
comments (CPU time) sorted by own time. With --against, another checkout's scorer (say, a
``git worktree`` of the commit before a change) is loaded beside this one and the two are
timed in turns, ROUNDS times per figure; its ratio is the median of the rounds' ratios, so
a change of the shared machine's load between two passes does not decide it.

    python tests/benchmarks/time_sentiment.py [--seconds 2] [--profile] [--against DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import importlib.util
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_sentiment import (  # noqa: E402
    DA_SETS,
    EN_SETS,
    REPO,
    SPEED_TEXTS,
    data_dir,
    load_sentiment,
    pin_one_core,
    read_danish,
    read_english,
)


def short_comments(language: str) -> list[str]:
    texts = []
    for path in sorted((REPO / "tests" / "data").glob(f"*_{language}.csv")):
        if path.name.startswith(("feedback", "themes")):
            with path.open(encoding="utf-8", newline="") as f:
                texts += [row["text"] for row in csv.DictReader(f)]
    return texts


ROUNDS = 5


def load_other(folder: Path):
    """Another checkout's loyalty/sentiment/, by path and under a name of its own."""
    path = folder / "loyalty" / "sentiment" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "loyalty_sentiment_other", path, submodule_search_locations=[str(path.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def rate(sentiment, texts: list[str], language: str, seconds: float) -> float:
    """Texts per CPU-second, over whole passes until ``seconds`` of CPU time are spent."""
    score = sentiment.score
    for text in texts:  # warm-up pass
        score(text, language)
    done, start = 0, time.process_time()
    while (spent := time.process_time() - start) < seconds or not done:
        for text in texts:
            score(text, language)
        done += len(texts)
    return done / spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per figure")
    parser.add_argument("--profile", action="store_true", help="profile the short comments")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--against", type=Path, help="another checkout to time in turns")
    args = parser.parse_args()
    pin_one_core()
    sentiment = load_sentiment()
    sentiment.score("warm up", "en")
    short = {lang: short_comments(lang) for lang in ("en", "da")}
    if args.profile:
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for _ in range(5):
            for lang, texts in short.items():
                for text in texts:
                    sentiment.score(text, lang)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
        return
    other = load_other(args.against) if args.against else None
    if other is not None:
        other.score("warm up", "en")
    root = data_dir()
    sets = {f"short_{lang}": (texts, lang) for lang, texts in short.items()}
    sets |= {n: ([t for t, _ in read_english(root / "en" / f)], "en") for n, f in EN_SETS.items()}
    for name, files in DA_SETS.items():
        sets[name] = ([t for t, _ in read_danish([root / "da" / f for f in files])], "da")
    figures: dict[str, dict] = {}
    for name, (texts, lang) in sets.items():
        texts = texts[:SPEED_TEXTS]
        if other is None:
            figures[name] = {"texts_per_s": round(rate(sentiment, texts, lang, args.seconds))}
            print(f"{name:12s} {figures[name]['texts_per_s']:8d} texts/s")
            continue
        ours, theirs = [], []
        for _ in range(ROUNDS):
            theirs.append(rate(other, texts, lang, args.seconds / ROUNDS))
            ours.append(rate(sentiment, texts, lang, args.seconds / ROUNDS))
        ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        figures[name] = {
            "texts_per_s": round(statistics.median(ours)),
            "against_texts_per_s": round(statistics.median(theirs)),
            "speed_up": round(ratio, 3),
        }
        print(
            f"{name:12s} {figures[name]['texts_per_s']:8d} texts/s, against "
            f"{figures[name]['against_texts_per_s']:8d}: {ratio:.2f} times"
        )
    print(json.dumps({"against": str(args.against) if other else None, "figures": figures}))


if __name__ == "__main__":
    main()
