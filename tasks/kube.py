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
__all__ = ["FIELD_MANAGER", "ApplyConflict", "NotFound", "apply", "condition", "condition_true", "connect", "get",
           "object_ref", "resource_for", "wait_for"]


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


def wait_for(
    dyn: DynamicClient,
    api_version: str,
    kind: str,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    namespace: str | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Watch one object until ``predicate(obj)`` is true; return that object.

    Uses a watch from the last seen resourceVersion (re-listing when the server ends the watch), never a
    tight poll. ``timeout`` is in seconds.

    Raises:
        TimeoutError: the predicate did not hold in time; the message carries the last seen status.
    """
    resource = resource_for(dyn, api_version, kind)
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            status = (last or {}).get("status")
            raise TimeoutError(f"{kind} {namespace or ''}/{name}: not there after {timeout:.0f}s; status={status}")
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
            timeout=max(1, int(min(remaining, 60))),
        ):
            obj = event["raw_object"]
            if event["type"] == "DELETED":
                last = None
                continue
            last = obj
            if predicate(obj):
                return obj
            if time.monotonic() >= deadline:
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
