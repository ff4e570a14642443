"""The real KServe manager (``github.com/kserve/kserve/cmd/manager``, built by ``sandbox/build/build.sh kserve``):
the InferenceService, TrainedModel and InferenceGraph controllers and KServe's mutating and validating webhooks.

Before it starts, this service applies the release's own ``config/overlays/standalone/kserve`` (namespace
``kserve``, RBAC for ServiceAccount ``kserve-controller-manager``, ``inferenceservice-config``, the default
ClusterStorageContainer, the webhook Service) with the sandbox changes of :mod:`sandbox.kserve_upstream.release`,
plus the sandbox gateway's GatewayClass and the Gateway ``kserve/kserve-ingress-gateway`` KServe's HTTPRoutes
attach to. The manager runs as a host process **inside the node network namespace** (``ip netns exec``), as a
``hostNetwork`` Pod would on a node: its webhook server binds all interfaces (the manager has no flag for its
address), and inside that namespace "all" means the node's address only, reachable from the host's apiserver
through the veth and from nowhere else. It reads the API as its ServiceAccount (TokenRequest) through the node
network's forwarder, ``POD_NAMESPACE=kserve``, and finds its webhook certificate (sandbox CA, SAN
``kserve-webhook-server-service.kserve.svc``) in controller-runtime's default directory under its own ``TMPDIR``.

Webhooks chosen as a Service (not ``clientConfig.url``): the release's MutatingWebhookConfiguration and
ValidatingWebhookConfigurations stay as released (service reference, paths, failurePolicy, selectors); only
``caBundle`` is filled in, and the selector-less Service's EndpointSlice names the manager's address, which the
apiserver dials directly (``--enable-aggregator-routing`` resolves Services to their endpoints for webhooks too).
The webhook configurations are applied once the manager is healthy and removed when it stops (they fail closed:
left behind they would refuse every InferenceService of the emulated ``kserve`` service). The release's
ClusterServingRuntimes (``config/runtimes``) are applied once the ClusterServingRuntime webhook answers.

Coexists with the emulated ``kserve`` service through :attr:`conflicts`: starting one stops the other.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sandbox.kserve_upstream import release
from sandbox.paths import binary, binary_version, go_module_dir
from sandbox.pki import Pki, issue_serving_cert
from sandbox.procs import alive, free_port
from sandbox.services.apiserver import node_network
from sandbox.services.base import Launch, Service, http_ok, service_account_token, token_kubeconfig
from sandbox.state import SandboxState, ServiceRecord

log = logging.getLogger("sandbox.services.kserve_controller")


def kserve_release() -> str:
    """The pinned KServe release (``sandbox/build/kserve/RELEASE``)."""
    return binary_version("kserve-manager")


def manager_binary() -> Path:
    """The built manager: ``~/.cache/kaiops/bin/kserve-manager-<release>``."""
    return binary("kserve-manager")


def _objects(state: SandboxState, webhook_ip: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(objects applied before start, webhook configurations applied once healthy)."""
    module = go_module_dir(release.MODULE, kserve_release())
    rendered = release.render(module, binary("kubectl"), "config/overlays/standalone/kserve")
    ca = Pki(state.dir / "pki").ca_cert.read_bytes()
    objects = release.sandbox_objects(rendered, webhook_ip, ca) + release.gateway_objects()
    before = [o for o in objects if o["kind"] not in release.WEBHOOK_KINDS]
    hooks = [o for o in objects if o["kind"] in release.WEBHOOK_KINDS]
    return release.order(before), hooks


def _apply(kubeconfig: str, objects: list[dict[str, Any]]) -> None:
    from tasks import kube

    dyn = kube.connect(kubeconfig)
    for obj in objects:
        kube.apply(dyn, obj, field_manager=release.FIELD_MANAGER, force=True)




def remove_webhooks(kubeconfig: str) -> list[str]:
    """Delete KServe's webhook configurations (names from the release); return what was deleted."""
    from kubernetes import client

    from tasks import kube

    api = client.AdmissionregistrationV1Api(kube.connect(kubeconfig).client)
    done = []
    names = {"MutatingWebhookConfiguration": ("inferenceservice.serving.kserve.io",),
             "ValidatingWebhookConfiguration": ("inferenceservice.serving.kserve.io",
                                                "clusterservingruntime.serving.kserve.io",
                                                "servingruntime.serving.kserve.io", "trainedmodel.serving.kserve.io",
                                                "inferencegraph.serving.kserve.io")}
    for kind, items in names.items():
        delete = (api.delete_mutating_webhook_configuration if kind.startswith("Mutating")
                  else api.delete_validating_webhook_configuration)
        for name in items:
            try:
                delete(name)
                done.append(f"{kind}/{name}")
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
    return done


