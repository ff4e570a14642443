"""The LocalModelCache status loop: watch, download per node, write status (see the package docstring)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from kubernetes.dynamic.exceptions import ApiException

from tasks import kube
from tasks.kserve import credentials
from tasks.kserve import resolve as kc
from tasks.kserve.storage_initializer import DownloadError, download

log = logging.getLogger("sandbox.localmodel")
API = "serving.kserve.io/v1alpha1"
JOB_NAMESPACE = "kserve-localmodel-jobs"
NODE = "sandbox-node"


class NodeStatus(StrEnum):
    """Per-node copy state, as KServe v0.20's LocalModelCache CRD enumerates it."""

    PENDING = "NodeDownloadPending"  # a download job is to be created
    DOWNLOADING = "NodeDownloading"  # the download job runs
    DOWNLOADED = "NodeDownloaded"  # the node holds a complete copy
    ERROR = "NodeDownloadError"  # the download job failed


class Controller:
    """One reconcile per LocalModelCache event; downloads run in threads (one per cache at a time)."""

    def __init__(self, kubeconfig: str, root: Path, health_file: Path) -> None:
        self.kubeconfig, self.root, self.health_file = kubeconfig, root, health_file
        self.dyn = kube.connect(kubeconfig)
        self.lmc = kube.resource_for(self.dyn, API, "LocalModelCache")
        self.groups = kube.resource_for(self.dyn, API, "LocalModelNodeGroup")
        self.stopping = threading.Event()
        self.busy: set[str] = set()
        self.done: dict[str, str] = {}  # cache name -> sourceModelUri downloaded/failed
        self.lock = threading.Lock()

    def run(self) -> None:
        self.lmc.get()  # the kind is served
        self.health_file.write_text(str(os.getpid()))
        version = ""
        while not self.stopping.is_set():
            try:
                listing = self.lmc.get()
                version = listing.metadata.resourceVersion
                for item in listing.items:
                    self.reconcile(item.to_dict())
                for event in self.dyn.watch(self.lmc, resource_version=version, timeout=30):
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.reconcile(event["raw_object"])
                    elif event["type"] == "DELETED":
                        self.forget(event["raw_object"])
            except ApiException as exc:
                log.warning("watch: %s", exc.status)
                time.sleep(1)
            except Exception as exc:
                log.warning("watch failed: %s", exc)
                time.sleep(1)

    def shutdown(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.health_file.unlink()

    def forget(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        with self.lock:
            self.done.pop(name, None)

    def reconcile(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        uri = (obj.get("spec") or {}).get("sourceModelUri", "")
        with self.lock:
            if name in self.busy or self.done.get(name) == uri:
                return
            self.busy.add(name)
        threading.Thread(target=self._download, args=(obj,), name=f"lmc-{name}", daemon=True).start()

    def _nodes(self, obj: dict[str, Any]) -> list[str]:
        nodes = []
        for group in (obj.get("spec") or {}).get("nodeGroups") or []:
            try:
                self.groups.get(name=group)
                nodes.append(NODE)
            except ApiException:
                log.info("%s: node group %s does not exist", obj["metadata"]["name"], group)
        return sorted(set(nodes))

    def _write_status(self, name: str, node_status: dict[str, str]) -> None:
        values = list(node_status.values())
        status = {"nodeStatus": node_status, "copies": {
            "total": len(values), "available": values.count(NodeStatus.DOWNLOADED.value),
            "failed": values.count(NodeStatus.ERROR.value)}}
        current = self.lmc.get(name=name).to_dict()
        current["status"] = {**(current.get("status") or {}), **status}
        self.lmc.status.replace(body=current)

    def _download(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        uri = spec.get("sourceModelUri", "")
        try:
            nodes = self._nodes(obj)
            if not nodes:
                return
            self._write_status(name, {n: NodeStatus.DOWNLOADING.value for n in nodes})
            creds = self._credentials(name, spec)
            result = NodeStatus.DOWNLOADED
            if not creds.ok:
                log.warning("%s: %s", name, "; ".join(str(p) for p in creds.errors))
                result = NodeStatus.ERROR
            else:
                extra = {k: os.environ[k] for k in ("STORAGE_EMULATOR_HOST",) if k in os.environ}
                try:
                    res = download(uri, self.root / name, creds, extra_env=extra)
                    log.info("%s: %d files, %d bytes in %.2fs", name, len(res.files), res.bytes, res.seconds)
                except DownloadError as exc:
                    log.warning("%s: %s", name, exc.message)
                    result = NodeStatus.ERROR
            self._write_status(name, {n: result.value for n in nodes})
            with self.lock:
                self.done[name] = uri
        except Exception:
            log.exception("%s: reconcile failed", name)
        finally:
            with self.lock:
                self.busy.discard(name)

    def _credentials(self, name: str, spec: dict[str, Any]) -> credentials.StorageCredentials:
        """What the download Job in ``kserve-localmodel-jobs`` would get for this cache."""
        sa_name = spec.get("serviceAccountName") or "default"
        model: dict[str, Any] = {"storageUri": spec.get("sourceModelUri", "")}
        if spec.get("storage"):
            model["storage"] = spec["storage"]
        pseudo = {"metadata": {"name": name, "namespace": JOB_NAMESPACE},
                  "spec": {"predictor": {"serviceAccountName": sa_name, "model": model}}}
        try:
            sa: dict[str, Any] | None = kube.get(self.dyn, "v1", "ServiceAccount", sa_name, JOB_NAMESPACE)
        except kube.NotFound:
            sa = None
        try:
            secrets = {s["metadata"]["name"]: s for s in kc.list_secrets(self.dyn, JOB_NAMESPACE)}
        except kube.NotFound:
            secrets = {}
        return kc.resolve(pseudo, sa, secrets)
