"""Benchmark loyalty.sentiment against human ratings, with TextBlob, VADER and AFINN baselines.

Run from the repository root:  python tests/benchmarks/bench_sentiment.py [--fit] [--sets a,b]

Data: ../shared/data/sentiment beside the repository, or $LOYALTY_SENTIMENT_DATA (see that
folder's README). Per set it prints Pearson r against the human ratings, 3-class accuracy,
macro-F1 and texts per second on one core, for our scorer and for each baseline measured in
the same run, and our speed over TextBlob's (the issue's bar: at least half) as the median of
five rounds taken in turns on up to 3,000 of the set's texts, so a change of the shared
machine's load between two passes does not decide it; then one final line of JSON with
everything. It prints; it never asserts.

Rules (from the data README): a score > 0.05 is positive, < -0.05 negative; English gold is
the mean rating / 4 in the same band; Danish gold is the sign of the label. Tuning is allowed
on tweets and movies only; amazon, nyt and the Danish sets are test only.

--fit re-derives the weights in loyalty/sentiment/scorer.py (_EN_WEIGHTS, _DA_WEIGHTS) by least
squares on tweets + movies, each set weighing the same in total (movies has 2.5 times the rows,
and a pooled fit would mostly fit movies), and prints them; it does not edit the module.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGETS = {
    "amazon": {"r": 0.65, "acc3": 0.63},
    # The NYT r target and the LCC 3-class target are retired (issue 12): news is not our text.
    "da_lcc": {"r": 0.58},
    "da_europarl": {"r": 0.72},
    "tweets": {"texts_per_s": 3000},
}
EN_SETS = {
    "tweets": "tweets_GroundTruth.txt",
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
DA_SETS = {
    "da_lcc": [
        "lcc_sentiment/dan_mixed_2014_10K-sentences.csv",
        "lcc_sentiment/dan_newscrawl_2011_10K-sentences.csv",
    ],
    "da_europarl": ["europarl_da_sentiment/europarl-da-sentiment.csv"],
}
TUNING = ("tweets", "movies")
# Our own labelled post-sale comments (tests/data/feedback_<lang>.csv, written for this
# project): every third row (the 3rd, 6th, ...) is held out and never looked at when tuning;
# feedback_tune_<lang>.csv holds further comments for tuning only.
PRIVATE_TARGETS = {"acc3": 0.80, "flag_recall": 0.90, "false_flags": 0.15}


def load_sentiment():
    """Import loyalty/sentiment/ by path, so the benchmark needs neither Flask nor an install."""
    path = REPO / "loyalty" / "sentiment" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "loyalty_sentiment_bench", path, submodule_search_locations=[str(path.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def data_dir() -> Path:
    return Path(os.environ.get("LOYALTY_SENTIMENT_DATA") or REPO.parent / "shared/data/sentiment")


def read_english(path: Path) -> list[tuple[str, float]]:
    """id<TAB>mean rating (-4..4)<TAB>text, CRLF; the gold is the mean rating."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            _, mean, text = line.split("\t", 2)
            rows.append((text, float(mean)))
    return rows


def read_danish(paths: list[Path]) -> list[tuple[str, float]]:
    """number,valence,text; only labelled rows, without the unsure code 9 or repeated texts."""
    rows, seen = [], set()
    for path in paths:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            for row in reader:
                valence, text = row[1].strip(), row[2]
                if valence in ("", "9") or text in seen:
                    continue
                seen.add(text)
                rows.append((text, float(valence)))
    return rows


def band(x: float) -> int:
    return 1 if x > 0.05 else -1 if x < -0.05 else 0


