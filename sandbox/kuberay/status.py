"""``RayCluster.status`` as KubeRay v1.7 computes it, as pure functions on dicts.

Source: ray-operator/controllers/ray/raycluster_controller.go ``calculateStatus`` (with the
``RayClusterStatusConditions`` feature gate on, the v1.7 default), ray-operator/controllers/ray/utils/util.go
(``GetWorkerGroupDesiredReplicas``, ``CalculateDesiredReplicas``/``Min``/``Max``, ``CalculateDesiredResources``,
``FindHeadPodReadyCondition``) and ray-operator/apis/ray/v1/raycluster_types.go (field names, reasons).

Facts copied on purpose:
- ``state`` only ever becomes ``ready`` (all pods running, count = desired workers + 1) or ``suspended``
  (``spec.suspend`` and no pods); it is never reset, and ``failed`` is no longer set (deprecated constant).
- ``observedGeneration`` is the generation the status was computed for (set on every status write).
- ``RayClusterProvisioned`` flips to True once and stays, except that a suspension resets it to False.
- ``HeadPodReady`` mirrors the head pod's ``Ready`` condition (reason ``HeadPodRunningAndReady`` when ready,
  the pod's reason, e.g. ``ContainersNotReady``, when not; ``HeadPodNotFound`` without a head pod).
- ``ReplicaFailure`` is True only when creating/deleting a pod failed, and removed after a clean reconcile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from configs.ray_cluster import parse_quantity


class ConditionType(StrEnum):
    """RayCluster condition types (raycluster_types.go)."""

    provisioned = "RayClusterProvisioned"  # all Ray pods were ready once (sticky until a suspension)
    head_pod_ready = "HeadPodReady"  # the head pod's Ready condition
    replica_failure = "ReplicaFailure"  # creating or deleting a pod failed in the last reconcile
    suspending = "RayClusterSuspending"  # spec.suspend is true and pods are still being deleted
    suspended = "RayClusterSuspended"  # every pod of a suspending cluster is gone


class Reason(StrEnum):
    """Condition reasons KubeRay writes (raycluster_types.go, utils/constant.go) and the kubelet's pod reason."""

    all_pods_ready_first_time = "AllPodRunningAndReadyFirstTime"  # RayClusterProvisioned True
    pods_provisioning = "RayClusterPodsProvisioning"  # RayClusterProvisioned False
    head_pod_not_found = "HeadPodNotFound"  # no head pod exists
    head_pod_running_and_ready = "HeadPodRunningAndReady"  # HeadPodReady True
    containers_not_ready = "ContainersNotReady"  # kubelet's PodReady reason while the head container is not ready
    failed_create_head_pod = "FailedCreateHeadPod"  # ReplicaFailure: the head pod could not be created
    suspending = "RayClusterSuspending"  # reason of the RayClusterSuspending condition
    suspended = "RayClusterSuspended"  # reason of the RayClusterSuspended condition


class State(StrEnum):
    """``status.state`` (deprecated in favour of conditions, still written)."""

    ready = "ready"  # every desired pod ran at once (never reset afterwards)
    suspended = "suspended"  # spec.suspend is true and no pod is left


@dataclass(frozen=True)
class HeadObservation:
    """What the controller saw of the (emulated) head pod in this reconcile.

    Attributes:
        exists: a head pod exists (a head process was started for this spec and not torn down).
        ready: its Ray head answers (GCS healthy, dashboard up).
        pod_name: ``<cluster>-head-<suffix>``.
        not_ready_message: the pod Ready condition message when not ready.
        create_error: the head could not be created at all (``ReplicaFailure``).
        ports: port name -> real loopback port of the head Service (``status.endpoints``).
        ready_workers: emulated worker pods that are running and ready.
    """

    exists: bool = False
    ready: bool = False
    pod_name: str = ""
    not_ready_message: str = ""
    create_error: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    ready_workers: int = 0


def group_desired_replicas(group: dict[str, Any]) -> int:
    """``GetWorkerGroupDesiredReplicas`` (utils/util.go): replicas clamped to [min, max], times numOfHosts;
    0 for a suspended group; max when min > max."""
    if group.get("suspend"):
        return 0
    lo = int(group.get("minReplicas") or 0)
    hi = int(group["maxReplicas"]) if group.get("maxReplicas") is not None else 2**31 - 1
    replicas = group.get("replicas")
    if lo > hi:
        count = hi
    elif replicas is None or int(replicas) < lo:
        count = lo
    elif int(replicas) > hi:
        count = hi
    else:
        count = int(replicas)
    return count * int(group.get("numOfHosts") or 1)


