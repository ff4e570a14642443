"""The worker's ServiceAccount and least-privilege RBAC (deployments/kubernetes/rbac.yaml) on the sandbox
apiserver: kaiops operations succeed with the ServiceAccount's token; verbs outside the role are forbidden."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
import yaml

from tasks import kube
from tasks.errors import PermanentError
from tests.e2e.registry_support import REPO, sandbox_services

pytestmark = pytest.mark.integration

MANIFESTS = REPO / "deployments" / "kubernetes"


@pytest.fixture(scope="module")
def admin():
    with sandbox_services("kube-apiserver") as env:
        yield env["KUBECONFIG"]


def _apply_all(dyn, path: Path) -> list[dict]:
    return [kube.apply(dyn, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _sa_kubeconfig(admin_kubeconfig: str, tmp_path: Path) -> str:
    """A kubeconfig authenticating as ServiceAccount kaiops-system/kaiops-worker with a TokenRequest token."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=admin_kubeconfig))
    token = api.create_namespaced_service_account_token(
        "kaiops-worker", "kaiops-system",
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)),
    ).status.token
    cfg = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster = cfg["clusters"][0]
    out = {"apiVersion": "v1", "kind": "Config", "clusters": [cluster],
           "users": [{"name": "kaiops-worker", "user": {"token": token}}],
           "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "kaiops-worker"}}],
           "current-context": "sa"}
    path = tmp_path / "sa-kubeconfig"
    path.write_text(yaml.safe_dump(out))
    path.chmod(0o600)
    return str(path)


def test_worker_service_account_can_do_kaiops_work_and_nothing_more(admin, tmp_path):
    from kubernetes.dynamic.exceptions import ForbiddenError

    from tasks.fleet import inventory

    dyn = kube.connect(admin)
    _apply_all(dyn, MANIFESTS / "rbac.yaml")
    ns = f"rbac-{uuid.uuid4().hex[:6]}"
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3creds", "namespace": ns},
                     "stringData": {"AWS_ACCESS_KEY_ID": "x"}})
    sa_kubeconfig = _sa_kubeconfig(admin, tmp_path)
    sa = kube.connect(sa_kubeconfig)

    # a backup-style listing succeeds
    row = inventory(ns, sa_kubeconfig)
    assert row["error"] is None, row["error"]
    # server-side apply of a RayCluster (what provisioning does) succeeds
    cluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "rbac-check", "namespace": ns},
               "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                   {"name": "ray-head", "image": "rayproject/ray:2.49.0"}]}}}}}
    applied = kube.apply(sa, cluster)
    assert applied["metadata"]["name"] == "rbac-check"
    assert kube.get(sa, "ray.io/v1", "RayCluster", "rbac-check", ns)["metadata"]["uid"]
    # reading a Secret (warmup's credentials) is allowed ...
    assert kube.get(sa, "v1", "Secret", "s3creds", ns)["metadata"]["name"] == "s3creds"
    # ... deleting one, writing one, or creating a ClusterRole is not
    secrets = kube.resource_for(sa, "v1", "Secret")
    with pytest.raises(ForbiddenError):
        secrets.delete(name="s3creds", namespace=ns)
    with pytest.raises(PermanentError, match="403"):
        kube.apply(sa, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "new", "namespace": ns},
                        "stringData": {"k": "v"}})
    with pytest.raises(PermanentError, match="403"):
        kube.apply(sa, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": f"escalate-{ns}"},
                        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
    assert base64.b64decode(kube.get(dyn, "v1", "Secret", "s3creds", ns)["data"]["AWS_ACCESS_KEY_ID"]) == b"x"
