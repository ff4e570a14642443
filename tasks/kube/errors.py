"""The one translation of Kubernetes API errors into kaiops's two error roots.

5xx, timeouts, connection failures and an optimistic-concurrency 409 ("the object has been modified") are
:class:`~tasks.errors.TemporaryError`; other 4xx are :class:`~tasks.errors.PermanentError`, with
:class:`NotFound` for 404 and :class:`ApplyConflict` for a field-manager conflict. Every verb in
:mod:`tasks.kube` raises these; code outside this package catches them, never the client's own exceptions.
"""

from __future__ import annotations

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError, NotFoundError

from tasks.errors import NotFound, PermanentError, TemporaryError

__all__ = ["API_ERRORS", "ApplyConflict", "NotFound", "reason", "translate"]

API_ERRORS: tuple[type[Exception], ...] = (ApiException, DynamicApiError, urllib3.exceptions.HTTPError)
"""What the kubernetes client raises for a failed request (catch these, then :func:`translate`)."""


class ApplyConflict(PermanentError):
    """Server-side apply found fields owned by another field manager; kaiops never forces silently."""


def reason(exc: BaseException) -> str:
    """The apiserver's own words for ``exc`` (its ``Status`` summary or body, at most 500 characters)."""
    summary = getattr(exc, "summary", None)
    if callable(summary):
        return str(summary())
    return str(getattr(exc, "body", "") or exc)[:500]


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a client exception (None for a connection failure)."""
    status = getattr(exc, "status", None)
    return int(status) if status is not None else None


def translate(exc: BaseException, what: str) -> Exception:
    """Return the kaiops error for a failed API call; raise it ``from exc``.

    Args:
        exc: what the kubernetes client raised (:data:`API_ERRORS`).
        what: the call, for the message (``apply RayCluster ns/name``).

    Returns:
        :class:`TemporaryError` (optimistic-concurrency 409 with ``delay=1``; 5xx, 429, no answer),
        :class:`ApplyConflict` (other 409), :class:`NotFound` (404), :class:`PermanentError` (other 4xx, and
        the HTTP 500 "failed to create typed patch object" that server-side apply answers for a field of the
        wrong type, where a create answers 422 - retrying cannot help). The status is kept in ``.status``.
    """
    status = status_of(exc)
    why = reason(exc)
    out: Exception
    if (isinstance(exc, ConflictError) or status == 409) and "the object has been modified" in why:
        # optimistic-concurrency 409 (someone wrote in between): worth another try, unlike a field conflict
        out = TemporaryError(f"{what}: {why}", delay=1.0)
    elif isinstance(exc, ConflictError) or status == 409:
        out = ApplyConflict(f"{what}: conflict: {why}")
    elif isinstance(exc, NotFoundError) or status == 404:
        out = NotFound(f"{what}: not found")
    elif status == 429:
        out = TemporaryError(f"{what}: HTTP 429: {why}")
    elif status is not None and 400 <= status < 500:
        out = PermanentError(f"{what}: HTTP {status}: {why}")
    elif status == 500 and "failed to create typed patch object" in why:
        out = PermanentError(f"{what}: rejected by the schema: {why}")
    else:
        out = TemporaryError(f"{what}: {exc.__class__.__name__}: {why}")
    setattr(out, "status", status)  # noqa: B010  (the HTTP status travels with the error)
    return out
