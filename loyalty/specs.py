"""Definitions as data: ``forms/*.toml`` become frozen :class:`SurveySpec` objects.

Checked field by field at start-up (a broken file stops it, naming file and field), so the
people who own the wording change it in a reviewed commit without touching Python. Pure:
no Flask and no database; :mod:`loyalty.survey.forms` turns a spec into a WTForms form.
The next issue's ``reports/*.toml`` are loaded here too.
"""

from __future__ import annotations

import datetime as dt
import tomllib
import typing as t
from dataclasses import dataclass
from pathlib import Path

from .metrics import SCALES
from .outreach.scheduling import EVENT_KINDS, Schedule, parse_duration
from .sentiment.themes import ThemeBook, default_book, load_themes

#: The headline metrics a scale question may record, with the scale each is asked on.
METRICS = SCALES
KINDS = ("scale", "text")


class SurveyDefinitionError(Exception):
    """A file in forms/ is broken; the message names the file and the field."""


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    required: bool
    text: dict[str, str]
    metric: str | None = None
    min: int = 0
    max: int = 0
    low: dict[str, str] | None = None
    high: dict[str, str] | None = None

    @property
    def choices(self) -> range:
        return range(self.min, self.max + 1)


@dataclass(frozen=True, eq=False)  # hashed by identity: one object per loaded file
class SurveySpec:
    id: str
    version: int
    languages: tuple[str, ...]
    title: dict[str, str]
    intro: dict[str, str]
    email_subject: dict[str, str]
    questions: tuple[Question, ...]
    #: which events send this survey by themselves; None when it is only sent by hand
    schedule: Schedule | None = None

    @property
    def email_question(self) -> Question | None:
        """The question asked inside the email (NPS), answered by tapping a number."""
        return next((q for q in self.questions if q.metric == "nps"), None)


#: the themes file beside the surveys in forms/ (not a survey: ``load_folder`` skips it)
THEMES_FILE = "themes.toml"
THEMES_KEY = "loyalty.themes"


def load_folder(folder: str | Path) -> dict[str, SurveySpec]:
    """Load and validate every ``*.toml`` file in ``folder`` but the themes file."""
    surveys: dict[str, SurveySpec] = {}
    for path in sorted(Path(folder).glob("*.toml")):
        if path.name == THEMES_FILE:
            continue
        survey = load_file(path)
        if survey.id in surveys:
            raise SurveyDefinitionError(f"{path}: id: {survey.id!r} is used by another file")
        surveys[survey.id] = survey
    return surveys


def load_file(path: Path) -> SurveySpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SurveyDefinitionError(f"{path}: not valid TOML: {exc}") from exc
    return _Parser(path).survey(data)


