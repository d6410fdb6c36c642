"""gunicorn's settings, read from the folder it is started in (the repository's root).

Each worker builds the sentiment word lists (TextBlob, VADER, AFINN and ours) before it
takes its first request: built on first use instead, the first comment each worker scores
would keep that customer waiting about two seconds.
"""

from __future__ import annotations

import typing as t


def post_worker_init(worker: t.Any) -> None:
    from loyalty import sentiment

    sentiment.score("warm up", "en")
