"""A restore drill killed mid-way on the sandbox apiserver: while it runs its leased scratch namespaces are
never swept; no backup includes them; once it is dead (SIGKILL: its lease lapses) the next run sweeps them.

The drill is the leased part of :func:`flows.drill.run_drill` in a child process - the same plan, restore and
:class:`tasks.backup.scratch.Heartbeat` - without Prefect, killed with SIGKILL while it waits.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from configs.backup import BackupPolicy
from flows.drill import sweep_dead_drills
from tasks import kube
from tasks.backup import scratch, steps
from tasks.fleet import cluster_namespaces
from tests.integration.backup_support import namespace, platform_objects
from tests.sandbox_env import services_fixture

pytestmark = pytest.mark.integration
LEASE = 3.0
ROOT = Path(__file__).resolve().parents[2]
DRILL = """
import json, sys, time
from datetime import UTC, datetime
from configs.backup import BackupPolicy
from tasks import kube
from tasks.backup import scratch, steps
from tasks.backup.drill import plan_drill
from tasks.backup.restore import ExistingPolicy, ProductionMarker

pol = BackupPolicy.model_validate_json(sys.argv[1])
loaded = steps.verify_with_policy_key(pol, sys.argv[2])
lease = scratch.lease_annotations("test-drill", datetime.now(UTC), pol.drill.lease_seconds)
dplan = plan_drill(loaded.objects, sys.argv[3], lease)
loaded.objects = dplan.restore
with scratch.Heartbeat(kube.connect(), dplan.namespace_map.values(), pol.drill.lease_seconds):
    plan = steps.plan_restore(loaded, kubeconfig=None, namespace_map=dplan.namespace_map,
                              existing=ExistingPolicy.fail, marker=ProductionMarker(), yes=False)
    steps.apply_restore(plan, kubeconfig=None, backup_id=sys.argv[2], existing=ExistingPolicy.fail, dry_run=False)
    print(json.dumps(sorted(dplan.namespace_map.values())), flush=True)
    time.sleep(600)  # waiting for readiness: killed here
"""


env = services_fixture("kube-apiserver", "s3")


def gone_or_going(dyn, name: str) -> bool:
    try:
        return bool(kube.get(dyn, "v1", "Namespace", name)["metadata"].get("deletionTimestamp"))
    except kube.NotFound:
        return True


def test_killed_drill_is_swept_by_the_next_run_and_never_backed_up(env, monkeypatch, tmp_path) -> None:
    dyn = kube.connect(env["KUBECONFIG"])
    src = f"sw-{uuid.uuid4().hex[:6]}"
    kube.apply(dyn, namespace(src))
    for obj in platform_objects(src):
        kube.apply(dyn, obj)
    monkeypatch.setenv("KAIOPS_TEST_BACKUP_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    pol = BackupPolicy(name="sweep", destination=f"s3://sw-{uuid.uuid4().hex[:8]}/n", create_bucket=True,
                       namespaces=[src], encryption_key_env="KAIOPS_TEST_BACKUP_KEY",
                       metrics_dir=str(tmp_path), drill={"lease_seconds": LEASE})
    written = steps.write_with_policy_key(pol, steps.export_objects(pol, include_secrets=True))
    drill_id = uuid.uuid4().hex[:6]
    child = subprocess.Popen([sys.executable, "-c", DRILL, pol.model_dump_json(), written.backup_id, drill_id],
                             cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        line = child.stdout.readline()
        assert line, f"the drill exited with {child.wait()} before restoring"
        names = json.loads(line)
        assert names == [f"d-{drill_id}-{src}"]
        assert kube.get(dyn, "v1", "ConfigMap", "model-config", names[0])  # restored

        # running: renewed past its first lease, so a sweep leaves it alone
        time.sleep(LEASE * 1.5)
        assert child.poll() is None
        assert not set(names) & set(sweep_dead_drills(env["KUBECONFIG"], dry_run=True)["swept"])
        notes = kube.get(dyn, "v1", "Namespace", names[0])["metadata"]["annotations"]
        assert notes[scratch.HOLDER] == "test-drill" and notes[scratch.LEASE] == "3"

        # never backed up: not by name, not in a backup of every namespace, not listed by a fleet backup
        by_name = pol.model_copy(update={"namespaces": names})
        exported_one = steps.export_objects(by_name)
        assert exported_one.objects == [] and exported_one.left_out["drill-scratch"] > 0
        everything = pol.model_copy(update={"namespaces": [], "include_cluster_resources": False})
        assert not [o for o in steps.export_objects(everything).objects
                    if o["metadata"].get("namespace") in names or o["metadata"]["name"] in names]
        present, _ = cluster_namespaces([], env["KUBECONFIG"])
        assert src in present and not set(names) & set(present)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the drill dies mid-wait: nothing cleans up after it
        child.wait()
    assert not gone_or_going(dyn, names[0])

    time.sleep(LEASE + 1)  # its lease lapses
    result = sweep_dead_drills(env["KUBECONFIG"])
    assert set(names) <= set(result["swept"]) and not result["errors"]
    assert all(gone_or_going(dyn, n) for n in names)
    assert not gone_or_going(dyn, src)