class _Parser:
    """Checks one file field by field, so every error can say where it is."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> t.NoReturn:
        raise SurveyDefinitionError(f"{self.path}: {field}: {problem}")

    def get(self, data: dict[str, t.Any], key: str, kind: type, where: str, **default: t.Any):
        field = f"{where}{key}"
        if key not in data:
            if "default" in default:
                return default["default"]
            self.fail(field, "is missing")
        value = data[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            self.fail(field, f"must be {kind.__name__}, not {type(value).__name__}")
        return value

    def texts(self, data: dict, key: str, where: str, languages: tuple[str, ...]) -> dict:
        value = self.get(data, key, dict, where)
        for language in languages:
            if not isinstance(value.get(language), str) or not value[language].strip():
                self.fail(f"{where}{key}.{language}", "text is missing")
        return dict(value)

    def survey(self, data: dict[str, t.Any]) -> SurveySpec:
        known = {"id", "version", "languages", "title", "intro", "email_subject", "questions"}
        known.add("schedule")  # optional: see the [schedule] table in forms/post-sale.toml
        for key in data.keys() - known:
            self.fail(key, "unknown field")
        survey_id = self.get(data, "id", str, "")
        if survey_id != self.path.stem:
            self.fail("id", f"must match the file name {self.path.stem!r}")
        version = self.get(data, "version", int, "")
        if version < 1:
            self.fail("version", "must be 1 or more")
        languages = tuple(self.get(data, "languages", list, ""))
        if not languages or any(lang not in ("da", "en") for lang in languages):
            self.fail("languages", "must list 'da' and/or 'en'")
        raw_questions = self.get(data, "questions", list, "")
        if not raw_questions:
            self.fail("questions", "must have at least one question")
        questions = tuple(
            self.question(q, f"questions[{i}].", languages) for i, q in enumerate(raw_questions)
        )
        ids = [q.id for q in questions]
        if len(set(ids)) != len(ids):
            self.fail("questions", "question ids must be unique")
        metrics = [q.metric for q in questions if q.metric]
        if len(set(metrics)) != len(metrics):
            self.fail("questions", "each metric may be asked once")
        return SurveySpec(
            id=survey_id,
            version=version,
            languages=languages,
            title=self.texts(data, "title", "", languages),
            intro=self.texts(data, "intro", "", languages),
            email_subject=self.texts(data, "email_subject", "", languages),
            questions=questions,
            schedule=self.schedule(data["schedule"]) if "schedule" in data else None,
        )

    def schedule(self, data: t.Any) -> Schedule:
        """``[schedule]``: ``triggers = { delivery = "2d" }`` and an optional ``reminder``."""
        if not isinstance(data, dict):
            self.fail("schedule", "must be a table")
        for key in data.keys() - {"triggers", "reminder"}:
            self.fail(f"schedule.{key}", "unknown field")
        triggers = {}
        for kind, delay in self.get(data, "triggers", dict, "schedule.").items():
            if kind not in EVENT_KINDS:
                self.fail(f"schedule.triggers.{kind}", f"must be one of {', '.join(EVENT_KINDS)}")
            triggers[kind] = self.duration(delay, f"schedule.triggers.{kind}")
        reminder = data.get("reminder")
        reminder_after = None  # the configured default
        if reminder is False:
            reminder_after = dt.timedelta(0)
        elif reminder is not None:
            reminder_after = self.duration(reminder, "schedule.reminder", " (or false for none)")
            if not reminder_after:
                self.fail("schedule.reminder", "write false to send no reminder")
        return Schedule(triggers=triggers, reminder_after=reminder_after)

    def duration(self, value: t.Any, field: str, hint: str = "") -> dt.timedelta:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(field, f"{exc}{hint}")

    def question(self, data: t.Any, where: str, languages: tuple[str, ...]) -> Question:
        if not isinstance(data, dict):
            self.fail(where.rstrip("."), "must be a table")
        known = {"id", "kind", "metric", "min", "max", "required", "text", "low", "high"}
        for key in data.keys() - known:
            self.fail(f"{where}{key}", "unknown field")
        qid = self.get(data, "id", str, where)
        if not qid.isidentifier():
            self.fail(f"{where}id", "must be letters, digits and underscores")
        kind = self.get(data, "kind", str, where)
        if kind not in KINDS:
            self.fail(f"{where}kind", f"must be one of {', '.join(KINDS)}")
        common = dict(
            id=qid,
            kind=kind,
            required=self.get(data, "required", bool, where, default=False),
            text=self.texts(data, "text", where, languages),
        )
        if kind == "text":
            for key in ("metric", "min", "max", "low", "high"):
                if key in data:
                    self.fail(f"{where}{key}", "only scale questions have it")
            return Question(**common)
        low, high = self.get(data, "min", int, where), self.get(data, "max", int, where)
        if high <= low or high - low > 10:
            self.fail(f"{where}max", "must be greater than min, at most 10 steps above it")
        metric = self.get(data, "metric", str, where, default=None)
        if metric is not None:
            if metric not in METRICS:
                self.fail(f"{where}metric", f"must be one of {', '.join(METRICS)}")
            if (low, high) != METRICS[metric]:
                self.fail(f"{where}min", f"{metric} is asked on %d-%d" % METRICS[metric])
        return Question(
            **common,
            metric=metric,
            min=low,
            max=high,
            low=self.texts(data, "low", where, languages),
            high=self.texts(data, "high", where, languages),
        )


#: where ``create_app`` keeps the loaded surveys in ``app.extensions``
REGISTRY_KEY = "loyalty.surveys"


class _HasExtensions(t.Protocol):
    extensions: dict[str, t.Any]


def surveys(app: _HasExtensions) -> dict[str, SurveySpec]:
    """The app's surveys by id, as loaded and checked at start-up."""
    return app.extensions[REGISTRY_KEY]


def load_theme_book(folder: str | Path) -> ThemeBook:
    """The themes of ``folder/themes.toml``, checked (a broken file raises
    ``ThemeDefinitionError`` naming the field); a forms folder without one keeps the themes
    that ship."""
    path = Path(folder) / THEMES_FILE
    return load_themes(path) if path.is_file() else default_book()


def themes(app: _HasExtensions) -> ThemeBook:
    """The app's theme definitions, as loaded and checked at start-up."""
    return app.extensions[THEMES_KEY]


