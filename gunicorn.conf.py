"""gunicorn's settings, read from the folder it is started in (the repository's root).

Each worker builds the sentiment word lists (TextBlob, VADER, AFINN and ours) before it
takes its first request: built on first use instead, the first comment each worker scores
would keep that customer waiting about two seconds.

A survey link's token is its customer's credential: the access log and the error log keep
only its first characters (:mod:`loyalty.logs`).
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


def post_worker_init(worker: t.Any) -> None:
    from loyalty import sentiment

    sentiment.score("warm up", "en")
