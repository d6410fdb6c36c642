"""Derive loyalty/sentiment/data/dds_da.tsv from DDS (Det Danske Sentimentleksikon).

Run from the repository root:  python tests/benchmarks/derive_dds.py [path to DDS csv]

DDS 0.2 (DSL and CST, University of Copenhagen; CC BY-SA 4.0) lists 14,007 headwords with a
polarity -5..5 and all their word forms. The derived list has one line per word form:
form<TAB>polarity. What was changed: multi-word headwords and their forms are left out (the
scorer reads single words; its own phrases are in rules.toml); forms that AFINN-da (with the
scorer's inflected forms) already has are left out, so AFINN-da keeps its say; a form two
headwords share takes the mean of their polarities, rounded to a half. The derived list
carries DDS's licence and credit (data/README.md).
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO.parent / "shared/data/lexicons/da-dds/2_headword_headword_polarity.csv"
OUT = REPO / "loyalty/sentiment/data/dds_da.tsv"


def main() -> None:
    sys.path.insert(0, str(REPO))
    from loyalty.sentiment.lexicon import _danish_forms, _read_afinn

    afinn = _danish_forms(_read_afinn("da"))
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    values: dict[str, list[float]] = defaultdict(list)
    with source.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            headword, polarity = row[0], float(row[4])
            forms = ",".join(row[5:]).split(";")
            if " " in headword:
                continue
            for form in {w.strip().lower() for w in forms + [headword]}:
                if form and " " not in form and form.isalpha() and form not in afinn:
                    values[form].append(polarity)
    lines = [
        "# Derived from DDS 0.2, Det Danske Sentimentleksikon (Det Danske Sprog- og"
        " Litteraturselskab and Center for Sprogteknologi, Koebenhavns Universitet), CC BY-SA 4.0."
        " See README.md here for what was changed.",
    ]
    for form in sorted(values):
        mean = round(2 * sum(values[form]) / len(values[form])) / 2
        if mean:
            lines.append(f"{form}\t{mean:g}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines) - 1} forms -> {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
