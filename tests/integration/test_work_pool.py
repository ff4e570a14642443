"""The Kubernetes work pool of deployments/kubernetes/ without a kubelet: the base job template is what
Prefect fills (every placeholder a declared variable, the paths prefect-kubernetes insists on), the Job it
renders is accepted by the sandbox apiserver when the worker's ServiceAccount creates it (server-side dry
run), and the worker's manifests pass ``kaiops validate``."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tasks import kube
from tests.e2e.registry_support import REPO, sandbox_services
from tests.integration.test_rbac import MANIFESTS, _apply_all, _sa_kubeconfig

pytestmark = pytest.mark.integration

TEMPLATE = MANIFESTS / "work-pool-template.json"
#: Paths prefect-kubernetes 0.8.0 requires in job_manifest (``_get_base_job_manifest``; it refuses the pool
#: otherwise). parallelism/completions sit in the *pod* spec there: Kubernetes drops them (unknown fields).
REQUIRED_PATHS = ("metadata.annotations", "metadata.labels", "spec.template.spec.parallelism",
                  "spec.template.spec.completions", "spec.template.spec.restartPolicy",
                  "spec.template.spec.containers")
POD_SPEC_EXTRAS = ("parallelism", "completions")


def _render(values: dict, run_name: str = "happy-run") -> dict:
    """The Job the prefect-kubernetes worker submits: its own job configuration class fills the template with
    ``values`` and prepares it for a flow run, as ``KubernetesWorker.run`` does before it calls the apiserver."""
    import asyncio
    import uuid

    from prefect.client.schemas.objects import FlowRun
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = json.loads(TEMPLATE.read_text())
    # the template references no Prefect blocks or variables, so the client is never asked for anything
    config = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(template, values, client=object()))
    config.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name=run_name))
    return copy.deepcopy(config.job_manifest)


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


def test_rendered_job_is_accepted_for_the_worker_service_account(tmp_path):
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    from tasks.manifests import validate_documents

    with sandbox_services("kube-apiserver") as env:
        admin = kube.connect(env["KUBECONFIG"])
        _apply_all(admin, MANIFESTS / "rbac.yaml")
        _apply_all(admin, MANIFESTS / "worker.yaml")
        batch = client.BatchV1Api(config.new_client_from_config(config_file=_sa_kubeconfig(env["KUBECONFIG"],
                                                                                           tmp_path)))
        # no "name" value, as in a deployment: the worker names the Job after the flow run, slugified
        job = _render({"image": "ghcr.io/example/kaiops:1.2.3",
                       "env": {"PREFECT_API_URL": "http://prefect:4200/api", "KAIOPS_ENV": "prod"},
                       "labels": {"prefect.io/flow-run-name": "happy-run"},
                       "command": "prefect flow-run execute"}, run_name="Nightly-Backup run")
        # what the worker sends (no fieldValidation: the server warns about and drops the two pod-spec extras)
        created = batch.create_namespaced_job("kaiops-system", job, dry_run="All").to_dict()
        pod = created["spec"]["template"]["spec"]
        box = pod["containers"][0]
        assert created["metadata"]["name"].startswith("nightly-backup-run-")
        assert pod["service_account_name"] == "kaiops-worker" and pod["restart_policy"] == "Never"
        assert pod["security_context"]["run_as_non_root"] is True
        assert box["image"] == "ghcr.io/example/kaiops:1.2.3" and box["args"] == ["prefect", "flow-run", "execute"]
        assert {e["name"]: e["value"] for e in box["env"]}["KAIOPS_ENV"] == "prod"
        assert box["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"},
                                    "claims": None}
        assert created["spec"]["backoff_limit"] == 0 and created["spec"]["ttl_seconds_after_finished"] == 3600
        # every other field is schema-exact: strict validation passes once the two extras are left out
        strict = copy.deepcopy(job)
        for key in POD_SPEC_EXTRAS:
            strict["spec"]["template"]["spec"].pop(key)
        batch.create_namespaced_job("kaiops-system", strict, dry_run="All", field_validation="Strict")
        assert [f for f in validate_documents([strict], "rendered job") if f.severity == "error"] == []
        with pytest.raises(ApiException) as err:
            batch.create_namespaced_job("kaiops-system", job, dry_run="All", field_validation="Strict")
        assert err.value.status == 400 and "parallelism" in err.value.body
        # the worker may create Jobs only in its own namespace
        with pytest.raises(ApiException) as err:
            batch.create_namespaced_job("default", job, dry_run="All")
        assert err.value.status == 403
        assert not client.BatchV1Api(config.new_client_from_config(config_file=env["KUBECONFIG"])).list_namespaced_job(
            "kaiops-system").items  # dry runs only: nothing was created


def test_worker_manifests_pass_kaiops_validate():
    paths = [MANIFESTS / "worker.yaml", MANIFESTS / "rbac.yaml", MANIFESTS / "rbac-restore-binding.yaml"]
    kaiops = Path(sys.executable).with_name("kaiops")
    out = subprocess.run([str(kaiops), "validate", *map(str, paths), "--output", "json"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert yaml.safe_load(out.stdout) == [], out.stdout  # no finding at all, not even a warning
