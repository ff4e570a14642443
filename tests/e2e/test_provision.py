"""Ray cluster provisioning flows end to end on the sandbox: real apiserver, scheduler and node agent, the real
KubeRay v1.6.2 operator, Ray heads and workers as Pods.

One cluster is reused through the module (tests run in file order): provision -> provision again -> dry run ->
scale up and down -> upgrade -> suspend/resume -> a smoke job that can never be scheduled -> teardown; a second
cluster carries a wrong ``ray start`` parameter.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import yaml

from tasks import kube
from tasks.errors import InputError

pytestmark = pytest.mark.e2e
SANDBOX_YAML = Path(__file__).resolve().parents[2] / "configs" / "clusters" / "sandbox.yaml"
NAMESPACE = "ray-e2e"


@pytest.fixture(scope="module")
def cluster(sandbox, tmp_path_factory) -> dict:
    """A copy of configs/clusters/sandbox.yaml with its own name, and helpers to edit it."""
    raw = yaml.safe_load(SANDBOX_YAML.read_text())
    raw["name"] = f"e2e-{uuid.uuid4().hex[:6]}"
    raw["namespace"] = NAMESPACE
    path = tmp_path_factory.mktemp("cfg") / "cluster.yaml"
    path.write_text(yaml.safe_dump(raw))
    return {"raw": raw, "path": path, "kubeconfig": sandbox["KUBECONFIG"]}


def _write(cluster: dict, name: str = "cluster.yaml") -> str:
    path = cluster["path"].with_name(name)
    path.write_text(yaml.safe_dump(cluster["raw"]))
    return str(path)


def _live(cluster: dict) -> dict:
    return kube.get(kube.connect(cluster["kubeconfig"]), "ray.io/v1", "RayCluster", cluster["raw"]["name"], NAMESPACE)


def _pods(cluster: dict, node_type: str | None = None) -> list[dict]:
    from tasks.ray.diagnose import list_pods

    pods = list_pods(cluster["kubeconfig"], cluster["raw"]["name"], NAMESPACE)
    return [p for p in pods if node_type is None or p["metadata"]["labels"].get("ray.io/node-type") == node_type]


def test_provision_is_ready_and_the_smoke_job_runs_on_the_workers(cluster) -> None:
    from flows.provision import provision_ray_cluster

    summary = provision_ray_cluster(str(cluster["path"]), timeout_s=420)
    assert summary["ok"] and summary["decision"] == "created"
    assert summary["state"] == "ready"
    assert summary["smoke"]["status"] == "SUCCEEDED"
    assert "kaiops-smoke 328350 workers 1" in summary["smoke"]["logs"]
    assert summary["workers"] == {"ready": 1, "desired": 1}
    live = _live(cluster)
    head = _pods(cluster, "head")
    assert [p["metadata"]["name"] for p in head] == [live["status"]["head"]["podName"]]
    assert summary["dashboard"] == f"http://{head[0]['status']['podIP']}:8265"
    svc = kube.get(kube.connect(cluster["kubeconfig"]), "v1", "Service", f"{cluster['raw']['name']}-head-svc",
                   NAMESPACE)
    owner = svc["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("RayCluster", live["metadata"]["uid"])


def test_provision_again_changes_nothing(cluster) -> None:
    from flows.provision import provision_ray_cluster

    before = _live(cluster)["metadata"]["generation"]
    summary = provision_ray_cluster(str(cluster["path"]), timeout_s=300, smoke=False)
    assert summary["decision"] == "unchanged" and summary["diff"] == ""
    assert _live(cluster)["metadata"]["generation"] == before


def test_dry_run_shows_the_diff_and_changes_nothing(cluster) -> None:
    from flows.provision import provision_ray_cluster

    before = _live(cluster)["metadata"]["generation"]
    cluster["raw"]["workerGroups"][0]["replicas"] = 3
    summary = provision_ray_cluster(_write(cluster, "dry.yaml"), dry_run=True)
    cluster["raw"]["workerGroups"][0]["replicas"] = 1
    assert summary["decision"] == "planned" and summary["would"] == "updated"
    assert "-    replicas: 1\n+    replicas: 3" in summary["diff"]
    assert _live(cluster)["metadata"]["generation"] == before


def test_scale_up_and_down_changes_the_worker_pods(cluster) -> None:
    from flows.provision import scale_ray_cluster

    summary = scale_ray_cluster(str(cluster["path"]), "cpu", 3, timeout_s=300)
    assert summary["decision"] == "updated"
    assert summary["workers"] == {"ready": 3, "desired": 3}
    assert len(_pods(cluster, "worker")) == 3
    down = scale_ray_cluster(str(cluster["path"]), "cpu", 1, timeout_s=300)
    assert down["workers"] == {"ready": 1, "desired": 1}
    assert len(_pods(cluster, "worker")) == 1  # scale-down waits until the removed worker Pods are gone
    with pytest.raises(InputError, match="outside"):
        scale_ray_cluster(str(cluster["path"]), "cpu", 99)


def test_upgrade_recreates_the_pods_and_reaches_the_new_generation(cluster) -> None:
    from flows.provision import upgrade_ray_cluster

    before = _live(cluster)
    cluster["raw"]["head"]["rayStartParams"]["num-cpus"] = 2
    summary = upgrade_ray_cluster(_write(cluster), timeout_s=420)
    after = _live(cluster)
    assert summary["ok"] and summary["decision"] == "updated"
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert after["status"]["head"]["podName"] != before["status"]["head"]["podName"]
    assert summary["smoke"]["status"] == "SUCCEEDED"
    assert "num-cpus: '2'" in summary["diff"]
    names = {p["metadata"]["name"] for p in _pods(cluster)}
    assert before["status"]["head"]["podName"] not in names  # Recreate deleted every old Pod


def test_suspend_deletes_the_pods_and_resume_brings_them_back(cluster) -> None:
    from flows.provision import resume_ray_cluster, suspend_ray_cluster

    summary = suspend_ray_cluster(str(cluster["path"]), timeout_s=120)
    assert summary["state"] == "suspended"
    assert summary["conditions"]["RayClusterSuspended"].startswith("True")
    assert _pods(cluster) == []
    again = suspend_ray_cluster(str(cluster["path"]), timeout_s=60)
    assert again["decision"] == "unchanged"
    resumed = resume_ray_cluster(str(cluster["path"]), timeout_s=420)
    assert resumed["state"] == "ready" and resumed["smoke"]["status"] == "SUCCEEDED"
    assert len(_pods(cluster, "worker")) == 1


def test_a_smoke_job_that_cannot_be_scheduled_fails_in_time_with_its_message(cluster, capsys) -> None:
    from tasks.ray.jobs import JobTimeout
    from tasks.ray.provision import smoke_job
    from tasks.ray.status import dashboard_url

    started = time.monotonic()
    with pytest.raises(JobTimeout) as failed:
        smoke_job.fn(dashboard_url(_live(cluster)), time.time() + 35, workers=1,
                     entrypoint_resources={"kaiops-no-such-resource": 1})
    took = time.monotonic() - started
    assert took < 35 + 15, took
    message = str(failed.value)
    assert "still PENDING after" in message and "stopped it" in message
    assert "Job has not started yet" in message  # Ray's own status message
    assert "last log lines:" in message
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Ray job ")]
    assert len(progress) >= 2, progress  # at least every 15 s


def test_a_job_that_cannot_be_scheduled_on_the_sandbox_head_fails_in_time(sandbox, capsys) -> None:
    """The same timeout path against the sandbox's own Ray head (no operator involved)."""
    from tasks.ray.jobs import JobTimeout, smoke_test

    started = time.monotonic()
    with pytest.raises(JobTimeout, match="Job has not started yet"):
        smoke_test(sandbox["RAY_ADDRESS"], timeout=32, entrypoint_resources={"kaiops-no-such-resource": 1})
    assert time.monotonic() - started < 32 + 15
    assert len([line for line in capsys.readouterr().err.splitlines() if line.startswith("Ray job ")]) >= 2


