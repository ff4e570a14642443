"""The verbs kaiops uses on the Kubernetes API, one function each: get, list, server-side apply, create,
merge-patch, read-modify-apply (``update``), delete and wait until deleted.

Writes are server-side apply with one field manager (:data:`FIELD_MANAGER`), strict field validation and
conflicts surfaced, never forced silently. Every failure is raised as a kaiops error
(:func:`tasks.kube.errors.translate`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks.errors import NotFound, TemporaryError
from tasks.kube.client import FIELD_MANAGER, object_ref, resource_for
from tasks.kube.errors import API_ERRORS, ApplyConflict, translate

__all__ = ["apply", "applyable_body", "create", "delete", "get", "list_objects", "patch", "update", "wait_deleted"]


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
    except API_ERRORS as exc:
        raise translate(exc, f"apply {object_ref(obj)}") from exc
    applied: dict[str, Any] = result.to_dict()
    return applied


def get(dyn: DynamicClient, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    """Return one object as a dict.

    Raises:
        NotFound: no such object.
    """
    resource = resource_for(dyn, api_version, kind)
    try:
        obj: dict[str, Any] = resource.get(name=name, namespace=namespace).to_dict()
    except API_ERRORS as exc:
        raise translate(exc, f"get {kind} {namespace or ''}/{name}") from exc
    return obj


def list_objects(
    dyn: DynamicClient,
    api_version: str,
    kind: str,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> list[dict[str, Any]]:
    """Return every object of ``kind`` (in ``namespace``, or in all namespaces when None) as dicts.

    Args:
        label_selector / field_selector: the apiserver's selectors (``ray.io/cluster=x``), None for all.

    Raises:
        NotFound: the kind is not served (its CRD is not installed).
        PermanentError / TemporaryError: the apiserver refused (4xx) or did not answer.
    """
    resource = resource_for(dyn, api_version, kind)
    kwargs = {k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v}
    try:
        return [item.to_dict() for item in resource.get(namespace=namespace, **kwargs).items]
    except API_ERRORS as exc:
        raise translate(exc, f"list {kind} in {namespace or 'all namespaces'}") from exc


def create(dyn: DynamicClient, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj`` (POST; ``metadata.generateName`` works) and return it as stored.

    Raises:
        ApplyConflict: it exists already (409). PermanentError / TemporaryError as for :func:`apply`.
    """
    resource = resource_for(dyn, obj["apiVersion"], obj["kind"])
    try:
        created = resource.create(body=obj, namespace=obj["metadata"].get("namespace"))
    except API_ERRORS as exc:
        raise translate(exc, f"create {object_ref(obj)}") from exc
    out: dict[str, Any] = created.to_dict()
    return out


def patch(
    dyn: DynamicClient, api_version: str, kind: str, name: str, namespace: str | None, body: dict[str, Any]
) -> dict[str, Any]:
    """JSON merge patch (RFC 7386) of one object; return it as stored. For fields kaiops does not own
    through server-side apply (e.g. an annotation another tool set); kaiops's own writes use :func:`apply`.

    Raises:
        NotFound: no such object. PermanentError / TemporaryError as for :func:`apply`.
    """
    resource = resource_for(dyn, api_version, kind)
    try:
        patched = resource.patch(body=body, name=name, namespace=namespace,
                                 content_type="application/merge-patch+json")
    except API_ERRORS as exc:
        raise translate(exc, f"patch {kind} {namespace or ''}/{name}") from exc
    out: dict[str, Any] = patched.to_dict()
    return out


def applyable_body(obj: dict[str, Any]) -> dict[str, Any]:
    """The applyable part of an object: identity, labels, annotations, spec and the resourceVersion.

    Because one field manager that applies a *partial* object gives up (deletes) the fields it owned but left
    out, a read-modify-apply sends the whole current ``metadata.labels/annotations`` and ``spec`` with the
    change; ``metadata.resourceVersion`` makes the apply fail with 409 when someone wrote in between.
    """
    meta = obj["metadata"]
    out_meta: dict[str, Any] = {"name": meta["name"], "resourceVersion": meta["resourceVersion"]}
    if meta.get("namespace"):
        out_meta["namespace"] = meta["namespace"]
    for key in ("labels", "annotations"):
        if meta.get(key):
            out_meta[key] = dict(meta[key])
    body = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": out_meta}
    if "spec" in obj:
        body["spec"] = copy.deepcopy(obj["spec"])
    return body


def update(
    dyn: DynamicClient,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    mutate: Callable[[dict[str, Any]], dict[str, Any] | None],
    *,
    attempts: int = 8,
) -> dict[str, Any]:
    """Read-modify-apply with ``resourceVersion`` as precondition, retried on a concurrent write
    (optimistic concurrency: two writers can never both win).

    Args:
        mutate: gets the applyable body (:func:`applyable_body`) and returns it changed, or None for "no
            change" (then nothing is written). It may raise to refuse.
        attempts: reads and writes at most, when others keep writing in between.

    Returns:
        the object as the server has it after the write (or as read, when nothing changed).

    Raises:
        ApplyConflict: a field is owned by another manager, or ``attempts`` concurrent writes in a row.
        TemporaryError: the last attempt met a concurrent write too.
    """
    for attempt in range(attempts):
        current = get(dyn, api_version, kind, name, namespace)
        body = mutate(applyable_body(current))
        if body is None:
            return current
        try:
            return apply(dyn, body)
        except ApplyConflict as exc:
            if "modified" not in str(exc) or attempt == attempts - 1:
                raise
        except TemporaryError as exc:
            if "modified" not in str(exc) or attempt == attempts - 1:
                raise
        time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def delete(dyn: DynamicClient, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
    """Delete one object (the apiserver's default propagation; do not wait); True when it existed.

    Raises:
        PermanentError / TemporaryError: the apiserver refused (4xx other than 404) or did not answer.
    """
    resource = resource_for(dyn, api_version, kind)
    try:
        resource.delete(name=name, namespace=namespace)
    except API_ERRORS as exc:
        err = translate(exc, f"delete {kind} {namespace or ''}/{name}")
        if isinstance(err, NotFound):
            return False
        raise err from exc
    return True


def wait_deleted(dyn: DynamicClient, api_version: str, kind: str, name: str, namespace: str | None,
                 timeout_s: float) -> bool:
    """Watch one object until it is gone (True) or ``timeout_s`` seconds pass (False).

    Raises:
        PermanentError / TemporaryError: the object could not be read.
    """
    resource = resource_for(dyn, api_version, kind)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            current = resource.get(name=name, namespace=namespace)
        except API_ERRORS as exc:
            err = translate(exc, f"get {kind} {namespace or ''}/{name}")
            if isinstance(err, NotFound):
                return True
            raise err from exc
        for event in dyn.watch(resource, namespace=namespace, field_selector=f"metadata.name={name}",
                               resource_version=current.metadata.resourceVersion,
                               timeout=max(1, int(min(60, deadline - time.monotonic())))):
            if event["type"] == "DELETED":
                return True
    return False