# --- reports/*.toml ---------------------------------------------------------------------------

REPORT_LANGUAGES = ("en", "da")
#: The trend kinds a panel may be drawn as.
CHARTS = ("line", "table")
#: What a report panel may split by (the rollups' columns; owner by staff member).
REPORT_SPLITS = ("segment", "language", "survey", "owner_id")
REPORTS_KEY = "loyalty.reports"


class ReportDefinitionError(SurveyDefinitionError):
    """A file in reports/ is broken; the message names the file and the field."""


@dataclass(frozen=True)
class Panel:
    """One chart of a report: a named metric by grain, perhaps split, over ``days``."""

    metric: str
    grain: str
    title: dict[str, str]
    chart: str = "line"
    split: str | None = None
    days: int = 365
    min_n: int | None = None


@dataclass(frozen=True, eq=False)
class ReportSpec:
    id: str
    title: dict[str, str]
    intro: dict[str, str]
    panels: tuple[Panel, ...]
    #: the default period of the report, in days up to today
    days: int = 365


def load_reports(folder: str | Path) -> dict[str, ReportSpec]:
    """Load and validate every ``*.toml`` file in the reports folder."""
    return {path.stem: load_report(path) for path in sorted(Path(folder).glob("*.toml"))}


def load_report(path: Path) -> ReportSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ReportDefinitionError(f"{path}: not valid TOML: {exc}") from exc
    return _ReportParser(path).report(data)


class _ReportParser(_Parser):
    def fail(self, field: str, problem: str) -> t.NoReturn:
        raise ReportDefinitionError(f"{self.path}: {field}: {problem}")

    def report(self, data: dict[str, t.Any]) -> ReportSpec:
        from .metrics import NAMED
        from .periods import GRAINS

        for key in data.keys() - {"id", "title", "intro", "days", "panels"}:
            self.fail(key, "unknown field")
        report_id = self.get(data, "id", str, "")
        if report_id != self.path.stem:
            self.fail("id", f"must match the file name {self.path.stem!r}")
        days = self.days(data, "days", "")
        title = self.texts(data, "title", "", REPORT_LANGUAGES)
        intro = self.texts(data, "intro", "", REPORT_LANGUAGES)
        panels = []
        raw_panels = self.get(data, "panels", list, "")
        if not raw_panels:
            self.fail("panels", "at least one panel is needed")
        for index, panel in enumerate(raw_panels):
            where = f"panels[{index}]."
            if not isinstance(panel, dict):
                self.fail(f"panels[{index}]", "must be a table")
            for key in panel.keys() - {
                "metric",
                "grain",
                "title",
                "chart",
                "split",
                "days",
                "min_n",
            }:
                self.fail(f"{where}{key}", "unknown field")
            metric = self.get(panel, "metric", str, where)
            if metric not in NAMED:
                self.fail(f"{where}metric", f"must be one of {', '.join(NAMED)}")
            grain = self.get(panel, "grain", str, where, default="month")
            if grain not in GRAINS:
                self.fail(f"{where}grain", f"must be one of {', '.join(GRAINS)}")
            chart = self.get(panel, "chart", str, where, default="line")
            if chart not in CHARTS:
                self.fail(f"{where}chart", f"must be one of {', '.join(CHARTS)}")
            split = self.get(panel, "split", str, where, default=None)
            if split is not None and split not in REPORT_SPLITS:
                self.fail(f"{where}split", f"must be one of {', '.join(REPORT_SPLITS)}")
            min_n = self.get(panel, "min_n", int, where, default=None)
            if min_n is not None and not 1 <= min_n <= 10_000:
                self.fail(f"{where}min_n", "must be between 1 and 10000")
            panels.append(
                Panel(
                    metric,
                    grain,
                    self.texts(panel, "title", where, REPORT_LANGUAGES),
                    chart,
                    split,
                    self.days(panel, "days", where, default=days),
                    min_n,
                )
            )
        return ReportSpec(report_id, title, intro, tuple(panels), days)

    def days(self, data: dict[str, t.Any], key: str, where: str, default: int = 365) -> int:
        value = self.get(data, key, int, where, default=default)
        if not 7 <= value <= 3660:
            self.fail(f"{where}{key}", "must be between 7 and 3660 days")
        return value


def reports(app: _HasExtensions) -> dict[str, ReportSpec]:
    """The app's reports by id, as loaded and checked at start-up."""
    return app.extensions[REPORTS_KEY]
