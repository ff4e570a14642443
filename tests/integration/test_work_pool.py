"""The Kubernetes work pool of deployments/kubernetes/ for real: the base job template is what Prefect fills
(every placeholder a declared variable, the paths prefect-kubernetes insists on), the worker runs as a
Deployment in the sandbox cluster with the RBAC of rbac.yaml and runs a kaiops flow run as a Job whose Pod
finishes, and the worker's manifests pass ``kaiops validate``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tasks import kube
from tests.e2e.registry_support import REPO, sandbox_services
from tests.integration.test_rbac import MANIFESTS, _apply_all

pytestmark = pytest.mark.integration

TEMPLATE = MANIFESTS / "work-pool-template.json"
#: Paths prefect-kubernetes 0.8.0 requires in job_manifest (``_get_base_job_manifest``; it refuses the pool
#: otherwise). parallelism/completions sit in the *pod* spec there: Kubernetes drops them (unknown fields).
REQUIRED_PATHS = ("metadata.annotations", "metadata.labels", "spec.template.spec.parallelism",
                  "spec.template.spec.completions", "spec.template.spec.restartPolicy",
                  "spec.template.spec.containers")


def test_job_template_declares_every_variable_prefect_fills():
    from prefect.utilities.templating import find_placeholders

    template = json.loads(TEMPLATE.read_text())
    variables = template["variables"]
    jsonschema.Draft7Validator.check_schema(variables)
    used = {p.name for p in find_placeholders(template["job_configuration"])}
    assert used <= set(variables["properties"]), used - set(variables["properties"])
    # the worker's own fields (KubernetesWorkerJobConfiguration) are all present
    assert {"name", "namespace", "env", "labels", "command", "job_manifest", "cluster_config",
            "job_watch_timeout_seconds", "pod_watch_timeout_seconds", "stream_output"} <= set(
                template["job_configuration"])
    manifest = template["job_configuration"]["job_manifest"]
    for path in REQUIRED_PATHS:
        node = manifest
        for part in path.split("."):
            assert part in node, f"job_manifest lacks {path} (prefect-kubernetes refuses the pool)"
            node = node[part]
    assert manifest["spec"]["template"]["spec"]["containers"][0]["name"] == "prefect-job"
    assert variables["properties"]["service_account_name"]["default"] == "kaiops-worker"


#: what a flow run needs in the sandbox cluster: Pods that run (scheduler, node agent), Services and DNS
#: (kube-proxy, CoreDNS) to reach Prefect at its in-cluster name, and the Prefect server itself
CLUSTER = ("kube-controller-manager", "kube-scheduler", "node", "kube-proxy", "coredns", "prefect")
IN_CLUSTER_PREFECT = "http://prefect.kaiops-sandbox.svc.cluster.local:4200/api"
POOL = "kaiops-kubernetes"


def _wait(check, timeout: float, what: str):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what} not reached within {timeout:.0f}s")


def test_worker_deployment_runs_a_flow_run_as_a_job_pod():
    """The worker of deployments/kubernetes/worker.yaml, as a Deployment in the sandbox cluster with rbac.yaml,
    picks up a flow run of the ``guard`` deployment (flows/rollout.py:canary_guard) from pool kaiops-kubernetes
    (work-pool-template.json) and runs it as a Job whose Pod finishes, and the flow run is Completed."""
    import asyncio

    from kubernetes import client, config
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from flows.rollout import canary_guard
    from tests.e2e.registry_support import prefect_api

    with sandbox_services(*CLUSTER) as env:
        admin = kube.connect(env["KUBECONFIG"])
        _apply_all(admin, MANIFESTS / "rbac.yaml")
        for doc in yaml.safe_load_all((MANIFESTS / "worker.yaml").read_text()):
            if doc["kind"] == "ConfigMap":  # "your Prefect server": the sandbox's, by its in-cluster name
                doc["data"]["api-url"] = IN_CLUSTER_PREFECT
            kube.apply(admin, doc)
        core = client.CoreV1Api(config.new_client_from_config(config_file=env["KUBECONFIG"]))
        batch = client.BatchV1Api(core.api_client)

        async def submit() -> str:
            async with get_client() as prefect:
                await prefect.create_work_pool(WorkPoolCreate(
                    name=POOL, type="kubernetes", base_job_template=json.loads(TEMPLATE.read_text())),
                    overwrite=True)
                flow_id = await prefect.create_flow_from_name(canary_guard.name)
                deployment_id = await prefect.create_deployment(
                    flow_id=flow_id, name="guard-k8s", entrypoint="flows/rollout.py:canary_guard",
                    work_pool_name=POOL, parameters={"namespace": "kaiops-system"},
                    pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}],
                    job_variables={"image": "ghcr.io/example/kaiops:latest"})
                run = await prefect.create_flow_run_from_deployment(deployment_id)
                return str(run.id)

        async def state(run_id: str):
            async with get_client() as prefect:
                return (await prefect.read_flow_run(run_id)).state

        with prefect_api(env["PREFECT_API_URL"]):
            run_id = asyncio.run(submit())
            final = _wait(lambda: (st := asyncio.run(state(run_id))) and st.is_final() and st, 420,
                          f"flow run {run_id} final")
        selector = f"prefect.io/flow-run-id={run_id}"
        pods = core.list_namespaced_pod("kaiops-system", label_selector=selector).items
        logs = core.read_namespaced_pod_log(pods[0].metadata.name, "kaiops-system") if pods else ""
        assert final.is_completed(), f"{final.type}: {final.message}\n{logs[-2000:]}"
        # the run was a Job whose Pod ran to completion (the Job controller counts it once the Pod's exit is
        # reported, a moment after the flow run reported Completed itself)
        jobs = _wait(lambda: [j for j in batch.list_namespaced_job("kaiops-system", label_selector=selector).items
                              if j.status.succeeded == 1], 120, "Job succeeded")
        assert len(jobs) == 1
        pods = core.list_namespaced_pod("kaiops-system", label_selector=selector).items
        assert [p.status.phase for p in pods] == ["Succeeded"]
        worker = core.list_namespaced_pod("kaiops-system", label_selector="app.kubernetes.io/component=worker").items
        assert worker and worker[0].status.phase == "Running"  # the worker is the Deployment's Pod
        assert pods[0].spec.service_account_name == "kaiops-worker"
        assert pods[0].spec.containers[0].args == ["prefect", "flow-run", "execute"]


def test_worker_manifests_pass_kaiops_validate():
    paths = [MANIFESTS / "worker.yaml", MANIFESTS / "rbac.yaml", MANIFESTS / "rbac-restore-binding.yaml"]
    kaiops = Path(sys.executable).with_name("kaiops")
    out = subprocess.run([str(kaiops), "validate", *map(str, paths), "--output", "json"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert yaml.safe_load(out.stdout) == [], out.stdout  # no finding at all, not even a warning
