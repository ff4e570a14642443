"""The head-failure drill of a Ray cluster: delete the head Pod, measure what survives and how long recovery takes.

What KubeRay v1.6.2 and Ray 2.60 do (controllers/ray/common/pod.go ``configureGCSFaultTolerance``; KubeRay's
"GCS fault tolerance" guide):

- The operator re-creates a deleted head Pod (new name, new IP); the head Service is headless, so the workers'
  ``<cluster>-head-svc`` DNS name follows the new Pod.
- Without ``spec.gcsFaultToleranceOptions`` the new head starts an empty GCS: each worker's raylet gives up
  after ``RAY_gcs_rpc_server_reconnect_timeout_s`` (Ray default 60 s) or is told the GCS is a different one,
  exits, and its container restarts and joins the new head as a new Ray node. Detached actors are gone.
- With it, the GCS keeps its tables in Redis (key namespace ``ray.io/external-storage-namespace``, default the
  RayCluster's UID); KubeRay sets ``RAY_gcs_rpc_server_reconnect_timeout_s=600`` on the workers, which stay
  up and reconnect; a detached actor on a worker keeps running, and its in-memory state with it.
- Either way a Ray job's driver runs on the head (the job supervisor actor lives there) and dies with it.

Pure helpers: :func:`worker_outcomes`, :func:`actor_outcome`, :func:`verdict`. The Prefect tasks do the I/O.
"""

from __future__ import annotations

import base64
import json
import time
from enum import StrEnum
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import kube
from tasks.errors import PermanentError
from tasks.ray.diagnose import list_pods
from tasks.ray.jobs import progress, run_job
from tasks.ray.status import NODE_TYPE_LABEL, dashboard_url, pod_ready, terminating

ACTOR = "kaiops-drill-keeper"
RAY_NAMESPACE = "kaiops-drill"
FT_ANNOTATION = "ray.io/ft-enabled"  # KubeRay utils/constant.go RayFTEnabledAnnotationKey, on the head Pod


class Outcome(StrEnum):
    """What became of one thing the drill watched (a worker Pod, the detached actor)."""

    survived = "survived"  # the same process went on (worker: same Pod, no container restart; actor: same pid)
    restarted = "restarted"  # it came back as a new process: in-memory state lost (container restart, new actor)
    replaced = "replaced"  # a worker Pod was deleted and another took its place
    lost = "lost"  # gone, nothing answered for it


_PLANT = """
import json, os, sys, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On
name, token = sys.argv[1], sys.argv[2]
ray.init(namespace=sys.argv[3])
workers = [n for n in ray.nodes() if n["Alive"] and "node:__internal_head__" not in n["Resources"]]
if not workers:
    sys.exit("kaiops-drill: no Ray worker node to hold the detached actor")
@ray.remote(num_cpus=0)
class Keeper:
    def __init__(self, token):
        self.token, self.calls = token, 0
    def probe(self):
        self.calls += 1
        return {"token": self.token, "calls": self.calls, "pid": os.getpid(),
                "node_id": ray.get_runtime_context().get_node_id()}
try:
    ray.kill(ray.get_actor(name))
except ValueError:
    pass
keeper = Keeper.options(name=name, lifetime="detached",
                        scheduling_strategy=On(workers[0]["NodeID"], soft=False)).remote(token)
print("kaiops-drill " + json.dumps(ray.get(keeper.probe.remote(), timeout=120)), flush=True)
"""

_PROBE = """
import json, sys, ray
name, cleanup = sys.argv[1], sys.argv[2] == "1"
ray.init(namespace=sys.argv[3])
out = {"workers": sum(1 for n in ray.nodes() if n["Alive"] and "node:__internal_head__" not in n["Resources"])}
try:
    keeper = ray.get_actor(name)
    out.update(ray.get(keeper.probe.remote(), timeout=60))
    if cleanup:
        ray.kill(keeper)
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"[:300]
print("kaiops-drill " + json.dumps(out), flush=True)
"""


