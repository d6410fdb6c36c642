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
    assert found["surveys"] == sorted(path.stem for path in (REPO / "forms").glob("*.toml"))
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
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


#: Run by the new venv's Python in the working folder: what the installed app found.
SHOW_APP = """
import json, loyalty
app = loyalty.create_app()
print(json.dumps({
    "module": loyalty.__file__,
    "surveys": sorted(app.extensions["loyalty.surveys"]),
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
    deadline = time.monotonic() + 20
    while server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read().decode()
        except (OSError, http.client.HTTPException) as error:
            refused = isinstance(getattr(error, "reason", None), ConnectionRefusedError)
            if not refused or time.monotonic() > deadline:
                raise AssertionError(f"GET {url}: {error!r}\n{log.read_text()}") from error
        time.sleep(0.2)
    raise AssertionError(f"the server stopped:\n{log.read_text()}")
