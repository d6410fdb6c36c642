"""The public survey: opening, answering, changing, bad input and unsubscribing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from conftest import csrf_from

from loyalty.db import db
from loyalty.models import Answer, Contact, Response, utcnow

COMPLETE = {"nps": "9", "csat": "5", "ces": "6", "reason": "Fast delivery", "improve": ""}


def answer(client, token: str, **fields: str):
    page = client.get(f"/s/{token}")
    data = {"csrf_token": csrf_from(page.get_data(as_text=True)), **COMPLETE, **fields}
    return client.post(f"/s/{token}", data=data)


def stored() -> list[Response]:
    return db.session.scalars(sa.select(Response)).all()


@pytest.mark.parametrize(
    ("language", "heading", "button"),
    [("da", "Hvor sandsynligt er det", "Send svar"), ("en", "How likely is it", "Send answers")],
)
def test_page_speaks_the_contacts_language(client, invite, language, heading, button):
    _, token = invite(language=language)
    page = client.get(f"/s/{token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'<html lang="{language}">' in html
    assert heading in html and button in html
    assert html.count('type="radio" name="nps"') == 11
    assert "<fieldset" in html and "<legend>" in html


def test_opening_the_page_stores_nothing(client, invite):
    _, token = invite()
    client.get(f"/s/{token}")
    client.get(f"/s/{token}?nps=3")
    assert stored() == []


def test_score_tapped_in_email_is_preselected(client, invite):
    _, token = invite()
    html = client.get(f"/s/{token}?nps=7").get_data(as_text=True)
    assert 'id="nps-7" value="7"\n               checked' in html or 'value="7"\n' in html
    assert html.count("checked") == 1
    assert "data-partial-url" in html
    # A tapped score that is not on the scale is ignored, not an error.
    html = client.get(f"/s/{token}?nps=11").get_data(as_text=True)
    assert "checked" not in html


def test_complete_answer_is_stored_with_version_and_sentiment(client, invite):
    invitation, token = invite(language="en")
    reply = answer(client, token, reason="Terrible support, nobody answers the phone.")
    assert reply.status_code == 303
    assert reply.headers["Location"].endswith(f"/s/{token}/thanks")
    (response,) = stored()
    assert (response.nps, response.csat, response.ces) == (9, 5, 6)
    assert response.survey_version == 1 and response.complete
    (comment,) = response.answers
    assert comment.question == "reason"
    assert comment.sentiment == "negative" and comment.polarity < 0
    assert comment.scorer_version is not None
    assert invitation.answered_at is not None
    thanks = client.get(reply.headers["Location"])
    assert "Thank you" in thanks.get_data(as_text=True)


def test_customer_can_change_the_answer(client, invite):
    _, token = invite()
    answer(client, token, nps="3", reason="Slow")
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "already answered" in page and ">Slow</textarea>" in page
    answer(client, token, nps="10", reason="", improve="Nothing")
    (response,) = stored()
    assert response.nps == 10
    assert [a.question for a in response.answers] == ["improve"]


def test_partial_save_keeps_tapped_score_but_never_overwrites_a_full_answer(client, invite):
    _, token = invite()
    html = client.get(f"/s/{token}?nps=4").get_data(as_text=True)
    reply = client.post(f"/s/{token}/partial", data={"nps": "4", "csrf_token": csrf_from(html)})
    assert reply.status_code == 204
    (response,) = stored()
    assert response.nps == 4 and not response.complete
    answer(client, token, nps="8")
    client.post(f"/s/{token}/partial", data={"nps": "1", "csrf_token": csrf_from(html)})
    db.session.expire_all()
    (response,) = stored()
    assert response.nps == 8 and response.complete


def test_partial_save_needs_csrf_and_a_valid_score(client, invite):
    _, token = invite()
    html = client.get(f"/s/{token}").get_data(as_text=True)
    assert client.post(f"/s/{token}/partial", data={"nps": "4"}).status_code == 400
    bad = client.post(f"/s/{token}/partial", data={"nps": "x", "csrf_token": csrf_from(html)})
    assert bad.status_code == 422
    assert stored() == []


@pytest.mark.parametrize(
    "token",
    [
        "unknown" + "A" * 36,  # well-formed, never issued
        "short",
        "../../etc/passwd",
        "%00" * 20,
        "A" * 500,
    ],
)
def test_bad_tokens_all_get_the_same_page(client, invite, token):
    invite()
    page = client.get(f"/s/{token}")
    assert page.status_code == 404
    assert "link" in page.get_data(as_text=True).lower()
    assert client.post(f"/s/{token}", data=COMPLETE).status_code == 404


def test_expired_invitation_gets_the_same_page(client, invite):
    invitation, token = invite(due_at=utcnow() - dt.timedelta(days=31))
    unknown = client.get("/s/" + "B" * 43)
    expired = client.get(f"/s/{token}")
    assert expired.status_code == unknown.status_code == 404
    assert expired.get_data() == unknown.get_data()


def test_danish_visitor_with_bad_link_gets_danish_page(client):
    page = client.get("/s/nope", headers={"Accept-Language": "da-DK,da;q=0.9"})
    assert "Linket virker ikke" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "status", "message_da"),
    [
        ({"nps": ""}, 422, "Besvar venligst dette spørgsmål."),
        ({"nps": "11"}, 422, "Vælg et helt tal fra 0 til 10."),
        ({"nps": "-1"}, 422, "Vælg et helt tal fra 0 til 10."),
        ({"nps": "seven"}, 422, "Vælg et helt tal fra 0 til 10."),
        ({"nps": "7.5"}, 422, "Vælg et helt tal fra 0 til 10."),
        ({"csat": "0"}, 422, "Vælg et helt tal fra 1 til 5."),
        ({"ces": "8"}, 422, "Vælg et helt tal fra 1 til 7."),
        ({"reason": "x" * 5001}, 422, "der er plads til 5000"),
        # The comment box's maxlength counts UTF-16 units: 2,501 emoji are 5,002 of them.
        ({"reason": "\U0001f600" * 2501}, 422, "Teksten er på 5002 tegn"),
        ({"reason": "nul\x00byte"}, 422, "tegn, vi ikke kan læse"),
        ({"csrf_token": "forged"}, 400, "Vi kunne ikke bekræfte, at svaret kom fra"),
    ],
)
def test_bad_answers_get_a_clear_message_and_keep_what_was_stored(
    client, invite, fields, status, message_da
):
    _, token = invite(language="da")
    answer(client, token, nps="6", reason="Første svar")
    reply = answer(client, token, **fields)
    html = reply.get_data(as_text=True)
    assert reply.status_code == status
    assert message_da in html
    assert '<html lang="da">' in html
    db.session.expire_all()
    (response,) = stored()
    assert response.nps == 6
    assert response.answers[0].text == "Første svar"


def test_missing_csrf_token_keeps_the_customers_text(client, invite):
    _, token = invite()
    reply = client.post(f"/s/{token}", data={**COMPLETE, "reason": "Keep <me>"})
    assert reply.status_code == 400
    assert "Keep &lt;me&gt;</textarea>" in reply.get_data(as_text=True)
    assert stored() == []


def test_a_customer_whose_browser_keeps_no_cookies_can_answer(app, invite):
    """The form's token is bound to the link, so no session cookie is needed (issue 13)."""
    _, token = invite()
    cookieless = app.test_client(use_cookies=False)
    page = cookieless.get(f"/s/{token}?nps=9")
    assert "Set-Cookie" not in page.headers  # nothing to block, nothing to lose
    form_token = csrf_from(page.get_data(as_text=True))
    partial = cookieless.post(f"/s/{token}/partial", data={"nps": "9", "csrf_token": form_token})
    assert partial.status_code == 204
    reply = cookieless.post(f"/s/{token}", data={"csrf_token": form_token, **COMPLETE})
    assert reply.status_code == 303
    assert reply.headers["Location"].endswith(f"/s/{token}/thanks")
    db.session.expire_all()
    (response,) = stored()
    assert (response.nps, response.csat, response.complete) == (9, 5, True)


