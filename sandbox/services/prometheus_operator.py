"""The real Prometheus Operator (``github.com/prometheus-operator/prometheus-operator``, built by
``sandbox/build/build.sh`` from the wrapper module ``sandbox/build/prometheus-operator``) run as a host process
with the release's own RBAC, and one ``Prometheus`` object whose StatefulSet Pod runs on the node agent.

Before the operator starts, this service applies into namespace :data:`NAMESPACE`:

- the CRDs the operator's Prometheus controller cannot start without that ``configs/crds.yaml`` does not pin
  (``Probe``: its informer is created unconditionally in ``pkg/prometheus/server/operator.go``; the controllers
  whose CRDs are missing — Alertmanager, PrometheusAgent, ThanosRuler, ScrapeConfig — are switched off by the
  operator itself with a warning, ``checkPrerequisites`` in ``cmd/operator/main.go``);
- ``example/rbac/prometheus-operator`` (ServiceAccount, ClusterRole, ClusterRoleBinding) and
  ``example/rbac/prometheus`` (the ServiceAccount, ClusterRole and binding the Prometheus Pods discover targets
  with), moved from namespace ``default`` to :data:`NAMESPACE`; read from the module at the binary's version
  (``go mod download``), never copied into the repository.

The operator then gets a kubeconfig with only its ServiceAccount's token (TokenRequest) through ``KUBECONFIG``
(it has no ``--kubeconfig`` flag; ``pkg/k8sutil.NewClusterConfig`` reads the variable), the flags of upstream's
own Deployment (``example/rbac/prometheus-operator/prometheus-operator-deployment.yaml``: kubelet Endpoints in
``kube-system/kubelet``, the config-reloader image, referenced objects watched in all namespaces, unmanaged
configuration off) and a loopback ``--web.listen-address`` (healthy = ``/healthz`` answers).

Once healthy it applies the ``Prometheus`` object :data:`PROMETHEUS_NAME` (:func:`prometheus_object`): every
ServiceMonitor, PodMonitor, Probe and PrometheusRule of every namespace selected, ``version`` = the Prometheus
built by ``build.sh`` from ``github.com/prometheus/prometheus`` at the version the operator's go.mod requires
(v0.309.1 = v3.9.1; the operator writes configuration for that version). The image catalog
``sandbox/node/images.yaml`` runs that binary for ``quay.io/prometheus/prometheus:*`` and the config-reloader
built from the operator module for ``quay.io/prometheus-operator/prometheus-config-reloader:*``. Debian's
``prometheus`` 2.42 cannot be used there: it is built without Kubernetes service discovery and refuses the
generated configuration ("field kubernetes_sd_configs not found in type config.ScrapeConfig"). The Pod is reached
on its Pod IP (:func:`prometheus_url`); the sandbox's own file-discovery Prometheus (service ``prometheus``) is
separate and unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sandbox.paths import binary, binary_version, go_module_dir
from sandbox.services.base import Launch, Service, http_ok, service_account_token, token_kubeconfig
from sandbox.state import SandboxState, ServiceRecord

MODULE = "github.com/prometheus-operator/prometheus-operator"
NAMESPACE = "monitoring"
SERVICE_ACCOUNT = "prometheus-operator"
PROMETHEUS_SERVICE_ACCOUNT = "prometheus"
PROMETHEUS_NAME = "sandbox"
FIELD_MANAGER = "kaiops-sandbox"
SCRAPE_INTERVAL = "5s"  # the Prometheus object's scrape and rule evaluation interval
# example/rbac/: the files of the operator's and of Prometheus's own RBAC (the Deployment, Service and
# ServiceMonitor of the operator and the example Prometheus object are left out: the operator runs on the host)
RBAC_FILES = (
    "prometheus-operator/prometheus-operator-service-account.yaml",
    "prometheus-operator/prometheus-operator-cluster-role.yaml",
    "prometheus-operator/prometheus-operator-cluster-role-binding.yaml",
    "prometheus/prometheus-service-account.yaml",
    "prometheus/prometheus-cluster-role.yaml",
    "prometheus/prometheus-cluster-role-binding.yaml",
)
EXTRA_CRDS = ("monitoring.coreos.com_probes.yaml",)  # from example/prometheus-operator-crd/


def module_dir(version: str) -> Path:
    """The operator module at ``version`` in the Go module cache (see :func:`sandbox.paths.go_module_dir`)."""
    return go_module_dir(MODULE, version)


def rbac_objects(module: Path, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The objects of :data:`RBAC_FILES` with their namespace (and ServiceAccount subjects) set to ``namespace``."""
    objects = []
    for rel in RBAC_FILES:
        for doc in yaml.safe_load_all((module / "example" / "rbac" / rel).read_text()):
            if not doc:
                continue
            if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
                doc["metadata"]["namespace"] = namespace
            for subject in doc.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
            objects.append(doc)
    return objects


