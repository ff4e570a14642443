"""Ray cluster config, rendering and readiness against the status the real KubeRay operator writes, as pure
functions."""

from __future__ import annotations

import base64
import copy
import json
import shlex
from pathlib import Path

import pytest

from configs.quantity import parse_quantity, quantity_value
from configs.ray_cluster import SCHEMA_PATH, json_schema, load_cluster_config
from tasks import crds
from tasks.errors import InputError, PermanentError
from tasks.manifests import validate_documents
from tasks.ray.diagnose import diagnosis_text
from tasks.ray.jobs import smoke_entrypoint, tail
from tasks.ray.manifest import render_ray_cluster
from tasks.ray.plan import keep_autoscaler_state, same_object, spec_diff
from tasks.ray.status import dashboard_url, only_stale_generation, pod_problems, readiness_gaps

pytestmark = pytest.mark.unit
CLUSTERS = Path(__file__).resolve().parents[2] / "configs" / "clusters"


# --- config ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("release", ["v1.6.2", "v1.7.0"])
@pytest.mark.parametrize("name", ["sandbox.yaml", "production-example.yaml"])
def test_committed_configs_render_to_valid_rayclusters(name: str, release: str) -> None:
    manifest = render_ray_cluster(load_cluster_config(CLUSTERS / name))
    crds.select_release("kuberay", release)
    try:
        assert validate_documents([manifest], name) == []
    finally:
        crds.select_release("kuberay", None)
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kaiops"


def test_render_converts_sizes_to_integer_bytes_and_keeps_replicas() -> None:
    manifest = render_ray_cluster(load_cluster_config(CLUSTERS / "production-example.yaml"))
    head = manifest["spec"]["headGroupSpec"]
    assert head["rayStartParams"] == {"num-cpus": "0", "object-store-memory": str(4 * 2**30)}
    cpu, gpu = manifest["spec"]["workerGroupSpecs"]
    assert (cpu["replicas"], cpu["minReplicas"], cpu["maxReplicas"]) == (2, 2, 20)
    assert json.loads(gpu["rayStartParams"]["resources"].strip("'")) == {"a100": 1.0}
    assert gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert gpu["template"]["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                       "effect": "NoSchedule"}]
    assert "nodeSelector" not in cpu["template"]["spec"] and "tolerations" not in cpu["template"]["spec"]
    assert manifest["spec"]["enableInTreeAutoscaling"] is True
    assert manifest["spec"]["upgradeStrategy"] == {"type": "Recreate"}


def test_committed_json_schema_is_current() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads(json.dumps(json_schema())), (
        "configs/schemas/ray-cluster.schema.json is stale: run "
        "`python -c 'from configs.ray_cluster import write_json_schema; write_json_schema()'`"
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


BASE = (CLUSTERS / "sandbox.yaml").read_text()


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda s: s.replace("name: kaiops-sandbox", "name: " + "a" * 54), "name", "at most 53"),
        (lambda s: s.replace("    memory: 2Gi", "    memory: 2GB"), "head.resources.memory", "quantity"),
        (lambda s: s.replace("    maxReplicas: 4", "    maxReplicas: 4\n    maxReplica: 5"),
         "workerGroups.0.maxReplica", "Extra inputs"),
        (lambda s: s.replace("    replicas: 1", "    replicas: 9"), "workerGroups.0", "outside"),
        (lambda s: s.replace("object-store-memory: 100Mi", "object-store-memory: 10Mi"),
         "head.rayStartParams.object-store-memory", "75Mi"),
        (lambda s: s.replace("rayVersion: 2.60.0", "rayVersion: 2.59.0"), "<root>", "does not match"),
    ],
)
def test_bad_config_names_file_field_and_fix(tmp_path: Path, change, field: str, problem: str) -> None:
    path = _write(tmp_path, change(BASE))
    with pytest.raises(InputError) as err:
        load_cluster_config(path)
    assert err.value.source == str(path)
    assert err.value.field == field
    assert problem in err.value.problem
    assert err.value.fix


def test_unknown_key_fix_lists_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_cluster_config(_write(tmp_path, BASE.replace("upgradeStrategy:", "upgradeStrategi:")))
    assert err.value.field == "upgradeStrategi"
    assert "upgradeStrategy" in err.value.fix


