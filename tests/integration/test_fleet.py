"""Fan-out: the fleet flow maps one task per namespace on prefect-ray's RayTaskRunner, on the sandbox's
real Ray head (the Ray workers run from the same venv, so they import kaiops)."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.e2e.registry_support import prefect_api, sandbox_services

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def services():
    # the sandbox Prefect server (not an ephemeral one started inside the test process) records the runs
    with sandbox_services("kube-apiserver", "ray", "prefect") as env, prefect_api(env["PREFECT_API_URL"]):
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
    assert rows["missing-ns"]["counts"].get("ConfigMap") == 0  # an empty namespace is a row, not an error
    # the tasks ran in Ray worker processes, not in this one
    assert all(not r["host"].endswith(f":{os.getpid()}") for r in result["rows"])
    assert result["ok"]
