"""In-tree autoscaling and GPU workers against the real KubeRay v1.6.2 operator on the sandbox.

One cluster (tests run in file order): a head that takes no tasks (``num-cpus: 0``) with the autoscaler sidecar
KubeRay injects (``enableInTreeAutoscaling: true``, ``idleTimeoutSeconds: 15``), a ``cpu`` group of 0..2 workers
and a ``gpu`` group of 0..1 workers that requests ``nvidia.com/gpu`` with the node selector and toleration of
the sandbox's GPU node ``kaiops-gpu-0``. Both groups start at zero: only the autoscaler creates workers, for
pending tasks, and deletes them once they are idle. Proven by the worker Pods and by ``ray status``.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid

import pytest
import yaml

from tasks import kube

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]  # a Ray head takes minutes to start on a loaded machine
NAMESPACE = "ray-autoscale"
GPU_NODE = "kaiops-gpu-0"  # sandbox/node/nodes.yaml: nvidia.com/gpu: 2, tainted nvidia.com/gpu=present:NoSchedule
IDLE_TIMEOUT_S = 15
CONFIG = {
    "namespace": NAMESPACE,
    "environment": "sandbox",
    "rayVersion": "2.60.0",
    "image": "rayproject/ray:2.60.0-py311",
    "autoscaling": {"enabled": True, "idleTimeoutSeconds": IDLE_TIMEOUT_S},
    "head": {"resources": {"cpu": "500m", "memory": "2Gi"},
             "rayStartParams": {"num-cpus": 0, "object-store-memory": "100Mi"}},
    "workerGroups": [
        {"name": "cpu", "replicas": 0, "minReplicas": 0, "maxReplicas": 2,
         "resources": {"cpu": "250m", "memory": "1Gi"}},
        {"name": "gpu", "replicas": 0, "minReplicas": 0, "maxReplicas": 1,
         "resources": {"cpu": "250m", "memory": "1Gi", "gpu": 1},
         "nodeSelector": {"nvidia.com/gpu.present": "true"},
         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    ],
}
CPU_TASKS = """
import ray, time
ray.init()
@ray.remote(num_cpus=1)
def work(i):
    time.sleep(20)
    return ray.get_runtime_context().get_node_id()
