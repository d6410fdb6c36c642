"""Survey definitions: every real file loads; a broken one names its file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty import create_app
from loyalty.config import PROJECT_ROOT
from loyalty.specs import SurveyDefinitionError, load_file, load_folder

GOOD = (PROJECT_ROOT / "forms" / "post-sale.toml").read_text()


def test_every_real_survey_file_loads():
    surveys = load_folder(PROJECT_ROOT / "forms")
    assert "post-sale" in surveys
    survey = surveys["post-sale"]
    assert [q.metric for q in survey.questions][:3] == ["nps", "csat", "ces"]
    assert survey.email_question.id == "nps"
    for q in survey.questions:
        assert set(q.text) == {"da", "en"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("version = 1", 'version = "one"'), "version"),
        (("version = 1", "version = 0"), "version"),
        (('id = "post-sale"', 'id = "other"'), "id"),
        (('kind = "text"', 'kind = "essay"'), "questions[3].kind"),
        (("max = 10", "max = 9"), "questions[0].min"),
        (("max = 10", "max = 12"), "questions[0].max"),
        (('text.en = "What could we do better?"', ""), "questions[4].text.en"),
        (('metric = "csat"', 'metric = "joy"'), "questions[1].metric"),
        (("required = true", 'required = "yes"'), "questions[0].required"),
        (("[title]", 'colour = "red"\n[title]'), "colour"),
        (('languages = ["da", "en"]', 'languages = ["de"]'), "languages"),
    ],
)
def test_broken_definition_names_file_and_field(tmp_path: Path, change, field):
    path = tmp_path / "post-sale.toml"
    path.write_text(GOOD.replace(*change, 1))
    with pytest.raises(SurveyDefinitionError) as error:
        load_file(path)
    assert str(error.value).startswith(f"{path}: {field}:")


def test_invalid_toml_names_the_file(tmp_path: Path):
    path = tmp_path / "post-sale.toml"
    path.write_text("id = ")
    with pytest.raises(SurveyDefinitionError, match="post-sale.toml: not valid TOML"):
        load_file(path)


def test_broken_file_stops_start_up(tmp_path: Path):
    (tmp_path / "post-sale.toml").write_text(GOOD.replace("min = 0", "min = 5"))
    with pytest.raises(SurveyDefinitionError, match=r"post-sale.toml: questions\[0\]"):
        create_app(
            {
                "FORMS_FOLDER": str(tmp_path),
                "INSTANCE_PATH": tmp_path,
                "SECRET_KEY": "x",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            }
        )


def test_the_themes_file_is_not_a_survey_and_a_broken_one_stops_start_up(tmp_path: Path):
    from loyalty.sentiment.themes import ThemeDefinitionError

    (tmp_path / "post-sale.toml").write_text(GOOD)
    themes = (PROJECT_ROOT / "forms" / "themes.toml").read_text(encoding="utf-8")
    (tmp_path / "themes.toml").write_text(themes, encoding="utf-8")
    assert list(load_folder(tmp_path)) == ["post-sale"]
    broken = themes.replace('label.en = "Billing and payment"', 'label.en = " "')
    (tmp_path / "themes.toml").write_text(broken, encoding="utf-8")
    config = {
        "FORMS_FOLDER": str(tmp_path),
        "INSTANCE_PATH": tmp_path,
        "SECRET_KEY": "x",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    with pytest.raises(ThemeDefinitionError, match=r"themes.toml: themes\[1\].label.en: "):
        create_app(config)
    # A flag rule naming a theme that is not in the file stops start-up too.
    (tmp_path / "themes.toml").write_text(themes, encoding="utf-8")
    rules = {"bill": {"theme": "biling", "sentiment": "negative"}}
    with pytest.raises(ValueError, match=r"FLAG_RULES\['bill'\]: theme 'biling' is not in"):
        create_app({**config, "FLAG_RULES": rules})
