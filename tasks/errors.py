"""kaiops's errors as tasks and flows use them, and the one retry policy for transient errors.

The error classes are defined in :mod:`configs.errors` (the bottom layer, so configs can raise
:class:`InputError`) and re-exported here. Prefect tasks that do I/O retry with :func:`io_retries`, whose
``retry_condition_fn`` (:func:`retry_temporary`) retries only a :class:`TemporaryError`; a permanent error
fails at once. Tasks without I/O get no retries.
"""

from __future__ import annotations

from typing import Any

from configs.errors import InputError, KaiopsError, NotFound, PermanentError, TemporaryError, is_retryable

__all__ = ["InputError", "KaiopsError", "NotFound", "PermanentError", "TemporaryError", "io_retries",
           "is_retryable", "retry_temporary"]


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
