"""CPU time of loyalty.sentiment.score per text: our short comments and the public sets.

bench_sentiment.py gives our speed as a ratio to TextBlob's; this gives plain texts per
CPU-second, so two checkouts can be compared (run each in turn, a few times: the machine is
shared). Short comments are our own post-sale comments (tests/data/feedback*.csv and
themes*.csv, 10-40 words mostly), scored with their survey's language after one warm-up pass
(a running app has its word caches warm too). With --profile, a cProfile of the short
comments (CPU time) sorted by own time.

    python tests/benchmarks/time_sentiment.py [--seconds 2] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import pstats
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
    figures: dict[str, float] = {}
    for lang, texts in short.items():
        figures[f"short_{lang}"] = rate(sentiment, texts, lang, args.seconds)
    root = data_dir()
    sets = {name: (read_english(root / "en" / f), "en") for name, f in EN_SETS.items()}
    sets |= {n: (read_danish([root / "da" / f for f in fs]), "da") for n, fs in DA_SETS.items()}
    for name, (rows, lang) in sets.items():
        figures[name] = rate(sentiment, [t for t, _ in rows[:SPEED_TEXTS]], lang, args.seconds)
    for name, value in figures.items():
        print(f"{name:12s} {value:8.0f} texts/s")
    print(json.dumps({"texts_per_s": {k: round(v) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
