"""The README's commands, run as written by a newcomer on a fresh database.

Every ``sh`` block of the README is split into its commands and each is run by bash, as
typed, in a fresh folder (a fresh SQLite database in its instance folder) with the app
served on a port that is not the default, as ``PORT=… make run`` does: its steps come from
``make -n run`` itself. Each command must succeed and leave no empty output file, and every
link it prints, or emails to the real SMTP server on loopback, must open (after signing in
with the login ``make run`` printed, for a staff page). The few lines a test cannot run are
listed in :data:`NOT_RUN` with the reason.
"""

from __future__ import annotations

import html
import http.cookiejar
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from conftest import free_port

ROOT = Path(__file__).resolve().parents[1]

#: The start of a README line -> why this test does not run it.
NOT_RUN = {
    "make run": "run as its own steps, from `make -n run` (the .venv is this one, not rebuilt)",
    "make test": "the suite this test is part of",
    ". .venv/bin/activate": "the environment puts this virtualenv's bin first on PATH, as it does",
    "python3 -m venv /opt/loyalty": "deployment: tests/test_deployment.py installs the wheel "
    "in a fresh virtualenv and serves it with gunicorn",
    "pip install": "deployment: done by tests/test_deployment.py",
    "export LOYALTY_": "deployment: a PostgreSQL server and SMTP relay elsewhere; for the "
    "instance path the commands after it get a second fresh folder (a new server's database)",
    "mkdir -p /var/lib/loyalty": "deployment: a folder outside the test's own",
    "gunicorn ": "deployment: tests/test_deployment.py serves the installed app with gunicorn",
}


def readme_commands(text: str) -> list[str]:
    """Each command of the README's ``sh`` blocks: continued lines and quotes spanning
    lines joined, as bash reads them."""
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S):
        pending = ""
        for line in block.splitlines():
            pending = f"{pending}\n{line}" if pending else line
            if pending.endswith("\\"):
                continue
            try:
                shlex.split(pending, comments=True)
            except ValueError:  # a quote still open: the command goes on
                continue
            if pending.strip():
                commands.append(pending.strip())
            pending = ""
        assert not pending, f"unfinished command in the README: {pending!r}"
    return commands


def _environment(tmp: Path, port: int, mail_url: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LOYALTY_", "FLASK_")) and name != "VIRTUAL_ENV"
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),  # this checkout's loyalty, run from another folder
        LOYALTY_INSTANCE_PATH=str(tmp / "instance"),
        LOYALTY_DATABASE_URL=f"sqlite:///{tmp / 'instance' / 'loyalty.db'}",
        LOYALTY_MAIL_URL=mail_url,
        LOYALTY_FORMS_FOLDER=str(ROOT / "forms"),
        LOYALTY_REPORTS_FOLDER=str(ROOT / "reports"),
        LOYALTY_BASE_URL=f"http://127.0.0.1:{port}",  # as the README says for another port
        PORT=str(port),
    )
    return env


