"""The steps of Ray cluster provisioning: load, render, validate, plan (server-side dry run + diff), apply,
watch until ready, diagnose, smoke-test, delete. Prefect tasks over pure helpers.

Pure helpers (no Prefect, no I/O): :func:`readiness_gaps`, :func:`pod_gaps`, :func:`pod_problems`,
:func:`dashboard_url`, :func:`spec_diff`, :func:`same_object`, :func:`diagnosis_text`. Tasks take a kubeconfig
path (not a client) so their inputs stay hashable and loggable; only the I/O tasks retry, and only on
:class:`~tasks.errors.TemporaryError`.

Readiness follows what KubeRay v1.6.2 really writes (ray-operator/controllers/ray/raycluster_controller.go
``calculateStatus``, lines 1568-1735) and what it leaves out:

- ``observedGeneration`` is set to ``metadata.generation`` on *every* status write, before any Pod of the
  new spec exists: it proves the operator saw the spec, nothing more.
- ``state: ready`` and ``RayClusterProvisioned`` are sticky: set once all Pods first run, reset only by a
  suspension. After a scale or an upgrade they still say ready while old Pods terminate and new ones start.
- ``HeadPodReady`` mirrors the head Pod's ``Ready`` condition (utils/util.go ``FindHeadPodReadyCondition``);
  ``readyWorkerReplicas`` counts worker Pods Running and Ready, terminating ones included
  (``CalculateReadyReplicas``).

So kaiops also reads the cluster's Pods (label ``ray.io/cluster``): none may be terminating, exactly one head
and ``desiredWorkerReplicas`` workers must be Running and Ready.
"""

from __future__ import annotations

import copy
import difflib
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.ray_cluster import RayClusterConfig, load_cluster_config
from tasks import kube
from tasks.errors import InputError, PermanentError, io_retries
from tasks.manifests import validate_documents
from tasks.manifests.findings import Severity
from tasks.ray_cluster import API_VERSION, KIND, namespace_manifest, render_ray_cluster
from tasks.ray_jobs import progress

SUSPEND_MANAGER = "kaiops-suspend"  # owns only spec.suspend, so a provision run never resumes a cluster
EVENT_COMPONENT = "kaiops"


class Decision(StrEnum):
    """What a provisioning step did to the RayCluster."""

    created = "created"  # the object did not exist and was applied
    updated = "updated"  # the server-side dry run differed from the live object; applied
    unchanged = "unchanged"  # the dry run equals the live object; nothing written
    planned = "planned"  # dry run only: the diff was shown, nothing written
    deleted = "deleted"  # the RayCluster was deleted
    absent = "absent"  # nothing to delete: it was already gone


class ProvisionTimeout(PermanentError):
    """The cluster did not become ready in time; ``diagnosis`` says what was missing and why."""

    def __init__(self, message: str, diagnosis: dict[str, Any]) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis


@dataclass(frozen=True)
class Plan:
    """The result of a server-side dry run against the live object.

    Attributes:
        decision: ``created``/``updated``/``unchanged`` (what applying would do).
        diff: unified diff of ``metadata.labels`` + ``spec`` (live -> after apply), empty when unchanged.
        live_resource_version: resourceVersion of the live object ("" when absent).
    """

    decision: Decision
    diff: str
    live_resource_version: str = ""


# --- pure helpers ------------------------------------------------------------------------------------------
def readiness_gaps(obj: dict[str, Any], pods: list[dict[str, Any]] | None = None) -> list[str]:
    """What keeps a RayCluster from counting as provisioned; empty when ready.

    Args:
        obj: the RayCluster as read from the API.
        pods: the cluster's Pods (label ``ray.io/cluster=<name>``) as dicts; None skips the Pod checks
            (:func:`pod_gaps`), which only the status would then vouch for.

    Returns:
        Human-readable gaps, e.g. ``"HeadPodReady is False (ContainersNotReady: ...)"``.
    """
    status = obj.get("status") or {}
    gaps = []
    for type_ in ("HeadPodReady", "RayClusterProvisioned"):
        cond = kube.condition(obj, type_)
        if not cond:
            gaps.append(f"condition {type_} not reported yet")
        elif cond.get("status") != "True":
            gaps.append(f"{type_} is {cond.get('status')} ({cond.get('reason')}: {cond.get('message') or '-'})")
    failure = kube.condition(obj, "ReplicaFailure")
    if failure and failure.get("status") == "True":
        gaps.append(f"ReplicaFailure ({failure.get('reason')}: {failure.get('message')})")
    if status.get("state") != "ready":
        gaps.append(f"state is {status.get('state') or 'unset'!r}, not 'ready'")
    ready, desired = int(status.get("readyWorkerReplicas") or 0), int(status.get("desiredWorkerReplicas") or 0)
    if ready < desired:
        gaps.append(f"{ready}/{desired} workers ready")
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        gaps.append(f"{STALE_GENERATION} {observed}, the spec is at {generation}")
    if pods is not None:
        gaps += pod_gaps(obj, pods)
    return gaps


