"""The head-failure drill (``kaiops cluster drill``) against the real KubeRay v1.6.2 operator, with and without
GCS fault tolerance (the sandbox's Redis, ``sandbox/services/kuberay_redis.py``).

Each test provisions its own small cluster (a head that takes no tasks, one worker), runs the drill flow and
tears the cluster down. With ``gcsFaultTolerance`` the worker Pod and the detached actor on it survive the head
Pod's deletion; without it the cluster recovers but the worker's Ray container restarts and the actor is lost.
"""

from __future__ import annotations

import base64
import uuid

import pytest
import yaml

from tasks import kube

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]  # a Ray head takes minutes to start on a loaded machine
NAMESPACE = "ray-drill"
SECRET = "redis-password"


def _config(name: str, fault_tolerant: bool, redis_address: str) -> dict:
    raw = {
        "name": name, "namespace": NAMESPACE, "environment": "sandbox", "rayVersion": "2.60.0",
        "image": "rayproject/ray:2.60.0-py311",
        "head": {"resources": {"cpu": "500m", "memory": "2Gi"},
                 "rayStartParams": {"num-cpus": 0, "object-store-memory": "100Mi"}},
        "workerGroups": [{"name": "cpu", "replicas": 1, "minReplicas": 0, "maxReplicas": 1,
                          "resources": {"cpu": "250m", "memory": "1Gi"}}],
    }
    if fault_tolerant:
        raw["gcsFaultTolerance"] = {"redisAddress": redis_address,
                                    "redisPasswordSecret": {"name": SECRET, "key": "password"}}
    return raw


@pytest.fixture(scope="module")
def env(sandbox, tmp_path_factory) -> dict:
    """The namespace and the Secret with the sandbox Redis's password (as a user would create them)."""
    dyn = kube.connect(sandbox["KUBECONFIG"])
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    password = base64.b64encode(sandbox["KAIOPS_REDIS_PASSWORD"].encode()).decode()
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": NAMESPACE},
                     "type": "Opaque", "data": {"password": password}})
    return {"kubeconfig": sandbox["KUBECONFIG"], "redis": sandbox["KAIOPS_REDIS_ADDRESS"],
            "dir": tmp_path_factory.mktemp("drill")}


def _provision(env: dict, fault_tolerant: bool) -> str:
    from flows.provision import provision_ray_cluster

    name = f"{'ft' if fault_tolerant else 'plain'}-{uuid.uuid4().hex[:6]}"
    path = env["dir"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_config(name, fault_tolerant, env["redis"])))
    summary = provision_ray_cluster(str(path), timeout_s=900)
    assert summary["ok"], summary
    return str(path)


def test_with_gcs_fault_tolerance_the_worker_and_the_detached_actor_survive(env) -> None:
    from flows.cluster_drill import head_failure_drill
    from flows.provision import teardown_ray_cluster
    from tasks.errors import InputError

    path = _provision(env, fault_tolerant=True)
    with pytest.raises(InputError, match="--yes"):
        head_failure_drill(path)
    report = head_failure_drill(path, yes=True, timeout_s=900)
    print(f"drill with GCS FT: {report['recovery_s']} lost={report['lost']}")
    assert report["fault_tolerant"] is True
    assert report["head"]["new"] != report["head"]["deleted"]
    assert list(report["workers"].values()) == ["survived"], report
    assert report["actor"] == "survived" and report["actor_detail"]["calls"] == 2, report
    assert report["passed"] and report["ok"]
    # KubeRay's Redis clean-up (finalizer ray.io/gcs-ft-redis-cleanup-finalizer, a Job) must let the delete end
    assert teardown_ray_cluster(path, yes=True, timeout_s=600)["decision"] == "deleted"


def test_without_fault_tolerance_the_cluster_recovers_but_the_actor_is_lost(env) -> None:
    from flows.cluster_drill import head_failure_drill
    from flows.provision import teardown_ray_cluster

    path = _provision(env, fault_tolerant=False)
    report = head_failure_drill(path, yes=True, timeout_s=900)
    print(f"drill without GCS FT: {report['recovery_s']} lost={report['lost']}")
    assert report["fault_tolerant"] is False
    assert report["actor"] == "lost", report
    assert all(v in ("restarted", "replaced") for v in report["workers"].values()), report
    assert report["passed"]  # recovery is all a cluster without fault tolerance promises
    assert teardown_ray_cluster(path, yes=True, timeout_s=300)["decision"] == "deleted"
