"""Ray cluster provisioning flows end to end on the sandbox (real apiserver, KubeRay emulation, real Ray heads).

One cluster is reused through the module (tests run in file order): provision -> provision again -> dry run ->
scale -> upgrade -> suspend/resume -> teardown; a second cluster carries a wrong ``ray start`` parameter.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import yaml

from sandbox.procs import port_open
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


def test_provision_is_ready_and_the_smoke_job_passes(cluster) -> None:
    from flows.provision import provision_ray_cluster

    summary = provision_ray_cluster(str(cluster["path"]), timeout_s=420)
    assert summary["ok"] and summary["decision"] == "created"
    assert summary["state"] == "ready"
    assert summary["smoke"]["status"] == "SUCCEEDED"
    assert summary["workers"] == {"ready": 1, "desired": 1}
    live = _live(cluster)
    assert live["status"]["conditions"]
    owner = kube.get(kube.connect(cluster["kubeconfig"]), "v1", "Service", f"{cluster['raw']['name']}-head-svc",
                     NAMESPACE)["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("RayCluster", live["metadata"]["uid"])
    cluster["gcs_port"] = int(live["status"]["endpoints"]["gcs-server"])


def test_provision_again_changes_nothing(cluster) -> None:
    from flows.provision import provision_ray_cluster

    before = _live(cluster)["metadata"]["resourceVersion"]
    summary = provision_ray_cluster(str(cluster["path"]), timeout_s=300, smoke=False)
    assert summary["decision"] == "unchanged" and summary["diff"] == ""
    assert _live(cluster)["metadata"]["resourceVersion"] == before


def test_dry_run_shows_the_diff_and_changes_nothing(cluster) -> None:
    from flows.provision import provision_ray_cluster

    before = _live(cluster)["metadata"]["resourceVersion"]
    cluster["raw"]["workerGroups"][0]["replicas"] = 3
    summary = provision_ray_cluster(_write(cluster, "dry.yaml"), dry_run=True)
    cluster["raw"]["workerGroups"][0]["replicas"] = 1
    assert summary["decision"] == "planned" and summary["would"] == "updated"
    assert "-    replicas: 1\n+    replicas: 3" in summary["diff"]
    assert _live(cluster)["metadata"]["resourceVersion"] == before


def test_scale_changes_the_worker_counts(cluster) -> None:
    from flows.provision import scale_ray_cluster

    summary = scale_ray_cluster(str(cluster["path"]), "cpu", 3, timeout_s=300)
    assert summary["decision"] == "updated"
    assert summary["workers"] == {"ready": 3, "desired": 3}
    with pytest.raises(InputError, match="outside"):
        scale_ray_cluster(str(cluster["path"]), "cpu", 99)


def test_upgrade_restarts_the_head_and_reaches_the_new_generation(cluster) -> None:
    from flows.provision import upgrade_ray_cluster

    before = _live(cluster)
    cluster["raw"]["head"]["rayStartParams"]["num-cpus"] = 2
    summary = upgrade_ray_cluster(_write(cluster), timeout_s=420)
    after = _live(cluster)
    assert summary["ok"] and summary["decision"] == "updated"
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert after["status"]["observedGeneration"] == after["metadata"]["generation"]
    assert after["status"]["head"]["podName"] != before["status"]["head"]["podName"]
    assert summary["smoke"]["status"] == "SUCCEEDED"
    assert "num-cpus: '2'" in summary["diff"]
    assert not port_open(int(before["status"]["endpoints"]["gcs-server"]))  # the old head is gone
    cluster["gcs_port"] = int(after["status"]["endpoints"]["gcs-server"])


def test_suspend_stops_the_head_and_resume_brings_it_back(cluster) -> None:
    from flows.provision import resume_ray_cluster, suspend_ray_cluster

    summary = suspend_ray_cluster(str(cluster["path"]), timeout_s=120)
    assert summary["state"] == "suspended"
    assert summary["conditions"]["RayClusterSuspended"].startswith("True")
    assert not port_open(cluster["gcs_port"])
    again = suspend_ray_cluster(str(cluster["path"]), timeout_s=60)
    assert again["decision"] == "unchanged"
    resumed = resume_ray_cluster(str(cluster["path"]), timeout_s=420)
    assert resumed["state"] == "ready" and resumed["smoke"]["status"] == "SUCCEEDED"
    cluster["gcs_port"] = int(resumed["endpoints"]["gcs-server"])


def test_wrong_ray_start_parameter_is_reported_with_its_reason(cluster) -> None:
    from configs.ray_cluster import load_cluster_config
    from tasks.ray_cluster import render_ray_cluster
    from tasks.ray_provision import ProvisionTimeout, readiness_gaps, recent_events, wait_until

    dyn = kube.connect(cluster["kubeconfig"])
    manifest = render_ray_cluster(load_cluster_config(cluster["path"]))
    name = manifest["metadata"]["name"] = f"bad-{uuid.uuid4().hex[:6]}"
    # The validator refuses this (ray.start-params.unknown); apply it directly as a careless user would.
    manifest["spec"]["headGroupSpec"]["rayStartParams"]["no-such-flag"] = "1"
    kube.apply(dyn, manifest)
    try:
        obj = kube.wait_for(
            dyn, "ray.io/v1", "RayCluster", name,
            lambda o: "No such option" in ((kube.condition(o, "HeadPodReady") or {}).get("message") or ""),
            namespace=NAMESPACE, timeout=180,
        )
        cond = kube.condition(obj, "HeadPodReady")
        assert (cond["status"], cond["reason"]) == ("False", "ContainersNotReady")
        assert "--no-such-flag" in cond["message"]
        assert any("HeadPodReady is False" in g for g in readiness_gaps(obj))
        assert any(e["reason"] == "BackOff" for e in recent_events(cluster["kubeconfig"], name, NAMESPACE))
        with pytest.raises(ProvisionTimeout) as timeout:  # what `kaiops provision` reports when it gives up
            wait_until.fn(cluster["kubeconfig"], name, NAMESPACE, timeout_s=2)
        assert "No such option" in str(timeout.value) and "BackOff" in str(timeout.value)
        assert timeout.value.diagnosis["conditions"][0]["reason"] == "ContainersNotReady"
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
    deadline = time.monotonic() + 30  # the controller stops the head asynchronously after the delete
    while port_open(cluster["gcs_port"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not port_open(cluster["gcs_port"]), "the Ray head still listens after teardown"
    assert teardown_ray_cluster(str(cluster["path"]), yes=True)["decision"] == "absent"
