"""The worker's ServiceAccount and least-privilege RBAC (deployments/kubernetes/rbac.yaml) on the sandbox
apiserver: kaiops operations and whole flows (backup, fleet backup, provision --dry-run, canary guard; restore
and drill once rbac-restore-binding.yaml is applied) succeed with the ServiceAccount's token; verbs outside the
roles are forbidden."""

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
    with sandbox_services("kube-apiserver", "s3") as env:
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


def _revoke_restore(dyn) -> None:
    """Leave the kaiops-restore binding with no subject (whatever an earlier or failed run left)."""
    kube.apply(dyn, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": "kaiops-restore"}, "roleRef": {
                         "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kaiops-restore"},
                     "subjects": []})


def _wait_allowed(kubeconfig: str, verb: str, resource: str, namespace: str) -> None:
    """Wait until the apiserver's RBAC cache grants ``verb`` (a binding takes effect within moments)."""
    from kubernetes import client, config

    from tests.e2e.registry_support import wait_for

    api = client.AuthorizationV1Api(config.new_client_from_config(config_file=kubeconfig))
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace)))
    wait_for(lambda: api.create_self_subject_access_review(review).status.allowed, 30, f"{verb} {resource}", 0.2)


def test_worker_service_account_can_do_kaiops_work_and_nothing_more(admin, tmp_path):
    from kubernetes.dynamic.exceptions import ForbiddenError

    from tasks.fleet import inventory

    dyn = kube.connect(admin)
    _apply_all(dyn, MANIFESTS / "rbac.yaml")
    _revoke_restore(dyn)
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


def _namespace_with_workloads(dyn, ns: str) -> None:
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
                     "stringData": {"token": "t"}})
    kube.apply(dyn, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns},
                     "data": {"k": "v"}})
    container = {"name": "ray-head", "image": "rayproject/ray:2.49.0",
                 "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
                 "envFrom": [{"configMapRef": {"name": "settings"}}]}
    spec = {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [container]}}}}
    kube.apply(dyn, {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "train", "namespace": ns},
                     "spec": spec})


def test_whole_flows_run_with_the_worker_token(admin, tmp_path, monkeypatch):
    from configs.backup import BackupPolicy
    from flows.backup import RestoreFailed, backup, restore, restore_drill
    from flows.fleet import fleet_backup
    from flows.provision import provision_ray_cluster
    from flows.rollout import canary_guard
    from tasks.backup.drill import ReadinessMode

    dyn = kube.connect(admin)
    _apply_all(dyn, MANIFESTS / "rbac.yaml")
    _revoke_restore(dyn)
    uid = uuid.uuid4().hex[:6]
    ns = f"rbac-flows-{uid}"
    _namespace_with_workloads(dyn, ns)
    sa = _sa_kubeconfig(admin, tmp_path)
    monkeypatch.setenv("KAIOPS_BACKUP_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    policy = BackupPolicy(name="rbac", destination=f"s3://kaiops-rbac-{uid}/b", create_bucket=True, namespaces=[ns],
                          metrics_dir=str(tmp_path / "metrics"))

    # backup (export + upload, Secrets sealed) and a fleet backup on local threads
    summary = backup(policy, kubeconfig=sa)
    assert summary["counts"] == {"ConfigMap": 1, "Namespace": 1, "RayCluster": 1, "Secret": 1}, summary
    fleet = fleet_backup(policy, [ns], kubeconfig=sa)
    assert fleet["ok"] and fleet["rows"][0]["verified"] and fleet["rows"][0]["objects"] == 4
    # provision --dry-run: server-side dry-run apply of a RayCluster, nothing created
    cluster = yaml.safe_load((REPO / "configs" / "clusters" / "sandbox.yaml").read_text())
    cluster |= {"name": "rbac-dry", "namespace": ns}
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(cluster))
    planned = provision_ray_cluster(str(tmp_path / "cluster.yaml"), dry_run=True, kubeconfig=sa)
    assert planned["decision"] == "planned" and planned["would"] == "created"
    assert kube.resource_for(dyn, "ray.io/v1", "RayCluster").get(namespace=ns).to_dict()["items"][0]["metadata"][
        "name"] == "train"  # only the one that was there
    # the canary guard reads every InferenceService (none has an expired lease here)
    monkeypatch.setenv("KUBECONFIG", sa)
    assert canary_guard(ns) == []

    # restore needs kaiops-restore: without the binding even a dry run is refused object by object ...
    target = {ns: f"{ns}-r"}
    with pytest.raises(RestoreFailed, match=r"403|[Ff]orbidden"):
        restore(summary["backup_id"], policy, namespace_map=target, dry_run=True, kubeconfig=sa)
    # ... and with rbac-restore-binding.yaml applied, restore --dry-run and a restore drill pass
    _apply_all(dyn, MANIFESTS / "rbac-restore-binding.yaml")
    try:
        _wait_allowed(sa, "patch", "secrets", f"{ns}-r")
        dry = restore(summary["backup_id"], policy, namespace_map=target, dry_run=True, kubeconfig=sa)
        assert dry["outcome"] == "succeeded" and not dry["failed"]
        drill = restore_drill(policy, summary["backup_id"], readiness=ReadinessMode.present, timeout=60,
                              kubeconfig=sa)
        assert drill["verdict"] == "passed" and not drill["cleanup_errors"]
    finally:
        _revoke_restore(dyn)

    # still outside the roles: deleting a workload namespace, or reading cluster-wide RBAC
    from kubernetes.dynamic.exceptions import ForbiddenError

    sa_dyn = kube.connect(sa)
    with pytest.raises(ForbiddenError):
        kube.resource_for(sa_dyn, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding").get()