def test_quantities() -> None:
    assert parse_quantity("500m") == parse_quantity("0.5")
    assert quantity_value("500m") == 1
    assert quantity_value("8Gi") == 8 * 2**30
    assert quantity_value("1G") == 10**9
    assert quantity_value("1e3") == 1000
    with pytest.raises(ValueError):
        parse_quantity("8GB")


# --- status -----------------------------------------------------------------------------------------------
def _cluster(**spec_changes) -> dict:
    manifest = render_ray_cluster(load_cluster_config(CLUSTERS / "sandbox.yaml"))
    manifest["metadata"].update({"generation": 1, "uid": "u"})
    manifest["spec"].update(spec_changes)
    return manifest


def test_readiness_requires_observed_generation() -> None:
    rc = _ready_cluster()
    rc["metadata"]["generation"] = 3
    assert readiness_gaps(rc) == ["status is for generation 2, the spec is at 3"]


def test_a_crashed_head_is_a_gap_though_state_and_provisioned_stay() -> None:
    """KubeRay v1.6.2 keeps ``state: ready`` and ``RayClusterProvisioned`` True after the head Pod fails its
    readiness (sticky); ``HeadPodReady`` mirrors the Pod's Ready condition."""
    rc = _ready_cluster()
    rc["status"]["readyWorkerReplicas"] = 0
    rc["status"]["conditions"][0] = {"type": "HeadPodReady", "status": "False", "reason": "ContainersNotReady",
                                     "message": ""}
    gaps = readiness_gaps(rc)
    assert "HeadPodReady is False (ContainersNotReady: -)" in gaps and "0/1 workers ready" in gaps


def _autoscaled(live_replicas: int, managers: dict[str, dict]) -> tuple[dict, dict]:
    manifest = render_ray_cluster(load_cluster_config(CLUSTERS / "production-example.yaml"))
    live = copy.deepcopy(manifest)
    live["spec"]["workerGroupSpecs"][0]["replicas"] = live_replicas
    live["spec"]["workerGroupSpecs"][0]["scaleStrategy"] = {"workersToDelete": ["w-1"]}
    live["metadata"]["managedFields"] = [{"manager": m, "fieldsV1": f} for m, f in managers.items()]
    return manifest, live


def test_an_autoscaling_cluster_keeps_the_autoscalers_replicas_and_takes_back_only_that_list() -> None:
    kaiops = {"f:spec": {"f:enableInTreeAutoscaling": {}, "f:headGroupSpec": {}}}
    # as seen on KubeRay v1.6.2 + Ray 2.60: the autoscaler's JSON patch owns the whole (atomic) list
    autoscaler = {"f:spec": {"f:workerGroupSpecs": {}}}
    operator = {"f:status": {"f:state": {}}}
    manifest, live = _autoscaled(7, {"kaiops": kaiops, "python-requests": autoscaler, "kuberay-operator": operator})
    out, force = keep_autoscaler_state(manifest, live)
    assert force
    assert out["spec"]["workerGroupSpecs"][0]["replicas"] == 7
    assert out["spec"]["workerGroupSpecs"][0]["scaleStrategy"] == {"workersToDelete": ["w-1"]}
    assert manifest["spec"]["workerGroupSpecs"][0]["replicas"] == 2  # the rendered manifest is not changed
    assert same_object(live, out)  # nothing else differs: a re-provision is `unchanged`
    someone = {"f:spec": {"f:workerGroupSpecs": {}, "f:headGroupSpec": {}}}  # also owns other spec fields
    assert keep_autoscaler_state(*_autoscaled(7, {"kaiops": kaiops, "kubectl-edit": someone}))[1] is False
    assert keep_autoscaler_state(*_autoscaled(7, {"kaiops": kaiops}))[1] is False  # nobody else: no force
    assert keep_autoscaler_state(manifest, None) == (manifest, False)
    fixed = copy.deepcopy(manifest)
    fixed["spec"]["enableInTreeAutoscaling"] = False
    assert keep_autoscaler_state(fixed, live) == (fixed, False)  # autoscaling off: kaiops owns replicas


