"""KServe's release manifests, rendered by the release's own kustomizations and adjusted for the sandbox.

Pure functions over dicts (unit-tested) plus :func:`render`, which runs ``kubectl kustomize`` on the module's
``config/`` directory in the Go module cache (nothing is copied into the repository).

Sandbox changes (the full list, also in README.md):

1. CustomResourceDefinitions are not applied from here: kaiops installs the same files
   (``config/crd/full``, pinned by sha256 in ``configs/crds.yaml``).
2. The manager Deployment is not applied: the manager runs as a host process in the node network namespace
   (no container image exists); the Services that select it therefore have no endpoints, except
3. ``kserve-webhook-server-service`` loses its selector and gets one EndpointSlice naming the manager's
   address in the node network (port 9443, the release's ``webhook-server`` port).
4. No cert-manager: the ``Certificate``/``Issuer`` are dropped, the webhook serving certificate is issued by
   the sandbox CA, and every webhook's ``clientConfig.caBundle`` is set to that CA (what cert-manager's CA
   injector would write); the ``cert-manager.io/inject-ca-from`` annotations are removed.
5. ``inferenceservice-config``: ``deploy.defaultDeploymentMode`` = ``Standard`` and ``ingress.enableGatewayApi`` =
   ``true`` with ``ingress.ingressClassName`` = the sandbox gateway's class (what the release's own
   ``hack/setup/quick-install/kserve-standard-mode-full-install-with-manifests.sh`` sets), and
   ``ingress.disableIstioVirtualHost`` = ``true`` for Serverless InferenceServices (service ``kserve-serverless``
   with real Knative, no Istio): KServe then neither creates Istio VirtualServices nor an ExternalName Service
   pointing at Istio's local gateway, and reports the Knative Route's URL.
6. ``inferenceservice-config``: ``inferenceService.serviceAnnotationDisallowedList`` gets kaiops's rollout
   record keys (``rollout.kaiops.io/*``). KServe copies every other InferenceService annotation into the
   predictor's Pod template, so each record write would restart the predictor Pods; this is the setting a
   cluster running kaiops rollouts needs, and ``kaiops rollout`` refuses to start without it.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

MODULE = "github.com/kserve/kserve"
NAMESPACE = "kserve"
MANAGER_SA = "kserve-controller-manager"
WEBHOOK_SERVICE = "kserve-webhook-server-service"
WEBHOOK_PORT = 9443  # config/manager/manager.yaml: containerPort 9443 "webhook-server"
CONFIG_MAP = "inferenceservice-config"
GATEWAY_CLASS = "kaiops-sandbox"
GATEWAY_NAME = "kserve-ingress-gateway"  # inferenceservice-config ingress.kserveIngressGateway = kserve/<this>
FIELD_MANAGER = "kaiops-sandbox"
DROPPED_KINDS = ("CustomResourceDefinition", "Certificate", "Issuer")
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def render(module: Path, kubectl: Path, path: str) -> list[dict[str, Any]]:
    """``kubectl kustomize <module>/<path>`` as a list of objects (empty documents dropped).

    Raises:
        RuntimeError: kustomize failed (its stderr is in the message).
    """
    proc = subprocess.run([str(kubectl), "kustomize", str(module / path)], capture_output=True, text=True,
                          check=False, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {module / path} failed: {proc.stderr[-800:]}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def patch_config(data: dict[str, str]) -> dict[str, str]:
    """The ``inferenceservice-config`` data with the sandbox changes (changes 5 and 6 of this module's docstring)."""
    out = dict(data)
    deploy = json.loads(out.get("deploy") or "{}")
    deploy["defaultDeploymentMode"] = "Standard"
    out["deploy"] = json.dumps(deploy, indent=2)
    ingress = json.loads(out["ingress"])
    ingress["enableGatewayApi"] = True
    ingress["ingressClassName"] = GATEWAY_CLASS
    ingress["kserveIngressGateway"] = f"{NAMESPACE}/{GATEWAY_NAME}"
    # Serverless mode without Istio: no VirtualService and no ExternalName Service to an Istio gateway; the
    # InferenceService's URL is its Knative Route's (ingress_reconciler.go; only that reconciler reads the key)
    ingress["disableIstioVirtualHost"] = True
    out["ingress"] = json.dumps(ingress, indent=2)
    from tasks.rollout.state import record_annotation_keys

    isvc = json.loads(out.get("inferenceService") or "{}")
    keys = list(isvc.get("serviceAnnotationDisallowedList") or [])
    isvc["serviceAnnotationDisallowedList"] = keys + [k for k in record_annotation_keys() if k not in keys]
    out["inferenceService"] = json.dumps(isvc, indent=2)
    return out


def sandbox_objects(objects: list[dict[str, Any]], webhook_ip: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """The release objects with the sandbox changes 1-6 (see the module docstring); input left unchanged.

    Args:
        objects: what :func:`render` returned for ``config/overlays/standalone/kserve``.
        webhook_ip: the manager's address in the node network (the EndpointSlice's address).
        ca_pem: the sandbox CA certificate (PEM) for the webhooks' ``caBundle``.
    """
    out = []
    bundle = base64.b64encode(ca_pem).decode()
    for obj in copy.deepcopy(objects):
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in DROPPED_KINDS or (kind == "Deployment" and name == "kserve-controller-manager"):
            continue
        annotations = obj["metadata"].get("annotations") or {}
        annotations.pop("cert-manager.io/inject-ca-from", None)
        if kind in WEBHOOK_KINDS:
            for hook in obj.get("webhooks") or []:
                hook["clientConfig"]["caBundle"] = bundle
        if kind == "Service" and name == WEBHOOK_SERVICE:
            obj["spec"].pop("selector", None)
        if kind == "ConfigMap" and name == CONFIG_MAP:
            obj["data"] = patch_config(obj["data"])
        out.append(obj)
    out.append(webhook_endpoints(webhook_ip))
    return out


def webhook_endpoints(ip: str) -> dict[str, Any]:
    """The EndpointSlice of the selector-less webhook Service: ``ip:9443`` (the Service's port has no name)."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{WEBHOOK_SERVICE}-sandbox", "namespace": NAMESPACE,
                         "labels": {"kubernetes.io/service-name": WEBHOOK_SERVICE,
                                    "endpointslice.kubernetes.io/managed-by": "sandbox.kaiops.io"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "", "port": WEBHOOK_PORT, "protocol": "TCP"}]}


def gateway_objects() -> list[dict[str, Any]]:
    """GatewayClass ``kaiops-sandbox`` (the sandbox gateway's controller) and the Gateway KServe's HTTPRoutes
    name as parent, shaped as the release's ``hack/setup/infra/gateway-api/manage.gateway-api-gw.sh`` creates it."""
    from sandbox.gateway.model import CONTROLLER_NAME

    return [
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": GATEWAY_CLASS}, "spec": {"controllerName": CONTROLLER_NAME}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": GATEWAY_NAME, "namespace": NAMESPACE},
         "spec": {"gatewayClassName": GATEWAY_CLASS,
                  "listeners": [{"name": "http", "protocol": "HTTP", "port": 80,
                                 "allowedRoutes": {"namespaces": {"from": "All"}}}],
                  "infrastructure": {"labels": {"serving.kserve.io/gateway": GATEWAY_NAME}}}},
    ]


def order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Namespaces first, webhook configurations last (they refuse requests until the manager serves)."""
    def rank(o: dict[str, Any]) -> int:
        return 0 if o["kind"] == "Namespace" else 2 if o["kind"] in WEBHOOK_KINDS else 1
    return sorted(objects, key=rank)
