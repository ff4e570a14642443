"""Knative Serving's release manifests, read from the Go modules' ``config/`` directories and adjusted for the
sandbox.

Pure functions over dicts (unit-tested) plus :func:`read`, which loads the YAML files of ``knative.dev/serving``
(``config/core``), ``knative.dev/networking`` (``config/``: the KIngress, KCertificate, ServerlessService and
ClusterDomainClaim CRDs and ``config-network``) and ``knative.dev/caching`` (``config/image.yaml``) at the versions
``sandbox/build/knative/go.mod`` pins (nothing is copied into the repository). Upstream's ``config/core`` links
those three directories in as symlinks, which a module zip drops, hence the three modules.

Sandbox changes (the full list, also in README.md):

1. Images: upstream's ``ko://knative.dev/serving/cmd/<cmd>`` references (resolved by ``ko`` at release time)
   become ``gcr.io/knative-releases/knative.dev/serving/cmd/<cmd>:<release>``, which the node's image catalog
   (``sandbox/node/images.yaml``) maps to the binaries ``sandbox/build/build.sh knative`` built. This includes
   ``config-deployment``'s ``queue-sidecar-image`` and the ``caching.internal.knative.dev`` Image.
2. ``config-deployment``: ``registries-skipping-tag-resolving`` names every registry an image of the sandbox may
   come from (:data:`SKIPPED_REGISTRIES`). Otherwise the controller resolves each Revision's image tag to a digest
   by asking the registry (``remote.Head``, pkg/reconciler/revision/resolve.go): traffic leaving the machine.
3. ``config-network``: ``ingress-class`` = ``gateway.sandbox.kaiops.io``, the sandbox gateway's KIngress class
   (upstream's default is Istio's, which does not exist here).
4. ``config-domain``: ``example.com: ""``, the domain KServe's ``inferenceservice-config`` ``ingressDomain``
   names and KServe's own quick install writes (upstream's default is ``svc.cluster.local``).
5. ``config-observability``: ``metrics-protocol`` and ``request-metrics-protocol`` = ``prometheus`` (upstream's
   default is ``none``: the queue-proxy would export nothing for Prometheus to scrape). With it the
   queue-proxy serves its request metrics on port 9091 (``http-usermetric``) and the autoscaling ones on 9090.
6. The two HorizontalPodAutoscalers (activator, webhook) are dropped: one node, one replica each.
7. CPU requests of the four control-plane containers are lowered to 50m (memory as released): the release asks
   for 600m in all (activator 300m) on a node that has 2 CPUs for everything, including the model servers.

Everything else is as released: the Deployments run as Pods through the node agent (Services with selectors,
cluster DNS, ServiceAccount tokens through the projected ``kube-api-access`` volume), the webhook makes its own
certificate into Secret ``webhook-certs`` and writes the ``caBundle`` of its webhook configurations itself.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SERVING = "knative.dev/serving"
NETWORKING = "knative.dev/networking"
CACHING = "knative.dev/caching"
NAMESPACE = "knative-serving"
INGRESS_CLASS = "gateway.sandbox.kaiops.io"
IMAGE_REPO = "gcr.io/knative-releases/knative.dev/serving/cmd"
COMMANDS = ("controller", "webhook", "autoscaler", "activator", "queue")
DEPLOYMENTS = ("controller", "webhook", "autoscaler", "activator")
DOMAIN = "example.com"
FIELD_MANAGER = "kaiops-sandbox"
#: registries whose tags Knative must not resolve to digests (every registry the sandbox's images name;
#: ``index.docker.io`` is what go-containerregistry calls Docker Hub, e.g. for ``kserve/sklearnserver``)
SKIPPED_REGISTRIES = ("index.docker.io", "docker.io", "ghcr.io", "gcr.io", "quay.io", "registry.k8s.io",
                      "kind.local", "ko.local", "dev.local")
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
DROPPED_KINDS = ("HorizontalPodAutoscaler",)
CONTROL_PLANE_CPU = "50m"


def module_versions(go_mod: Path) -> dict[str, str]:
    """``{module: version}`` of the three Knative modules in the wrapper's ``go.mod`` (``require`` lines).

    Raises:
        KeyError: a module is missing from ``go_mod`` (run ``sandbox/build/knative/regen.sh``).
    """
    found: dict[str, str] = {}
    for line in go_mod.read_text().splitlines():
        parts = line.split()
        for module in (SERVING, NETWORKING, CACHING):
            if module in parts and len(parts) > parts.index(module) + 1:
                found[module] = parts[parts.index(module) + 1]
    missing = [m for m in (SERVING, NETWORKING, CACHING) if m not in found]
    if missing:
        raise KeyError(f"{go_mod}: no require line for {', '.join(missing)}")
    return found


def _load(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        out.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return out


def read(serving: Path, networking: Path, caching: Path) -> list[dict[str, Any]]:
    """The release objects from the three module directories (as released, unordered).

    Args:
        serving, networking, caching: the modules' directories in the Go module cache.
    """
    core = serving / "config" / "core"
    files = sorted(p for p in core.rglob("*.yaml"))
    files += [*sorted((networking / "config").glob("*.yaml")), caching / "config" / "image.yaml"]
    return _load(files)


def image(command: str, release: str) -> str:
    """The image reference the sandbox gives Knative command ``command`` (change 1)."""
    return f"{IMAGE_REPO}/{command}:{release}"


def _ko(value: str, release: str) -> str:
    prefix = f"ko://{SERVING}/cmd/"
    return image(value.removeprefix(prefix), release) if value.startswith(prefix) else value


def sandbox_objects(objects: list[dict[str, Any]], release: str) -> list[dict[str, Any]]:
    """The release objects with the sandbox changes 1-7 (module docstring); the input is left unchanged.

    Args:
        objects: what :func:`read` returned.
        release: the serving release (``v0.48.1``), the tag of the image references.
    """
    out = []
    for obj in copy.deepcopy(objects):
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in DROPPED_KINDS:
            continue
        if kind == "Deployment":
            for c in obj["spec"]["template"]["spec"].get("containers") or []:
                c["image"] = _ko(c["image"], release)
                requests = (c.get("resources") or {}).get("requests")
                if requests and "cpu" in requests:
                    requests["cpu"] = CONTROL_PLANE_CPU
        if kind == "Image":
            obj["spec"]["image"] = _ko(obj["spec"]["image"], release)
        if kind == "ConfigMap":
            obj["data"] = patch_config(name, obj.get("data") or {}, release)
        out.append(obj)
    return out


def patch_config(name: str, data: dict[str, str], release: str) -> dict[str, str]:
    """The data of ConfigMap ``name`` with changes 1-5; ``_example`` is never touched (the webhook checks it
    against the ``knative.dev/example-checksum`` annotation)."""
    out = dict(data)
    if name == "config-deployment":
        out["queue-sidecar-image"] = image("queue", release)
        out["registries-skipping-tag-resolving"] = ",".join(SKIPPED_REGISTRIES)
    elif name == "config-network":
        out["ingress-class"] = INGRESS_CLASS
    elif name == "config-domain":
        out[DOMAIN] = ""
    elif name == "config-observability":
        out["metrics-protocol"] = "prometheus"
        out["request-metrics-protocol"] = "prometheus"
    return out


def split(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                 list[dict[str, Any]]]:
    """(CRDs, the rest in apply order with the Namespace first, webhook configurations).

    The webhook configurations fail closed and cover Knative's ConfigMaps too, so they are applied only once the
    webhook serves; Knative's own resources (the KCertificate, the queue-proxy Image) need their CRDs first.
    """
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    hooks = [o for o in objects if o["kind"] in WEBHOOK_KINDS]
    rest = [o for o in objects if o["kind"] != "CustomResourceDefinition" and o["kind"] not in WEBHOOK_KINDS]
    rest.sort(key=lambda o: 0 if o["kind"] == "Namespace" else 1)
    return crds, rest, hooks