print("kaiops-auto nodes", len(set(ray.get([work.remote(i) for i in range(2)]))), flush=True)
"""
GPU_TASK = """
import json, os, ray
ray.init()
@ray.remote(num_gpus=1)
def gpu():
    node = ray.get_runtime_context().get_node_id()
    total = next(n["Resources"] for n in ray.nodes() if n["NodeID"] == node)
    return {"node_ip": ray.util.get_node_ip_address(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "node_gpus": total.get("GPU")}
print("kaiops-gpu " + json.dumps(ray.get(gpu.remote())), flush=True)
"""


def _entrypoint(script: str) -> str:
    code = base64.b64encode(script.encode()).decode()
    return f"python -c \"import base64; exec(base64.b64decode('{code}'))\""


@pytest.fixture(scope="module")
def cluster(sandbox, tmp_path_factory) -> dict:
    raw = {"name": f"auto-{uuid.uuid4().hex[:6]}", **CONFIG}
    path = tmp_path_factory.mktemp("cfg") / "cluster.yaml"
    path.write_text(yaml.safe_dump(raw))
    return {"raw": raw, "path": path, "kubeconfig": sandbox["KUBECONFIG"], "timings": {}}


def _live(cluster: dict) -> dict:
    return kube.get(kube.connect(cluster["kubeconfig"]), "ray.io/v1", "RayCluster", cluster["raw"]["name"], NAMESPACE)


def _workers(cluster: dict, group: str) -> list[dict]:
    from tasks.ray.diagnose import list_pods

    return [p for p in list_pods(cluster["kubeconfig"], cluster["raw"]["name"], NAMESPACE)
            if p["metadata"]["labels"].get("ray.io/group") == group
            and p["metadata"]["labels"].get("ray.io/node-type") == "worker"]


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def _dashboard(cluster: dict) -> str:
    from tasks.ray.status import dashboard_url

    return dashboard_url(_live(cluster))


def ray_status_nodes(text: str) -> dict[str, dict[str, int]]:
    """``ray status``'s node sections (``Active``, ``Idle``, ``Pending``) as {section: {node type: count}}."""
    sections: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        head = line.strip().rstrip(":")
        if line.rstrip().endswith(":") and head in ("Active", "Idle", "Pending", "Recent failures"):
            current = sections.setdefault(head, {})
            continue
        if current is None or not line.startswith(" ") or line.strip().startswith("("):
            if line.strip() and not line.startswith(" "):
                current = None
            continue
        count, _, kind = line.strip().partition(" ")
        if count.isdigit():
            current[kind] = current.get(kind, 0) + int(count)
    return sections


def _ray_status(cluster: dict) -> str:
    from tasks.ray.jobs import run_job

    result = run_job(_dashboard(cluster), "ray status", timeout=120)
    assert result.succeeded, result
    return result.logs


def _wait(what: str, check, timeout_s: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s:.0f}s"
        time.sleep(1)
    return time.monotonic() - started


def test_an_autoscaling_cluster_is_ready_with_the_autoscaler_sidecar_and_no_worker(cluster) -> None:
    from flows.provision import provision_ray_cluster

    summary = provision_ray_cluster(str(cluster["path"]), timeout_s=900)
    cluster["timings"]["provision_to_ready_s"] = summary["seconds"]
    print(f"autoscaling cluster: provision to ready and smoke {summary['seconds']} s")
    assert summary["ok"] and summary["decision"] == "created" and summary["state"] == "ready"
    assert summary["workers"] == {"ready": 0, "desired": 0}
    head = kube.get(kube.connect(cluster["kubeconfig"]), "v1", "Pod", _live(cluster)["status"]["head"]["podName"],
                    NAMESPACE)
    containers = {c["name"]: c for c in head["spec"]["containers"]}
    assert "ray kuberay-autoscaler" in containers["autoscaler"]["args"][0]  # the sidecar KubeRay injects
    assert head["spec"]["serviceAccountName"] == cluster["raw"]["name"]  # and its ServiceAccount (RBAC: a Role)
    assert all(s["ready"] for s in head["status"]["containerStatuses"])
    assert _workers(cluster, "cpu") == [] and _workers(cluster, "gpu") == []


def test_pending_tasks_scale_the_cpu_group_up_and_idle_workers_away(cluster) -> None:
    from tasks.ray.jobs import run_job

    done: dict = {}
    started = time.monotonic()

    def job() -> None:
        try:
            done["result"] = run_job(_dashboard(cluster), _entrypoint(CPU_TASKS), timeout=600)
        finally:
            done["at"] = time.monotonic() - started

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    created = _wait("2 cpu worker Pods", lambda: len(_workers(cluster, "cpu")) == 2, 240)
    ready = _wait("2 cpu workers Ready", lambda: sum(map(_ready, _workers(cluster, "cpu"))) == 2, 480) + created
    status = ray_status_nodes(_ray_status(cluster))
    thread.join(600)
    result = done["result"]
    assert result.succeeded and "kaiops-auto nodes 2" in result.logs, result
    assert status["Active"].get("cpu", 0) + status.get("Idle", {}).get("cpu", 0) == 2, status
    assert status["Active"].get("headgroup") == 1, status
    gone = _wait("idle cpu workers deleted", lambda: _workers(cluster, "cpu") == [], IDLE_TIMEOUT_S + 240)
    gone_after_job = gone + (time.monotonic() - started - gone) - done["at"]
    after = ray_status_nodes(_ray_status(cluster))
    assert "cpu" not in after.get("Active", {}) and "cpu" not in after.get("Idle", {}), after
    assert _live(cluster)["spec"]["workerGroupSpecs"][0]["replicas"] == 0
    cluster["timings"].update(scale_up_pods_s=round(created, 1), scale_up_ready_s=round(ready, 1),
                              scale_down_after_job_s=round(gone_after_job, 1))
    print(f"autoscaler: worker Pods {created:.1f} s after the job was submitted, Ready after {ready:.1f} s; "
          f"deleted {gone_after_job:.1f} s after the job ended (idleTimeoutSeconds {IDLE_TIMEOUT_S})")


def test_provision_again_keeps_what_the_autoscaler_decided(cluster) -> None:
    """The Ray autoscaler owns spec.workerGroupSpecs after its first patch (an atomic list in KubeRay's CRD):
    a naive re-apply conflicts on .spec.workerGroupSpecs; kaiops keeps the autoscaler's replicas."""
    from flows.provision import provision_ray_cluster

    managers = {m["manager"] for m in _live(cluster)["metadata"]["managedFields"]
                if "f:workerGroupSpecs" in (m.get("fieldsV1") or {}).get("f:spec", {})}
    assert managers and "kaiops" not in managers, managers  # the autoscaler took the list
    summary = provision_ray_cluster(str(cluster["path"]), timeout_s=300, smoke=False)
    assert summary["ok"] and summary["decision"] == "unchanged", summary["diff"]


def test_a_gpu_task_scales_the_gpu_group_onto_the_gpu_node(cluster) -> None:
    import json

    from tasks.ray.jobs import run_job

    started = time.monotonic()
    result = run_job(_dashboard(cluster), _entrypoint(GPU_TASK), timeout=600)
    assert result.succeeded, result
    line = next(x for x in result.logs.splitlines() if x.startswith("kaiops-gpu "))
    seen = json.loads(line.removeprefix("kaiops-gpu "))
    pods = _workers(cluster, "gpu")
    assert len(pods) == 1, pods
    pod = pods[0]
    assert pod["spec"]["nodeName"] == GPU_NODE
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert seen["node_ip"] == pod["status"]["podIP"]  # the task ran in the GPU worker Pod
    assert seen["node_gpus"] == 1.0 and seen["gpu_ids"] == ["0"] and seen["cuda_visible_devices"] == "0", seen
    assert "--num-gpus=1" in pod["spec"]["containers"][0]["args"][0]  # KubeRay derived it from the limit
    print(f"GPU task on {GPU_NODE} after {time.monotonic() - started:.1f} s (autoscaler scale-up included)")
