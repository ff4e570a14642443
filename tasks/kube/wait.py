"""Reading conditions and waiting on one object: watches (not polls) until a predicate holds, with a
report of what is still missing while it waits and of what the object says about itself when it times out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from tasks.kube.client import resource_for
from tasks.kube.events import recent_events


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """Return the ``status.conditions[]`` entry of type ``type_`` (or None)."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            found: dict[str, Any] = cond
            return found
    return None


def condition_true(obj: dict[str, Any], type_: str) -> bool:
    """True when condition ``type_`` has status ``"True"``."""
    cond = condition(obj, type_)
    return bool(cond and cond.get("status") == "True")


PROGRESS_EVERY_S = 15.0  # a long wait says what it waits for at least this often


def describe_conditions(obj: dict[str, Any] | None) -> str:
    """``Ready=False (RevisionMissing: Revision "x" failed ...); PredictorReady=True`` from ``status.conditions``
    (``status.phase``/``state`` too when set), or ``no status yet``; what the object says about itself."""
    status = (obj or {}).get("status") or {}
    parts = []
    for key in ("phase", "state"):
        if status.get(key):
            parts.append(f"{key}={status[key]}")
    for cond in status.get("conditions") or []:
        text = f"{cond.get('type')}={cond.get('status')}"
        why = ": ".join(str(cond[k]) for k in ("reason", "message") if cond.get(k))
        parts.append(f"{text} ({why})" if why else text)
    return "; ".join(parts) if parts else "no status yet"


def not_true_conditions(obj: dict[str, Any] | None) -> str:
    """The conditions of ``obj`` that are not ``True`` (what is still missing), or ``no status yet``."""
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    missing = [c for c in conds if c.get("status") != "True"]
    if not conds:
        return "no status yet"
    return describe_conditions({"status": {"conditions": missing}}) if missing else "every condition True"


def explain(dyn: DynamicClient, kind: str, name: str, namespace: str | None, obj: dict[str, Any] | None) -> str:
    """What a waited-on object says about itself: its conditions (reason and message) and its recent Events."""
    text = "the object does not exist" if obj is None else describe_conditions(obj)
    events = recent_events(dyn, kind, name, namespace)
    return text + ("; events: " + " | ".join(events) if events else "")


def wait_for(
    dyn: DynamicClient,
    api_version: str,
    kind: str,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    namespace: str | None = None,
    timeout: float = 300.0,
    missing: Callable[[dict[str, Any] | None], str] = not_true_conditions,
    progress: Callable[[str], None] | None = print,
    what: str = "",
) -> dict[str, Any]:
    """Watch one object until ``predicate(obj)`` is true; return that object.

    Uses a watch from the last seen resourceVersion (re-listing when the server ends the watch), never a
    tight poll. ``timeout`` is in seconds and bounds the whole wait. While waiting, ``progress`` (``print``:
    Prefect's ``log_prints`` logs it; None for silence) is told at least every :data:`PROGRESS_EVERY_S`
    seconds what is awaited (``what``), the elapsed time and what is still missing (``missing(obj)``).

    Raises:
        TimeoutError: the predicate did not hold in time; the message carries what the object says about
            itself: its conditions with reason and message, and its recent Events (:func:`explain`).
    """
    resource = resource_for(dyn, api_version, kind)
    started = time.monotonic()
    deadline = started + timeout
    next_report = started + PROGRESS_EVERY_S
    label = f"{kind} {namespace + '/' if namespace else ''}{name}" + (f" ({what})" if what else "")
    last: dict[str, Any] | None = None
    while True:
        now_ = time.monotonic()
        remaining = deadline - now_
        if remaining <= 0:
            raise TimeoutError(f"{label}: not there after {timeout:.0f}s; "
                               f"{explain(dyn, kind, name, namespace, last)}")
        if progress is not None and now_ >= next_report:
            progress(f"waiting for {label}: {now_ - started:.0f}s of {timeout:.0f}s; still missing: {missing(last)}")
            next_report = now_ + PROGRESS_EVERY_S
        try:
            current = resource.get(name=name, namespace=namespace)
            last = current.to_dict()
            if predicate(last):
                return last
            version = current.metadata.resourceVersion
        except NotFoundError:
            version = None
        for event in dyn.watch(
            resource,
            namespace=namespace,
            field_selector=f"metadata.name={name}",
            resource_version=version,
            timeout=max(1, int(min(remaining, PROGRESS_EVERY_S))),
        ):
            obj: dict[str, Any] = event["raw_object"]
            if event["type"] == "DELETED":
                last = None
                continue
            last = obj
            if predicate(obj):
                return obj
            if time.monotonic() >= min(deadline, next_report):
                break
