"""The emulated KubeRay RayCluster controller: watch RayClusters on the real apiserver and reconcile each one.

Two threads: the watch (list, then watch from the list's resourceVersion, resuming from the last seen
version when a watch ends and re-listing on 410 Gone) keeps a cache of RayClusters; the reconciler ticks every
second (and at once on a change) and, per cluster, does what KubeRay's ``reconcileHeadService`` /
``reconcilePods`` / ``calculateStatus`` do, with a real Ray head process as the head pod and counted workers.
A failure in one cluster is logged and reported on that cluster; it never stops the controller.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import queue
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError

from sandbox.kuberay import startparams
from sandbox.kuberay.heads import Head, new_head
from sandbox.kuberay.status import HeadObservation, calculate_status, differs
from tasks import kube

log = logging.getLogger("kuberay")

FIELD_MANAGER = "kuberay-operator"
COMPONENT = "raycluster-controller"
MAX_NAME_LENGTH = 53
# head Service port name -> role in ray_head_launch's ports (KubeRay utils/constant.go default port names)
PORT_ROLES = {"gcs-server": "gcs", "dashboard": "dashboard", "client": "client", "metrics": "metrics", "serve": "serve"}
DEFAULT_PORT_NAMES = ("gcs-server", "dashboard", "client", "metrics")  # KubeRay getDefaultPorts (+ metrics)


def key_of(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def spec_hash(spec: dict[str, Any]) -> str:
    """KubeRay ``GenerateHashWithoutReplicasAndWorkersToDelete``: the spec minus replicas/workersToDelete
    (and ``suspend``, which deletes pods on its own); a Recreate upgrade happens when it changes."""
    clean = json.loads(json.dumps(spec))
    clean.pop("suspend", None)
    for group in clean.get("workerGroupSpecs") or []:
        group.pop("replicas", None)
        (group.get("scaleStrategy") or {}).pop("workersToDelete", None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:16]


def head_port_names(cluster: dict[str, Any]) -> list[str]:
    """Names of the head Service ports: the head container's named ports (or KubeRay's defaults) + metrics."""
    containers = (((cluster["spec"].get("headGroupSpec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or [{}]
    names = [p["name"] for p in containers[0].get("ports") or [] if p.get("name")]
    names = names or list(DEFAULT_PORT_NAMES)
    if "metrics" not in names:
        names.append("metrics")
    return [n for n in names if n in PORT_ROLES]


class Controller:
    """Reconciles every RayCluster of the apiserver behind ``kubeconfig``.

    Args:
        kubeconfig: the sandbox's admin kubeconfig.
        root: directory for the heads' temp dirs and logs (``<instance dir>/kr``).
        health_file: written with this process's pid once the first list succeeded.
    """

    def __init__(self, kubeconfig: str, root: Path, health_file: Path) -> None:
        self.kubeconfig = kubeconfig
        self.root = root
        self.health_file = health_file
        self.cache: dict[str, dict[str, Any]] = {}
        self.heads: dict[str, Head] = {}
        self.reported_exit: dict[str, str] = {}
        self._once: set[tuple[str, str, str]] = set()
        self.lock = threading.Lock()
        self.wake: queue.Queue[str] = queue.Queue()
        self.stopping = threading.Event()
        self.dyn = kube.connect(kubeconfig)
        self.rc = kube.resource_for(self.dyn, "ray.io/v1", "RayCluster")
        self.svc = kube.resource_for(self.dyn, "v1", "Service")
        self.events = kube.resource_for(self.dyn, "v1", "Event")

    # --- watch -------------------------------------------------------------------------------------------
    def watch_forever(self) -> None:
        """List, then watch from the list's resourceVersion; resume after each watch, re-list on 410 Gone."""
        dyn = kube.connect(self.kubeconfig)
        rc = kube.resource_for(dyn, "ray.io/v1", "RayCluster")
        while not self.stopping.is_set():
            try:
                listing = rc.get().to_dict()
            except Exception as exc:  # apiserver restarting: try again shortly
                log.warning("list RayClusters failed: %s", exc)
                time.sleep(2)
                continue
            with self.lock:
                self.cache = {key_of(o): {**o, "apiVersion": "ray.io/v1", "kind": "RayCluster"}
                              for o in listing.get("items") or []}
            self.health_file.write_text(str(__import__("os").getpid()))
            self.wake.put("*")
            version = listing["metadata"]["resourceVersion"]
            version = self._watch_from(dyn, rc, version)
            log.info("re-listing RayClusters (watch from %s expired)", version)

    def _watch_from(self, dyn: DynamicClient, rc: Any, version: str) -> str:
        """Watch from ``version`` until the server says 410 Gone; return the last version seen."""
        while not self.stopping.is_set():
            try:
                for event in dyn.watch(rc, resource_version=version, timeout=60, allow_watch_bookmarks=True):
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":
                        if obj.get("code") == 410:
                            return version
                        raise RuntimeError(f"watch error: {obj}")
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] == "BOOKMARK":
                        continue
                    key = key_of(obj)
                    with self.lock:
                        if event["type"] == "DELETED":
                            self.cache.pop(key, None)
                        else:
                            self.cache[key] = obj
                    self.wake.put(key)
            except ApiException as exc:
                if exc.status == 410:
                    return version
                log.warning("watch failed: %s", exc)
                time.sleep(1)
            except Exception as exc:
                log.warning("watch failed: %s", exc)
                time.sleep(1)
        return version

    # --- reconcile ---------------------------------------------------------------------------------------
    def reconcile_forever(self) -> None:
        """Reconcile every cluster each second, and at once when the watch reports a change."""
        while not self.stopping.is_set():
            with contextlib.suppress(queue.Empty):
                self.wake.get(timeout=1.0)
                while not self.wake.empty():
                    self.wake.get_nowait()
            self.tick()

    def tick(self) -> None:
        with self.lock:
            clusters = dict(self.cache)
        for key in list(self.heads):
            if key not in clusters:
                self.forget(key)
        for key, obj in clusters.items():
            try:
                self.reconcile(obj)
            except Exception:
                log.exception("reconcile %s failed", key)

    def forget(self, key: str) -> None:
        """The RayCluster is gone: stop its head and delete the head Service (no garbage collector runs)."""
        head = self.heads.pop(key, None)
        if head is not None:
            head.stop()
            # A deleted pod takes its logs and /tmp with it: so does the emulated head.
            shutil.rmtree(head.log.parent, ignore_errors=True)
        namespace, name = key.split("/", 1)
        with contextlib.suppress(NotFoundError, ApiException, DynamicApiError):
            self.svc.delete(name=f"{name}-head-svc", namespace=namespace)
        log.info("%s deleted: head stopped, Service removed", key)

    def reconcile(self, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        meta, spec = obj["metadata"], obj.get("spec") or {}
        if len(meta["name"]) > MAX_NAME_LENGTH:
            self.event(obj, "Warning", "InvalidRayClusterMetadata",
                       f"RayCluster name should be no more than {MAX_NAME_LENGTH} characters", once=True)
            return
        if meta.get("deletionTimestamp"):
            self.forget(key)
            return
        head = self.heads.get(key)
        create_error = ""
        if spec.get("suspend"):
            if head is not None:
                # KubeRay marks RayClusterSuspending first, then deletes every pod.
                self.write_status(obj, self.observe(obj, head, ""))
                self.heads.pop(key).stop()
                self.event(obj, "Normal", "DeletedHeadPod", f"Deleted head Pod {meta['namespace']}/{head.pod_name}; "
                           "RayCluster suspended")
            self.write_status(obj, HeadObservation(ports={}))
            return
        self.ensure_service(obj, head)
        wanted = spec_hash(spec)
        strategy = ((spec.get("upgradeStrategy") or {}).get("type")) or "None"
        if head is not None and head.spec_hash != wanted and strategy == "Recreate":
            head.stop()
            del self.heads[key]
            self.event(obj, "Normal", "DeletedHeadPod",
                       f"Deleted head Pod {meta['namespace']}/{head.pod_name}: spec changed, upgradeStrategy Recreate")
            head = None
        if head is None:
            head, create_error = self.create_head(obj, wanted)
            if head is not None:
                self.ensure_service(obj, head)
        else:
            head.check()
            self.report_exit(obj, head)
        self.write_status(obj, self.observe(obj, head, create_error))

    def create_head(self, obj: dict[str, Any], wanted: str) -> tuple[Head | None, str]:
        meta, spec = obj["metadata"], obj["spec"]
        group = spec.get("headGroupSpec") or {}
        containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or [{}]
        try:
            flags, cpus, dropped = startparams.sandbox_flags(group.get("rayStartParams") or {},
                                                             containers[0].get("resources") or {})
            head = new_head(key_of(obj), meta["uid"], meta["name"], wanted, flags, cpus, self.root)
            head.start()
        except (ValueError, OSError) as exc:
            self.event(obj, "Warning", "FailedToCreateHeadPod", f"Failed to create head Pod: {exc}", once=True)
            return None, f"failed to create head Pod: {exc}"
        self.heads[key_of(obj)] = head
        note = f" (sandbox replaced {', '.join(dropped)})" if dropped else ""
        self.event(obj, "Normal", "CreatedHeadPod", f"Created head Pod {meta['namespace']}/{head.pod_name}{note}")
        log.info("%s: started head %s: %s", key_of(obj), head.pod_name, " ".join(head.cmd))
        return head, ""

    def report_exit(self, obj: dict[str, Any], head: Head) -> None:
        """A head that exited is a crashing container: one Warning Event per distinct exit (kubelet BackOff)."""
        if head.last_exit and self.reported_exit.get(key_of(obj)) != f"{head.pod_name}:{head.restarts}":
            self.reported_exit[key_of(obj)] = f"{head.pod_name}:{head.restarts}"
            self.event(obj, "Warning", "BackOff",
                       f"Back-off restarting failed container ray-head in pod {head.pod_name}: {head.last_exit}")

    def observe(self, obj: dict[str, Any], head: Head | None, create_error: str) -> HeadObservation:
        if head is None:
            return HeadObservation(create_error=create_error)
        from sandbox.kuberay.status import group_desired_replicas

        workers = sum(group_desired_replicas(g) for g in obj["spec"].get("workerGroupSpecs") or [])
        message = ""
        if not head.ready:
            message = "containers with unready status: [ray-head]"
            if head.last_exit:
                message += f"; {head.last_exit}"
        return HeadObservation(
            exists=True, ready=head.ready, pod_name=head.pod_name, not_ready_message=message,
            ports={name: head.ports[PORT_ROLES[name]] for name in head_port_names(obj)},
            # Emulated workers: a worker pod waits for the GCS (KubeRay's wait-gcs-ready init container), so
            # every desired worker is ready exactly when the head is.
            ready_workers=workers if head.ready else 0,
        )

    def write_status(self, obj: dict[str, Any], seen: HeadObservation) -> None:
        new = calculate_status(obj, seen)
        if not differs(obj.get("status") or {}, new):
            return
        body = {**obj, "status": new}
        try:
            updated = self.rc.status.replace(body=body).to_dict()
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) in (404, 409):  # stale cache or gone: the watch brings the truth
                return
            raise
        with self.lock:
            if key_of(updated) in self.cache:
                self.cache[key_of(updated)] = updated

    def ensure_service(self, obj: dict[str, Any], head: Head | None) -> None:
        """Server-side apply the head Service ``<name>-head-svc`` (headless, owned by the RayCluster)."""
        meta = obj["metadata"]
        names = head_port_names(obj)
        ports = [
            {"name": n, "port": head.ports[PORT_ROLES[n]], "targetPort": head.ports[PORT_ROLES[n]], "protocol": "TCP"}
            for n in names
        ] if head is not None else None
        labels = {"ray.io/cluster": meta["name"], "ray.io/node-type": "head",
                  "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"}
        svc: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {
                "name": f"{meta['name']}-head-svc", "namespace": meta["namespace"], "labels": labels,
                "ownerReferences": [{"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {"clusterIP": "None", "selector": {"ray.io/cluster": meta["name"], "ray.io/node-type": "head"}},
        }
        if ports is None:
            try:
                self.svc.get(name=svc["metadata"]["name"], namespace=meta["namespace"])
                return
            except NotFoundError:
                svc["spec"]["ports"] = [{"name": "dashboard", "port": 8265, "targetPort": 8265, "protocol": "TCP"}]
        else:
            svc["spec"]["ports"] = ports
        created = not self._service_exists(svc)
        kube.apply(self.dyn, svc, field_manager=FIELD_MANAGER, force=True)
        if created:
            self.event(obj, "Normal", "CreatedService",
                       f"Created service {meta['namespace']}/{svc['metadata']['name']}")

    def _service_exists(self, svc: dict[str, Any]) -> bool:
        try:
            self.svc.get(name=svc["metadata"]["name"], namespace=svc["metadata"]["namespace"])
            return True
        except NotFoundError:
            return False

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str, once: bool = False) -> None:
        """Record a core/v1 Event on the RayCluster, as KubeRay's event recorder does (best effort)."""
        meta = obj["metadata"]
        if once:
            mark = (meta.get("uid", ""), reason, message)
            if mark in self._once:
                return
            self._once.add(mark)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta.get("uid")},
            "reason": reason, "message": message[:1000], "type": type_,
            "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            self.events.create(body=body, namespace=meta["namespace"])
        except Exception as exc:
            log.warning("event %s on %s not recorded: %s", reason, key_of(obj), exc)
        log.info("%s %s %s: %s", key_of(obj), type_, reason, message)

    # --- lifecycle ---------------------------------------------------------------------------------------
    def run(self) -> None:
        threading.Thread(target=self.watch_forever, name="watch", daemon=True).start()
        self.reconcile_forever()

    def shutdown(self) -> None:
        """Stop every head (SIGTERM from ``kaiops sandbox down``); remove the health file."""
        self.stopping.set()
        for head in list(self.heads.values()):
            with contextlib.suppress(Exception):
                head.stop(timeout=5)
        with contextlib.suppress(OSError):
            self.health_file.unlink()
