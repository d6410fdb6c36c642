"""Link tokens never reach a log line whole: only their first characters do."""

from __future__ import annotations

import logging

from loyalty import logs

TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"


def test_a_survey_token_is_cut_to_its_prefix_in_paths_request_lines_and_referers():
    line = f'127.0.0.1 "POST /s/{TOKEN}/partial HTTP/1.1" 204 "http://x.test/s/{TOKEN}?nps=9"'
    cleaned = logs.redact(line)
    assert TOKEN not in cleaned
    assert cleaned.count("/s/AbCdEf…") == 2
    assert "/s/AbCdEf…/partial HTTP/1.1" in cleaned and "…?nps=9" in cleaned
    assert logs.redact(f"/u/12.{TOKEN}") == "/u/12.AbC…"
    assert TOKEN not in logs.redact(f"GET /s%2F{TOKEN}")


def test_other_paths_are_left_alone():
    for line in ("GET /accounts/12 HTTP/1.1", "/static/style.css", "/s/short", "/api/v1/events"):
        assert logs.redact(line) == line


def test_the_app_error_log_of_an_exception_on_a_survey_url_has_the_prefix_only(app, caplog):
    def boom(token: str):
        raise RuntimeError(f"failed for {request_path()}")

    def request_path() -> str:
        from flask import request

        return request.path

    app.add_url_rule("/s/<token>/boom", "boom", boom)
    app.testing = False  # a 500 page and the error log, as in production
    with caplog.at_level(logging.ERROR):
        reply = app.test_client().get(f"/s/{TOKEN}/boom")
    assert reply.status_code == 500
    assert "/s/AbCdEf…" in caplog.text and "RuntimeError" in caplog.text
    assert TOKEN not in caplog.text


def test_the_development_server_log_has_the_prefix_only(app, caplog):
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info('127.0.0.1 - - "GET /s/%s HTTP/1.1" 200 -', TOKEN)
    assert "/s/AbCdEf…" in caplog.text and TOKEN not in caplog.text
