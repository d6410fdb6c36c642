"""A brute-force sign-in against the served app: how 1,000 guesses at one staff address fare.

Serves the app with gunicorn as deployed (``gunicorn.conf.py``: gthread workers,
``--workers 2``) on a fresh SQLite database with one admin, then sends ``--attempts`` sign-in
posts (each with a valid CSRF token and a wrong password, except the one in the middle,
which has the right password, sent from a fresh session) from ``--concurrency`` client
threads, in three runs:

* ``baseline``  the limits and the lockout switched off (what a guesser gets without them);
* ``one_client`` the shipped defaults, every guess from one client address;
* ``many_clients`` the shipped defaults, each guess from another address (a botnet; the app
  is told to trust ``X-Forwarded-For`` with ``PROXY_HOPS=1``, as behind nginx), so only the
  per-address lockout stands in the way.

Each run prints its answers by kind: ``wrong`` (401), ``rate_limited`` (429 from
Flask-Limiter), ``locked`` (429 from the lockout), ``signed_in`` (302) and ``other``; whether
the right password got in; guesses per second. The last line is one JSON object with all
three runs and the limits in force.

    .venv/bin/python tests/benchmarks/bench_signin.py [--attempts 1000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import tempfile
import threading
import time
import typing as t
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

from bench_survey import ROOT, Server, app_env, free_port, migrate, write_entry_point

EMAIL, PASSWORD = "admin@example.com", "the right password 42"
OFF = {
    "LOYALTY_RATELIMIT_ENABLED": "false",
    "LOYALTY_SIGN_IN_LOCK_FAILURES": "0",
    "LOYALTY_SIGN_IN_LOCK_CLIENT_FAILURES": "0",
    "LOYALTY_SIGN_IN_SLOW_AFTER": "1000000",
}


#: The shipped defaults (bench_survey's environment switches the rate limits off).
ON = {"LOYALTY_RATELIMIT_ENABLED": "true"}


class Session:
    """One browser: a cookie and the sign-in form's CSRF token."""

    def __init__(self, port: int, forwarded: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.forwarded = forwarded
        self.cookie = ""
        self.token = ""
        self.refresh()

    def _headers(self) -> dict[str, str]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if self.forwarded:
            headers["X-Forwarded-For"] = self.forwarded
        return headers

    def refresh(self) -> None:
        self.conn.request("GET", "/login", headers=self._headers())
        reply = self.conn.getresponse()
        body = reply.read().decode()
        cookie = reply.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', body)
        assert match, body[:500]
        self.token = match.group(1)

    def sign_in(self, password: str) -> str:
        body = urlencode({"email": EMAIL, "password": password, "csrf_token": self.token})
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self._headers()}
        self.conn.request("POST", "/login", body=body, headers=headers)
        reply = self.conn.getresponse()
        text = reply.read().decode(errors="replace")
        if reply.status == 302:
            return "signed_in"
        if reply.status == 401:
            return "wrong"
        if reply.status == 429:
            return "locked" if "Too many failed sign-ins" in text else "rate_limited"
        return f"other_{reply.status}"


def run(name: str, extra_env: dict[str, str], attempts: int, concurrency: int) -> dict[str, t.Any]:
    with tempfile.TemporaryDirectory(prefix="bench-signin-") as folder:
        tmp = Path(folder)
        port = free_port()
        env = app_env(tmp, port) | {"LOYALTY_INSTANCE_PATH": str(tmp / "instance")} | extra_env
        migrate(env)
        import subprocess

        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "loyalty", "user", "create", "--email",
             EMAIL, "--role", "admin", "--password", PASSWORD],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        server = Server(name, write_entry_point(tmp), port, 2, env, tmp / "gunicorn.log")
        server.command = [
            sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
            "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
            write_entry_point(tmp),
        ]  # fmt: skip
        server.start()
        try:
            server.wait_ready()
            return _attack(name, port, attempts, concurrency, many="PROXY_HOPS" in str(extra_env))
        finally:
            server.stop()


def _attack(name: str, port: int, attempts: int, concurrency: int, many: bool) -> dict[str, t.Any]:
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    next_index = iter(range(attempts))
    right: list[str] = []

    def address(i: int) -> str | None:
        return f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256 + 1}" if many else None

    def client() -> None:
        session = Session(port) if not many else None
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            if i == attempts // 2:  # the right password, from a fresh browser
                outcome = Session(port, address(i)).sign_in(PASSWORD)
                right.append(outcome)
            else:
                s = session or Session(port, address(i))
                outcome = s.sign_in(f"guess-{i}")
            with lock:
                counts[outcome] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    result = {
        "attempts": attempts,
        "wrong": counts["wrong"],
        "rate_limited": counts["rate_limited"],
        "locked": counts["locked"],
        "signed_in": counts["signed_in"],
        "other": sum(n for k, n in counts.items() if k.startswith("other")),
        "right_password_got_in": right == ["signed_in"],
        "right_password_answer": right[0] if right else None,
        "seconds": round(seconds, 1),
        "guesses_per_second": round(attempts / seconds, 1),
    }
    print(
        f"{name:13} {result['wrong']:5} wrong  {result['rate_limited']:5} rate-limited  "
        f"{result['locked']:5} locked  {result['signed_in']:3} signed in  "
        f"{result['other']:3} other   right password: {result['right_password_answer']}  "
        f"{seconds:6.1f} s  {result['guesses_per_second']:7.1f}/s",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from loyalty.config import SETTINGS

    limits = {
        name: SETTINGS[name][0]
        for name in (
            "SIGN_IN_RATE_LIMIT",
            "SIGN_IN_SLOW_AFTER",
            "SIGN_IN_LOCK_FAILURES",
            "SIGN_IN_LOCK_CLIENT_FAILURES",
            "SIGN_IN_LOCK_MINUTES",
            "RATELIMIT_STORAGE_URI",
        )
    }
    print(f"{args.attempts} sign-in guesses at one address, {args.concurrency} threads, "
          f"gunicorn 2 workers; limits: {limits}")  # fmt: skip
    load = (args.attempts, args.concurrency)
    runs = {
        "baseline": run("baseline", OFF, args.attempts, args.concurrency),
        "one_client": run("one_client", ON, *load),
        "many_clients": run("many_clients", {**ON, "LOYALTY_PROXY_HOPS": "1"}, *load),
    }
    print(json.dumps({"limits": limits, "gunicorn_workers": 2, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
