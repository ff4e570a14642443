"""The two roots of every kaiops error, after kopf: temporary (worth retrying) and permanent.

Prefect tasks that do I/O retry with :func:`io_retries`, whose ``retry_condition_fn`` (:func:`retry_temporary`)
retries only a :class:`TemporaryError` (:func:`is_retryable`); a permanent error fails at once.
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


# The two functions below are the same as house-core's (branch house-core, tasks/errors.py): on merging, keep theirs.
def retry_temporary(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: True when the failed ``state`` holds a :class:`TemporaryError`
    (directly or as the ``__cause__`` of the raised exception), False for anything else."""
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return is_retryable(data)
    try:
        state.result()
    except BaseException as exc:  # the state re-raises the task's exception
        return is_retryable(exc)
    return False


def io_retries(retries: int = 3, delay: float | list[float] = 2) -> dict[str, Any]:
    """Keyword arguments for ``@task(**io_retries(...))`` on a task that does I/O.

    Args:
        retries: how many times a temporary failure is retried.
        delay: seconds before each retry (a list: one per retry).

    Returns:
        ``{"retries", "retry_delay_seconds", "retry_condition_fn": retry_temporary}``.
    """
    return {"retries": retries, "retry_delay_seconds": delay, "retry_condition_fn": retry_temporary}
