"""The head-failure drill's judgement (tasks.ray.drill), as pure functions over Pod and actor dicts."""

from __future__ import annotations

import pytest

from configs.ray_cluster import RayClusterConfig
from tasks.errors import InputError
from tasks.ray.drill import _PLANT, _PROBE, Outcome, _entrypoint, actor_outcome, pod_view, verdict, worker_outcomes

pytestmark = pytest.mark.unit


def _pod(name: str, kind: str, uid: str, restarts: int = 0, terminating: bool = False) -> dict:
    meta = {"name": name, "uid": uid, "labels": {"ray.io/node-type": kind}}
    if terminating:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    container = "ray-head" if kind == "head" else "ray-worker"
    return {"metadata": meta, "status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "autoscaler", "restartCount": 9},
                              {"name": container, "restartCount": restarts}]}}


def test_pod_view_reads_the_ray_container_and_leaves_out_terminating_pods() -> None:
    view = pod_view([_pod("h", "head", "1", terminating=True), _pod("w", "worker", "2", restarts=3)])
    assert view == {"w": {"uid": "2", "type": "worker", "restarts": 3, "ready": True}}


def test_worker_outcomes_tell_survived_restarted_and_replaced_apart() -> None:
    before = pod_view([_pod("h", "head", "h1"), _pod("a", "worker", "a1"), _pod("b", "worker", "b1"),
                       _pod("c", "worker", "c1")])
    after = pod_view([_pod("h2", "head", "h2"), _pod("a", "worker", "a1"), _pod("b", "worker", "b1", restarts=1),
                      _pod("d", "worker", "d1")])
    assert worker_outcomes(before, after) == {"a": Outcome.survived, "b": Outcome.restarted, "c": Outcome.replaced}


def test_actor_outcome_needs_the_same_process_and_its_state() -> None:
    planted = {"token": "t", "calls": 1, "pid": 42}
    assert actor_outcome(planted, {"token": "t", "calls": 2, "pid": 42, "workers": 1}) is Outcome.survived
    assert actor_outcome(planted, {"token": "t", "calls": 1, "pid": 77}) is Outcome.restarted  # state lost
    assert actor_outcome(planted, {"error": "ValueError: Failed to look up actor"}) is Outcome.lost


def test_verdict_holds_fault_tolerant_clusters_to_survival_and_lists_losses() -> None:
    ok, lost = verdict(True, {"a": Outcome.survived}, Outcome.survived)
    assert ok and lost == ["Ray job drivers running on the head (always)"]
    failed, lost = verdict(True, {"a": Outcome.restarted}, Outcome.lost)
    assert not failed and lost[:2] == ["worker Pod a: restarted", "detached actor kaiops-drill-keeper: lost"]
    recovered, lost = verdict(False, {"a": Outcome.restarted}, Outcome.lost)
    assert recovered and "worker Pod a: restarted" in lost  # without FT only recovery is promised


def test_drill_scripts_compile_and_carry_their_arguments() -> None:
    import base64

    for script in (_PLANT, _PROBE):
        compile(script, "drill", "exec")
        ep = _entrypoint(script, "name", "x", "ns")
        assert ep.endswith(" name x ns")
        assert base64.b64decode(ep.split("'")[1]).decode() == script


def _cfg(**gcs) -> dict:
    return {"name": "c", "namespace": "ray", "environment": "sandbox", "rayVersion": "2.60.0",
            "image": "rayproject/ray:2.60.0-py311", "head": {"resources": {"cpu": "1", "memory": "1Gi"}},
            "gcsFaultTolerance": gcs}


def test_gcs_fault_tolerance_config_is_checked() -> None:
    good = RayClusterConfig.model_validate(_cfg(redisAddress="redis.ns.svc:6379",
                                                redisPasswordSecret={"name": "redis", "key": "password"}))
    assert good.gcs_fault_tolerance.as_manifest() == {
        "redisAddress": "redis.ns.svc:6379",
        "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "redis", "key": "password"}}}}
    for bad in ({"redisAddress": "no-port"}, {"redisAddress": "r:6379", "redisPassword": "inline"}):
        with pytest.raises(ValueError):
            RayClusterConfig.model_validate(_cfg(**bad))


def test_a_toleration_with_a_value_and_exists_is_refused(tmp_path) -> None:
    import yaml

    from configs.ray_cluster import load_cluster_config

    raw = _cfg(redisAddress="r:6379")
    raw["workerGroups"] = [{"name": "gpu", "replicas": 0, "maxReplicas": 1,
                            "resources": {"cpu": "1", "memory": "1Gi", "gpu": 1},
                            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "value": "x"}]}]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=r"workerGroups\.0\.tolerations\.0") as err:
        load_cluster_config(path)
    assert "operator Exists takes no value" in str(err.value)
