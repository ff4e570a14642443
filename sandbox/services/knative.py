"""Knative Serving (``knative.dev/serving`` at the release KServe's go.mod requires, built by
``sandbox/build/build.sh knative``): controller, webhook, autoscaler and activator, plus the queue-proxy sidecar
the controller injects into every revision Pod.

Before anything runs, this service applies the release's CRDs (serving, networking, caching) and waits until
they are Established, then the release's Namespace, RBAC, ``config-*`` ConfigMaps, Services and the four
Deployments with the sandbox changes of :mod:`sandbox.knative_upstream.release`. The components run **as Pods
through the node agent**, not as host processes: they find each other through cluster DNS and Services (the
activator dials ``autoscaler.knative-serving.svc.cluster.local``, the autoscaler publishes its own
``autoscaler-bucket-*`` endpoints from ``POD_IP``, ServerlessServices point at the activator's endpoints), which
a host process in the node network namespace cannot resolve. They get their ServiceAccount tokens from the
projected ``kube-api-access`` volume like any Pod (the node agent serves it via TokenRequest).

The process the launcher records is :mod:`sandbox.knative_upstream.targets`, which keeps the Prometheus
file-SD targets of the revision Pods' queue-proxies (what ``kubernetes_sd_configs`` would discover on a
cluster); health is the four Deployments Available. The webhook configurations are applied once the webhook
serves (they fail closed and cover Knative's own ConfigMaps); Knative's webhook writes their ``caBundle`` from
the certificate it makes itself (Secret ``webhook-certs``). Stopping the service deletes the webhook
configurations and the Deployments, so nothing fails closed or keeps running afterwards.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from sandbox.knative_upstream import release
from sandbox.paths import BUILD_DIR, binary, binary_version, go_module_dir
from sandbox.services.base import Launch, Service
from sandbox.state import SandboxState, ServiceRecord

log = logging.getLogger("sandbox.services.knative")


def knative_release() -> str:
    """The pinned Knative Serving release (``sandbox/build/knative/RELEASE``)."""
    return binary_version("knative-controller")


def release_objects() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(CRDs, other objects in apply order, webhook configurations) of the pinned release with the sandbox changes.

    Raises:
        RuntimeError: a module could not be downloaded (see :func:`sandbox.paths.go_module_dir`).
    """
    versions = release.module_versions(BUILD_DIR / "knative" / "go.mod")
    dirs = {m: go_module_dir(m, v) for m, v in versions.items()}
    objects = release.read(dirs[release.SERVING], dirs[release.NETWORKING], dirs[release.CACHING])
    return release.split(release.sandbox_objects(objects, knative_release()))


def _apply_all(kubeconfig: str, objects: list[dict[str, Any]]) -> None:
    from tasks import kube

    dyn = kube.connect(kubeconfig)
    for obj in objects:
        kube.apply(dyn, obj, field_manager=release.FIELD_MANAGER, force=True)


def install_crds(kubeconfig: str, crds: list[dict[str, Any]], timeout: float = 60.0) -> None:
    """Server-side apply Knative's CRDs and wait until each is Established."""
    from tasks import kube

    _apply_all(kubeconfig, crds)
    dyn = kube.connect(kubeconfig)
    for crd in crds:
        kube.wait_for(dyn, "apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"],
                      lambda o: kube.condition_true(o, "Established"), timeout=timeout, progress=None)


def deployments_available(kubeconfig: str) -> dict[str, bool]:
    """``{deployment: Available}`` for Knative's four control-plane Deployments."""
    from tasks import kube

    dyn = kube.connect(kubeconfig)
    out = {}
    for name in release.DEPLOYMENTS:
        try:
            obj = kube.get(dyn, "apps/v1", "Deployment", name, release.NAMESPACE)
        except Exception:  # not created yet, or the apiserver is busy: not available
            out[name] = False
            continue
        out[name] = kube.condition_true(obj, "Available") and (obj.get("status") or {}).get("readyReplicas", 0) >= 1
    return out


