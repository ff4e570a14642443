"""Fan-out: the fleet flows map one task per namespace on prefect-ray's RayTaskRunner, on the sandbox's
real Ray head (the Ray workers run from the same venv, so they import kaiops). The fleet backup writes real
backups (read back here, and one restored by a drill); its Ray workers get S3 credentials and the backup key
from Prefect Secret blocks, never through Ray's runtime_env."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from tests.e2e.registry_support import prefect_api, sandbox_services

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def services():
    # the sandbox Prefect server (not an ephemeral one started inside the test process) records the runs
    with sandbox_services("kube-apiserver", "s3", "ray", "prefect") as env, prefect_api(env["PREFECT_API_URL"]):
        yield env


def _gcs_address() -> str:
    from sandbox import launcher

    record = launcher.load().services["ray"]
    return f"127.0.0.1:{record.ports['gcs']}"


def test_fleet_inventory_fans_out_on_the_sandbox_ray_head(services):
    from configs.release import ExecutionConfig
    from flows.fleet import fleet_inventory
    from tasks import kube

    dyn = kube.connect(services["KUBECONFIG"])
    names = [f"fleet-{uuid.uuid4().hex[:5]}-{i}" for i in range(3)]
    for i, ns in enumerate(names):
        kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for j in range(i + 1):
            kube.apply(dyn, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{j}", "namespace": ns},
                             "data": {"k": "v"}})
    result = fleet_inventory([*names, "missing-ns"], ExecutionConfig(task_runner="ray", ray_address=_gcs_address()),
                             kubeconfig=services["KUBECONFIG"])
    rows = {r["namespace"]: r for r in result["rows"]}
    assert result["runner"] == "ray"
    assert [rows[ns]["counts"]["ConfigMap"] for ns in names] == [1, 2, 3]
    # a namespace that does not exist is reported (as fleet_backup does), not counted as empty
    assert rows["missing-ns"]["error"] == "namespace not found" and rows["missing-ns"]["counts"] == {}
    assert result["failed"] == ["missing-ns"] and not result["ok"]
    # the tasks ran in Ray worker processes, not in this one
    assert all(not r["host"].endswith(f":{os.getpid()}") for r in result["rows"])


def _rayclusters_with_a_secret(dyn, ns: str, secret_value: str) -> None:
    from tasks import kube

    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
                     "stringData": {"token": secret_value}})
    container = {"name": "ray-head", "image": "rayproject/ray:2.49.0",
                 "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]}
    spec = {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [container]}}}}
    kube.apply(dyn, {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "train", "namespace": ns},
                     "spec": spec})


def test_fleet_backup_on_the_sandbox_ray_head_writes_real_backups(services, monkeypatch):
    from prefect.blocks.system import Secret

    from configs.backup import BackupPolicy
    from configs.release import ExecutionConfig
    from flows.fleet import FleetBackupFailed, FleetDrillFailed, fleet_backup, fleet_drill
    from tasks import fleet, kube
    from tasks.backup import steps

    uid = uuid.uuid4().hex[:5]
    monkeypatch.setenv("KAIOPS_BACKUP_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    blocks = {name: f"fleet-{uid}-{name.lower().replace('_', '-')}"
              for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "KAIOPS_BACKUP_KEY")}
    for name, block in blocks.items():
        Secret(value=os.environ[name]).save(block, overwrite=True)
    dyn = kube.connect(services["KUBECONFIG"])
    names = [f"fleet-{uid}-b{i}" for i in range(3)]
    for ns in names:
        _rayclusters_with_a_secret(dyn, ns, f"value-of-{ns}")
    policy = BackupPolicy(name="fleet", destination=f"s3://kaiops-fleet-{uid}/nightly", create_bucket=True)
    execution = ExecutionConfig(task_runner="ray", ray_address=_gcs_address(),
                                ray_env=["AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"], ray_secret_blocks=blocks)
    try:
        with pytest.raises(FleetBackupFailed, match=f"1 of 4 namespaces not backed up.*fleet-{uid}-gone") as err:
            fleet_backup(policy, [*names, f"fleet-{uid}-gone"], execution, kubeconfig=services["KUBECONFIG"])
        # the fleet drill on Ray: two namespaces' backups restore into scratch namespaces; one has no backup
        with pytest.raises(FleetDrillFailed, match=f"1 of 3 drills did not pass.*fleet-{uid}-gone") as drills:
            fleet_drill(policy, [names[0], names[1], f"fleet-{uid}-gone"], execution, readiness="present",
                        timeout=60, kubeconfig=services["KUBECONFIG"])
    finally:
        for block in blocks.values():
            Secret.delete(block)
    drilled = {r["namespace"]: r for r in drills.value.summary["rows"]}
    assert drilled[f"fleet-{uid}-gone"]["outcome"] == "no-backup"
    for ns in names[:2]:
        row = drilled[ns]
        assert row["outcome"] == "passed", row["reason"]
        assert row["restored"] == row["equal"] == row["total"] >= 2 and row["rto_seconds"] > 0
        assert not row["host"].endswith(f":{os.getpid()}")  # ran in a Ray worker
    summary = err.value.summary
    rows = {r["namespace"]: r for r in summary["rows"]}
    assert summary["runner"] == "ray" and summary["failed"] == [f"fleet-{uid}-gone"]
    assert rows[f"fleet-{uid}-gone"]["outcome"] == "missing" and rows[f"fleet-{uid}-gone"]["backup_id"] is None
    for ns in names:
        row = rows[ns]
        assert row["outcome"] == "backed-up", row["error"]
        assert row["counts"] == {"Namespace": 1, "RayCluster": 1, "Secret": 1} and row["encrypted"] == 1
        assert row["verified"] and not row["host"].endswith(f":{os.getpid()}")  # ran in a Ray worker
        # the backup is complete (manifest written last) and reads back with every checksum right
        one = fleet.namespace_policy(policy, ns)
        assert steps.newest_good(one) == row["backup_id"]
        loaded = steps.verify_backup(one, row["backup_id"], steps.policy_key(one))
        secret = next(o for o in loaded.objects if o["kind"] == "Secret")
        assert base64.b64decode(secret["data"]["token"]) == f"value-of-{ns}".encode()
        assert {o["metadata"].get("namespace") for o in loaded.objects if o["kind"] != "Namespace"} == {ns}


def test_fleet_backup_dry_run_from_the_cli_lists_each_namespace_and_writes_nothing(services, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    import boto3
    import yaml

    from tasks import kube

    uid = uuid.uuid4().hex[:5]
    dyn = kube.connect(services["KUBECONFIG"])
    names = [f"fleet-{uid}-d{i}" for i in range(2)]
    for ns in names:
        kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    bucket = f"kaiops-fleet-dry-{uid}"
    policy = tmp_path / "fleet.yaml"
    policy.write_text(yaml.safe_dump({"name": "fleet", "destination": f"s3://{bucket}/nightly", "create_bucket": True}))
    kaiops = Path(sys.executable).with_name("kaiops")
    out = subprocess.run([str(kaiops), "fleet", "backup", "-p", str(policy), "-n", names[0], "-n", names[1],
                          "-n", f"fleet-{uid}-gone", "--dry-run", "-o", "json"], capture_output=True, text=True,
                         env={**os.environ, **services}, timeout=300)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]  # a missing namespace fails the run
    rows = {r["namespace"]: r for r in json.loads(out.stdout)}
    assert {ns: rows[ns]["outcome"] for ns in rows} == {names[0]: "would-back-up", names[1]: "would-back-up",
                                                        f"fleet-{uid}-gone": "missing"}
    assert rows[names[0]]["destination"] == f"s3://{bucket}/nightly/{names[0]}"
    s3 = boto3.client("s3", endpoint_url=services["AWS_ENDPOINT_URL"])
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}  # nothing was created or written
