"""A RayCluster's state read as KubeRay v1.6.2 writes it, and its Pods (pure: dicts in, gaps out).

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

from typing import Any

from tasks import kube
from tasks.errors import PermanentError


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


def pod_ready(pod: dict[str, Any]) -> bool:
    """Running with condition Ready True (KubeRay utils/util.go ``IsRunningAndReady``)."""
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def terminating(pod: dict[str, Any]) -> bool:
    """True once the Pod has a deletion timestamp (it is going, whatever its phase)."""
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
    going = sorted(p["metadata"]["name"] for p in pods if terminating(p))
    if going:
        gaps.append(f"{len(going)} Pod(s) still terminating: {', '.join(going[:4])}")
    live = [p for p in pods if not terminating(p)]
    heads = [p for p in live if (p["metadata"].get("labels") or {}).get(NODE_TYPE_LABEL) == "head"]
    workers = [p for p in live if (p["metadata"].get("labels") or {}).get(NODE_TYPE_LABEL) == "worker"]
    if len(heads) != 1:
        gaps.append(f"{len(heads)} head Pods, want 1")
    elif not pod_ready(heads[0]):
        gaps.append(f"head Pod {heads[0]['metadata']['name']} is not Running and Ready")
    desired = int((obj.get("status") or {}).get("desiredWorkerReplicas") or 0)
    ready = sum(pod_ready(p) for p in workers)
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
        if pod_ready(pod) or terminating(pod):
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
