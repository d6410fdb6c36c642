"""gunicorn's settings, read from the folder it is started in (the repository's root).

Each worker builds the sentiment word lists (TextBlob, VADER, AFINN and ours) before it
takes its first request: built on first use instead, the first comment each worker scores
would keep that customer waiting about two seconds.

A survey link's token is its customer's credential: the access log and the error log keep
only its first characters (:mod:`loyalty.logs`).

Slow clients: a sync worker reads a request's body itself, so a client that declares a
length and sends less holds the whole worker until the 30 s timeout kills it, and four of
them took the service down. gthread workers read each request in one of their threads, so
one slow client holds one thread; ``timeout`` restarts a worker that stops answering its
arbiter, and a short ``keepalive`` frees idle connections. In production a buffering proxy
(nginx) in front reads the whole request before gunicorn sees it (README, Deployment).
"""

from __future__ import annotations

import typing as t

from gunicorn.glogging import Logger


class RedactingLogger(Logger):
    """gunicorn's logger with link tokens cut short in every access and error line."""

    def setup(self, cfg: t.Any) -> None:
        from loyalty import logs

        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, logs.RedactTokens) for f in log.filters):
                log.addFilter(logs.RedactTokens())


logger_class = RedactingLogger
worker_class = "gthread"
threads = 8  # per worker: a slow client holds one of them, not the worker
timeout = 30  # a worker silent this long is restarted
graceful_timeout = 30
keepalive = 5  # seconds an idle keep-alive connection is held open


def post_worker_init(worker: t.Any) -> None:
    import gc

    from loyalty import sentiment

    sentiment.score("warm up", "en")
    # The app, its libraries and the word lists (some 160,000 objects) are kept for the
    # worker's life: out of the garbage collector's sight, a full collection during a
    # request scans only that request's objects (0.5 ms instead of 50 ms, which was the
    # dashboard's p99).
    gc.collect()
    gc.freeze()
