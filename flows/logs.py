"""Log records of expected failures without their tracebacks.

A kaiops error (:class:`tasks.errors.KaiopsError`: bad input, a missing object, a refused restore, a failed
drill) already says what went wrong and how to fix it in one line; Prefect logs every failed task and flow
run with the whole traceback, chained Kubernetes client exceptions included (160 lines for a missing
InferenceService). :func:`quiet_expected_failures` keeps those records and their messages but drops the
traceback of a kaiops error, on the console and in the Prefect UI alike. Anything else (a bug) keeps its
traceback. ``KAIOPS_TRACEBACKS=1`` keeps every traceback.
"""

from __future__ import annotations

import logging
import os

from tasks.errors import KaiopsError

PREFECT_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class ExpectedFailureFilter(logging.Filter):
    """Drop ``exc_info`` from records whose exception is a :class:`KaiopsError` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, KaiopsError):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_expected_failures() -> None:
    """Attach :class:`ExpectedFailureFilter` to Prefect's flow-run and task-run loggers (idempotent), unless
    ``KAIOPS_TRACEBACKS`` is set to a non-empty value other than ``0``."""
    if os.environ.get("KAIOPS_TRACEBACKS", "0") not in ("", "0"):
        return
    for name in PREFECT_RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExpectedFailureFilter) for f in logger.filters):
            logger.addFilter(ExpectedFailureFilter())