STALE_GENERATION = "status is for generation"
# KubeRay v1.6.2 skips the status write when only observedGeneration/lastUpdateTime would change
# (controllers/ray/utils/consistency.go lines 10-16, InconsistentRayClusterStatus), so after a spec change that
# moves no other status field (upgradeStrategy None, a toleration) observedGeneration stays behind for good.
STALE_GENERATION_GRACE_S = 10.0


def only_stale_generation(gaps: list[str]) -> bool:
    """True when the only gap left is an ``observedGeneration`` behind ``metadata.generation``."""
    return bool(gaps) and all(g.startswith(STALE_GENERATION) for g in gaps)


NODE_TYPE_LABEL = "ray.io/node-type"  # KubeRay utils/constant.go RayNodeTypeLabelKey: head | worker
CLUSTER_LABEL = "ray.io/cluster"  # KubeRay utils/constant.go RayClusterLabelKey


def _pod_ready(pod: dict[str, Any]) -> bool:
    """Running with condition Ready True (KubeRay utils/util.go ``IsRunningAndReady``)."""
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _terminating(pod: dict[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    return bool(meta.get("deletionTimestamp") or meta.get("deletion_timestamp"))


def pod_gaps(obj: dict[str, Any], pods: list[dict[str, Any]]) -> list[str]:
    """What the cluster's Pods still lack: none terminating, one head and ``desiredWorkerReplicas`` workers,
    all Running and Ready. (KubeRay's own status counts terminating Pods and keeps ``state: ready``.)

    Args:
        obj: the RayCluster (its ``status.desiredWorkerReplicas``).
        pods: its Pods, as dicts.
    """
    gaps = []
    going = sorted(p["metadata"]["name"] for p in pods if _terminating(p))
    if going:
        gaps.append(f"{len(going)} Pod(s) still terminating: {', '.join(going[:4])}")
    live = [p for p in pods if not _terminating(p)]
    heads = [p for p in live if (p["metadata"].get("labels") or {}).get(NODE_TYPE_LABEL) == "head"]
    workers = [p for p in live if (p["metadata"].get("labels") or {}).get(NODE_TYPE_LABEL) == "worker"]
    if len(heads) != 1:
        gaps.append(f"{len(heads)} head Pods, want 1")
    elif not _pod_ready(heads[0]):
        gaps.append(f"head Pod {heads[0]['metadata']['name']} is not Running and Ready")
    desired = int((obj.get("status") or {}).get("desiredWorkerReplicas") or 0)
    ready = sum(_pod_ready(p) for p in workers)
    if ready != desired or len(workers) != desired:
        gaps.append(f"worker Pods: {ready} ready of {len(workers)}, want {desired}")
    return gaps


def pod_problems(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Why each Pod that is not Running and Ready is not, as the scheduler and the kubelet said it.

    Returns:
        Rows ``{"pod", "phase", "reason", "message", "container", "exit_code", "restarts"}``: an
        ``Unschedulable`` PodScheduled condition (the scheduler's message, e.g. ``0/2 nodes are available:
        1 Insufficient nvidia.com/gpu ...``), else the first container (init containers first) that is waiting
        (``CrashLoopBackOff``, ``ErrImagePull``) or terminated, with its last exit code.
    """
    rows = []
    for pod in pods:
        if _pod_ready(pod) or _terminating(pod):
            continue
        status = pod.get("status") or {}
        row: dict[str, Any] = {"pod": pod["metadata"]["name"], "phase": status.get("phase"), "reason": None,
                               "message": None, "container": None, "exit_code": None, "restarts": 0}
        sched = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if sched and sched.get("status") == "False":
            row.update(reason=sched.get("reason"), message=sched.get("message"))
            rows.append(row)
            continue
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            state, last = cs.get("state") or {}, cs.get("lastState") or cs.get("last_state") or {}
            if cs.get("ready") and "running" in state:
                continue
            waiting, done = state.get("waiting"), state.get("terminated") or last.get("terminated")
            if not waiting and not done:
                continue
            if done and done.get("exitCode", done.get("exit_code")) == 0 and not waiting:
                continue  # a finished init container
            row.update(container=cs.get("name"), restarts=int(cs.get("restartCount") or 0),
                       reason=(waiting or done or {}).get("reason"),
                       message=(waiting or {}).get("message") or (done or {}).get("message"),
                       exit_code=(done or {}).get("exitCode", (done or {}).get("exit_code")))
            break
        rows.append(row)
    return rows


def dashboard_url(obj: dict[str, Any]) -> str:
    """The Ray Job Submission API of a RayCluster: ``http://<head Pod IP>:<endpoints.dashboard>``.

    KubeRay v1.6.2 writes ``status.endpoints`` as the head Service's *target* ports (container ports, e.g.
    ``"8265"``; ``updateEndpoints``, raycluster_controller.go line 1763) and ``status.head.podIP`` /
    ``serviceIP`` (the Pod IP again for the default headless Service). The Pod IP is what a kubelet's node,
    and the sandbox's host, reach directly.

    Raises:
        PermanentError: the status has no head IP or no dashboard endpoint yet.
    """
    status = obj.get("status") or {}
    head = status.get("head") or {}
    host = head.get("podIP") or head.get("serviceIP")
    port = (status.get("endpoints") or {}).get("dashboard")
    if not host or not port:
        raise PermanentError(f"RayCluster {obj['metadata'].get('namespace')}/{obj['metadata']['name']} has no "
                             f"dashboard address in its status (head={head}, endpoints={status.get('endpoints')})")
    return f"http://{host}:{port}"


def suspended_gaps(obj: dict[str, Any]) -> list[str]:
    """What keeps a RayCluster from counting as suspended (``RayClusterSuspended`` True, state suspended)."""
    gaps = []
    if not kube.condition_true(obj, "RayClusterSuspended"):
        cond = kube.condition(obj, "RayClusterSuspended") or {}
        gaps.append(f"RayClusterSuspended is {cond.get('status', 'unset')}")
    if (obj.get("status") or {}).get("state") != "suspended":
        gaps.append(f"state is {(obj.get('status') or {}).get('state')!r}, not 'suspended'")
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    if int((obj.get("status") or {}).get("observedGeneration") or 0) < generation:
        gaps.append("status is for an older generation")
    return gaps


AUTOSCALED_LIST = "workerGroupSpecs"


def _spec_owners(live: dict[str, Any], mine: tuple[str, ...]) -> dict[str, set[str]]:
    """Field managers other than ``mine`` and the operator's status writer, with the top-level ``spec`` keys
    each owns (from ``metadata.managedFields``)."""
    owners: dict[str, set[str]] = {}
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        manager = entry.get("manager") or ""
        spec = ((entry.get("fieldsV1") or entry.get("fields_v1") or {}).get("f:spec")) or {}
        keys = {k[2:] for k in spec if k.startswith("f:")}
        if manager not in mine and keys:
            owners.setdefault(manager, set()).update(keys)
    return owners


def keep_autoscaler_state(manifest: dict[str, Any], live: dict[str, Any] | None,
                          mine: tuple[str, ...] = (kube.FIELD_MANAGER, SUSPEND_MANAGER)) -> tuple[dict[str, Any], bool]:
    """What kaiops applies to an autoscaling cluster, and whether it must take ``spec.workerGroupSpecs`` back.

    KubeRay v1.6.2's CRD leaves ``workerGroupSpecs`` without ``x-kubernetes-list-type``, so server-side apply
    treats the whole list as one atomic field; the Ray autoscaler (``ray kuberay-autoscaler``, a JSON patch of
    ``/spec/workerGroupSpecs/<i>/replicas`` and ``.../scaleStrategy/workersToDelete``, field manager
    ``python-requests``) then owns all of it, and the next apply by kaiops is a conflict on
    ``.spec.workerGroupSpecs``. So, when ``spec.enableInTreeAutoscaling`` is on and the cluster exists, each
    group keeps the live ``replicas`` and ``scaleStrategy`` (the autoscaler's decisions), and the list is
    taken back (``force``) only when nobody but kaiops owns any other ``spec`` field.

    Args:
        manifest: the rendered RayCluster (not changed; a copy is returned).
        live: the RayCluster as read (with ``managedFields``), or None when it does not exist.
        mine: kaiops's own field managers.

    Returns:
        ``(manifest to apply, force)``; force is True only when another manager owns ``workerGroupSpecs`` and
        nothing else of ``spec``.
    """
    if not live or not (manifest.get("spec") or {}).get("enableInTreeAutoscaling"):
        return manifest, False
    out = copy.deepcopy(manifest)
    live_groups = {g.get("groupName"): g for g in (live.get("spec") or {}).get(AUTOSCALED_LIST) or []}
    for group in out["spec"].get(AUTOSCALED_LIST) or []:
        current = live_groups.get(group["groupName"])
        if current is None:
            continue
        if "replicas" in current:
            group["replicas"] = current["replicas"]
        if current.get("scaleStrategy"):
            group["scaleStrategy"] = copy.deepcopy(current["scaleStrategy"])
    owners = _spec_owners(live, mine)
    force = bool(owners) and all(keys == {AUTOSCALED_LIST} for keys in owners.values())
    return out, force


def _comparable(obj: dict[str, Any] | None) -> dict[str, Any]:
    if not obj:
        return {}
    meta = obj.get("metadata") or {}
    return {"metadata": {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}},
            "spec": obj.get("spec") or {}}


def same_object(live: dict[str, Any] | None, planned: dict[str, Any]) -> bool:
    """True when applying would change neither labels, annotations nor spec of ``live``."""
    return live is not None and _comparable(live) == _comparable(planned)


def spec_diff(live: dict[str, Any] | None, planned: dict[str, Any], name: str = "RayCluster") -> str:
    """Unified diff (YAML) of labels/annotations/spec from ``live`` (None: absent) to ``planned``."""
    before = yaml.safe_dump(_comparable(live), sort_keys=True).splitlines(keepends=True) if live else []
    after = yaml.safe_dump(_comparable(planned), sort_keys=True).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, f"live/{name}", f"planned/{name}"))


def diagnosis_text(diag: dict[str, Any]) -> str:
    """One paragraph for people from :func:`diagnose`'s dict."""
    lines = [f"missing: {'; '.join(diag.get('missing') or ['nothing'])}"]
    for cond in diag.get("conditions") or []:
        lines.append(f"condition {cond['type']}={cond['status']} reason={cond.get('reason')}: {cond.get('message')}")
    for pod in diag.get("pods") or []:
        where = f" container {pod['container']}" if pod.get("container") else ""
        code = f" exit code {pod['exit_code']}" if pod.get("exit_code") is not None else ""
        restarts = f", {pod['restarts']} restarts" if pod.get("restarts") else ""
        lines.append(f"pod {pod['pod']} {pod.get('phase')}{where}: {pod.get('reason')}{code}{restarts}: "
                     f"{pod.get('message') or '-'}")
        if pod.get("log_tail"):
            lines.append(f"  last log lines of {pod['pod']}/{pod['container']}:")
            lines += [f"    {line}" for line in pod["log_tail"].splitlines()]
    for event in diag.get("events") or []:
        lines.append(f"event {event['type']} {event['reason']}: {event['message']}")
    return "\n".join(lines)


# --- tasks -------------------------------------------------------------------------------------------------
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


def recent_events(kubeconfig: str | None, name: str, namespace: str, limit: int = 8,
                  pods: list[str] = ()) -> list[dict[str, Any]]:
    """The last ``limit`` Events on the RayCluster ``namespace/name`` and on the named Pods (oldest first).

    The real operator records its own Events on the RayCluster; the scheduler (``FailedScheduling``) and the
    kubelet (``BackOff``, ``Failed``) record theirs on the Pods.
    """
    dyn = kube.connect(kubeconfig)
    events = kube.list_events(dyn, namespace, name, KIND)
    for pod in pods:
        events += kube.list_events(dyn, namespace, pod, "Pod")
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in events:
        involved = e.get("involvedObject") or {}
        # The scheduler writes events.k8s.io Events: eventTime / series, no lastTimestamp.
        when = kube.event_time(e)
        row = {"type": e.get("type"), "reason": e.get("reason"), "message": e.get("message"),
               "object": f"{involved.get('kind')}/{involved.get('name')}",
               "source": (e.get("source") or {}).get("component") or e.get("reportingComponent"), "time": when}
        key = (row["object"], row["reason"] or "", row["message"] or "")
        if key not in rows or when >= rows[key]["time"]:
            rows[key] = row  # the same message repeated (e.g. FailedScheduling) is shown once, latest
    return sorted(rows.values(), key=lambda r: r["time"])[-limit:]


def list_pods(kubeconfig: str | None, name: str, namespace: str) -> list[dict[str, Any]]:
    """The RayCluster's Pods (label ``ray.io/cluster=<name>``, as KubeRay labels them) as dicts."""
    dyn = kube.connect(kubeconfig)
    return kube.list_objects(dyn, "v1", "Pod", namespace, label_selector=f"{CLUSTER_LABEL}={name}")


def log_tail(kubeconfig: str | None, pod: str, namespace: str, container: str, lines: int = 15,
             previous: bool = False) -> str:
    """The last ``lines`` lines of a container's log (``previous``: of its last terminated run); "" if none."""
    from kubernetes import client

    api = client.CoreV1Api(kube.connect(kubeconfig).client)
    try:  # raw bytes: the client's own decoding turns the body into "b'...'"
        resp = api.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=lines,
                                           previous=previous, _preload_content=False)
        return resp.data.decode("utf-8", "replace").rstrip("\n")
    except Exception:  # no log yet (never started), or no previous run
        return ""


@task(cache_policy=NO_CACHE)
def diagnose(kubeconfig: str | None, name: str, namespace: str, want: str = "ready") -> dict[str, Any]:
    """What is missing, the conditions that are not True (reason, message), each unready Pod's reason (the
    scheduler's or the kubelet's, with the container's last log lines when it exited) and the recent Events.
    """
    try:
        obj = kube.get(kube.connect(kubeconfig), API_VERSION, KIND, name, namespace)
    except kube.NotFound:
        return {"missing": [f"RayCluster {namespace}/{name} does not exist"], "conditions": [], "pods": [],
                "events": []}
    try:
        pods = list_pods(kubeconfig, name, namespace)
    except Exception as exc:  # no RBAC for Pods: the status alone has to do
        pods, problems = None, [{"pod": "?", "phase": None, "reason": "PodsUnreadable", "message": str(exc)}]
    else:
        problems = pod_problems(pods)
        for row in problems:
            if row.get("container") and (row.get("exit_code") is not None or row.get("restarts")):
                row["log_tail"] = (log_tail(kubeconfig, row["pod"], namespace, row["container"], previous=True)
                                   or log_tail(kubeconfig, row["pod"], namespace, row["container"]))
    gaps = readiness_gaps(obj, pods) if want == "ready" else suspended_gaps(obj)
    conditions = [{k: c.get(k) for k in ("type", "status", "reason", "message")}
                  for c in (obj.get("status") or {}).get("conditions") or []
                  if (c.get("status") != "True") != (c.get("type") in _BAD_WHEN_TRUE)
                  and c.get("type") not in _QUIET_FALSE]
    try:
        events = recent_events(kubeconfig, name, namespace, pods=[r["pod"] for r in problems if r["pod"] != "?"])
    except Exception as exc:
        events = [{"type": "Warning", "reason": "EventsUnreadable", "message": str(exc), "source": "kaiops"}]
    return {"missing": gaps, "conditions": conditions, "pods": problems, "events": events}


# Conditions KubeRay v1.6.2 keeps False on a healthy cluster (calculateStatus sets them on every write).
_QUIET_FALSE = {"RayClusterSuspending", "RayClusterSuspended"}
# ...and the one that is bad when True: ReplicaFailure (reason FailedCreateHeadPod/FailedCreateWorkerPod/...,
# message = the API's refusal), removed again after a reconcile without error.
_BAD_WHEN_TRUE = {"ReplicaFailure"}
PROGRESS_EVERY_S = 15.0


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
    from tasks.ray_jobs import smoke_test

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
