"""The Kubernetes API, the way kaiops uses it: the one layer between kaiops and the apiserver.

What it is: every verb the flows' tasks need - :func:`get`, :func:`list_objects`, server-side
:func:`apply` (one field manager, strict field validation, conflicts surfaced), :func:`create`,
:func:`patch`, read-modify-apply :func:`update` with optimistic concurrency, :func:`delete`,
:func:`wait_deleted`, :func:`wait_for` (a watch, not a poll) - the one Event writer
(:func:`record_event`) and readers (:func:`list_events`, :func:`recent_events`), and the one translation of
API errors into kaiops's two roots (:func:`translate`: 5xx/timeouts are ``TemporaryError``, 4xx are
``PermanentError``, :class:`NotFound`, :class:`ApplyConflict`).

What it is not: no knowledge of RayClusters or InferenceServices (``tasks.ray_*``, ``tasks.rollout``,
``tasks.kserve.resolve`` build on it), no Prefect, no retries (the I/O tasks above retry temporary errors
with :func:`tasks.errors.io_retries`).

Modules: ``client`` (connect, discovery), ``errors`` (translation), ``verbs``, ``wait`` (conditions and
waits), ``events``.
"""

from tasks.errors import NotFound
from tasks.kube.client import FIELD_MANAGER, connect, object_ref, resource_for
from tasks.kube.errors import API_ERRORS, ApplyConflict, translate
from tasks.kube.events import EventType, event_time, list_events, recent_events, record_event
from tasks.kube.verbs import (
    apply,
    applyable_body,
    create,
    delete,
    get,
    list_objects,
    patch,
    update,
    wait_deleted,
)
from tasks.kube.wait import (
    PROGRESS_EVERY_S,
    condition,
    condition_true,
    describe_conditions,
    explain,
    not_true_conditions,
    wait_for,
)

__all__ = [
    "API_ERRORS",
    "FIELD_MANAGER",
    "PROGRESS_EVERY_S",
    "ApplyConflict",
    "EventType",
    "NotFound",
    "apply",
    "applyable_body",
    "condition",
    "condition_true",
    "connect",
    "create",
    "delete",
    "describe_conditions",
    "event_time",
    "explain",
    "get",
    "list_events",
    "list_objects",
    "not_true_conditions",
    "object_ref",
    "patch",
    "recent_events",
    "record_event",
    "resource_for",
    "translate",
    "update",
    "wait_deleted",
    "wait_for",
]
