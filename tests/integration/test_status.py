"""``kaiops status`` on the sandbox: a RayCluster (emulated KubeRay, real Ray head), an InferenceService in the
middle of a rollout (emulated KServe: two revisions, 75/25 split, the rollout record in its annotations) and a
backup with a drill record, read by the real CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from configs.backup import BackupPolicy
from configs.ray_cluster import load_cluster_config
from tasks import kube
from tasks.backup import steps
from tasks.ray.manifest import render_ray_cluster
from tasks.rollout.state import Phase, RolloutRecord, iso
from tests.sandbox_env import exported

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
KAIOPS = Path(sys.executable).with_name("kaiops")


@pytest.fixture(scope="module")
def env():
    """The apiserver, S3 and the emulated KubeRay and KServe controllers of this instance."""
    from sandbox import launcher

    launcher.up(("kuberay", "kserve", "s3"))
    with exported(launcher.env()) as values:
        yield values


@pytest.fixture(scope="module")
def platform(env, tmp_path_factory):
    """A namespace with a ready RayCluster, a mid-rollout InferenceService and a backup policy with one backup."""
    from tests.e2e.rollout_support import publish_models

    dyn = kube.connect(env["KUBECONFIG"])
    ns = f"status-{uuid.uuid4().hex[:6]}"
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    cfg = load_cluster_config(REPO / "configs" / "clusters" / "sandbox.yaml")
    cluster = render_ray_cluster(cfg.model_copy(update={"namespace": ns, "name": "status-ray"}))
    kube.apply(dyn, cluster)

    publish_models(versions=("v1",))  # a real model, whatever another test left at that path
    endpoint = env["AWS_ENDPOINT_URL"].split("://", 1)[1]
    for obj in (
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {
            "name": "iris-s3", "namespace": ns, "annotations": {
                "serving.kserve.io/s3-endpoint": endpoint, "serving.kserve.io/s3-usehttps": "0",
                "serving.kserve.io/s3-region": "us-east-1"}},
         "stringData": {"AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
                        "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "iris-sa", "namespace": ns},
         "secrets": [{"name": "iris-s3"}]},
    ):
        kube.apply(dyn, obj)
    isvc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": ns},
            "spec": {"predictor": {"serviceAccountName": "iris-sa", "model": {
                "modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/iris/v1/"}}}}
    kube.apply(dyn, isvc)
    kube.wait_for(dyn, "serving.kserve.io/v1beta1", "InferenceService", "iris",
                  lambda o: kube.condition_true(o, "Ready"), namespace=ns, timeout=600)
    # What the rollout flow writes at its second step: the canary at 25 % and the record with its lease.
    now = datetime.now(UTC)
    record = RolloutRecord(phase=Phase.PROGRESSING, step=1, traffic=25, target_storage_uri="s3://models/iris/v1",
                           previous_storage_uri="s3://models/iris/v1/", lease_holder="flow-run/status-test",
                           lease_expires=iso(now + timedelta(minutes=30)), started=iso(now), canary_started=iso(now))
    isvc["metadata"]["annotations"] = record.to_annotations()
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = 25
    isvc["spec"]["predictor"]["model"]["storageUri"] = "s3://models/iris/v1"  # a new revision, same model
    kube.apply(dyn, isvc)

    def split(o: dict) -> bool:
        traffic = ((o.get("status") or {}).get("components") or {}).get("predictor", {}).get("traffic") or []
        return sorted(t.get("percent") for t in traffic if t.get("percent")) == [25, 75]

    kube.wait_for(dyn, "serving.kserve.io/v1beta1", "InferenceService", "iris", split, namespace=ns, timeout=600)
    # a real Ray head starts behind the emulated KubeRay; on a loaded machine it may keep failing
    with contextlib.suppress(TimeoutError):
        kube.wait_for(dyn, "ray.io/v1", "RayCluster", "status-ray",
                      lambda o: (o.get("status") or {}).get("state") == "ready", namespace=ns, timeout=300)

    metrics_dir = tmp_path_factory.mktemp("metrics")
    policy = BackupPolicy(name=ns, destination=f"s3://kaiops-backups/{ns}", create_bucket=True, namespaces=[ns],
                          metrics_dir=str(metrics_dir))
    exported_objects = steps.export_objects(policy)
    written = steps.write_with_policy_key(policy, exported_objects)
    steps.record_backup_metrics(policy, success=True, written=written)
    steps.record_drill_metrics(policy, success=False, rto=0.0, objects={})
    policy_file = metrics_dir / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy.model_dump(mode="json")))
    yield {"ns": ns, "policy": policy_file, "backup_id": written.backup_id, "dyn": dyn,
           "warnings": exported_objects.warnings}
    for api_version, kind, name in (("serving.kserve.io/v1beta1", "InferenceService", "iris"),
                                    ("ray.io/v1", "RayCluster", "status-ray")):
        with contextlib.suppress(Exception):
            kube.resource_for(dyn, api_version, kind).delete(name=name, namespace=ns)


def _status(platform: dict, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KAIOPS), "status", "--backup-policy", str(platform["policy"]), *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": str(columns)})


def test_status_json_shows_cluster_rollout_and_backup(platform: dict) -> None:
    result = _status(platform, "-o", "json")
    assert result.returncode in (0, 1), result.stderr
    view = json.loads(result.stdout)
    ns = platform["ns"]
    [cluster] = [r for r in view["rayclusters"] if r["namespace"] == ns]
    live = kube.get(platform["dyn"], "ray.io/v1", "RayCluster", "status-ray", ns).get("status") or {}
    assert cluster["name"] == "status-ray" and cluster["state"] == (live.get("state") or "-")
    assert cluster["workers"] == f"{live.get('readyWorkerReplicas', 0)}/{live.get('desiredWorkerReplicas', 0)}"
    if live.get("state") == "ready" and live.get("readyWorkerReplicas") == live.get("desiredWorkerReplicas"):
        assert cluster["health"] == "ok"
    else:  # the head did not start (yet): shown as unhealthy, with what is wrong
        assert cluster["health"] == "unhealthy" and cluster["problem"]
    [isvc] = [r for r in view["inferenceservices"] if r["namespace"] == ns]
    assert isvc["ready"] is True and isvc["health"] == "progressing"
    assert isvc["rollout"] == "Progressing step 2 at 25%"
    assert isvc["lease"].startswith("flow-run/status-test (")
    assert sorted(p.rsplit(" ", 1)[1] for p in isvc["traffic"].split(", ")) == ["25%", "75%"]
    assert isvc["revision"].startswith("iris-predictor-")
    [backup] = [r for r in view["backups"] if r["policy"] == ns]
    assert backup["last_backup"].startswith(platform["backup_id"])
    assert backup["drill"] == "FAILED" and backup["health"] == "unhealthy"
    assert "the last drill failed" in backup["problem"]
    assert result.returncode == 1  # the failed drill is unhealthy
    # unhealthy first in each section
    order = {"unhealthy": 0, "attention": 1, "progressing": 2, "ok": 3}
    for section in ("rayclusters", "inferenceservices", "backups"):
        healths = [order[r["health"]] for r in view[section]]
        assert healths == sorted(healths)


def test_backup_without_a_key_names_the_secret_it_left_out(platform: dict) -> None:
    assert any(w.startswith(f"Secret {platform['ns']}/iris-s3 left out: no encryption key is configured")
               for w in platform["warnings"]), platform["warnings"]


def test_status_table_at_80_columns_cuts_nothing(platform: dict) -> None:
    result = _status(platform, columns=80)
    text = result.stdout
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80, text
    flat = " ".join(text.split())
    assert f"backup policy {platform['ns']}: the last drill failed" in flat
    assert f"{platform['ns']}/iris" in flat and "flow-run/status-test" in flat and platform["backup_id"] in flat