def test_a_form_token_opens_only_its_own_link(client, invite):
    _, token = invite()
    _, other = invite()
    others_token = csrf_from(client.get(f"/s/{other}").get_data(as_text=True))
    for sent in (others_token, "", "ÆØÅ", "0" * 64):
        reply = client.post(f"/s/{token}", data={**COMPLETE, "csrf_token": sent})
        assert reply.status_code == 400
        html = reply.get_data(as_text=True)
        assert "We could not confirm that the answer came from the survey page" in html
        assert "too old" not in html
        # The page shown again carries this link's own token, so sending again works.
        assert csrf_from(html) != others_token
        partial = client.post(f"/s/{token}/partial", data={"nps": "4", "csrf_token": sent})
        assert partial.status_code == 400
    assert stored() == []


def test_staff_posts_still_need_their_session_token(client, invite, auth):
    """Only the survey routes check the link-bound token; staff forms keep Flask-WTF's."""
    _, token = invite()
    survey_token = csrf_from(client.get(f"/s/{token}").get_data(as_text=True))
    auth.login("support")
    assert client.post("/logout", data={}).status_code == 400
    assert client.post("/logout", data={"csrf_token": survey_token}).status_code == 400
    assert client.get("/triage").status_code == 200  # still signed in
    staff_token = csrf_from(client.get("/triage").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": staff_token}).status_code in (302, 303)


@pytest.mark.parametrize(
    ("language", "fields", "summary"),
    [
        ("en", {"nps": ""}, "There is 1 problem with your answers."),
        ("en", {"nps": "", "csat": "9"}, "There are 2 problems with your answers."),
        ("da", {"nps": ""}, "Der er 1 fejl i dine svar. Ret venligst det markerede spørgsmål"),
        ("da", {"nps": "", "reason": "x" * 5001}, "Ret venligst de markerede spørgsmål"),
    ],
)
def test_error_summary_counts_in_words_and_links_each_error_to_its_field(
    client, invite, language, fields, summary
):
    _, token = invite(language=language)
    html = answer(client, token, **fields).get_data(as_text=True)
    assert summary in html
    assert "There are 1 " not in html
    assert re.search(
        r'<div class="error-summary" role="alert" tabindex="-1" id="errors" autofocus>', html
    )
    links = re.findall(r'<li><a href="#([^"]+)">([^<]+)</a></li>', html)
    assert len(links) == len(fields)
    for target, _ in links:
        assert f'id="{target}"' in html  # each link leads to a field on the page
    assert ("nps-0" in dict(links)) and "onclick" not in html


def test_invalid_utf8_is_refused(client, invite):
    _, token = invite(language="en")
    csrf = csrf_from(client.get(f"/s/{token}").get_data(as_text=True))
    body = f"csrf_token={csrf}&nps=5&reason=%FF%FEbad".encode()
    reply = client.post(f"/s/{token}", data=body, content_type="application/x-www-form-urlencoded")
    assert reply.status_code == 422
    assert "characters we cannot read" in reply.get_data(as_text=True)
    assert stored() == []


def test_oversized_body_gets_413_in_customers_language(client, invite, app):
    _, token = invite(language="da")
    too_big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    reply = client.post(f"/s/{token}", data={"nps": "5", "reason": too_big})
    assert reply.status_code == 413
    assert "for stort" in reply.get_data(as_text=True)


def test_customer_text_is_escaped_when_shown_back(client, invite):
    _, token = invite()
    answer(client, token, reason="<script>alert(1)</script>")
    html = client.get(f"/s/{token}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_reused_question_html_never_carries_one_customers_answer_to_another(client, invite):
    """Question blocks without typed text or errors are rendered once and reused."""
    _, first = invite(language="en")
    _, second = invite(language="en")
    _, danish = invite(language="da")
    assert client.get(f"/s/{first}?nps=3").get_data(as_text=True).count("checked") == 1
    assert "checked" not in client.get(f"/s/{second}").get_data(as_text=True)
    answer(client, first, nps="4", reason="<b>Slow</b> delivery")
    html = client.get(f"/s/{first}").get_data(as_text=True)
    assert "&lt;b&gt;Slow&lt;/b&gt; delivery" in html and html.count("checked") == 3  # 3 scales
    for token in (second, danish):
        html = client.get(f"/s/{token}?nps=3").get_data(as_text=True)
        assert "Slow" not in html and html.count("checked") == 1
    assert 'lang="da"' in html and "Hvor sandsynligt" in html


def test_unsubscribe_asks_first_then_works(client, invite):
    from loyalty.outreach.invitations import unsubscribe_url

    invitation, _ = invite(language="da")
    path = unsubscribe_url(invitation.contact).removeprefix("http://survey.test")
    page = client.get(path)
    assert page.status_code == 200 and "Ja, afmeld mig" in page.get_data(as_text=True)
    assert db.session.get(Contact, invitation.contact_id).unsubscribed_at is None
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    db.session.expire_all()
    assert db.session.get(Contact, invitation.contact_id).unsubscribed_at is not None
    assert client.get("/u/forged-token").status_code == 404


def test_answers_table_has_no_orphans_after_changes(client, invite):
    _, token = invite()
    answer(client, token, reason="a", improve="b")
    answer(client, token, reason="", improve="")
    assert db.session.scalar(sa.select(sa.func.count(Answer.id))) == 0


def test_wrong_method_is_a_clear_405(client, invite):
    _, token = invite()
    reply = client.put(f"/s/{token}", headers={"Accept-Language": "en"})
    assert reply.status_code == 405 and "cannot be used that way" in reply.text
    assert set(reply.headers["Allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize("score", ["5.9", "+5", " 5", "٥", "05.0", "1e1"])
def test_a_score_is_a_whole_number_written_as_one(client, invite, score):
    _, token = invite(language="en")
    reply = answer(client, token, nps=score)
    assert reply.status_code == 422 and stored() == []


@pytest.mark.parametrize(
    "body", [{"nps": True}, {"nps": 5.9}, {"nps": 9, "reason": 123}, {"reason": {}}]
)
def test_the_survey_takes_a_form_not_json(client, invite, body):
    _, token = invite(language="en")
    page = client.get(f"/s/{token}").get_data(as_text=True)
    reply = client.post(f"/s/{token}", json={"csrf_token": csrf_from(page), **COMPLETE, **body})
    assert reply.status_code == 415 and stored() == []
    partial = client.post(f"/s/{token}/partial", json={"nps": 9})
    assert partial.status_code in (400, 422) and stored() == []


def test_an_unsubscribed_contacts_link_opens_nothing(client, invite):
    from loyalty.models import utcnow

    invitation, token = invite(language="en")
    assert answer(client, token, nps="4").status_code == 303
    invitation.contact.unsubscribed_at = utcnow()
    db.session.commit()
    page = client.get(f"/s/{token}", headers={"Accept-Language": "en"})
    assert page.status_code == 404 and "This link does not work" in page.get_data(as_text=True)
    assert answer_raw(client, token).status_code == 404
    db.session.expire_all()
    (response,) = stored()
    assert response.nps == 4  # what they said before stays as it was


def answer_raw(client, token: str):
    return client.post(f"/s/{token}", data={**COMPLETE, "nps": "10"})


def test_survey_pages_are_never_cached(client, invite):
    _, token = invite(language="en")
    assert client.get(f"/s/{token}").headers["Cache-Control"] == "no-store"
    assert answer(client, token).headers["Cache-Control"] == "no-store"


def test_many_unknown_links_from_one_client_get_429_and_real_links_still_open(app, invite):
    """300 guessed tokens in a minute all got 404; past the limit a client is told to wait,
    counted in the database (every worker sees it), and a real link opens for anyone."""
    from loyalty.models import LinkMiss

    _, token = invite()
    guesser = app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    limit = app.config["LINK_MISS_LIMIT"]
    statuses = [guesser.get(f"/s/{'x' * 43}{i}").status_code for i in range(limit)]
    assert statuses == [404] * limit
    refused = guesser.get(f"/s/{'y' * 43}")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= app.config["LINK_MISS_WINDOW"] + 1
    assert "Vent lidt" in refused.get_data(as_text=True)  # no Accept-Language: Danish
    assert guesser.post(f"/u/{'z' * 20}").status_code == 429
    assert guesser.get(f"/s/{token}").status_code == 200  # a real link is never refused

    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert other.get(f"/s/{'x' * 44}").status_code == 404

    # After the window the guesser's misses are gone.
    for miss in db.session.scalars(sa.select(LinkMiss)):
        miss.at -= dt.timedelta(seconds=app.config["LINK_MISS_WINDOW"] + 1)
    db.session.commit()
    assert guesser.get(f"/s/{'x' * 44}").status_code == 404


def test_a_comment_is_counted_as_the_comment_box_counts_it(client, invite):
    """2,500 emoji fill the box (5,000 UTF-16 units) and are accepted; a line break sent as
    CRLF counts once, as the browser counted it."""
    _, token = invite()
    assert answer(client, token, reason="\U0001f600" * 2500).status_code == 303
    assert answer(client, token, reason="a\r\n" * 2500).status_code == 303


def test_behind_a_proxy_the_link_limit_counts_the_forwarded_client(app, invite):
    """Behind nginx every request comes from 127.0.0.1; with PROXY_HOPS the limit counts
    the address the proxy passes on, so one guesser does not block everyone."""
    from loyalty import create_app

    proxied = create_app({**app.config, "PROXY_HOPS": 1, "LINK_MISS_LIMIT": 2})
    client = proxied.test_client()
    guesser = {"X-Forwarded-For": "203.0.113.9"}
    assert [client.get(f"/s/{'x' * 44}", headers=guesser).status_code for _ in range(3)] == [
        404,
        404,
        429,
    ]
    other = {"X-Forwarded-For": "198.51.100.7"}
    assert client.get(f"/s/{'x' * 44}", headers=other).status_code == 404
    with proxied.app_context():  # its own engine: closed, so no connection outlives it
        db.engine.dispose()
