"""Pure logic of the sandbox's Knative Serving: the sandbox changes to the release objects and the queue-proxy
Prometheus targets (dicts only, no process, no module download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.knative_upstream import release, targets

pytestmark = pytest.mark.unit

REL = "v0.48.1"


def cm(name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "knative-serving"},
            "data": data}


def deployment(name: str, cpu: str = "300m") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "knative-serving"},
            "spec": {"template": {"spec": {"containers": [{
                "name": name, "image": f"ko://knative.dev/serving/cmd/{name}",
                "resources": {"requests": {"cpu": cpu, "memory": "60Mi"}, "limits": {"cpu": "1000m"}}}]}}}}


RELEASE = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "knative-serving"}},
    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
     "metadata": {"name": "services.serving.knative.dev"}},
    cm("config-deployment", {"queue-sidecar-image": "ko://knative.dev/serving/cmd/queue", "_example": "x"}),
    cm("config-network", {"_example": "y"}),
    cm("config-domain", {"_example": "z"}),
    cm("config-observability", {"_example": "w"}),
    cm("config-gc", {"_example": "v"}),
    deployment("activator"),
    {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "activator"}},
    {"apiVersion": "caching.internal.knative.dev/v1alpha1", "kind": "Image", "metadata": {"name": "queue-proxy"},
     "spec": {"image": "ko://knative.dev/serving/cmd/queue"}},
    {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
     "metadata": {"name": "config.webhook.serving.knative.dev"}, "webhooks": []},
]


def by_name(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_sandbox_changes_images_tag_resolution_ingress_domain_metrics() -> None:
    out = by_name(release.sandbox_objects(RELEASE, REL))
    queue = f"gcr.io/knative-releases/knative.dev/serving/cmd/queue:{REL}"
    deploy = out[("ConfigMap", "config-deployment")]["data"]
    assert deploy["queue-sidecar-image"] == queue
    skipped = set(deploy["registries-skipping-tag-resolving"].split(","))
    # Docker Hub as go-containerregistry names it (kserve/sklearnserver), and the other registries images name
    assert {"index.docker.io", "ghcr.io", "gcr.io", "quay.io", "registry.k8s.io"} <= skipped
    assert out[("ConfigMap", "config-network")]["data"]["ingress-class"] == "gateway.sandbox.kaiops.io"
    assert out[("ConfigMap", "config-domain")]["data"]["example.com"] == ""
    obs = out[("ConfigMap", "config-observability")]["data"]
    assert obs["metrics-protocol"] == obs["request-metrics-protocol"] == "prometheus"
    # _example (checked against knative.dev/example-checksum by Knative's webhook) is never changed
    for name, example in (("config-deployment", "x"), ("config-network", "y"), ("config-domain", "z"),
                          ("config-observability", "w"), ("config-gc", "v")):
        assert out[("ConfigMap", name)]["data"]["_example"] == example
    assert out[("ConfigMap", "config-gc")]["data"] == {"_example": "v"}
    (container,) = out[("Deployment", "activator")]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"gcr.io/knative-releases/knative.dev/serving/cmd/activator:{REL}"
    assert container["resources"]["requests"] == {"cpu": "50m", "memory": "60Mi"}
    assert container["resources"]["limits"] == {"cpu": "1000m"}
    assert out[("Image", "queue-proxy")]["spec"]["image"] == queue
    assert ("HorizontalPodAutoscaler", "activator") not in out


def test_sandbox_objects_leaves_its_input_unchanged() -> None:
    before = json.dumps(RELEASE, sort_keys=True)
    release.sandbox_objects(RELEASE, REL)
    assert json.dumps(RELEASE, sort_keys=True) == before


def test_split_puts_crds_first_namespace_first_and_webhooks_last() -> None:
    crds, rest, hooks = release.split(release.sandbox_objects(RELEASE, REL))
    assert [c["metadata"]["name"] for c in crds] == ["services.serving.knative.dev"]
    assert rest[0]["kind"] == "Namespace"
    assert [h["metadata"]["name"] for h in hooks] == ["config.webhook.serving.knative.dev"]
    assert not {o["kind"] for o in rest} & {"CustomResourceDefinition", "ValidatingWebhookConfiguration"}


def test_module_versions_reads_the_wrapper_go_mod(tmp_path: Path) -> None:
    go_mod = tmp_path / "go.mod"
    go_mod.write_text("module x\n\nrequire knative.dev/serving v0.48.1\n\nrequire (\n"
                      "\tknative.dev/caching v0.0.0-1 // indirect\n\tknative.dev/networking v0.0.0-2 // indirect\n)\n")
    assert release.module_versions(go_mod) == {"knative.dev/serving": "v0.48.1", "knative.dev/caching": "v0.0.0-1",
                                               "knative.dev/networking": "v0.0.0-2"}
    go_mod.write_text("module x\n\nrequire knative.dev/serving v0.48.1\n")
    with pytest.raises(KeyError, match=r"knative\.dev/networking"):
        release.module_versions(go_mod)


def test_the_pinned_wrapper_module_names_all_three_modules() -> None:
    from sandbox.paths import BUILD_DIR

    versions = release.module_versions(BUILD_DIR / "knative" / "go.mod")
    assert versions["knative.dev/serving"] == (BUILD_DIR / "knative" / "RELEASE").read_text().strip()


def pod(name: str, phase: str = "Running", ip: str | None = "10.101.1.7", queue: bool = True) -> dict:
    containers = [{"name": "kserve-container"}] + ([{"name": "queue-proxy"}] if queue else [])
    return {"metadata": {"name": name, "namespace": "ns", "labels": {
                "serving.knative.dev/revision": "iris-predictor-00001",
                "serving.knative.dev/configuration": "iris-predictor",
                "serving.knative.dev/service": "iris-predictor"}},
            "spec": {"containers": containers}, "status": {"phase": phase, "podIP": ip}}


def test_queue_proxy_targets_only_running_pods_with_an_ip_and_a_queue_proxy() -> None:
    groups = targets.targets([pod("b"), pod("a"), pod("pending", "Pending"), pod("noip", ip=None),
                              pod("plain", queue=False)])
    assert [g["labels"]["pod"] for g in groups] == ["a", "b"]
    assert groups[0] == {"targets": ["10.101.1.7:9091"], "labels": {
        "namespace": "ns", "pod": "a", "container": "queue-proxy", "service": "iris-predictor",
        "configuration": "iris-predictor", "revision": "iris-predictor-00001"}}


def test_targets_file_is_replaced_atomically(tmp_path: Path) -> None:
    out = tmp_path / "knative-queue-proxy.json"
    targets.write(out, targets.targets([pod("a")]))
    targets.write(out, [])
    assert json.loads(out.read_text()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_kserve_config_has_no_istio_virtual_host_for_serverless() -> None:
    from sandbox.kserve_upstream import release as kserve

    data = kserve.patch_config({"ingress": '{"enableGatewayApi": false, "ingressClassName": "istio"}',
                                "deploy": '{"defaultDeploymentMode": "Serverless"}'})
    ingress = json.loads(data["ingress"])
    assert ingress["disableIstioVirtualHost"] is True
    assert json.loads(data["deploy"])["defaultDeploymentMode"] == "Standard"
