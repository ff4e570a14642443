"""Restore drills: restore into fresh scratch namespaces, wait for readiness, compare, time, clean up.

Pure parts: :func:`scratch_map` (unique namespace names per drill), :func:`normalise` and :func:`differences`
(restored object vs backup). I/O parts: :func:`wait_ready` (watches, one per object with a readiness
signal) and :func:`cleanup`.

Cluster-scoped objects (ClusterServingRuntime, LocalModelCache) are not restored by a drill into the same
cluster (that would overwrite the live ones); they are checked with a server-side dry run instead.

The drill deletes the objects it restored itself, then the scratch namespaces, and does not wait for them to
go: the namespace controller (and KubeRay's finalizer for a RayCluster) finish that in the background, on a
real cluster as on the sandbox, which runs the real kube-controller-manager.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks import kube
from tasks.backup.discovery import KindName, discover
from tasks.backup.export import strip
from tasks.backup.readiness import has_signal, readiness
from tasks.backup.scratch import DRILL_LABEL
from tasks.errors import KaiopsError, NotFound

NAMESPACE_MAX = 63


class ReadinessMode(StrEnum):
    """How a drill decides a restored object is ready."""

    conditions = "conditions"  # per-kind rules (RayCluster state/HeadPodReady, InferenceService Ready)
    present = "present"  # existing is enough (no controllers running)


class DrillVerdict(StrEnum):
    """How a drill ended."""

    passed = "passed"  # every object restored, ready and equal to the backup
    failed = "failed"  # at least one object not restored, not ready, or different


def scratch_map(namespaces: list[str], drill_id: str) -> dict[str, str]:
    """Map each source namespace to ``d-<drill_id>-<ns>`` (at most 63 characters, unique per drill).

    A name too long is cut and given a hash suffix so two long names never collide.
    """
    out: dict[str, str] = {}
    for ns in namespaces:
        name = f"d-{drill_id}-{ns}"
        if len(name) > NAMESPACE_MAX:
            digest = hashlib.sha256(ns.encode()).hexdigest()[:6]
            name = f"{name[:NAMESPACE_MAX - 7].rstrip('-')}-{digest}"
        out[ns] = name
    return out


def normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """What must survive a restore: the object without server-set fields, status, namespace,
    ownerReferences and field-manager bookkeeping."""
    out = strip(obj)
    meta = out["metadata"]
    meta.pop("namespace", None)
    meta.pop("ownerReferences", None)
    return out


def foreign_metadata(obj: dict[str, Any], own_manager: str = kube.FIELD_MANAGER) -> dict[str, set[str]]:
    """Label and annotation keys of ``obj`` that a field manager other than ``own_manager`` owns, from its
    ``metadata.managedFields`` (``f:metadata`` -> ``f:labels``/``f:annotations`` -> ``f:<key>``).

    Returns:
        ``{"labels": {keys}, "annotations": {keys}}``; keys also owned by ``own_manager`` are left out.
    """
    owned: dict[str, dict[str, set[str]]] = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        fields = ((entry.get("fieldsV1") or {}).get("f:metadata") or {})
        who = "own" if entry.get("manager") == own_manager else "other"
        for part in ("labels", "annotations"):
            keys = {k[2:] for k in fields.get(f"f:{part}") or {} if k.startswith("f:")}
            owned.setdefault(who, {}).setdefault(part, set()).update(keys)
    mine, theirs = owned.get("own", {}), owned.get("other", {})
    return {part: theirs.get(part, set()) - mine.get(part, set()) for part in ("labels", "annotations")}


def differences(backup: dict[str, Any], restored: dict[str, Any], limit: int = 5) -> list[str]:
    """Dotted paths where ``restored`` differs from ``backup`` after :func:`normalise` (at most ``limit``).

    Labels and annotations that another field manager (a controller) owns on the restored object are left out
    of the comparison: the restore left them to their owners (see :mod:`tasks.backup.restore`), and a
    controller may rewrite them for the new object (the sandbox's HTTPRoute router writes its own address).
    """
    found: list[str] = []
    foreign = foreign_metadata(restored)
    left, right = normalise(backup), normalise(restored)
    for side in (left, right):
        meta = side["metadata"]
        for part, keys in foreign.items():
            values = {k: v for k, v in (meta.get(part) or {}).items() if k not in keys}
            if values:
                meta[part] = values
            else:
                meta.pop(part, None)

    def walk(a: Any, b: Any, path: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{i}]")
        elif a != b:
            found.append(path or "<root>")

    walk(left, right, "")
    return found


@dataclass
class ObjectResult:
    """One drilled object: ``ref``, restored, ready (with reason), equal (with differing paths)."""

    ref: str
    restored: bool = False
    ready: bool = False
    equal: bool = False
    reason: str = ""
    differences: list[str] = field(default_factory=list)


Waiter = Callable[[DynamicClient, dict[str, Any], float], dict[str, Any]]


def wait_condition(dyn: DynamicClient, obj: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Watch ``obj`` until its kind's readiness rule holds (``present`` kinds: a single read).

    Raises:
        TimeoutError: not ready within ``timeout`` seconds (message has the rule's last reason).
    """
    meta = obj["metadata"]
    if not has_signal(obj):
        return kube.get(dyn, obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    try:
        return kube.wait_for(dyn, obj["apiVersion"], obj["kind"], meta["name"], lambda o: readiness(o).ready,
                             namespace=meta.get("namespace"), timeout=timeout)
    except TimeoutError as exc:
        raise TimeoutError(f"{kube.object_ref(obj)}: not ready after {timeout:.0f}s") from exc


def wait_present(dyn: DynamicClient, obj: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Read ``obj`` back; existing is enough (:attr:`ReadinessMode.present`)."""
    meta = obj["metadata"]
    return kube.get(dyn, obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


WAITERS: dict[ReadinessMode, Waiter] = {ReadinessMode.conditions: wait_condition, ReadinessMode.present: wait_present}


def wait_ready(dyn: DynamicClient, pairs: list[tuple[dict[str, Any], dict[str, Any]]], mode: ReadinessMode,
               timeout: float, parallelism: int = 16, secrets_left_out: bool = False) -> list[ObjectResult]:
    """For each ``(backup object, applied object)``: wait for readiness, read it back and compare.

    Args:
        pairs: the object as in the backup and as applied (namespace mapped).
        mode: :class:`ReadinessMode`.
        timeout: seconds for the whole wait (each object gets what is left).
        secrets_left_out: the backup left Secrets out (no encryption key): named as the likely cause when a
            restored InferenceService lacks its credentials (:func:`tasks.diagnose.likely_cause`).

    Returns:
        One :class:`ObjectResult` per pair (``restored`` True: the caller restored them).
    """
    deadline = time.monotonic() + timeout
    waiter = WAITERS[mode]

    def one(pair: tuple[dict[str, Any], dict[str, Any]]) -> ObjectResult:
        original, applied = pair
        result = ObjectResult(kube.object_ref(applied), restored=True)
        try:
            live = waiter(dyn, applied, max(1.0, deadline - time.monotonic()))
        except (TimeoutError, KaiopsError) as exc:
            from tasks.diagnose import describe

            result.reason = f"{str(exc)[:300]}: {describe(dyn, applied, secrets_left_out=secrets_left_out)}"
            return result
        result.ready = True
        result.differences = differences(original, live)
        result.equal = not result.differences
        if not result.equal:
            result.reason = "differs at " + ", ".join(result.differences)
        return result

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        return list(pool.map(one, pairs))


def compare_applied(triples: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]) -> list[ObjectResult]:
    """For each ``(backup object, applied object, the server's answer to the apply)``: compare (no request).

    The answer to a server-side apply is the object as the server stored it, so for
    :attr:`ReadinessMode.present` it is what reading the object back would return.
    """
    out = []
    for original, applied, live in triples:
        result = ObjectResult(kube.object_ref(applied), restored=True, ready=True)
        result.differences = differences(original, live)
        result.equal = not result.differences
        if not result.equal:
            result.reason = "differs at " + ", ".join(result.differences)
        out.append(result)
    return out


def cleanup(dyn: DynamicClient, applied: list[dict[str, Any]], namespaces: list[str],
            parallelism: int = 16) -> list[str]:
    """Delete the restored objects, then the scratch namespaces; do not wait.

    Objects in the scratch ``namespaces`` (made by this drill, holding only what it restored) go with one
    ``deletecollection`` per kind and namespace; any other object one ``DELETE`` each (newest wave first).

    Returns:
        Messages for deletions that failed (cleanup never raises: the drill result matters more).
    """
    errors: list[str] = []
    scratch = set(namespaces)
    collections = sorted({(o["apiVersion"], o["kind"], o["metadata"]["namespace"]) for o in applied
                          if o["kind"] != "Namespace" and o["metadata"].get("namespace") in scratch})
    api = dyn.client
    found = discover(api, {KindName(av.rpartition("/")[0], kind) for av, kind, _ in collections})

    def delete_collection(job: tuple[str, str, str]) -> None:
        av, kind, ns = job
        info = found.served.get(KindName(av.rpartition("/")[0], kind))
        try:
            if info is None:
                raise NotFound(f"{av} {kind} is not served")
            api.call_api(info.path(ns), "DELETE", auth_settings=["BearerToken"], _preload_content=False)
        except Exception as exc:  # report and go on
            errors.append(f"delete {kind} in {ns}: {str(exc)[:200]}")

    def delete(obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            kube.delete(dyn, obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        except Exception as exc:  # report and go on (a 404 is no error: kube.delete says False)
            errors.append(f"delete {kube.object_ref(obj)}: {str(exc)[:200]}")

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(delete_collection, collections))
        list(pool.map(delete, [o for o in reversed(applied) if o["kind"] != "Namespace"
                               and o["metadata"].get("namespace") not in scratch]))
        list(pool.map(delete, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces]))
    return errors


@dataclass
class DrillPlan:
    """What a drill restores: ``restore`` (fresh scratch Namespace objects + the namespaced objects, names
    not yet mapped), ``cluster_scoped`` (checked by server dry run only), and the namespace map."""

    restore: list[dict[str, Any]]
    cluster_scoped: list[dict[str, Any]]
    namespace_map: dict[str, str]


def plan_drill(objects: list[dict[str, Any]], drill_id: str, lease: dict[str, str] | None = None) -> DrillPlan:
    """Split a backup's objects for a drill; the backed-up Namespace objects are replaced by fresh ones
    labelled ``kaiops.io/drill=<drill_id>`` (their labels, e.g. a production marker, are not copied) and
    annotated with ``lease`` (:func:`tasks.backup.scratch.lease_annotations`) when given."""
    namespaced = [o for o in objects if o["metadata"].get("namespace")]
    cluster = [o for o in objects if not o["metadata"].get("namespace") and o["kind"] != "Namespace"]
    names = sorted({o["metadata"]["namespace"] for o in namespaced})
    extra = {"annotations": dict(lease)} if lease else {}
    fresh = [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": n, "labels": {DRILL_LABEL: drill_id}, **extra}} for n in names]
    return DrillPlan(fresh + namespaced, cluster, scratch_map(names, drill_id))


def summarise(results: list[ObjectResult], *, rto: float, max_rto: float | None, failed_applies: int,
              cluster_checked: int, cluster_failed: int) -> dict[str, Any]:
    """The drill's JSON summary and verdict (``reason`` says why a failed drill failed)."""
    counts = {"restored": sum(r.restored for r in results), "ready": sum(r.ready for r in results),
              "equal": sum(r.equal for r in results), "total": len(results) + failed_applies}
    reasons = []
    if failed_applies:
        reasons.append(f"{failed_applies} object(s) not restored")
    if counts["ready"] < counts["restored"]:
        not_ready = [r for r in results if r.restored and not r.ready]
        reasons.append(f"{len(not_ready)} object(s) not ready: " + "; ".join(
            r.reason if r.reason.startswith(r.ref) else f"{r.ref}: {r.reason or 'not ready'}" for r in not_ready))
    if counts["equal"] < counts["ready"]:
        reasons.append(f"{counts['ready'] - counts['equal']} object(s) differ from the backup")
    if cluster_failed:
        reasons.append(f"{cluster_failed} cluster-scoped object(s) refused by the server dry run")
    if max_rto is not None and rto > max_rto:
        reasons.append(f"RTO {rto:.1f}s exceeds {max_rto:.0f}s")
    verdict = DrillVerdict.failed if reasons else DrillVerdict.passed
    return {"verdict": verdict.value, "reason": "; ".join(reasons), "objects": counts, "rto_seconds": round(rto, 3),
            "cluster_scoped_dry_run": {"checked": cluster_checked, "failed": cluster_failed}}
