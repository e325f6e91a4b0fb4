"""A batch isolates its records (DESIGN.md, the pipeline): when a batch raises, its records are tried one
by one and each that fails alone is set aside and named, while the rest go on.

The happy path pays nothing for this (no savepoint per record): only a batch that raised is run again, one
transaction per record. Errors of the infrastructure (database gone, deadlock, time limit, mail server down)
are not any one record's fault: they propagate, and the task retries the whole batch as before.
"""

import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

T = TypeVar("T")

# OSError covers connection failures and every smtplib error (SMTPException derives from it); psycopg's
# deadlock, serialization failure and statement timeout arrive as Django's OperationalError.
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
    SoftTimeLimitExceeded,
)

_LIBRARIES = tuple({sys.prefix, sys.base_prefix})


def _ours(filename: str) -> bool:
    return "site-packages" not in filename and not filename.startswith(_LIBRARIES)


def is_transient(exc: BaseException) -> bool:
    """True for failures of the infrastructure, which a retry of the whole batch may cure."""
    return isinstance(exc, TRANSIENT)


def failure_summary(exc: BaseException) -> str:
    """The exception's class and the line of our code that raised it, e.g. `DataError at services.py:231`.

    Never the message: a database error's detail can quote row values (an e-mail, a phone), and this text
    goes to logs and admin."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _ours(f.filename)]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def one_by_one(
    ids: Iterable[int], *, run: Callable[[int], T], set_aside: Callable[[int, BaseException], object]
) -> list[T]:
    """Run `run(id)` for each id, each in its own transaction (`run` opens it); an id whose run raises is
    handed to `set_aside` (which records and logs it by id), and the next one goes on. A transient error
    propagates (the ids done so far are committed, and the task's retry finds them done). Returns the runs'
    results."""
    results: list[T] = []
    for pk in ids:
        try:
            results.append(run(pk))
        except Exception as exc:
            if is_transient(exc):
                raise
            set_aside(pk, exc)
    return results