def wait_webhooks_patched(kubeconfig: str, hooks: list[dict[str, Any]], timeout: float = 120.0) -> None:
    """Wait until Knative's webhook has written a ``caBundle`` into every webhook of its configurations.

    Raises:
        TimeoutError: naming the configurations still without one.
    """
    from tasks import kube

    dyn = kube.connect(kubeconfig)
    deadline = time.monotonic() + timeout
    pending = [h["metadata"]["name"] for h in hooks]
    while pending:
        still = []
        for hook in hooks:
            name = hook["metadata"]["name"]
            if name not in pending:
                continue
            obj = kube.get(dyn, "admissionregistration.k8s.io/v1", hook["kind"], name)
            if not all((w.get("clientConfig") or {}).get("caBundle") for w in obj.get("webhooks") or []):
                still.append(name)
        pending = still
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"Knative's webhook did not write caBundle into {', '.join(pending)} within "
                               f"{timeout:.0f}s: see `kubectl -n {release.NAMESPACE} logs deploy/webhook`")
        if pending:
            time.sleep(1.0)


class Knative(Service):
    name = "knative"
    # Pods: scheduled, run by the node agent, reachable through Services and DNS; the gateway is the KIngress
    needs = ("kube-apiserver", "net", "kube-controller-manager", "kube-scheduler", "node", "kube-proxy", "coredns",
             "gateway")
    ready_timeout = 300.0  # four Go binaries starting on a loaded 2-core machine

    def launch(self, state: SandboxState) -> Launch:
        missing = [c for c in release.COMMANDS if not binary(f"knative-{c}").exists()]
        if missing:
            raise RuntimeError(f"{', '.join(str(binary(f'knative-{c}')) for c in missing)} missing: run "
                               "`sandbox/build/build.sh knative`")
        crds, objects, self._hooks = release_objects()
        kubeconfig = str(state.kubeconfig)
        install_crds(kubeconfig, crds)
        _apply_all(kubeconfig, objects)
        self.data_dir(state)
        out = targets_file(state)
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "sandbox.knative_upstream.targets", f"--kubeconfig={kubeconfig}", f"--out={out}"]
        return Launch(cmd=cmd, url=f"k8s://{release.NAMESPACE}", ports={}, env={"KUBECONFIG": None})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return all(deployments_available(str(state.kubeconfig)).values())

    def after_ready(self, state: SandboxState, record: ServiceRecord) -> None:
        hooks = getattr(self, "_hooks", None)
        if hooks is None:
            _, _, hooks = release_objects()
        _apply_all(str(state.kubeconfig), hooks)
        wait_webhooks_patched(str(state.kubeconfig), hooks)

    def cleanup(self, state: SandboxState) -> None:
        targets_file(state).unlink(missing_ok=True)
        try:
            remove(str(state.kubeconfig))
        except Exception as exc:  # apiserver already gone: nothing can call the webhooks either
            log.info("knative cleanup: not removed (%s)", exc.__class__.__name__)


def remove(kubeconfig: str) -> list[str]:
    """Delete Knative's webhook configurations and its four Deployments; return what was deleted."""
    from tasks import kube

    dyn = kube.connect(kubeconfig)
    done = []
    for kind, name in (("MutatingWebhookConfiguration", "webhook.serving.knative.dev"),
                       ("ValidatingWebhookConfiguration", "validation.webhook.serving.knative.dev"),
                       ("ValidatingWebhookConfiguration", "config.webhook.serving.knative.dev")):
        if kube.delete(dyn, "admissionregistration.k8s.io/v1", kind, name):
            done.append(f"{kind}/{name}")
    for name in release.DEPLOYMENTS:
        if kube.delete(dyn, "apps/v1", "Deployment", name, release.NAMESPACE):
            done.append(f"Deployment/{release.NAMESPACE}/{name}")
    return done


def targets_file(state: SandboxState) -> Path:
    """The Prometheus file-SD targets of the revision Pods' queue-proxies (:mod:`sandbox.knative_upstream.targets`)."""
    return state.dir / "prometheus" / "targets" / "knative-queue-proxy.json"


def module_dir() -> Path:
    """knative.dev/serving's directory in the Go module cache (its ``config/`` is the release)."""
    return go_module_dir(release.SERVING, knative_release())