def test_wrong_ray_start_parameter_shows_the_crash_and_its_log(cluster) -> None:
    from configs.ray_cluster import load_cluster_config
    from tasks.ray.manifest import render_ray_cluster
    from tasks.ray.provision import ProvisionTimeout, wait_until

    dyn = kube.connect(cluster["kubeconfig"])
    manifest = render_ray_cluster(load_cluster_config(cluster["path"]))
    name = manifest["metadata"]["name"] = f"bad-{uuid.uuid4().hex[:6]}"
    # The validator refuses this (ray.start-params.unknown); apply it directly as a careless user would.
    manifest["spec"]["headGroupSpec"]["rayStartParams"]["no-such-flag"] = "1"
    kube.apply(dyn, manifest)
    try:
        obj = kube.wait_for(
            dyn, "ray.io/v1", "RayCluster", name,
            lambda o: (kube.condition(o, "HeadPodReady") or {}).get("reason") == "CrashLoopBackOff",
            namespace=NAMESPACE, timeout=240,
        )
        assert kube.condition(obj, "HeadPodReady")["status"] == "False"
        with pytest.raises(ProvisionTimeout) as timeout:  # what `kaiops provision` reports when it gives up
            wait_until.fn(cluster["kubeconfig"], name, NAMESPACE, timeout_s=2)
        text = str(timeout.value)
        head = next(p for p in timeout.value.diagnosis["pods"] if p["container"] == "ray-head")
        assert head["reason"] == "CrashLoopBackOff" and head["exit_code"] not in (None, 0)
        assert "no-such-flag" in head["log_tail"] and "No such option" in head["log_tail"]
        assert "last log lines of" in text and "CrashLoopBackOff" in text
    finally:
        kube.resource_for(dyn, "ray.io/v1", "RayCluster").delete(name=name, namespace=NAMESPACE)