def test_plan_helpers() -> None:
    live = _cluster()
    planned = copy.deepcopy(live)
    assert same_object(live, planned) and spec_diff(live, planned) == ""
    planned["spec"]["workerGroupSpecs"][0]["replicas"] = 2
    assert not same_object(live, planned)
    assert "-    replicas: 1\n+    replicas: 2" in spec_diff(live, planned)


# --- readiness against the Pods (what KubeRay v1.6.2's status leaves out) --------------------------------
def _pod(name: str, node_type: str, ready: bool = True, phase: str = "Running", terminating: bool = False,
         **status) -> dict:
    meta = {"name": name, "labels": {"ray.io/cluster": "c", "ray.io/node-type": node_type}}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": meta, "status": {"phase": phase, "conditions": conditions, **status}}


def _ready_cluster(desired: int = 1) -> dict:
    """A RayCluster status as the real operator writes it once every Pod ran (field names from v1.6.2)."""
    return {
        "metadata": {"name": "c", "namespace": "ray", "generation": 2},
        "status": {
            "state": "ready", "observedGeneration": 2, "readyWorkerReplicas": desired,
            "desiredWorkerReplicas": desired, "endpoints": {"dashboard": "8265", "gcs-server": "6379"},
            "head": {"podIP": "10.101.1.5", "podName": "c-head-x", "serviceIP": "10.101.1.5",
                     "serviceName": "c-head-svc"},
            "conditions": [
                {"type": "HeadPodReady", "status": "True", "reason": "HeadPodRunningAndReady"},
                {"type": "RayClusterProvisioned", "status": "True", "reason": "AllPodRunningAndReadyFirstTime"},
                {"type": "RayClusterSuspended", "status": "False", "reason": "RayClusterSuspended"},
            ],
        },
    }


def test_sticky_ready_status_is_not_enough_while_old_pods_terminate() -> None:
    rc = _ready_cluster()
    old = [_pod("c-head-a", "head", terminating=True), _pod("c-w-a", "worker", terminating=True)]
    assert readiness_gaps(rc) == []  # the status alone says ready: state and RayClusterProvisioned are sticky
    gaps = readiness_gaps(rc, old)
    assert gaps[0] == "2 Pod(s) still terminating: c-head-a, c-w-a"
    assert "0 head Pods, want 1" in gaps and "worker Pods: 0 ready of 0, want 1" in gaps
    new = [_pod("c-head-b", "head"), _pod("c-w-b", "worker", ready=False)]
    assert readiness_gaps(rc, new) == ["worker Pods: 0 ready of 1, want 1"]
    new[1] = _pod("c-w-b", "worker")
    assert readiness_gaps(rc, new) == []
    assert readiness_gaps(rc, [*new, _pod("c-w-c", "worker")]) == ["worker Pods: 2 ready of 2, want 1"]


def test_pod_problems_give_the_scheduler_and_kubelet_reasons() -> None:
    unschedulable = _pod("c-gpu", "worker", ready=False, phase="Pending")
    unschedulable["status"]["conditions"] = [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}]
    crashing = _pod("c-head", "head", ready=False, containerStatuses=[{
        "name": "ray-head", "ready": False, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}}])
    waiting_init = _pod("c-w", "worker", ready=False, phase="Pending", initContainerStatuses=[{
        "name": "wait-gcs-ready", "ready": False, "restartCount": 0, "state": {"running": {}}}])
    rows = {r["pod"]: r for r in pod_problems([unschedulable, crashing, waiting_init, _pod("ok", "worker")])}
    assert set(rows) == {"c-gpu", "c-head", "c-w"}
    assert (rows["c-gpu"]["reason"], rows["c-gpu"]["message"]) == (
        "Unschedulable", "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.")
    head = rows["c-head"]
    assert (head["container"], head["reason"], head["exit_code"], head["restarts"]) == (
        "ray-head", "CrashLoopBackOff", 2, 3)
    assert rows["c-w"]["reason"] is None and rows["c-w"]["phase"] == "Pending"
    text = diagnosis_text({"missing": ["x"], "pods": [{**head, "log_tail": "ray: error: no such option"}]})
    assert "pod c-head Running container ray-head: CrashLoopBackOff exit code 2, 3 restarts" in text
    assert "    ray: error: no such option" in text


