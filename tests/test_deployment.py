"""Deployment as the README does it: ``pip install .``, then the app run from elsewhere.

The slow test here (about 10 s: "slow" is in its name, so ``-k "not slow"`` leaves it out)
builds the wheel from a copy of the checkout, installs it in a fresh virtual environment and
starts the app from a folder outside the checkout, so nothing can come from the repository's
top-level ``templates/``, ``forms/`` or ``reports/``: the wheel has to carry them.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Left out of the copy that is built: what is not source, and what a build would reuse.
NOT_SOURCE = shutil.ignore_patterns(
    ".*", "venv", "build", "dist", "*.egg-info", "instance", "__pycache__"
)


def test_every_package_of_loyalty_is_listed_for_the_wheel():
    """``packages`` is a list (mapped folders must be named), so a new package must be added."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "loyalty").rglob("__init__.py")
    }
    missing = sorted(found - set(setuptools["packages"]))
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"


def test_slow_installed_wheel_serves_the_login_page_and_every_survey(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    # Built as `pip install .` builds it (build requirements from the package index, which
    # this venv's setuptools is too old to do without), from a copy, so the checkout gets
    # no build/ folder and nothing left in one ends up in the wheel.
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path, source)
    (wheel,) = tmp_path.glob("loyalty-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel)
    # The dependencies come from this venv, after the new site-packages, so the installed
    # loyalty wins; this venv's editable-install hook lives in a .pth file there, which a
    # path added by a .pth file does not run.
    new_site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"))
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (new_site / "zz_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")

    work = tmp_path / "work"  # outside the checkout, as on a server
    work.mkdir()
    found = json.loads(_run(python, "-c", SHOW_APP, cwd=work))
    assert Path(found["module"]).is_relative_to(new_site), found
    surveys = (REPO / "forms").glob("*.toml")
    assert found["surveys"] == sorted(path.stem for path in surveys if path.name != "themes.toml")
    # the themes beside the surveys, read from the wheel's copy (issue 12)
    assert found["themes"][0] == "delivery" and "billing" in found["themes"], found
    assert found["surveys"], "the checkout has no survey to look for"
    assert Path(found["templates"]).is_relative_to(new_site), found
    assert found["instance"] == str(work / "instance"), "not ./instance of the working directory"

    _run(python, "-m", "flask", "--app", "loyalty", "db", "upgrade", cwd=work)
    assert (work / "instance" / "loyalty.db").is_file()

    port = _free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [python, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}"]
            + ["loyalty:create_app()"],
            cwd=work,
            env=_environment(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        status, page = _get_when_up(f"http://127.0.0.1:{port}/login", server, log)
        assert status == 200, f"{page}\n{log.read_text()}"
        assert "<form" in page and 'name="password"' in page, page
        status, _ = _get_when_up(f"http://127.0.0.1:{port}/static/style.css", server, log)
        assert status == 200, "the static files are not in the wheel"
    finally:
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """End a served app: asked politely first, killed if it will not go."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


class Gunicorn:
    """The test's app (its database, secret and base URL) served by gunicorn with the
    repository's gunicorn.conf.py, as production runs it; its access and error logs."""

    def __init__(self, port: int, access: Path, errors: Path) -> None:
        self.port, self.access, self.errors = port, access, errors

    def get(
        self, path: str, headers: dict[str, str] | None = None, timeout: float = 60
    ) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            reply = conn.getresponse()
            return reply.status, reply.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=60)

    def logs(self) -> str:
        return self.access.read_text() + self.errors.read_text()


@pytest.fixture
def gunicorn(app, tmp_path: Path):
    env = _environment() | {
        f"LOYALTY_{name}": str(app.config[name])
        for name in ("SECRET_KEY", "DATABASE_URL", "BASE_URL", "MAIL_URL", "INSTANCE_PATH")
    }
    port = _free_port()
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    command = [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py")]
    command += ["--workers", "2", "--bind", f"127.0.0.1:{port}"]
    command += ["--access-logfile", str(access), "--error-logfile", str(errors)]
    server = subprocess.Popen(command + ["loyalty:create_app()"], cwd=REPO, env=env)
    try:
        status, page = _get_when_up(f"http://127.0.0.1:{port}/healthz", server, errors)
        assert status == 200, page
        yield Gunicorn(port, access, errors)
    finally:
        _stop(server)


def test_gunicorn_logs_a_survey_link_token_by_its_prefix_only(gunicorn, invite):
    """The access log (path and Referer) and the error log never hold a whole token."""
    _, token = invite()
    referer = f"http://survey.test/s/{token}"
    assert gunicorn.get(f"/s/{token}", {"Referer": referer})[0] == 200
    assert gunicorn.get(f"/s/{token}x/thanks")[0] == 404
    time.sleep(0.5)  # the access log is written after the answer
    logs = gunicorn.logs()
    assert f"/s/{token[:6]}…" in logs and f"/s/{token[:6]}…/thanks" in logs, logs
    assert token not in logs and token[:12] not in logs, logs


def _chunked(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 4096]), body[i : i + 4096])
        for i in range(0, len(body), 4096)
    )
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + chunks + b"0\r\n\r\n"