class KServeController(Service):
    name = "kserve-controller"
    conflicts: tuple[str, ...] = ("kserve", "kserve-serverless")
    # the manager itself needs the apiserver and the node network; the rest is what its InferenceServices need
    # (Pods scheduled and run, cluster DNS and Services for the model download from S3, the gateway)
    needs = ("kube-apiserver", "net", "kube-controller-manager", "kube-scheduler", "node", "kube-proxy", "coredns",
             "s3", "prometheus", "gateway")
    ready_timeout = 240.0  # a loaded 2-core machine: informers for ~20 kinds, webhook server start

    def launch(self, state: SandboxState) -> Launch:
        net = node_network(state)
        if net is None:
            raise RuntimeError("kserve-controller needs the node network (service `net`) in the sandbox state")
        if not manager_binary().exists():
            raise RuntimeError(f"{manager_binary()} is missing: run `sandbox/build/build.sh kserve-manager`")
        home = self.data_dir(state)
        before, self._hooks = _objects(state, net.node_ip)
        _apply(str(state.kubeconfig), before)
        api_port = state.services["kube-apiserver"].ports["https"]
        token = service_account_token(str(state.kubeconfig), release.MANAGER_SA, release.NAMESPACE)
        kubeconfig = token_kubeconfig(state.kubeconfig, home / "kubeconfig", release.MANAGER_SA, token,
                                      server=f"https://{net.host_ip}:{api_port}", namespace=release.NAMESPACE)
        tmpdir = home / "tmp"
        certs = tmpdir / "k8s-webhook-server" / "serving-certs"  # controller-runtime's default CertDir
        svc = f"{release.WEBHOOK_SERVICE}.{release.NAMESPACE}.svc"
        issue_serving_cert(Pki(state.dir / "pki"), certs / "tls.crt", certs / "tls.key", svc,
                           (svc, f"{svc}.cluster.local"), (net.node_ip,))
        # not the release's 8080/8081: CoreDNS's health endpoint has 8080 on the node address already
        metrics, probe = free_port(), free_port()
        while probe == metrics:
            probe = free_port()
        cmd = ["ip", "netns", "exec", net.netns, str(manager_binary()),
               f"-kubeconfig={kubeconfig}", "-leader-elect=false",
               f"-metrics-addr={net.node_ip}:{metrics}", f"-health-probe-addr={net.node_ip}:{probe}",
               f"-webhook-port={release.WEBHOOK_PORT}"]
        env = {"KUBECONFIG": None, "POD_NAMESPACE": release.NAMESPACE, "TMPDIR": str(tmpdir),
               "SECRET_NAME": "kserve-webhook-server-cert"}
        return Launch(cmd=cmd, url=f"http://{net.node_ip}:{probe}", ports={"metrics": metrics, "probe": probe},
                      env=env)

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/readyz")

    def after_ready(self, state: SandboxState, record: ServiceRecord) -> None:
        hooks = getattr(self, "_hooks", None)
        if hooks is None:
            _, hooks = _objects(state, node_network(state).node_ip)
        _apply(str(state.kubeconfig), hooks)
        module = go_module_dir(release.MODULE, kserve_release())
        runtimes = release.render(module, binary("kubectl"), "config/runtimes")
        _apply(str(state.kubeconfig), runtimes)

    def cleanup(self, state: SandboxState) -> None:
        # kserve-controller and kserve-serverless are one manager started two ways, with the same webhook
        # configurations: while the other one runs (the launcher cleans up conflicts of a service that is already
        # up, too) they are its webhooks and stay
        for other in ("kserve-controller", "kserve-serverless"):
            record = state.services.get(other)
            if other != self.name and record is not None and alive(record.pid):
                return
        try:
            remove_webhooks(str(state.kubeconfig))
        except Exception as exc:  # apiserver already gone: nothing can call the webhooks either
            log.info("kserve-controller cleanup: webhooks not removed (%s)", exc.__class__.__name__)


class KServeServerless(KServeController):
    """The same KServe manager, started only once Knative Serving runs (service ``knative``).

    The manager decides at start whether Knative exists (``IsCrdAvailable`` for ``serving.knative.dev/v1``
    Service in ``SetupWithManager``, pkg/controller/v1beta1/inferenceservice/controller.go): started before
    Knative's CRDs it never watches Knative Services, and a Serverless InferenceService never sees its status.
    The default deployment mode stays ``Standard``; an InferenceService asks for Knative with the annotation
    ``serving.kserve.io/deploymentMode: Serverless``.
    """

    name = "kserve-serverless"
    needs = (*KServeController.needs, "knative")
    conflicts = ("kserve", "kserve-controller")
