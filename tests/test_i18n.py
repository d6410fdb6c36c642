"""The interface's own strings exist in both languages and fill in cleanly."""

from __future__ import annotations

import datetime as dt
import string

import pytest

from loyalty.i18n import TEXTS, format_date, text


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_string_has_both_languages_with_the_same_placeholders(key):
    fields = {
        lang: {f for _, f, _, _ in string.Formatter().parse(TEXTS[key][lang]) if f}
        for lang in ("da", "en")
    }
    assert fields["da"] == fields["en"]


def test_text_falls_back_to_english():
    assert text("submit", "sv") == "Send answers"


def test_dates_as_people_write_them():
    day = dt.date(2026, 12, 24)
    assert format_date(day, "da") == "24. december 2026"
    assert format_date(day, "en") == "24 December 2026"