def crd_objects(module: Path) -> list[dict[str, Any]]:
    """The CRDs of :data:`EXTRA_CRDS` as the module ships them."""
    return [yaml.safe_load((module / "example" / "prometheus-operator-crd" / name).read_text())
            for name in EXTRA_CRDS]


def prometheus_object(version: str, name: str = PROMETHEUS_NAME, namespace: str = NAMESPACE) -> dict[str, Any]:
    """The ``Prometheus`` object the sandbox runs (pure).

    Empty selectors select everything: every ServiceMonitor, PodMonitor, Probe and PrometheusRule in every
    namespace (a ``nil`` selector would select none of them, see the CRD's field descriptions).
    """
    everything: dict[str, Any] = {}
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "kaiops-sandbox"}},
        "spec": {
            "version": version,
            "replicas": 1,
            "serviceAccountName": PROMETHEUS_SERVICE_ACCOUNT,
            "scrapeInterval": SCRAPE_INTERVAL,
            "evaluationInterval": SCRAPE_INTERVAL,
            "serviceMonitorSelector": everything, "serviceMonitorNamespaceSelector": everything,
            "podMonitorSelector": everything, "podMonitorNamespaceSelector": everything,
            "probeSelector": everything, "probeNamespaceSelector": everything,
            "ruleSelector": everything, "ruleNamespaceSelector": everything,
            "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}},
        },
    }



def install(kubeconfig: str, version: str) -> list[str]:
    """Server-side apply the namespace, :data:`EXTRA_CRDS` and the release's RBAC; return ``kind/name`` applied."""
    from tasks import kube

    dyn = kube.connect(kubeconfig)
    module = module_dir(version)
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
               field_manager=FIELD_MANAGER, force=True)
    done = []
    for obj in [*crd_objects(module), *rbac_objects(module)]:
        kube.apply(dyn, obj, field_manager=FIELD_MANAGER, force=True)
        done.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return done



def prometheus_url(kubeconfig: str, name: str = PROMETHEUS_NAME, namespace: str = NAMESPACE) -> str | None:
    """``http://<Pod IP>:9090`` of the operator's Prometheus Pod ``prometheus-<name>-0`` once it is Ready, else None.

    The host routes the sandbox's Pod range, so the Pod IP answers from here (the Service the operator creates,
    ``prometheus-operated``, is headless: its DNS name resolves to the same address inside the cluster).
    """
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from tasks import kube

    api = client.CoreV1Api(kube.connect(kubeconfig).client)
    try:
        pod = api.read_namespaced_pod(f"prometheus-{name}-0", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
    return f"http://{pod.status.pod_ip}:9090" if ready and pod.status.pod_ip else None


class PrometheusOperator(Service):
    name = "prometheus-operator"
    # the operator itself needs the apiserver; its Prometheus Pod needs the StatefulSet controller, the
    # scheduler, the node agent and kube-proxy (kubernetes_sd reaches the apiserver at the `kubernetes` Service)
    needs = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "node", "kube-proxy")
    ready_timeout = 120.0

    def launch(self, state: SandboxState) -> Launch:
        version = binary_version("prometheus-operator")
        install(str(state.kubeconfig), version)
        token = service_account_token(str(state.kubeconfig), SERVICE_ACCOUNT, NAMESPACE)
        kubeconfig = token_kubeconfig(state.kubeconfig, self.data_dir(state) / "kubeconfig", SERVICE_ACCOUNT, token,
                                      namespace=NAMESPACE)
        port = self.port(state, "http")
        cmd = [
            str(binary("prometheus-operator")),
            f"--web.listen-address=127.0.0.1:{port}",
            "--kubelet-service=kube-system/kubelet",
            f"--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:{version}",
            "--watch-referenced-objects-in-all-namespaces=true",
            "--disable-unmanaged-prometheus-configuration=true",
            "--kubelet-endpoints=true",
            "--kubelet-endpointslice=false",
            "--log-level=info",
        ]
        return Launch(cmd=cmd, url=f"http://127.0.0.1:{port}", ports={"http": port},
                      env={"KUBECONFIG": str(kubeconfig), "GOGC": "30"})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/healthz")

    def after_ready(self, state: SandboxState, record: ServiceRecord) -> None:
        from tasks import kube

        kube.apply(kube.connect(str(state.kubeconfig)), prometheus_object(binary_version("prometheus")),
                   field_manager=FIELD_MANAGER, force=True)