class Browser:
    """GETs links with a cookie jar; signs in when a link is a staff page."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.login: tuple[str, str] | None = None

    def get(self, url: str) -> tuple[int, str, str]:
        try:
            with self.opener.open(url, timeout=60) as reply:
                return reply.status, reply.geturl(), reply.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            with error:
                return error.code, url, error.read().decode("utf-8", "replace")

    def open(self, url: str) -> int:
        status, final, body = self.get(url)
        if urllib.parse.urlsplit(final).path == "/login" and urllib.parse.urlsplit(url).path != (
            "/login"
        ):
            assert self.login, f"{url} is a staff page and no login was printed"
            match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body)
            assert match, body
            form = {"email": self.login[0], "password": self.login[1], "csrf_token": match[1]}
            signed = self.opener.open(
                f"{self.base}/login", urllib.parse.urlencode(form).encode(), timeout=60
            )
            with signed:
                assert urllib.parse.urlsplit(signed.geturl()).path != "/login", "sign-in failed"
            status, final, body = self.get(url)
        return status


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server stopped:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered:\n{log.read_text()}")


def _run(command: str, cwd: Path, env: dict[str, str]) -> str:
    """Run one README command with bash; its output, or a failure saying what it printed."""
    stdin = None
    if "user create" in command and "--password" not in command:
        stdin = "correct horse battery\ncorrect horse battery\n"  # it prompts twice
    variable = re.match(r"^(\w+)=(\$\(.*\))\s*(#.*)?$", command)
    script = f'{variable[1]}={variable[2]}; printf %s "${variable[1]}"' if variable else command
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{command!r} failed:\n{done.stdout}\n{done.stderr}"
    if variable:
        assert done.stdout.strip(), f"{command!r} set {variable[1]} to nothing"
        env[variable[1]] = done.stdout.strip()
    for target in re.findall(r"(?<![0-9&])>\s*([^\s;&|]+)", command.split("  #")[0]):
        written = cwd / target
        assert written.is_file() and written.stat().st_size > 0, f"{command!r}: {target} empty"
    return done.stdout + done.stderr


def _links(text: str, port: int) -> set[str]:
    return {
        html.unescape(link).rstrip(".,")
        for link in re.findall(rf"http://127\.0\.0\.1:{port}[^\s\"'<>)]*", text)
    }


def _email_texts(messages) -> list[str]:
    texts = []
    for message in messages:
        for part in message.walk():
            if part.get_content_maintype() == "text":
                texts.append(part.get_content())
    return texts


def test_the_splitter_finds_every_readme_command():
    """The splitter finds the commands a newcomer sees, quotes spanning lines joined."""
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert commands[:2] == [c for c in commands if c.startswith("make ")][:2]
    assert any(c.startswith("flask --app loyalty invite") and "--survey" in c for c in commands)
    assert any(c.startswith("curl") and '"product": "Standing desk"}' in c for c in commands)
    assert len(commands) > 30


def test_every_readme_command_runs_as_written_and_every_link_opens(tmp_path, smtp_server):
    port = free_port()
    assert port != 5000
    base = f"http://127.0.0.1:{port}"
    env = _environment(tmp_path, port, smtp_server.url)
    (tmp_path / "docs").symlink_to(ROOT / "docs")  # the README's paths are the checkout's
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))

    # make run, step by step: the recipe make itself prints for this port and this venv
    recipe = subprocess.run(
        ["make", "-s", "-n", "-o", f"{sys.prefix}/.installed", "run", f"VENV={sys.prefix}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    *steps, serve = [line for line in recipe if line.strip()]
    assert f"run --port {port}" in serve, recipe
    printed = "".join(_run(step, tmp_path, env) for step in steps)
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            ["bash", "-c", serve],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,  # its own process group, stopped whole below
        )
    try:
        _wait_until_up(f"{base}/login", server, log)
        browser = Browser(base)
        login = re.search(r"Staff login: (\S+) / (\S+)", printed)
        assert login, printed
        browser.login = (login[1], login[2])
        ran, skipped = [], []
        for command in commands:
            reason = next((why for start, why in NOT_RUN.items() if command.startswith(start)), "")
            if reason:
                skipped.append(command)
                if command.startswith("export LOYALTY_INSTANCE_PATH"):  # a server of its own
                    env = _environment(tmp_path / "server", port, smtp_server.url)
                continue
            printed += _run(command, tmp_path, env)
            ran.append(command)
        assert len(ran) > 25 and len(skipped) <= len(NOT_RUN) + 3, skipped
        texts = [printed, *_email_texts(smtp_server.messages)]
        assert smtp_server.messages, "nothing was emailed (make run's seeding, dispatch, digest)"
        everything = "\n".join(texts)
        assert ":5000" not in everything, "a link to the default port"
        links = set().union(*(_links(text, port) for text in texts))
        assert any("/s/" in link for link in links), links  # a survey link, at least
        assert _links("\n".join(texts[1:]), port), "no link in the emails"
        assert any(urllib.parse.urlsplit(link).path == "/login" for link in links), links
        failed = {link: status for link in sorted(links) if (status := browser.open(link)) != 200}
        assert failed == {}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
