"""The steps of Ray cluster provisioning: load, render, validate, plan (server-side dry run + diff), apply,
watch until ready, smoke-test, delete. Prefect tasks over the pure helpers of :mod:`tasks.ray.status` and
:mod:`tasks.ray.plan`; a timed-out wait is explained by :mod:`tasks.ray.diagnose`.

Tasks take a kubeconfig path (not a client) so their inputs stay hashable and loggable; only the I/O tasks
retry, and only on :class:`~tasks.errors.TemporaryError`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.ray_cluster import RayClusterConfig, load_cluster_config
from tasks import kube
from tasks.errors import InputError, PermanentError, io_retries
from tasks.manifests import validate_documents
from tasks.manifests.findings import Severity
from tasks.ray.diagnose import diagnose, diagnosis_text, list_pods
from tasks.ray.jobs import progress, smoke_test
from tasks.ray.manifest import API_VERSION, KIND, namespace_manifest, render_ray_cluster
from tasks.ray.plan import Decision, Plan, same_object, spec_diff
from tasks.ray.status import STALE_GENERATION_GRACE_S, only_stale_generation, readiness_gaps, suspended_gaps

EVENT_COMPONENT = "kaiops"
PROGRESS_EVERY_S = 15.0


class ProvisionTimeout(PermanentError):
    """The cluster did not become ready in time; ``diagnosis`` says what was missing and why."""

    def __init__(self, message: str, diagnosis: dict[str, Any]) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis


@task(cache_policy=NO_CACHE)
def load_config(path: str) -> RayClusterConfig:
    """Read a cluster config (``InputError`` naming file, field and fix when wrong)."""
    return load_cluster_config(path)


@task(cache_policy=NO_CACHE)
def render_and_validate(cfg: RayClusterConfig, source: str) -> dict[str, Any]:
    """Render the RayCluster and run the offline validator; error findings raise ``InputError``."""
    manifest = render_ray_cluster(cfg)
    errors = [f for f in validate_documents([manifest], source) if f.severity == Severity.error]
    if errors:
        first = errors[0]
        raise InputError(source, first.field, f"rendered RayCluster is invalid: {first.message}", first.fix)
    return manifest


@task(cache_policy=NO_CACHE, **io_retries(3, 2))
def read_cluster(kubeconfig: str | None, name: str, namespace: str) -> dict[str, Any] | None:
    """The live RayCluster, or None when it does not exist."""
    try:
        return kube.get(kube.connect(kubeconfig), API_VERSION, KIND, name, namespace)
    except kube.NotFound:
        return None


@task(cache_policy=NO_CACHE, **io_retries(3, 2))
def plan_apply(kubeconfig: str | None, manifest: dict[str, Any], field_manager: str = kube.FIELD_MANAGER,
               force: bool = False) -> Plan:
    """Server-side dry-run ``manifest`` and compare with the live object (nothing is written).

    ``force``: take conflicting fields (only as :func:`keep_autoscaler_state` decides).

    Raises:
        PermanentError: the server refused the object (schema, RBAC, conflict with another manager).
    """
    dyn = kube.connect(kubeconfig)
    meta = manifest["metadata"]
    try:
        live = kube.get(dyn, manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
    except kube.NotFound:
        live = None
    try:
        planned = kube.apply(dyn, manifest, field_manager=field_manager, dry_run=True, force=force)
    except kube.NotFound:  # the namespace does not exist yet: show the client-side rendering
        planned = manifest
    if same_object(live, planned):
        return Plan(Decision.unchanged, "", (live or {}).get("metadata", {}).get("resourceVersion", ""))
    decision = Decision.created if live is None else Decision.updated
    return Plan(decision, spec_diff(live, planned, meta["name"]),
                (live or {}).get("metadata", {}).get("resourceVersion", ""))


@task(cache_policy=NO_CACHE, **io_retries(3, 2))
def ensure_namespace(kubeconfig: str | None, namespace: str) -> bool:
    """Create the namespace when missing (server-side apply); return True when it was created."""
    dyn = kube.connect(kubeconfig)
    try:
        kube.get(dyn, "v1", "Namespace", namespace)
        return False
    except kube.NotFound:
        kube.apply(dyn, namespace_manifest(namespace))
        return True


@task(cache_policy=NO_CACHE, **io_retries(3, 2))
def apply_manifest(kubeconfig: str | None, manifest: dict[str, Any],
                   field_manager: str = kube.FIELD_MANAGER, force: bool = False) -> dict[str, Any]:
    """Server-side apply (strict field validation, conflicts surfaced unless ``force``); return the object as
    stored."""
    return kube.apply(kube.connect(kubeconfig), manifest, field_manager=field_manager, force=force)


@task(cache_policy=NO_CACHE)
def record_event(kubeconfig: str | None, obj: dict[str, Any], reason: str, message: str,
                 type_: str = "Normal") -> None:
    """Record a kaiops decision as a core/v1 Event on the RayCluster (best effort: never fails the flow)."""
    try:
        kube.record_event(kube.connect(kubeconfig), {**obj, "apiVersion": API_VERSION, "kind": KIND}, reason, message,
                          type_=kube.EventType(type_), component=EVENT_COMPONENT)
    except Exception as exc:  # an Event is a courtesy; the decision itself already happened
        print(f"event {reason} not recorded: {exc}")


@task(cache_policy=NO_CACHE)
def wait_until(kubeconfig: str | None, name: str, namespace: str, timeout_s: float,
               want: str = "ready", progress_every_s: float = PROGRESS_EVERY_S) -> dict[str, Any]:
    """Watch the RayCluster (and, for ``want="ready"``, its Pods) until it is ready or ``"suspended"``.

    Prints what is still missing every ``progress_every_s`` seconds.

    Args:
        timeout_s: seconds.

    Raises:
        ProvisionTimeout: not there in time; the message and ``diagnosis`` say what is missing, the
            conditions' reasons, each unready Pod's reason (with its last log lines) and the recent Events.
    """
    dyn = kube.connect(kubeconfig)
    deadline = time.monotonic() + timeout_s
    started = said = time.monotonic()
    stale_since: float | None = None
    check = readiness_gaps if want == "ready" else suspended_gaps
    while True:
        remaining = deadline - time.monotonic()
        try:
            obj = kube.wait_for(dyn, API_VERSION, KIND, name, lambda o: not check(o) or only_stale_generation(check(o)),
                                namespace=namespace, timeout=max(0.5, min(remaining, 5.0)))
            gaps = readiness_gaps(obj, list_pods(kubeconfig, name, namespace)) if want == "ready" else check(obj)
        except TimeoutError:
            gaps = None
        if gaps == []:
            return obj
        if gaps and only_stale_generation(gaps):
            stale_since = stale_since or time.monotonic()
            if time.monotonic() - stale_since >= STALE_GENERATION_GRACE_S:
                progress(f"{namespace}/{name}: {gaps[0]}, but everything else is {want} for "
                      f"{STALE_GENERATION_GRACE_S:.0f}s: KubeRay v1.6.2 writes no status when only observedGeneration "
                      "would change; counting it as " + want)
                return obj
        else:
            stale_since = None
        if time.monotonic() >= deadline:
            break
        if time.monotonic() - said >= progress_every_s:
            said = time.monotonic()
            if gaps is None:
                gaps = check(read_cluster.fn(kubeconfig, name, namespace) or {})
            progress(f"{namespace}/{name}: not {want} after {said - started:.0f}s: {'; '.join(gaps) or 'checking'}")
        time.sleep(1.0 if gaps is not None else 0)
    diag = diagnose.fn(kubeconfig, name, namespace, want)
    raise ProvisionTimeout(
        f"RayCluster {namespace}/{name} not {want} after {timeout_s:.0f}s:\n{diagnosis_text(diag)}", diag)


@task(cache_policy=NO_CACHE, **io_retries(4, 5))
def smoke_job(dashboard_url: str, deadline: float, workers: int = 0,
              entrypoint_resources: dict[str, float] | None = None) -> dict[str, Any]:
    """Run the kaiops smoke job through the Job Submission API; return its result as a dict.

    Args:
        dashboard_url: see :func:`dashboard_url`.
        deadline: wall-clock time (``time.time()``) by which the job must have finished, retries included.
        workers: worker Pods the cluster has; the job proves each of them runs tasks.
        entrypoint_resources: extra Ray resources for the job's driver.

    Retries while the API is not reachable yet (e.g. "No available agent to submit job" right after start).

    Raises:
        JobTimeout: not finished by ``deadline`` (the job was stopped; its status message and log tail are in
            the message).
    """
    result = smoke_test(dashboard_url, timeout=max(1.0, deadline - time.time()), workers=workers,
                        entrypoint_resources=entrypoint_resources)
    out = asdict(result)
    out["logs"] = result.logs[-2000:]
    out["succeeded"] = result.succeeded
    return out


@task(cache_policy=NO_CACHE, **io_retries(3, 2))
def delete_cluster(kubeconfig: str | None, name: str, namespace: str, timeout_s: float = 120.0) -> Decision:
    """Delete the RayCluster and watch until it is gone; ``absent`` when it did not exist."""
    dyn = kube.connect(kubeconfig)
    if not kube.delete(dyn, API_VERSION, KIND, name, namespace):
        return Decision.absent
    if kube.wait_deleted(dyn, API_VERSION, KIND, name, namespace, timeout_s):
        return Decision.deleted
    raise PermanentError(f"RayCluster {namespace}/{name} still exists {timeout_s:.0f}s after delete (finalizers?)")


@task(cache_policy=NO_CACHE)
def owned_service_gone(kubeconfig: str | None, name: str, namespace: str, timeout_s: float = 60.0) -> bool:
    """Wait until the operator-owned head Service ``<name>-head-svc`` is gone; True when it is."""
    return kube.wait_deleted(kube.connect(kubeconfig), "v1", "Service", f"{name}-head-svc", namespace, timeout_s)


def config_path_label(path: str | Path) -> str:
    """The config file as shown in reports (relative to the working directory when possible)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)