def replica_counts(spec: dict[str, Any]) -> dict[str, int]:
    """``desiredWorkerReplicas``, ``minWorkerReplicas``, ``maxWorkerReplicas`` of a RayCluster spec."""
    groups = spec.get("workerGroupSpecs") or []
    active = [g for g in groups if not g.get("suspend")]
    return {
        "desiredWorkerReplicas": sum(group_desired_replicas(g) for g in groups),
        "minWorkerReplicas": sum(int(g.get("minReplicas") or 0) * int(g.get("numOfHosts") or 1) for g in active),
        "maxWorkerReplicas": sum(int(g.get("maxReplicas") or 0) * int(g.get("numOfHosts") or 1) for g in active),
    }


def _pod_resources(template: dict[str, Any]) -> dict[str, Decimal]:
    """``CalculatePodResource``: per container, requests take precedence over limits; summed over containers."""
    total: dict[str, Decimal] = {}
    for container in (template.get("spec") or {}).get("containers") or []:
        res = container.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for name, qty in merged.items():
            total[name] = total.get(name, Decimal(0)) + parse_quantity(qty)
    return total


def desired_resources(spec: dict[str, Any]) -> dict[str, Decimal]:
    """``CalculateDesiredResources``: the head pod plus each group's pod times its desired replicas."""
    total = _pod_resources((spec.get("headGroupSpec") or {}).get("template") or {})
    for group in spec.get("workerGroupSpecs") or []:
        count = group_desired_replicas(group)
        for name, qty in _pod_resources(group.get("template") or {}).items():
            total[name] = total.get(name, Decimal(0)) + qty * count
    return total