def metrics(pred: list[float], gold: list[float], danish: bool) -> dict[str, float]:
    gold_cls = [(g > 0) - (g < 0) for g in gold] if danish else [band(g / 4) for g in gold]
    pred_cls = [band(p) for p in pred]
    f1s = []
    for c in (-1, 0, 1):
        tp = sum(p == c and g == c for p, g in zip(pred_cls, gold_cls, strict=True))
        fp = sum(p == c and g != c for p, g in zip(pred_cls, gold_cls, strict=True))
        fn = sum(p != c and g == c for p, g in zip(pred_cls, gold_cls, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    try:
        r = statistics.correlation(pred, gold)
    except statistics.StatisticsError:  # a scorer that says 0 to everything
        r = 0.0
    return {
        "r": round(r, 4),
        "acc3": round(sum(p == g for p, g in zip(pred_cls, gold_cls, strict=True)) / len(gold), 4),
        "macro_f1": round(sum(f1s) / 3, 4),
    }


def timed(fn: Callable[[str], float], texts: list[str]) -> tuple[list[float], float]:
    """Score every text; speed is texts per CPU-second of this (single-threaded) process.

    CPU time rather than wall time, so a busy shared machine slows the figures less.
    """
    start = time.process_time()
    out = [fn(t) for t in texts]
    return out, len(texts) / max(time.process_time() - start, 1e-9)


#: rounds of (TextBlob, ours) for the speed ratio, and the texts of a set each round scores
SPEED_ROUNDS = 5
SPEED_TEXTS = 3000


def speed_ratio(ours, textblob, texts: list[str]) -> tuple[float, list[float]]:
    """Our speed over TextBlob's, in texts per CPU-second, from rounds taken in turns."""
    ratios = []
    for _ in range(SPEED_ROUNDS):
        _, theirs = timed(textblob, texts)
        _, mine = timed(ours, texts)
        ratios.append(mine / max(theirs, 1e-9))
    return statistics.median(ratios), ratios


def scorers(sentiment, language: str) -> dict[str, Callable[[str], float]]:
    from afinn import Afinn
    from textblob import TextBlob
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    afinn = Afinn(language=language, emoticons=True)
    return {
        "loyalty": lambda t: sentiment.score(t, language).polarity,
        "textblob": lambda t: TextBlob(t).sentiment.polarity,
        "vader": lambda t: vader.polarity_scores(t)["compound"],
        "afinn": lambda t: math.tanh(afinn.score(t) / 5),  # same squash as ours
    }


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def solve(rows: list[list[float]], ys: list[float]) -> list[float]:
    """Least squares without numpy: normal equations, Gaussian elimination."""
    n = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
    b = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(n)]
    for col in range(n):
        piv = max(range(col, n), key=lambda k: abs(a[k][col]))
        a[col], a[piv], b[col], b[piv] = a[piv], a[col], b[piv], b[col]
        for k in range(n):
            if k != col and a[col][col]:
                f = a[k][col] / a[col][col]
                a[k] = [x - f * y for x, y in zip(a[k], a[col], strict=True)]
                b[k] -= f * b[col]
    return [b[i] / a[i][i] if a[i][i] else 0.0 for i in range(n)]


def fit(sentiment, sets: dict[str, list[tuple[str, float]]]) -> None:
    """Print the least-squares weights for the English and the word-list-only (Danish) model."""
    scorer, tokens = sentiment.scorer, sentiment.tokens
    res = sentiment.lexicon._resources()
    samples = []  # (parts, gold, weight): each tuning set weighs the same in total
    for name in TUNING:
        weight = math.sqrt(1.0 / len(sets[name]))  # rows and gold are scaled by sqrt(weight)
        for text, gold in sets[name]:
            words = tokens._tokenize(text[: sentiment.MAX_CHARS])
            parts, _ = scorer._english_parts(text, words, res)
            samples.append((parts, gold / 4, weight))
    for label, names in (
        ("_EN_WEIGHTS", list(scorer._EN_WEIGHTS)),
        ("_DA_WEIGHTS", list(scorer._DA_WEIGHTS)),
    ):
        columns = []  # (part, side): the positive and negative side get their own weight
        for part in names:
            values = [p[part] for p, _, _ in samples]
            columns += [(part, side) for side in (1, -1) if any(v * side > 0 for v in values)]
        rows = [[p[c] * wt if p[c] * s > 0 else 0.0 for c, s in columns] for p, _, wt in samples]
        w = solve(rows, [g * wt for _, g, wt in samples])
        weights = {part: [0.0, 0.0] for part in names}
        for (part, side), value in zip(columns, w, strict=True):
            weights[part][0 if side > 0 else 1] = round(value, 3)
        print(f"{label} = {json.dumps({k: tuple(v) for k, v in weights.items()})}")


def read_private(language: str, fresh: bool = False) -> list[dict[str, str]]:
    """text, label (positive/neutral/negative/mixed), must_flag (yes/no); adds "part".

    ``fresh``: feedback_fresh_<lang>.csv, written after the first tuning round of issue 12; its
    figures were read after each of the two rounds, its misreads never (--misread leaves it
    out). A second check beside the held-out rows, whose texts the tuner had written.
    feedback_tune_<lang>.csv (third round) is tuning only: all its rows are "tuned", so
    adding to it never moves a row into or out of the held-out part.
    """
    data = REPO / "tests" / "data"
    name = f"feedback_fresh_{language}.csv" if fresh else f"feedback_{language}.csv"
    with (data / name).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for k, row in enumerate(rows):
        row["part"] = "fresh" if fresh else "held_out" if k % 3 == 2 else "tuned"
    if not fresh:
        with (data / f"feedback_tune_{language}.csv").open(encoding="utf-8", newline="") as f:
            rows += [row | {"part": "tuned"} for row in csv.DictReader(f)]
    return rows


def private_metrics(sentiment, rows: list[dict[str, str]], language: str) -> dict[str, float]:
    """3-class accuracy (mixed rows left out: they have no 3-class answer), flag recall and
    false-flag rate, where a comment is flagged when it is labelled negative or has a cue; and
    how many of the rows labelled mixed the scorer calls mixed (``Sentiment.mixed``), and how
    many of the others it wrongly does."""
    hit = flagged_ok = must = false_flags = clean = three = mixed_ok = mixed_wrong = 0
    for row in rows:
        s = sentiment.score(row["text"], language)
        flagged = s.label == "negative" or bool(s.cues)
        if row["label"] == "mixed":
            mixed_ok += s.mixed
        else:
            mixed_wrong += s.mixed
        if row["label"] != "mixed":
            three += 1
            hit += s.label == row["label"]
        if row["must_flag"] == "yes":
            must += 1
            flagged_ok += flagged
        else:
            clean += 1
            false_flags += flagged
    return {
        "rows": len(rows),
        "acc3": round(hit / max(three, 1), 4),
        "flag_recall": round(flagged_ok / max(must, 1), 4),
        "false_flags": round(false_flags / max(clean, 1), 4),
        "mixed_recall": round(mixed_ok / max(len(rows) - three, 1), 4),
        "false_mixed": round(mixed_wrong / max(three, 1), 4),
    }


def private_set(sentiment, show_misread: bool = False) -> dict[str, dict]:
    """Our post-sale comments per language and part (tuned / held out / all), printed."""
    results: dict[str, dict] = {}
    for language in ("en", "da"):
        rows = read_private(language)
        parts = {
            name: [r for r in rows if name == "all" or r["part"] == name]
            for name in ("tuned", "held_out", "all")
        }
        parts["fresh"] = read_private(language, fresh=True)
        results[language] = {n: private_metrics(sentiment, rs, language) for n, rs in parts.items()}
        print(f"private feedback, {language} ({len(rows)} rows)")
        for name, m in results[language].items():
            print(
                f"  {name:8s} acc3={m['acc3']:.3f}  flag recall={m['flag_recall']:.3f}"
                f"  false flags={m['false_flags']:.3f}  mixed recall={m['mixed_recall']:.3f}"
                f"  false mixed={m['false_mixed']:.3f}  ({m['rows']} rows)"
            )
        for key, target in PRIVATE_TARGETS.items():
            value = results[language]["held_out"][key]
            ok = value <= target if key == "false_flags" else value >= target
            print(
                f"  target {key} {'<=' if key == 'false_flags' else '>='} {target} (held out): "
                f"{value} {'met' if ok else 'MISSED'}"
            )
        if show_misread:  # the tuned part only: the held-out rows stay unseen
            for row in parts["tuned"]:
                s = sentiment.score(row["text"], language)
                flagged = s.label == "negative" or bool(s.cues)
                label_ok = row["label"] == "mixed" or s.label == row["label"]
                if not label_ok or flagged != (row["must_flag"] == "yes"):
                    print(
                        f"    MISREAD {row['label']:8s} got {s.label:8s} {s.polarity:+.3f}"
                        f" {list(s.cues)} {row['text']}"
                    )
    return results


# --- themes (issue 12): per-theme precision and recall on our own labelled comments -------

THEME_DATA = REPO / "tests" / "data"
THEME_TARGETS = {"precision": 0.85, "recall": 0.75}
#: a theme is "common" (held to the targets) with at least this many labelled mentions
COMMON_THEME = 8


def theme_figures(sentiment, name: str = "themes") -> dict:
    """Per language and theme: precision, recall and the share of right signs; and the share
    of comments with no theme found. Data: tests/data/<name>_<lang>.csv, "text,themes" with
    themes as "billing:- quality:+" (0 for neutral). ``themes`` is the set the word lists
    were written against; ``themes_holdout`` was written after them and never tuned on."""
    out: dict[str, dict] = {}
    for lang in ("en", "da"):
        with (THEME_DATA / f"{name}_{lang}.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        counts: dict[str, dict[str, int]] = {}
        none_found = 0
        for row in rows:
            gold = dict(item.split(":") for item in row["themes"].split())
            found = {th.id: th.polarity for th in sentiment.score(row["text"], lang).themes}
            none_found += not found
            for theme in set(gold) | set(found):
                c = counts.setdefault(theme, {"tp": 0, "fp": 0, "fn": 0, "signs_right": 0})
                if theme in gold and theme in found:
                    c["tp"] += 1
                    sign = {"+": 1, "-": -1, "0": 0}[gold[theme]]
                    c["signs_right"] += band(found[theme]) == sign
                else:
                    c["fp" if theme in found else "fn"] += 1
        themes = {}
        for theme, c in sorted(counts.items()):
            labelled = c["tp"] + c["fn"]
            themes[theme] = {
                "labelled": labelled,
                "precision": round(c["tp"] / max(c["tp"] + c["fp"], 1), 3),
                "recall": round(c["tp"] / max(labelled, 1), 3),
                "sign_accuracy": round(c["signs_right"] / max(c["tp"], 1), 3),
                "common": labelled >= COMMON_THEME,
            }
        tp, fp, fn = (sum(c[k] for c in counts.values()) for k in ("tp", "fp", "fn"))
        right = sum(c["signs_right"] for c in counts.values())
        out[lang] = {
            "comments": len(rows),
            "no_theme_share": round(none_found / max(len(rows), 1), 3),
            "themes": themes,
            # every theme pooled (micro): the figure to read when each theme has few rows
            "all": {
                "precision": round(tp / max(tp + fp, 1), 3),
                "recall": round(tp / max(tp + fn, 1), 3),
                "sign_accuracy": round(right / max(tp, 1), 3),
            },
        }
    return out


def print_themes(figures: dict, name: str = "themes") -> None:
    for lang, fig in figures.items():
        print(
            f"{name}_{lang} ({fig['comments']} comments; no theme found in "
            f"{fig['no_theme_share']:.1%})"
        )
        for theme, m in fig["themes"].items():
            missed = [k for k, bar in THEME_TARGETS.items() if m["common"] and m[k] < bar]
            verdict = ("MISSED " + ",".join(missed)) if missed else ("met" if m["common"] else "")
            print(
                f"  {theme:14s} n={m['labelled']:3d}  precision={m['precision']:.3f}"
                f"  recall={m['recall']:.3f}  sign={m['sign_accuracy']:.3f}  {verdict}"
            )
        m = fig["all"]
        print(
            f"  {'all (pooled)':14s}        precision={m['precision']:.3f}"
            f"  recall={m['recall']:.3f}  sign={m['sign_accuracy']:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true", help="print refitted weights and stop")
    parser.add_argument("--sets", help="comma-separated subset, e.g. tweets,da_lcc")
    parser.add_argument(
        "--misread", action="store_true", help="also list misread comments of the tuned part"
    )
    args = parser.parse_args()
    pin_one_core()
    sentiment = load_sentiment()
    root = data_dir()
    sets = {name: read_english(root / "en" / f) for name, f in EN_SETS.items()}
    sets |= {name: read_danish([root / "da" / f for f in fs]) for name, fs in DA_SETS.items()}
    if args.fit:
        fit(sentiment, sets)
        return
    wanted = args.sets.split(",") if args.sets else list(sets) + ["private"]
    sentiment.score("warm up", "en")  # build the word lists outside the timings
    results: dict[str, dict] = {}
    by_language = {lang: scorers(sentiment, lang) for lang in ("en", "da")}
    private = private_set(sentiment, args.misread) if "private" in wanted else {}
    for name in (w for w in wanted if w != "private"):
        rows = sets[name]
        danish = name.startswith("da_")
        texts, gold = [t for t, _ in rows], [g for _, g in rows]
        results[name] = {"rows": len(rows), "use": "tuning" if name in TUNING else "test"}
        for scorer, fn in by_language["da" if danish else "en"].items():
            pred, speed = timed(fn, texts)
            results[name][scorer] = metrics(pred, gold, danish) | {"texts_per_s": round(speed)}
        ours = results[name]["loyalty"]
        print(f"{name} ({len(rows)} rows, {results[name]['use']})")
        for scorer in by_language["en"]:
            m = results[name][scorer]
            print(
                f"  {scorer:9s} r={m['r']:.3f}  acc3={m['acc3']:.3f}  macroF1={m['macro_f1']:.3f}"
                f"  {m['texts_per_s']:>6d} texts/s"
            )
        for key, target in TARGETS.get(name, {}).items():
            verdict = "met" if ours[key] >= target else "MISSED"
            print(f"  target {key} >= {target}: {ours[key]} {verdict}")
        # Speed depends on the machine: the issue set 3,000 texts/s where TextBlob alone did
        # about 6,000, so the same bar on any machine is half of TextBlob's speed in this run.
        # Measured in turns, so that a change of the shared machine's load between two long
        # passes does not decide it: the median of the rounds' ratios.
        fns = by_language["da" if danish else "en"]
        speed, rounds = speed_ratio(fns["loyalty"], fns["textblob"], texts[:SPEED_TEXTS])
        results[name]["speed_vs_textblob"] = round(speed, 3)
        results[name]["speed_rounds"] = [round(r, 3) for r in rounds]
        verdict = "met" if speed >= 0.5 else "MISSED"
        print(
            f"  speed vs TextBlob alone in this run: {speed:.2f} (median of "
            f"{', '.join(f'{r:.2f}' for r in rounds)}; the bar is 0.5) {verdict}"
        )
    themes = theme_figures(sentiment)
    print_themes(themes)
    holdout = theme_figures(sentiment, "themes_holdout")
    print_themes(holdout, "themes_holdout")
    print(
        json.dumps(
            {
                "scorer_version": sentiment.SCORER_VERSION,
                "data": str(root),
                "targets": TARGETS,
                "sets": results,
                "private": private,
                "private_targets": PRIVATE_TARGETS,
                "themes": themes,
                "themes_holdout": holdout,
                "theme_targets": THEME_TARGETS,
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