def test_a_chunked_survey_body_over_the_limit_is_refused_whole(gunicorn, invite, app):
    """Not cut at MAX_CONTENT_LENGTH and stored with a 303: a 413, and nothing stored."""
    from urllib.parse import urlencode

    import sqlalchemy as sa
    from conftest import csrf_from

    from loyalty.db import db
    from loyalty.models import Response

    _, token = invite()
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=60)
    conn.request("GET", f"/s/{token}")
    reply = conn.getresponse()
    page = reply.read().decode()  # no cookie: the form's token is bound to the link
    conn.close()
    form = {"csrf_token": csrf_from(page), "nps": "9", "csat": "5", "ces": "6", "reason": "ok"}
    body = urlencode(form | {"padding": "x" * app.config["MAX_CONTENT_LENGTH"]}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers["Connection"] = "close"
    with gunicorn.connect() as sock:
        sock.sendall(_chunked(f"/s/{token}", body, headers))
        status_line = sock.makefile("rb").readline().decode()
    assert status_line.split()[1] == "413", status_line
    db.session.expire_all()
    assert db.session.scalars(sa.select(Response)).all() == []


def test_four_stalled_bodies_do_not_keep_gunicorn_from_answering(gunicorn):
    """Clients that declare a length and send less each hold a thread, not the service."""
    slow = []
    try:
        for _ in range(4):
            sock = gunicorn.connect()
            head = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            sock.sendall(
                (head + "Content-Type: application/x-www-form-urlencoded\r\n\r\n").encode()
            )
            sock.sendall(b"email=a")
            slow.append(sock)
        time.sleep(0.5)
        assert gunicorn.get("/healthz", timeout=10)[0] == 200
    finally:
        for sock in slow:
            sock.close()


#: Run by the new venv's Python in the working folder: what the installed app found.
SHOW_APP = """
import json, loyalty
app = loyalty.create_app()
print(json.dumps({
    "module": loyalty.__file__,
    "surveys": sorted(app.extensions["loyalty.surveys"]),
    "themes": list(app.extensions["loyalty.themes"].ids),
    "templates": app.template_folder,
    "instance": app.instance_path,
}))
"""


def _environment() -> dict[str, str]:
    """This process's environment without what would point the app or Python elsewhere."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LOYALTY_", "FLASK_"))
        and name not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_when_up(url: str, server: subprocess.Popen, log: Path) -> tuple[int, str]:
    """The status and body of ``url`` once the server listens; its log if anything else fails."""
    # A worker loads the app (and the sentiment word lists) before it answers: on a busy
    # 2-core machine that has taken 15 s, so a slow first answer is waited for as a refusal is.
    deadline = time.monotonic() + 60
    while server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read().decode()
        except (OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            refused = isinstance(reason, ConnectionRefusedError | TimeoutError)
            if not refused or time.monotonic() > deadline:
                raise AssertionError(f"GET {url}: {error!r}\n{log.read_text()}") from error
        time.sleep(0.2)
    raise AssertionError(f"the server stopped:\n{log.read_text()}")
