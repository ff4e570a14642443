"""The Kubernetes API, the way kaiops uses it: server-side apply with one field manager, and waits that
watch (not poll) until a condition holds.

Everything goes through the official ``kubernetes`` client's :class:`DynamicClient`, so custom resources
(RayCluster, InferenceService, ...) and core kinds are handled the same way. API errors are turned into
kaiops's two error roots: 5xx/timeouts are :class:`TemporaryError`, 4xx are :class:`PermanentError`
(and :class:`ApplyConflict` for a field-manager conflict).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException, ConflictError, DynamicApiError, NotFoundError
from kubernetes.dynamic.resource import Resource

from tasks.errors import NotFound, PermanentError, TemporaryError

FIELD_MANAGER = "kaiops"
__all__ = ["FIELD_MANAGER", "ApplyConflict", "NotFound", "apply", "condition", "condition_true", "connect",
           "describe_conditions", "explain", "get", "object_ref", "recent_events", "resource_for", "wait_for"]


class ApplyConflict(PermanentError):
    """Server-side apply found fields owned by another field manager; kaiops never forces silently."""


def connect(kubeconfig: str | None = None, context: str | None = None) -> DynamicClient:
    """Return a dynamic client for ``kubeconfig``/``context`` (defaults: ``$KUBECONFIG``, current context).

    Inside a pod with no kubeconfig, the in-cluster ServiceAccount is used.
    """
    # The client reads $KUBECONFIG once at import time; read it again so later exports count.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
    try:
        api = k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
    except k8s_config.ConfigException:
        k8s_config.load_incluster_config()
        api = k8s.ApiClient()
    return DynamicClient(api)


def _translate(exc: Exception, what: str) -> Exception:
    status = getattr(exc, "status", None)
    if (isinstance(exc, ConflictError) or status == 409) and "the object has been modified" in _reason(exc):
        # optimistic-concurrency 409 (someone wrote in between): worth another try, unlike a field conflict
        return TemporaryError(f"{what}: {_reason(exc)}", delay=1.0)
    if isinstance(exc, ConflictError) or status == 409:
        return ApplyConflict(f"{what}: conflict: {_reason(exc)}")
    if isinstance(exc, NotFoundError) or status == 404:
        return NotFound(f"{what}: not found")
    if status is not None and 400 <= int(status) < 500:
        return PermanentError(f"{what}: HTTP {status}: {_reason(exc)}")
    if status == 500 and "failed to create typed patch object" in _reason(exc):
        # Server-side apply answers 500, not 422, when the patch does not fit the schema (e.g. a number
        # where the CRD says string); retrying cannot help.
        return PermanentError(f"{what}: rejected by the schema: {_reason(exc)}")
    return TemporaryError(f"{what}: {exc.__class__.__name__}: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    summary = getattr(exc, "summary", None)
    if callable(summary):
        return summary()
    return str(getattr(exc, "body", "") or exc)[:500]


def resource_for(dyn: DynamicClient, api_version: str, kind: str) -> Resource:
    """Return the API resource for ``apiVersion``/``kind`` (discovery, refreshed once if the kind is new).

    Raises:
        NotFound: the kind is not served (e.g. its CRD is not installed).
    """
    try:
        return dyn.resources.get(api_version=api_version, kind=kind)
    except Exception:  # discovery cache may predate a CRD that was just installed
        dyn.resources.invalidate_cache()
        try:
            return dyn.resources.get(api_version=api_version, kind=kind)
        except Exception as exc:
            raise NotFound(f"{kind}.{api_version} is not served by this cluster") from exc


def object_ref(obj: dict[str, Any]) -> str:
    """``Kind namespace/name`` for messages."""
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def apply(
    dyn: DynamicClient,
    obj: dict[str, Any],
    *,
    field_manager: str = FIELD_MANAGER,
    dry_run: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Server-side apply ``obj`` and return the object as the server now has it.

    Args:
        dyn: client from :func:`connect`.
        obj: a full manifest (``apiVersion``, ``kind``, ``metadata.name``, namespace where namespaced).
        field_manager: the field manager that will own the fields in ``obj``.
        dry_run: ask the server to validate and compute the result without persisting it.
            Field validation is always ``Strict``: unknown fields are rejected, never dropped.
        force: take ownership of conflicting fields (only when the caller asked for it explicitly).

    Raises:
        ApplyConflict: another field manager owns a field in ``obj`` and ``force`` is False.
        PermanentError: the server rejected the object (schema validation, RBAC, ...), with its reason.
        TemporaryError: the server could not be reached or answered 5xx.
    """
    resource = resource_for(dyn, obj["apiVersion"], obj["kind"])
    meta = obj["metadata"]
    # Strict: an unknown or duplicate field is an error, not a silently dropped warning.
    kwargs: dict[str, Any] = {
        "field_manager": field_manager,
        "force_conflicts": force,
        "query_params": [("fieldValidation", "Strict")],
    }
    if dry_run:
        kwargs["dry_run"] = "All"
    try:
        result = dyn.server_side_apply(
            resource, body=obj, name=meta["name"], namespace=meta.get("namespace"), **kwargs
        )
    except (ApiException, DynamicApiError, urllib3.exceptions.HTTPError) as exc:
        raise _translate(exc, f"apply {object_ref(obj)}") from exc
    return result.to_dict()


def get(dyn: DynamicClient, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
    """Return one object as a dict.

    Raises:
        NotFound: no such object.
    """
    resource = resource_for(dyn, api_version, kind)
    try:
        return resource.get(name=name, namespace=namespace).to_dict()
    except (ApiException, DynamicApiError, urllib3.exceptions.HTTPError) as exc:
        raise _translate(exc, f"get {kind} {namespace or ''}/{name}") from exc


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """Return the ``status.conditions[]`` entry of type ``type_`` (or None)."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
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


def recent_events(dyn: DynamicClient, kind: str, name: str, namespace: str | None, limit: int = 5) -> list[str]:
    """The last ``limit`` Events about ``kind`` ``namespace/name`` as ``Warning BackOff: message (x3)`` lines,
    oldest first; [] when there are none or they cannot be read (a wait's report must not fail on them)."""
    try:
        events = resource_for(dyn, "v1", "Event").get(
            namespace=namespace, field_selector=f"involvedObject.name={name},involvedObject.kind={kind}").to_dict()
    except Exception:  # RBAC without events, an old server: report without them
        return []
    items = sorted(events.get("items") or [], key=lambda e: e.get("lastTimestamp") or e.get("eventTime")
                   or (e.get("metadata") or {}).get("creationTimestamp") or "")
    lines = []
    for e in items[-limit:]:
        count = f" (x{e['count']})" if (e.get("count") or 1) > 1 else ""
        lines.append(f"{e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}{count}".strip())
    return lines


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
            obj = event["raw_object"]
            if event["type"] == "DELETED":
                last = None
                continue
            last = obj
            if predicate(obj):
                return obj
            if time.monotonic() >= min(deadline, next_report):
                break


def list_objects(dyn: DynamicClient, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
    """Return every object of ``kind`` (in ``namespace``, or in all namespaces when None) as dicts.

    Raises:
        NotFound: the kind is not served (its CRD is not installed).
        PermanentError / TemporaryError: the apiserver refused (4xx) or did not answer.
    """
    resource = resource_for(dyn, api_version, kind)
    try:
        return [item.to_dict() for item in resource.get(namespace=namespace).items]
    except (ApiException, DynamicApiError, urllib3.exceptions.HTTPError) as exc:
        raise _translate(exc, f"list {kind} in {namespace or 'all namespaces'}") from exc