def _entrypoint(script: str, *args: str) -> str:
    code = base64.b64encode(script.encode()).decode()
    return f"python -c \"import base64; exec(base64.b64decode('{code}'))\" " + " ".join(args)


def _result_line(logs: str) -> dict[str, Any]:
    line = next((x for x in reversed(logs.splitlines()) if x.startswith("kaiops-drill ")), None)
    if line is None:
        raise PermanentError(f"the drill job printed no result; last log lines:\n{logs[-1500:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("kaiops-drill "))
    return result


# --- pure ----------------------------------------------------------------------------------------------------
def pod_view(pods: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{pod name: {uid, type, restarts, ready}} of the cluster's live (not terminating) Pods."""
    out = {}
    for p in pods:
        if terminating(p):
            continue
        statuses = (p.get("status") or {}).get("containerStatuses") or []
        ray_container = next((s for s in statuses if s.get("name") in ("ray-head", "ray-worker")),
                             statuses[0] if statuses else {})
        out[p["metadata"]["name"]] = {"uid": p["metadata"].get("uid"),
                                      "type": (p["metadata"].get("labels") or {}).get(NODE_TYPE_LABEL),
                                      "restarts": int(ray_container.get("restartCount") or 0), "ready": pod_ready(p)}
    return out


def worker_outcomes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, Outcome]:
    """Per worker Pod of ``before``: survived (same Pod, its Ray container not restarted), restarted (same Pod, a
    container restart) or replaced (the Pod is gone). Both arguments are :func:`pod_view` dicts."""
    out = {}
    for name, pod in before.items():
        if pod["type"] != "worker":
            continue
        now = after.get(name)
        if now is None or now["uid"] != pod["uid"]:
            out[name] = Outcome.replaced
        elif now["restarts"] > pod["restarts"]:
            out[name] = Outcome.restarted
        else:
            out[name] = Outcome.survived
    return out


def actor_outcome(planted: dict[str, Any], probed: dict[str, Any]) -> Outcome:
    """The detached actor: survived when the same process answered with its state (token, one more call),
    restarted when a new process answered, lost when nothing did."""
    if "error" in probed or "pid" not in probed:
        return Outcome.lost
    if probed.get("pid") == planted.get("pid") and probed.get("calls") == planted.get("calls", 0) + 1 \
            and probed.get("token") == planted.get("token"):
        return Outcome.survived
    return Outcome.restarted


def verdict(fault_tolerant: bool, workers: dict[str, Outcome], actor: Outcome) -> tuple[bool, list[str]]:
    """Whether the drill met what the cluster's configuration promises, and what was lost.

    With GCS fault tolerance every worker and the detached actor must survive; without it only recovery is
    expected and the losses are reported. A job driver on the head is always lost (see the module docstring).

    Returns:
        ``(passed, lost)``: ``lost`` lists in words what did not survive.
    """
    lost = [f"worker Pod {name}: {outcome.value}" for name, outcome in sorted(workers.items())
            if outcome is not Outcome.survived]
    if actor is not Outcome.survived:
        lost.append(f"detached actor {ACTOR}: {actor.value}")
    lost.append("Ray job drivers running on the head (always)")
    passed = not fault_tolerant or (actor is Outcome.survived and all(o is Outcome.survived for o in workers.values()))
    return passed, lost


# --- tasks ---------------------------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE)
def plant_actor(dashboard: str, token: str, timeout_s: float = 240.0) -> dict[str, Any]:
    """Create the detached actor :data:`ACTOR` on a worker node through the Job Submission API.

    Returns:
        ``{"token", "calls": 1, "pid", "node_id"}`` as the actor reported it.

    Raises:
        PermanentError: the job failed (e.g. no worker node), with its log tail.
    """
    result = run_job(dashboard, _entrypoint(_PLANT, ACTOR, token, RAY_NAMESPACE), timeout=timeout_s)
    if not result.succeeded:
        raise PermanentError(f"drill: planting the detached actor failed ({result.status}): {result.message}\n"
                             f"{result.logs[-1500:]}")
    return _result_line(result.logs)


@task(cache_policy=NO_CACHE)
def probe_actor(kubeconfig: str | None, name: str, namespace: str, deadline: float,
                cleanup: bool = True, want_workers: int = 0) -> dict[str, Any]:
    """Ask the (new) head for the detached actor, retrying until its Job Submission API answers with
    ``want_workers`` alive Ray worker nodes, or ``deadline`` (``time.time()``) passes; kill the actor afterwards
    when ``cleanup``. (Without GCS fault tolerance a worker Pod stays Ready for a while after its raylet lost the
    GCS, and only then restarts: the Pods alone say "recovered" too early.)

    Returns:
        The actor's answer plus ``workers`` (alive Ray worker nodes), or ``{"error": ...}``.
    """
    last = "no attempt"
    while time.time() < deadline:
        try:
            obj = kube.get(kube.connect(kubeconfig), "ray.io/v1", "RayCluster", name, namespace)
            result = run_job(dashboard_url(obj), _entrypoint(_PROBE, ACTOR, "1" if cleanup else "0", RAY_NAMESPACE),
                             timeout=max(10.0, min(180.0, deadline - time.time())))
            if result.succeeded:
                answer = _result_line(result.logs)
                if answer.get("workers", 0) >= want_workers or "error" not in answer or time.time() >= deadline:
                    return answer
                last = f"{answer.get('workers', 0)} of {want_workers} Ray workers joined the new head"
            else:
                last = f"{result.status}: {result.message}"
        except Exception as exc:  # the new head's API not up yet, or its address not in the status yet
            last = f"{type(exc).__name__}: {exc}"
        progress(f"drill: the new head does not answer yet ({last[:200]})")
        time.sleep(5)
    return {"error": f"no answer before the deadline: {last[:300]}"}


@task(cache_policy=NO_CACHE)
def cluster_pods(kubeconfig: str | None, name: str, namespace: str) -> dict[str, dict[str, Any]]:
    """:func:`pod_view` of the RayCluster's Pods."""
    return pod_view(list_pods(kubeconfig, name, namespace))


@task(cache_policy=NO_CACHE)
def delete_head_pod(kubeconfig: str | None, name: str, namespace: str) -> dict[str, Any]:
    """Delete the cluster's head Pod (default grace period) as a node failure or an eviction would.

    Returns:
        ``{"pod", "uid", "fault_tolerant"}`` (``ray.io/ft-enabled`` annotation of the Pod, set by KubeRay).

    Raises:
        PermanentError: the cluster has no running head Pod.
    """
    pods = [p for p in list_pods(kubeconfig, name, namespace)
            if (p["metadata"].get("labels") or {}).get(NODE_TYPE_LABEL) == "head" and not terminating(p)]
    if len(pods) != 1:
        raise PermanentError(f"drill: RayCluster {namespace}/{name} has {len(pods)} head Pods, want 1")
    head = pods[0]
    if not kube.delete(kube.connect(kubeconfig), "v1", "Pod", head["metadata"]["name"], namespace):
        raise PermanentError(f"drill: head Pod {namespace}/{head['metadata']['name']} was gone before the drill "
                             "deleted it")
    annotations = head["metadata"].get("annotations") or {}
    return {"pod": head["metadata"]["name"], "uid": head["metadata"]["uid"],
            "fault_tolerant": annotations.get(FT_ANNOTATION) == "true"}


@task(cache_policy=NO_CACHE)
def wait_new_head(kubeconfig: str | None, name: str, namespace: str, old_uid: str, timeout_s: float) -> str:
    """Wait until a head Pod other than ``old_uid`` is Running and Ready; return its name.

    Raises:
        PermanentError: none within ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in list_pods(kubeconfig, name, namespace):
            labels = p["metadata"].get("labels") or {}
            if labels.get(NODE_TYPE_LABEL) == "head" and p["metadata"]["uid"] != old_uid and pod_ready(p) \
                    and not terminating(p):
                return str(p["metadata"]["name"])
        time.sleep(1)
    raise PermanentError(f"drill: no new head Pod of {namespace}/{name} Running and Ready after {timeout_s:.0f}s")
