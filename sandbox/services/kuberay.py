"""The real KubeRay operator (``github.com/ray-project/kuberay/ray-operator``, built by ``sandbox/build/build.sh``)
run as a host process with exactly the release's own RBAC.

Before it starts, this service applies that release's ``config/rbac`` (ServiceAccount ``kuberay-operator``,
ClusterRole + ClusterRoleBinding ``kuberay-operator``, the leader-election Role + RoleBinding, with the
kustomization's labels) into namespace :data:`NAMESPACE`, asks the apiserver for a token of that
ServiceAccount (TokenRequest) and writes a kubeconfig that carries only that token: the operator can do
what the upstream ClusterRole allows and nothing more. The RBAC files are read from the module at the
same version as the binary (``go mod download -json``), never copied into the repository.

Flags: ``-kubeconfig``, ``-enable-leader-election=false``, loopback ``-metrics-addr`` and
``-health-probe-bind-address`` (healthy = its ``/readyz`` answers). Everything else is the release's default
(feature gates: ``RayClusterStatusConditions`` on, ``RayCronJob`` off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sandbox.paths import binary, binary_version, go_module_dir
from sandbox.procs import free_port
from sandbox.services.base import Launch, Service, http_ok, service_account_token, token_kubeconfig
from sandbox.state import SandboxState, ServiceRecord

MODULE = "github.com/ray-project/kuberay/ray-operator"
NAMESPACE = "kuberay-system"
SERVICE_ACCOUNT = "kuberay-operator"
FIELD_MANAGER = "kaiops-sandbox"
# config/rbac/kustomization.yaml: the labels kustomize adds to every object, and the files it lists
LABELS = {"app.kubernetes.io/component": "kuberay-operator", "app.kubernetes.io/name": "kuberay"}


def module_dir(version: str) -> Path:
    """The ray-operator module at ``version`` in the Go module cache (see :func:`sandbox.paths.go_module_dir`)."""
    return go_module_dir(MODULE, version)


def rbac_objects(module: Path, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The release's ``config/rbac`` objects as kustomize renders them into ``namespace`` (pure but for reads).

    Only the files ``config/rbac/kustomization.yaml`` lists; namespaced objects and ServiceAccount subjects get
    ``namespace``; every object gets the kustomization's labels.
    """
    rbac = module / "config" / "rbac"
    listed = yaml.safe_load((rbac / "kustomization.yaml").read_text())["resources"]
    objects = []
    for name in listed:
        for doc in yaml.safe_load_all((rbac / name).read_text()):
            if not doc:
                continue
            meta = doc.setdefault("metadata", {})
            meta["labels"] = {**(meta.get("labels") or {}), **LABELS}
            if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
                meta["namespace"] = namespace
            for subject in doc.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
            objects.append(doc)
    return objects



def install_rbac(kubeconfig: str, version: str) -> list[str]:
    """Server-side apply the namespace and the release's RBAC; return ``kind/name`` of what was applied."""
    from tasks import kube

    dyn = kube.connect(kubeconfig)
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": LABELS}},
               field_manager=FIELD_MANAGER, force=True)
    done = []
    for obj in rbac_objects(module_dir(version)):
        kube.apply(dyn, obj, field_manager=FIELD_MANAGER, force=True)
        done.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return done



class KubeRay(Service):
    name = "kuberay"
    needs = ("kube-apiserver",)
    ready_timeout = 90.0

    def launch(self, state: SandboxState) -> Launch:
        version = binary_version("kuberay-operator")
        install_rbac(str(state.kubeconfig), version)
        token = service_account_token(str(state.kubeconfig), SERVICE_ACCOUNT, NAMESPACE)
        kubeconfig = token_kubeconfig(state.kubeconfig, self.data_dir(state) / "kubeconfig", SERVICE_ACCOUNT, token,
                                      namespace=NAMESPACE)
        metrics = self.port(state, "metrics")
        probe = self.port(state, "probe")
        while probe == metrics:  # two free_port() calls can return the same port
            probe = free_port()
        cmd = [
            str(binary("kuberay-operator")),
            f"-kubeconfig={kubeconfig}",
            "-enable-leader-election=false",
            f"-metrics-addr=127.0.0.1:{metrics}",
            f"-health-probe-bind-address=127.0.0.1:{probe}",
            "-log-stdout-encoder=console",
        ]
        return Launch(cmd=cmd, url=f"http://127.0.0.1:{probe}", ports={"metrics": metrics, "probe": probe},
                      env={"KUBECONFIG": None})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/readyz")
