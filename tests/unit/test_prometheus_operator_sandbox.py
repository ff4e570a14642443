"""The sandbox's Prometheus Operator service and its image catalog entries (plain data, no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandbox.node import podlogic
from sandbox.paths import binary_version
from sandbox.services import SERVICES
from sandbox.services import prometheus_operator as po

pytestmark = pytest.mark.unit

VALUES = {"venv": "/v", "python": "/py", "repo": "/r", "bin": "/b"}


def fake_module(tmp_path: Path) -> Path:
    """The layout of example/rbac in the operator module, with upstream's `default` namespace."""
    rbac = tmp_path / "example" / "rbac"
    for rel in po.RBAC_FILES:
        path = rbac / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        kind = ("ServiceAccount" if "service-account" in rel else
                "ClusterRoleBinding" if "binding" in rel else "ClusterRole")
        doc: dict = {"apiVersion": "v1", "kind": kind, "metadata": {"name": path.stem}}
        if kind == "ServiceAccount":
            doc["metadata"]["namespace"] = "default"
        if kind == "ClusterRoleBinding":
            doc["subjects"] = [{"kind": "ServiceAccount", "name": "x", "namespace": "default"},
                               {"kind": "User", "name": "someone"}]
        path.write_text(yaml.safe_dump(doc))
    return tmp_path


def test_rbac_moves_namespaced_objects_and_service_account_subjects(tmp_path: Path) -> None:
    objects = po.rbac_objects(fake_module(tmp_path), namespace="mon")
    assert len(objects) == len(po.RBAC_FILES)
    for obj in objects:
        if obj["kind"] == "ServiceAccount":
            assert obj["metadata"]["namespace"] == "mon"
        if obj["kind"] == "ClusterRole":
            assert "namespace" not in obj["metadata"]
        for subject in obj.get("subjects", []):
            assert subject.get("namespace") == ("mon" if subject["kind"] == "ServiceAccount" else None)


def test_prometheus_object_selects_everything_at_the_given_version() -> None:
    obj = po.prometheus_object("v2.42.0")
    spec = obj["spec"]
    assert obj["metadata"] == {"name": po.PROMETHEUS_NAME, "namespace": po.NAMESPACE,
                               "labels": {"app.kubernetes.io/part-of": "kaiops-sandbox"}}
    assert spec["version"] == "v2.42.0" and spec["serviceAccountName"] == po.PROMETHEUS_SERVICE_ACCOUNT
    for kind in ("serviceMonitor", "podMonitor", "probe", "rule"):
        # {} selects all; a missing (nil) selector would select nothing
        assert spec[f"{kind}Selector"] == {} and spec[f"{kind}NamespaceSelector"] == {}


def test_service_is_registered_after_what_its_pod_needs() -> None:
    order = list(SERVICES)
    service = SERVICES["prometheus-operator"]
    assert all(order.index(n) < order.index("prometheus-operator") for n in service.needs)
    assert binary_version("prometheus-operator") == binary_version("prometheus-config-reloader") == "v0.89.0"
    assert binary_version("prometheus") == "v3.9.1"  # github.com/prometheus/prometheus v0.309.1


def test_catalog_runs_the_built_prometheus_and_the_reloader_built_from_the_same_module() -> None:
    entries = podlogic.load_catalog()
    prom = podlogic.resolve_image(f"quay.io/prometheus/prometheus:{binary_version('prometheus')}", entries, VALUES)
    assert prom.entrypoint == ("/bin/prometheus",) and prom.working_dir == "/prometheus"
    assert prom.binds == {"/bin/prometheus": f"/b/prometheus-{binary_version('prometheus')}"}
    version = binary_version("prometheus-config-reloader")
    reloader = podlogic.resolve_image(f"quay.io/prometheus-operator/prometheus-config-reloader:{version}",
                                      entries, VALUES)
    # the operator's StatefulSet runs command ["/bin/prometheus-config-reloader"] (pkg/operator/config_reloader.go)
    assert reloader.binds == {"/bin/prometheus-config-reloader": f"/b/prometheus-config-reloader-{version}"}
