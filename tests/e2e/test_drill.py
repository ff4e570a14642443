"""The backup and restore-drill flows end to end on the sandbox: a backup, then a drill that passes
(restored, ready, equal), reports and cleans up; and a drill that fails is a failed flow run with a reason.

Readiness: ``FakeController`` (tests/integration/backup_support.py) writes RayCluster/InferenceService
status through the status subresource. When the sandbox KubeRay/KServe emulators run, drop it and the
drill waits on them instead (the flow's ``readiness`` parameter stays ``conditions``).
"""

from __future__ import annotations

import base64
import os
import uuid

import pytest
import yaml

from tasks import kube
from tasks.backup.drill import ReadinessMode
from tests.integration.backup_support import FakeController, namespace, platform_objects
from tests.sandbox_env import services_fixture

pytestmark = pytest.mark.e2e
# The flows run on Prefect's ephemeral API; on a loaded 2-core machine it needs more than the default 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


env = services_fixture("kube-apiserver", "s3")


def test_backup_then_drill_passes_and_cleans_up(env, tmp_path, monkeypatch) -> None:
    from flows.backup import backup, restore_drill

    dyn = kube.connect(env["KUBECONFIG"])
    ns = f"e2e-{uuid.uuid4().hex[:6]}"
    kube.apply(dyn, namespace(ns))
    for obj in platform_objects(ns):
        kube.apply(dyn, obj)
    monkeypatch.setenv("KAIOPS_E2E_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump({
        "name": "e2e", "destination": f"s3://e2e-{uuid.uuid4().hex[:8]}/n", "create_bucket": True, "namespaces": [ns],
        "encryption_key_env": "KAIOPS_E2E_KEY", "metrics_dir": str(tmp_path / "metrics"),
        "drill": {"readiness_timeout_seconds": 60},
    }))
    made = backup(policy=str(policy))
    assert made["objects"] == 9 and made["encrypted"] == 1

    # a dry run verifies and plans, and creates nothing: no scratch namespace, no metrics file
    preview = restore_drill(policy=str(policy), dry_run=True)
    assert preview["dry_run"] and preview["backup_id"] == made["backup_id"] and preview["verified"] == 9
    assert sum(preview["would_restore"].values()) == 9 and list(preview["scratch_namespaces"]) == [ns]
    with pytest.raises(kube.NotFound):
        kube.get(dyn, "v1", "Namespace", preview["scratch_namespaces"][ns])
    assert not (tmp_path / "metrics" / "kaiops_drill_e2e.prom").exists()

    with FakeController(dyn):
        summary = restore_drill(policy=str(policy), readiness=ReadinessMode.conditions)
    assert summary["verdict"] == "passed", summary
    assert summary["objects"] == {"restored": 8, "ready": 8, "equal": 8, "total": 8}
    assert summary["backup_id"] == made["backup_id"] and summary["rto_seconds"] > 0
    for scratch in summary["scratch_namespaces"]:
        with pytest.raises(kube.NotFound):
            kube.get(dyn, "ray.io/v1", "RayCluster", "train", scratch)
    prom = (tmp_path / "metrics" / "kaiops_drill_e2e.prom").read_text()
    assert 'kaiops_drill_last_run_success{policy="e2e"} 1' in prom

    # without a controller nothing becomes ready: the drill fails, with the reason
    from flows.backup import DrillFailed

    with pytest.raises(DrillFailed, match="not ready"):
        restore_drill(policy=str(policy), timeout=3)
    prom = (tmp_path / "metrics" / "kaiops_drill_e2e.prom").read_text()
    assert 'kaiops_drill_last_run_success{policy="e2e"} 0' in prom