def test_an_unschedulable_gpu_group_shows_the_scheduler_reason(cluster) -> None:
    from configs.ray_cluster import load_cluster_config
    from tasks.ray.manifest import render_ray_cluster
    from tasks.ray.provision import ProvisionTimeout, wait_until

    dyn = kube.connect(cluster["kubeconfig"])
    manifest = render_ray_cluster(load_cluster_config(cluster["path"]))
    name = manifest["metadata"]["name"] = f"gpu-{uuid.uuid4().hex[:6]}"
    worker = manifest["spec"]["workerGroupSpecs"][0]
    pod = worker["template"]["spec"]
    pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "64"  # more than any sandbox node has
    pod["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "64"
    pod["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
    pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    kube.apply(dyn, manifest)
    try:
        with pytest.raises(ProvisionTimeout) as timeout:
            wait_until.fn(cluster["kubeconfig"], name, NAMESPACE, timeout_s=30)
        rows = [p for p in timeout.value.diagnosis["pods"] if p["pod"].startswith(f"{name}-cpu-worker")]
        assert rows and rows[0]["reason"] == "Unschedulable", timeout.value.diagnosis
        assert "nodes are available" in rows[0]["message"]
        assert "FailedScheduling" in str(timeout.value)
    finally:
        kube.resource_for(dyn, "ray.io/v1", "RayCluster").delete(name=name, namespace=NAMESPACE)


def test_teardown_refuses_without_yes_then_deletes_everything(cluster) -> None:
    from flows.provision import teardown_ray_cluster

    with pytest.raises(InputError, match="--yes"):
        teardown_ray_cluster(str(cluster["path"]))
    assert _live(cluster)
    summary = teardown_ray_cluster(str(cluster["path"]), yes=True)
    assert summary["decision"] == "deleted" and summary["head_service_deleted"]
    with pytest.raises(kube.NotFound):
        _live(cluster)
    deadline = time.monotonic() + 60  # the garbage collector deletes the owned Pods after the RayCluster
    while _pods(cluster) and time.monotonic() < deadline:
        time.sleep(1)
    assert _pods(cluster) == []
    assert teardown_ray_cluster(str(cluster["path"]), yes=True)["decision"] == "absent"
