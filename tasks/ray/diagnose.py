"""Why a RayCluster is not ready: its conditions, each unready Pod's reason and log tail, the recent Events.

What the operator, the scheduler and the kubelet said, gathered for people (:func:`diagnosis_text`) when a
wait times out. Reads only; it never changes the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import kube
from tasks.ray.manifest import API_VERSION, KIND
from tasks.ray.status import CLUSTER_LABEL, pod_problems, readiness_gaps, suspended_gaps


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


def recent_events(kubeconfig: str | None, name: str, namespace: str, limit: int = 8,
                  pods: Sequence[str] = ()) -> list[dict[str, Any]]:
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
        row: dict[str, Any] = {"type": e.get("type"), "reason": e.get("reason"), "message": e.get("message"),
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
        data: bytes = resp.data
        return data.decode("utf-8", "replace").rstrip("\n")
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
    pods: list[dict[str, Any]] | None = None
    problems: list[dict[str, Any]]
    try:
        found = list_pods(kubeconfig, name, namespace)
    except Exception as exc:  # no RBAC for Pods: the status alone has to do
        problems = [{"pod": "?", "phase": None, "reason": "PodsUnreadable", "message": str(exc)}]
    else:
        pods, problems = found, pod_problems(found)
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