def format_quantity(value: Decimal, binary: bool = False) -> str:
    """A canonical Kubernetes quantity string: ``2``, ``1500m``, ``3Gi``, ``1536Mi``, ``0``."""
    if value == 0:
        return "0"
    if binary and value == value.to_integral_value():
        n = int(value)
        for suffix, size in (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if n % size == 0:
                return f"{n // size}{suffix}"
        return str(n)
    if value == value.to_integral_value():
        return str(int(value))
    milli = value * 1000
    if milli == milli.to_integral_value():
        return f"{int(milli)}m"
    return str(value)


def _set_condition(conditions: list[dict[str, Any]], new: dict[str, Any], now: str) -> None:
    """``meta.SetStatusCondition``: update in place; ``lastTransitionTime`` changes only with ``status``."""
    for cond in conditions:
        if cond["type"] == new["type"]:
            if cond.get("status") != new["status"]:
                cond["lastTransitionTime"] = now
            cond["status"], cond["reason"] = new["status"], new["reason"]
            cond["message"] = new.get("message", "")
            return
    conditions.append({**{"message": ""}, **new, "lastTransitionTime": now})


def _remove_condition(conditions: list[dict[str, Any]], type_: str) -> None:
    conditions[:] = [c for c in conditions if c["type"] != type_]


def _is_true(conditions: list[dict[str, Any]], type_: str) -> bool:
    return any(c["type"] == type_ and c.get("status") == "True" for c in conditions)


def suspend_status(conditions: list[dict[str, Any]]) -> str:
    """``FindRayClusterSuspendStatus``: which of Suspending/Suspended is True ("" when neither)."""
    for type_ in (ConditionType.suspending, ConditionType.suspended):
        if _is_true(conditions, type_):
            return type_.value
    return ""


def calculate_status(
    cluster: dict[str, Any], head: HeadObservation, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Return the new ``status`` of ``cluster`` given what was observed (KubeRay ``calculateStatus``).

    Args:
        cluster: the RayCluster as read (its ``status`` is the previous status).
        head: the head pod (process) observation; ``ready_workers`` the emulated ready workers.
        now: the time to stamp (UTC); default now.

    Returns:
        The complete status dict (conditions sorted as KubeRay appends them).
    """
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = cluster.get("spec") or {}
    old = cluster.get("status") or {}
    status: dict[str, Any] = {k: v for k, v in old.items()}
    conditions = [dict(c) for c in old.get("conditions") or []]
    suspended_spec = bool(spec.get("suspend"))

    if head.create_error:
        _set_condition(conditions, {"type": ConditionType.replica_failure.value, "status": "True",
                                    "reason": Reason.failed_create_head_pod.value,
                                    "message": head.create_error}, stamp)
    else:
        _remove_condition(conditions, ConditionType.replica_failure.value)

    status["observedGeneration"] = int((cluster.get("metadata") or {}).get("generation") or 0)
    counts = replica_counts(spec)
    status.update(counts)
    workers = 0 if not head.exists else head.ready_workers
    status["readyWorkerReplicas"] = workers
    status["availableWorkerReplicas"] = workers
    pods = (1 if head.exists else 0) + workers
    all_running = head.exists and head.ready and workers == counts["desiredWorkerReplicas"]

    totals = desired_resources(spec)
    status["desiredCPU"] = format_quantity(totals.get("cpu", Decimal(0)))
    status["desiredMemory"] = format_quantity(totals.get("memory", Decimal(0)), binary=True)
    status["desiredGPU"] = format_quantity(sum((v for k, v in totals.items() if k.endswith("gpu")), Decimal(0)))
    status["desiredTPU"] = format_quantity(totals.get("google.com/tpu", Decimal(0)))

    if not head.create_error and pods == counts["desiredWorkerReplicas"] + 1 and all_running:
        status["state"] = State.ready.value
        status.pop("reason", None)

    if not head.exists:
        _set_condition(conditions, {"type": ConditionType.head_pod_ready.value, "status": "False",
                                    "reason": Reason.head_pod_not_found.value, "message": "Head Pod not found"}, stamp)
    elif head.ready:
        _set_condition(conditions, {"type": ConditionType.head_pod_ready.value, "status": "True",
                                    "reason": Reason.head_pod_running_and_ready.value, "message": ""}, stamp)
    else:
        _set_condition(conditions, {"type": ConditionType.head_pod_ready.value, "status": "False",
                                    "reason": Reason.containers_not_ready.value,
                                    "message": head.not_ready_message or "containers with unready status: [ray-head]"},
                       stamp)

    phase = suspend_status(conditions)
    if not _is_true(conditions, ConditionType.provisioned.value) and phase != ConditionType.suspended.value:
        if all_running:
            _set_condition(conditions, {"type": ConditionType.provisioned.value, "status": "True",
                                        "reason": Reason.all_pods_ready_first_time.value,
                                        "message": "All Ray Pods are ready for the first time"}, stamp)
        else:
            _set_condition(conditions, {"type": ConditionType.provisioned.value, "status": "False",
                                        "reason": Reason.pods_provisioning.value,
                                        "message": "RayCluster Pods are being provisioned for first time"}, stamp)

    if phase == ConditionType.suspending.value:
        if pods == 0:
            _set_condition(conditions, {"type": ConditionType.provisioned.value, "status": "False",
                                        "reason": Reason.pods_provisioning.value,
                                        "message": "RayCluster has been suspended"}, stamp)
            _set_condition(conditions, {"type": ConditionType.suspending.value, "status": "False",
                                        "reason": Reason.suspending.value}, stamp)
            _set_condition(conditions, {"type": ConditionType.suspended.value, "status": "True",
                                        "reason": Reason.suspended.value}, stamp)
    elif phase == ConditionType.suspended.value:
        if not suspended_spec:
            _set_condition(conditions, {"type": ConditionType.suspended.value, "status": "False",
                                        "reason": Reason.suspended.value}, stamp)
    else:
        _set_condition(conditions, {"type": ConditionType.suspended.value, "status": "False",
                                    "reason": Reason.suspended.value}, stamp)
        _set_condition(conditions, {"type": ConditionType.suspending.value,
                                    "status": "True" if suspended_spec else "False",
                                    "reason": Reason.suspending.value}, stamp)

    if suspended_spec and pods == 0:
        status["state"] = State.suspended.value

    if head.ports:
        status["endpoints"] = {name: str(port) for name, port in sorted(head.ports.items())}
    name = (cluster.get("metadata") or {}).get("name", "")
    status["head"] = {
        "podIP": "127.0.0.1" if head.exists else "",
        "podName": head.pod_name if head.exists else "",
        # The emulated head Service is headless (clusterIP: None): KubeRay then reports the head pod IP.
        "serviceIP": "127.0.0.1" if head.exists else "",
        "serviceName": f"{name}-head-svc",
    }
    status["head"] = {k: v for k, v in status["head"].items() if v}
    status["conditions"] = conditions
    status["lastUpdateTime"] = stamp
    if old.get("state") != status.get("state") and status.get("state"):
        transitions = dict(status.get("stateTransitionTimes") or {})
        transitions[status["state"]] = stamp
        status["stateTransitionTimes"] = transitions
    return status


def differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when ``new`` changes anything but ``lastUpdateTime`` (so a quiet cluster is not rewritten)."""

    def strip(s: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s.items() if k != "lastUpdateTime"}

    return strip(old or {}) != strip(new)