def test_dashboard_url_is_the_head_pod_and_its_target_port() -> None:
    assert dashboard_url(_ready_cluster()) == "http://10.101.1.5:8265"
    rc = _ready_cluster()
    rc["status"]["head"] = {"podIP": "", "serviceIP": "", "podName": "", "serviceName": "c-head-svc"}
    with pytest.raises(PermanentError, match="no dashboard address"):
        dashboard_url(rc)


def test_smoke_entrypoint_carries_the_worker_count_and_a_script_that_compiles() -> None:
    argv = shlex.split(smoke_entrypoint(3, patience_s=40))
    assert argv[0] == "python" and argv[-2:] == ["3", "40"]
    code = argv[2].split("b64decode('")[1].split("')")[0]
    script = base64.b64decode(code).decode()
    compile(script, "smoke", "exec")
    assert "soft=False" in script and "node:__internal_head__" in script


def test_log_tail_keeps_the_last_lines() -> None:
    assert tail("a\nb\nc\n", 2) == "b\nc"
    assert tail("", 3) == ""


# --- KubeRay releases -------------------------------------------------------------------------------------
def test_kuberay_releases_default_to_the_one_the_sandbox_runs() -> None:
    from sandbox.paths import binary_version

    assert crds.releases("kuberay") == ["v1.6.2", "v1.7.0"]
    assert binary_version("kuberay-operator") == crds.releases("kuberay")[0]
    chosen = {s.name: s.version for s in crds.selected_sources()}
    assert chosen["kuberay"] == "v1.6.2"
    assert {s.name: s.version for s in crds.selected_sources(selection={"kuberay": "v1.7.0"})}["kuberay"] == "v1.7.0"
    v162 = next(s for s in crds.load_sources() if s.version == "v1.6.2")
    assert any(f.name == "ray.io_raycronjobs.yaml" for f in v162.files)
    with pytest.raises(ValueError, match=r"supported: v1\.6\.2, v1\.7\.0"):
        crds.select_release("kuberay", "v1.5.0")


def test_operator_rbac_is_the_release_files_in_our_namespace(tmp_path: Path) -> None:
    from sandbox.services.kuberay import LABELS, rbac_objects

    rbac = tmp_path / "config" / "rbac"
    rbac.mkdir(parents=True)
    (rbac / "kustomization.yaml").write_text("resources:\n- role.yaml\n- binding.yaml\n")
    (rbac / "role.yaml").write_text("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                                    "metadata: {name: kuberay-operator}\nrules: []\n")
    (rbac / "binding.yaml").write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: le}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: le}\n"
        "subjects: [{kind: ServiceAccount, name: kuberay-operator}]\n")
    (rbac / "unlisted.yaml").write_text("kind: ClusterRole\nmetadata: {name: not-applied}\n")
    role, binding = rbac_objects(tmp_path, "ns1")
    assert "namespace" not in role["metadata"] and role["metadata"]["labels"] == LABELS
    assert binding["metadata"]["namespace"] == "ns1" and binding["subjects"][0]["namespace"] == "ns1"


def test_a_generation_gap_alone_is_told_apart() -> None:
    rc = _ready_cluster()
    rc["metadata"]["generation"] = 3  # KubeRay v1.6.2 wrote no status for generation 3 (nothing else changed)
    gaps = readiness_gaps(rc, [_pod("h", "head"), _pod("w", "worker")])
    assert gaps == ["status is for generation 2, the spec is at 3"] and only_stale_generation(gaps)
    assert not only_stale_generation([*gaps, "worker Pods: 0 ready of 1, want 1"])
    assert not only_stale_generation([])


def test_replica_failure_is_a_gap() -> None:
    rc = _ready_cluster()
    rc["status"]["conditions"].append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreateHeadPod",
                                       "message": 'FailedCreateHeadPod\npods "c-head-" is forbidden'})
    assert readiness_gaps(rc) == ['ReplicaFailure (FailedCreateHeadPod: FailedCreateHeadPod\npods "c-head-" is '
                                  'forbidden)']
