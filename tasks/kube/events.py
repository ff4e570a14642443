"""Kubernetes Events: the one writer of kaiops's own Events and the readers of the Events about an object.

Every kaiops decision on an object (a rollout step, a provisioning decision) is a core/v1 Event on it, so
``kubectl describe`` shows it next to the operators' own Events (Flagger does the same for each canary
decision). Writers never force and never patch an Event: each decision is a new Event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks.kube.client import resource_for
from tasks.kube.errors import API_ERRORS, translate

__all__ = ["EventType", "event_time", "list_events", "recent_events", "record_event"]

MESSAGE_LIMIT = 1024  # characters of an Event message kaiops writes (the apiserver allows more; kubectl cuts)


class EventType(StrEnum):
    """The two Event types core/v1 allows."""

    NORMAL = "Normal"  # a decision or progress
    WARNING = "Warning"  # a failure or a rollback


def record_event(
    dyn: DynamicClient,
    obj: dict[str, Any],
    reason: str,
    message: str,
    *,
    type_: EventType = EventType.NORMAL,
    component: str = "kaiops",
    reporting_component: str | None = None,
) -> dict[str, Any]:
    """Create a core/v1 Event about ``obj`` (``kubectl describe`` shows it); return it as stored.

    Args:
        obj: the object the Event is about (needs ``apiVersion``, ``kind``, ``metadata.name``/``namespace``;
            ``metadata.uid`` when known).
        reason: the Event reason (a short word: ``promote``, ``KaiopsApplied``).
        message: one line, cut to :data:`MESSAGE_LIMIT` characters.
        type_: Normal or Warning.
        component: ``source.component`` (who wrote it); ``reporting_component`` defaults to it.

    Raises:
        PermanentError / TemporaryError: the apiserver refused (RBAC without ``create events``) or did not
            answer (:func:`tasks.kube.errors.translate`).
    """
    meta = obj.get("metadata") or {}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}", "namespace": meta.get("namespace")},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                           "namespace": meta.get("namespace"), "uid": meta.get("uid", "")},
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "type": str(type_),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": component},
        "reportingComponent": reporting_component or component,
        "reportingInstance": "kaiops",
    }
    try:
        created = resource_for(dyn, "v1", "Event").create(body=body, namespace=meta.get("namespace"))
    except API_ERRORS as exc:
        raise translate(exc, f"create Event {reason} on {obj.get('kind')} {meta.get('name')}") from exc
    result: dict[str, Any] = created.to_dict()
    return result


def event_time(event: dict[str, Any]) -> str:
    """When an Event last happened: ``lastTimestamp`` (core/v1 writers), ``series.lastObservedTime`` or
    ``eventTime`` (events.k8s.io writers such as the scheduler), else its creation time; '' when none."""
    return str(event.get("lastTimestamp") or (event.get("series") or {}).get("lastObservedTime")
               or event.get("eventTime") or (event.get("metadata") or {}).get("creationTimestamp") or "")


def list_events(dyn: DynamicClient, namespace: str | None, name: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The Events about the object ``name`` (of ``kind`` when given) in ``namespace``, oldest first.

    Raises:
        PermanentError / TemporaryError: the Events could not be read.
    """
    selector = f"involvedObject.name={name}" + (f",involvedObject.kind={kind}" if kind else "")
    try:
        events = resource_for(dyn, "v1", "Event").get(namespace=namespace, field_selector=selector).to_dict()
    except API_ERRORS as exc:
        raise translate(exc, f"list Events about {kind or 'object'} {namespace}/{name}") from exc
    return sorted(events.get("items") or [], key=event_time)


def recent_events(dyn: DynamicClient, kind: str, name: str, namespace: str | None, limit: int = 5,
                  *, counts: bool = True) -> list[str]:
    """The last ``limit`` Events about ``kind`` ``namespace/name`` as ``Warning BackOff: message (x3)`` lines
    (``counts=False``: without the ``(xN)``), oldest first; [] when there are none or they cannot be read (a
    report must not fail on them)."""
    try:
        items = list_events(dyn, namespace, name, kind)
    except Exception:  # RBAC without events, an old server: report without them
        return []
    lines = []
    for e in items[-limit:]:
        count = f" (x{e['count']})" if counts and (e.get("count") or 1) > 1 else ""
        lines.append(f"{e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}{count}".strip())
    return lines
