"""Storing responses and the staff page that lists them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import csrf_from

from loyalty import sentiment
from loyalty.checks import spreadsheet_safe
from loyalty.db import db
from loyalty.models import Answer
from loyalty.survey.responses import save_response


def submit(client, token, **fields):
    html = client.get(f"/s/{token}").get_data(as_text=True)
    return client.post(f"/s/{token}", data={"csrf_token": csrf_from(html), **fields})


def test_staff_see_latest_responses_with_escaped_comments(client, auth, invite):
    _, old = invite(language="da", account="Gammel A/S")
    _, new = invite(language="en", account="Ny <b>ApS</b>")
    submit(client, old, nps="9", reason="Rigtig god service")
    submit(client, new, nps="2", reason="<script>alert('x')</script> terrible")
    auth.login("executive")
    html = client.get("/responses").get_data(as_text=True)
    assert html.index("Ny &lt;b&gt;ApS&lt;/b&gt;") < html.index("Gammel A/S")  # newest first
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)" in html
    assert "Rigtig god service" in html
    assert 'class="sentiment negative"' in html


def test_every_comment_is_scored_with_the_scorer_version(app, invite):
    invitation, _ = invite(language="en")
    survey = app.extensions["loyalty.surveys"]["post-sale"]
    save_response(invitation, survey, {"nps": 3, "reason": "Awful, I want a refund"}, complete=True)
    db.session.commit()
    answer = db.session.scalar(sa.select(Answer))
    assert answer.scorer_version == sentiment.SCORER_VERSION
    assert answer.sentiment == "negative"


def test_paging_does_not_fail_on_nonsense(client, auth):
    auth.login("admin")
    assert client.get("/responses?page=999").status_code == 200
    assert client.get("/responses?page=abc").status_code == 200


def test_spreadsheet_safe():
    assert spreadsheet_safe("=cmd") == "'=cmd"
    assert spreadsheet_safe("-2+3") == "'-2+3"
    assert spreadsheet_safe("fine") == "fine"
    assert spreadsheet_safe(7) == 7


@pytest.mark.parametrize("page", ["99999999999999999999", "0", "-3", "1000001"])
def test_a_page_out_of_range_is_a_404_not_a_500(client, auth, page):
    auth.login("support")
    assert client.get(f"/responses?page={page}").status_code == 404


# --- themes (issue 12) --------------------------------------------------------------------

MIXED_DA = "Produktet er super, men faktureringen er elendig"


def test_each_answer_stores_its_themes_and_responses_filter_by_theme_and_sentiment(
    client, auth, invite
):
    from loyalty.survey.responses import stored_themes

    _, mixed = invite(language="da", account="Blandet A/S")
    _, happy = invite(language="en", account="Happy Ltd")
    _, plain = invite(language="en", account="Plain Ltd")
    submit(client, mixed, nps="6", reason=MIXED_DA)
    submit(client, happy, nps="10", reason="The invoices are always clear and correct, great")
    submit(client, plain, nps="8", reason="Thank you, all good")
    answer = db.session.scalar(sa.select(Answer).where(Answer.text == MIXED_DA))
    themes = {th["id"]: th for th in stored_themes(answer)}
    assert themes["billing"]["sentiment"] == "negative" and themes["billing"]["polarity"] < 0
    assert themes["billing"]["words"] == ["faktureringen"]
    assert themes["billing"]["evidence"] == ["elendig"]
    assert themes["quality"]["sentiment"] == "positive"
    assert answer.scorer_version == sentiment.SCORER_VERSION
    auth.login("executive")

    def listed(query: str) -> set[str]:
        html = client.get(f"/responses?{query}").get_data(as_text=True)
        return {name for name in ("Blandet A/S", "Happy Ltd", "Plain Ltd") if name in html}

    assert listed("theme=billing&sentiment=negative") == {"Blandet A/S"}
    assert listed("theme=billing&sentiment=positive") == {"Happy Ltd"}
    assert listed("theme=billing") == {"Blandet A/S", "Happy Ltd"}
    assert listed("theme=quality&sentiment=positive") == {"Blandet A/S"}
    assert listed("theme=delivery") == set()
    assert listed("sentiment=positive") == {"Happy Ltd", "Plain Ltd"} | (
        {"Blandet A/S"} if answer.sentiment == "positive" else set()
    )
    html = client.get("/responses?theme=billing&sentiment=negative").get_data(as_text=True)
    assert "1 responses" in html and ", theme billing, sentiment negative" in html
    # each comment's themes, as links to the others like it
    assert 'data-theme="billing" href="/responses?theme=billing&amp;sentiment=negative"' in html
    assert "Billing and payment: negative" in html and "Product quality: positive" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("theme=biling", "theme: must be one of delivery, billing,"),
        ("theme=billing&sentiment=angry", "sentiment: must be one of negative, neutral, positive"),
        ("sentiment=%3Cb%3E", "sentiment: must be one of"),
    ],
)
def test_a_bad_theme_filter_is_a_clear_400(client, auth, query, message):
    auth.login("executive")
    reply = client.get(f"/responses?{query}")
    assert reply.status_code == 400
    assert message in reply.get_data(as_text=True)
