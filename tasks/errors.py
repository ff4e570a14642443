"""The two roots of every kaiops error, after kopf: temporary (worth retrying) and permanent.

Retries in Prefect tasks use :func:`retry_temporary` as ``retry_condition_fn`` (:data:`IO_RETRIES` are the
options of an I/O task), so only temporary errors are retried.
Bad user input is a :class:`InputError` (a permanent error the CLI turns into exit code 2).
"""

from __future__ import annotations

from typing import Any


class KaiopsError(Exception):
    """Base of every error kaiops raises on purpose."""


class TemporaryError(KaiopsError):
    """A failure that may pass on its own (timeouts, 5xx, connection refused).

    Args:
        message: what failed.
        delay: seconds to wait before a retry is worth it.
    """

    def __init__(self, message: str, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(KaiopsError):
    """A failure that will fail the same way again until something is changed."""


class NotFound(PermanentError):
    """A named object (or its kind) does not exist; the CLI treats it as bad input (exit 2)."""


class InputError(PermanentError):
    """Bad input (config, manifest, CLI argument), found before anything was changed.

    Args:
        source: the file (or ``<cli>``/``<stdin>``) the input came from.
        field: the field path inside it, dotted (``spec.headGroupSpec.rayStartParams.memory``).
        problem: what is wrong.
        fix: what to write instead.
    """

    def __init__(self, source: str, field: str, problem: str, fix: str) -> None:
        self.source, self.field, self.problem, self.fix = source, field, problem, fix
        super().__init__(f"{source}: {field}: {problem} (fix: {fix})")


def is_retryable(exc: BaseException) -> bool:
    """Return True when ``exc`` is a :class:`TemporaryError` (directly or as the cause of another)."""
    while exc is not None:
        if isinstance(exc, TemporaryError):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def retry_temporary(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run only when it failed with a :class:`TemporaryError`
    (:func:`is_retryable`); a permanent error, or a run that did not raise, is not retried.

    Args:
        task, task_run: as Prefect passes them (unused).
        state: the run's final state; ``state.result()`` re-raises the task's exception.
    """
    try:
        state.result()
    except BaseException as exc:  # the task's exception, re-raised by the state
        return is_retryable(exc)
    return False


#: Options of an I/O task: two more attempts, 5 s apart, for temporary errors only.
IO_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay_seconds": 5, "retry_condition_fn": retry_temporary}
