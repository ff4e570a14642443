"""The sandbox node agent: the one emulated layer under the real control plane (a small Python kubelet).

``python -m sandbox.node.agent --instance-dir DIR --kubeconfig K --health-file F [--nodes nodes.yaml]``

Why Python and not a virtual-kubelet provider: the Pods here are host processes in Linux namespaces, which
is a few hundred lines on top of the official ``kubernetes`` client the project already uses; a
virtual-kubelet provider would need a Go build (minutes on this 2-core machine) for the same process
handling, and the framework's value (the kubelet API plumbing, node leases) is small next to that.

It registers the Nodes of ``nodes.yaml`` (capacity, allocatable, labels, taints, Ready, a Lease renewed every
10 s in ``kube-node-lease``), watches Pods with ``fieldSelector=spec.nodeName=<node>`` (only Pods bound to its
own Nodes) and runs each in a :class:`sandbox.node.runtime.PodWorker`. It serves the kubelet API
(``sandbox.node.kubelet_api``) on the host side of the sandbox veth, and keeps the ``kaiops-sandbox``
Services (no selector, EndpointSlices on the host-veth address) that let Pods reach the host services.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import platform
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from sandbox import fsguard
from sandbox.node import network, podlogic
from sandbox.node.runtime import PodWorker, decode_secret, now

log = logging.getLogger("kaiops.node")
KUBELET_VERSION = "v1.35.4"
NODES_FILE = Path(__file__).with_name("nodes.yaml")
MANAGED = "app.kubernetes.io/managed-by=kaiops-sandbox"
# host service -> (Service name in kaiops-sandbox, Service port, port role in the state file or None: the first)
HOST_SERVICES = {
    "s3": ("s3", 80, None), "gcs": ("gcs", 4443, None), "prometheus": ("prometheus", 9090, None),
    "prefect": ("prefect", 4200, None), "mlflow": ("mlflow", 5000, None), "redis": ("redis", 6379, None),
}


def load_nodes(path: Path, instance: str) -> list[dict]:
    """Node definitions from ``path`` (``nodes:`` list of name/capacity/labels/taints); ValueError naming it."""
    raw = yaml.safe_load(path.read_text()) or {}
    nodes = raw.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise ValueError(f"{path}: 'nodes:' must be a non-empty list")
    for i, n in enumerate(nodes):
        if not isinstance(n, dict) or not n.get("name"):
            raise ValueError(f"{path}: nodes[{i}].name is required")
    return nodes


class Agent:
    """See the module docstring."""

    def __init__(self, instance_dir: Path, kubeconfig: str, nodes_file: Path) -> None:
        self.instance_dir = instance_dir
        self.instance = instance_dir.name
        self.addresses = network.allocate(self.instance)
        self.state_dir = fsguard.claim(instance_dir / "node")
        self.pods_dir = fsguard.claim(self.state_dir / "pods")
        config.load_kube_config(config_file=kubeconfig)
        self.api = client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.coord = client.CoordinationV1Api(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)
        self.nodes = load_nodes(nodes_file, self.instance)
        self.catalog = podlogic.load_catalog()
        self.values = podlogic.placeholders()
        self.workers: dict[str, PodWorker] = {}
        self.lock = threading.Lock()
        self.ips: dict[str, str] = {}  # pod uid -> IP
        self.netns_file = self.state_dir / network.POD_NETNS_FILE
        self.stop = threading.Event()
        self.kubelet_port = 0
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemTotal"))
        self.allocatable = {"cpu": str(os.cpu_count() or 1), "memory": str(mem), "pods": "110",
                            "ephemeral-storage": "100Gi"}

    # --------------------------------------------------------------------------------------- helpers

    def resolve_image(self, ref: str) -> podlogic.Image:
        return podlogic.resolve_image(ref, self.catalog, self.values)

    def allocate_ip(self, worker: PodWorker) -> str:
        node_index = next(i for i, n in enumerate(self.nodes) if n["name"] == worker.pod["spec"]["nodeName"])
        net = ipaddress.ip_network(self.addresses.node_pod_cidr(node_index))
        with self.lock:
            used = set(self.ips.values())
            for host in list(net.hosts())[1:]:
                if str(host) not in used:
                    self.ips[worker.uid] = str(host)
                    return str(host)
        raise RuntimeError(f"no free Pod IP in {net}")

    def release_ip(self, worker: PodWorker) -> None:
        with self.lock:
            self.ips.pop(worker.uid, None)

    def _netns_table(self) -> dict[str, int]:
        return json.loads(self.netns_file.read_text()) if self.netns_file.exists() else {}

    def record_netns(self, uid: str, inode: int) -> None:
        with self.lock:
            table = self._netns_table()
            table[uid] = inode
            self.netns_file.write_text(json.dumps(table))

    def forget_netns(self, uid: str) -> None:
        with self.lock:
            table = self._netns_table()
            if table.pop(uid, None) is not None:
                self.netns_file.write_text(json.dumps(table))

    def raw(self, method: str, path: str, body: dict | None = None, query: list | None = None) -> dict:
        """One API call returning the JSON body as a dict (no model classes). Raises ApiException."""
        resp = self.api.call_api(path, method, query_params=query or [], body=body,
                                 header_params={"Accept": "application/json", "Content-Type": "application/json"},
                                 auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True)
        return json.loads(resp.data)

    def object_data(self, kind: str, ns: str, name: str) -> dict[str, bytes] | None:
        try:
            if kind == "configMap":
                cm = self.core.read_namespaced_config_map(name, ns)
                data = {k: v.encode() for k, v in (cm.data or {}).items()}
                data.update({k: base64.b64decode(v) for k, v in (cm.binary_data or {}).items()})
                return data
            raw = self.raw("GET", f"/api/v1/namespaces/{ns}/secrets/{name}")
            return decode_secret(raw.get("data"))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def token(self, pod: dict, audience: str | None, expiration: int) -> str:
        sa = pod["spec"].get("serviceAccountName") or "default"
        body = {"spec": {"audiences": [audience] if audience else None, "expirationSeconds": expiration,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod["metadata"]["name"],
                                            "uid": pod["metadata"]["uid"]}}}
        resp = self.core.create_namespaced_service_account_token(sa, pod["metadata"]["namespace"], body)
        return resp.status.token

    def container_env(self, pod: dict, container: dict, image: podlogic.Image) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        services: list[dict] = []
        with contextlib.suppress(ApiException):
            if pod["spec"].get("enableServiceLinks", True):
                services = [self.api.sanitize_for_serialization(s) for s in self.core.list_namespaced_service(ns).items]
        svc_env = podlogic.service_env(services)
        try:
            k8s = self.api.sanitize_for_serialization(self.core.read_namespaced_service("kubernetes", "default"))
            port = next(p["port"] for p in k8s["spec"]["ports"] if p.get("name") == "https")
            svc_env.update({"KUBERNETES_SERVICE_HOST": k8s["spec"]["clusterIP"], "KUBERNETES_SERVICE_PORT": str(port),
                            "KUBERNETES_SERVICE_PORT_HTTPS": str(port)})
            svc_env.update(podlogic.service_env([k8s]))
        except (ApiException, StopIteration, KeyError):
            svc_env.update({"KUBERNETES_SERVICE_HOST": self.addresses.kubernetes_ip, "KUBERNETES_SERVICE_PORT": "443"})
        names_cm: dict[str, dict[str, str] | None] = {}
        names_sec: dict[str, dict[str, str] | None] = {}
        refs = [(ef.get("configMapRef"), "configMap") for ef in container.get("envFrom") or []] + \
               [(ef.get("secretRef"), "secret") for ef in container.get("envFrom") or []]
        for e in container.get("env") or []:
            vf = e.get("valueFrom") or {}
            refs += [(vf.get("configMapKeyRef"), "configMap"), (vf.get("secretKeyRef"), "secret")]
        for ref, kind in refs:
            if ref:
                data = self.object_data(kind, ns, ref["name"])
                text = None if data is None else {k: v.decode(errors="replace") for k, v in data.items()}
                (names_cm if kind == "configMap" else names_sec)[ref["name"]] = text
        return podlogic.container_env(pod, container, image, services_env=svc_env, configmaps=names_cm,
                                      secrets=names_sec, node_allocatable=self.allocatable)

    def event(self, pod: dict, reason: str, message: str, type_: str = "Normal") -> None:
        meta = pod["metadata"]
        body = {"metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                                   "uid": meta["uid"], "apiVersion": "v1"},
                "reason": reason, "message": message[:1000], "type": type_,
                "source": {"component": "kubelet", "host": pod["spec"].get("nodeName")},
                "firstTimestamp": now(), "lastTimestamp": now(), "count": 1,
                "reportingComponent": "kubelet", "reportingInstance": pod["spec"].get("nodeName")}
        with contextlib.suppress(Exception):
            self.core.create_namespaced_event(meta["namespace"], body)

    def write_pod_status(self, worker: PodWorker, status: dict) -> bool:
        """Replace the Pod's status (other writers' condition types are kept); True when written."""
        for _ in range(5):
            with worker.lock:
                pod = json.loads(json.dumps(worker.pod))
            ours = {c["type"] for c in status["conditions"]}
            kept = [c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] not in ours]
            pod["status"] = {**status, "conditions": kept + status["conditions"]}
            try:
                raw = self.raw("PUT", f"/api/v1/namespaces/{worker.ns}/pods/{worker.name_}/status", body=pod)
                with worker.lock:
                    worker.pod = raw
                return True
            except ApiException as exc:
                if exc.status == 404:
                    worker.deleted()
                    return False
                if exc.status != 409:
                    log.warning("pod %s/%s: status write failed: %s %s", worker.ns, worker.name_, exc.reason,
                                (exc.body or b"")[:600])
                    return exc.status == 422  # invalid: retrying the same status would fail again
                with contextlib.suppress(ApiException):
                    fresh = self.raw("GET", f"/api/v1/namespaces/{worker.ns}/pods/{worker.name_}")
                    with worker.lock:
                        worker.pod = fresh
        return False

    # ----------------------------------------------------------------------------------------- nodes

    def node_object(self, n: dict, index: int) -> dict:
        labels = {"kubernetes.io/hostname": n["name"], "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                  "node.kubernetes.io/instance-type": "kaiops-sandbox",
                  **{k: str(v) for k, v in (n.get("labels") or {}).items()}}
        cidr = self.addresses.node_pod_cidr(index)
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": n["name"], "labels": labels,
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                             "kaiops.dev/emulated-by": "sandbox/node (kaiops node agent)"}},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "taints": n.get("taints") or []}}

    def node_status(self, n: dict) -> dict:
        capacity = {**self.allocatable, **{k: str(v) for k, v in (n.get("capacity") or {}).items()}}
        t = now()

        def cond(type_: str, status: str, reason: str, message: str) -> dict:
            return {"type": type_, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": t, "lastTransitionTime": self.started_at}

        return {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status (kaiops sandbox node agent)"),
            ],
            "addresses": [{"type": "InternalIP", "address": self.addresses.host_ip},
                          {"type": "Hostname", "address": n["name"]}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {"machineID": uuid.uuid5(uuid.NAMESPACE_DNS, n["name"]).hex,
                         "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, n["name"])),
                         "bootID": self.boot_id, "kernelVersion": platform.release(),
                         "osImage": "kaiops sandbox node (host processes)", "containerRuntimeVersion": "kaiops-node://0.1.0",
                         "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                         "operatingSystem": "linux", "architecture": "amd64"},
        }

    def register(self) -> None:
        self.started_at = now()
        self.boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        for i, n in enumerate(self.nodes):
            body = self.node_object(n, i)
            try:
                self.core.create_node(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                self.core.patch_node(n["name"], {"metadata": {"labels": body["metadata"]["labels"]},
                                                 "spec": {"taints": body["spec"]["taints"]}})
            self.core.patch_node_status(n["name"], {"status": self.node_status(n)})
            self.renew_lease(n["name"])

    def prometheus_targets(self, remove: bool = False) -> None:
        """Write (or remove) ``<instance>/prometheus/targets/kubelet/<node>.json`` for the sandbox Prometheus's
        ``kubelet-cadvisor`` job (file-based discovery; atomic tmp + rename)."""
        directory = self.instance_dir / "prometheus" / "targets" / "kubelet"
        try:
            root = fsguard.claim(directory)
        except fsguard.UnsafePath as exc:
            log.warning("not writing Prometheus kubelet targets: %s", exc)
            return
        for n in self.nodes:
            path = root / f"{n['name']}.json"
            if remove:
                fsguard.remove(path, root)
                continue
            tmp = root / f".{n['name']}.tmp"
            tmp.write_text(json.dumps([{"targets": [f"{self.addresses.host_ip}:{self.kubelet_port}"],
                                        "labels": {"node": n["name"]}}]))
            tmp.replace(path)

    def renew_lease(self, name: str) -> None:
        t = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": t}}
        try:
            self.coord.patch_namespaced_lease(name, "kube-node-lease", {"spec": body["spec"]})
        except ApiException as exc:
            if exc.status != 404:
                raise
            node = self.core.read_node(name)
            body["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                                    "uid": node.metadata.uid}]
            self.coord.create_namespaced_lease("kube-node-lease", body)

    def heartbeat(self) -> None:
        last_status = time.monotonic()
        while not self.stop.wait(10):
            for n in self.nodes:
                with contextlib.suppress(Exception):
                    self.renew_lease(n["name"])
            if time.monotonic() - last_status >= 60:
                last_status = time.monotonic()
                for n in self.nodes:
                    with contextlib.suppress(Exception):
                        self.core.patch_node_status(n["name"], {"status": self.node_status(n)})
            with contextlib.suppress(Exception):
                self.sync_host_services()

    # ------------------------------------------------------------------------------------------ pods

    def watch_node(self, node: str) -> None:
        selector = f"spec.nodeName={node}"
        while not self.stop.is_set():
            try:
                raw = self.raw("GET", "/api/v1/pods", query=[("fieldSelector", selector)])
                seen = set()
                for pod in raw.get("items", []):
                    seen.add(pod["metadata"]["uid"])
                    self.upsert(pod)
                with self.lock:
                    stale = [w for uid, w in self.workers.items() if uid not in seen
                             and w.pod["spec"].get("nodeName") == node]
                for w in stale:
                    w.deleted()
                rv = raw["metadata"]["resourceVersion"]
                for ev in watch.Watch().stream(self.core.list_pod_for_all_namespaces, field_selector=selector,
                                               resource_version=rv, timeout_seconds=300):
                    if self.stop.is_set():
                        return
                    pod = ev["raw_object"]
                    if ev["type"] == "DELETED":
                        with self.lock:
                            w = self.workers.get(pod["metadata"]["uid"])
                        if w:
                            w.deleted()
                    elif ev["type"] in ("ADDED", "MODIFIED"):
                        self.upsert(pod)
            except Exception as exc:
                log.warning("watch of node %s pods: %s; relisting", node, exc)
                time.sleep(1)

    def upsert(self, pod: dict) -> None:
        if pod["spec"].get("nodeName") not in {n["name"] for n in self.nodes}:
            return
        uid = pod["metadata"]["uid"]
        with self.lock:
            w = self.workers.get(uid)
            if w is None:
                if pod["metadata"].get("deletionTimestamp") and not pod.get("status", {}).get("phase"):
                    pass
                w = PodWorker(self, pod)
                self.workers[uid] = w
                w.start()
                return
        w.update(pod)

    def worker_done(self, w: PodWorker) -> None:
        with self.lock:
            if self.workers.get(w.uid) is w:
                del self.workers[w.uid]

    # --------------------------------------------------------------------------------- host services

    def sync_host_services(self) -> None:
        """Services (no selector) in ``kaiops-sandbox`` whose EndpointSlices point at the host-veth forwarders."""
        state = json.loads((self.instance_dir / "state.json").read_text())
        ns = "kaiops-sandbox"
        with contextlib.suppress(ApiException):
            self.core.create_namespace({"metadata": {"name": ns}})
        wanted = {}
        for svc_name, record in state.get("services", {}).items():
            ports = record.get("ports") or {}
            if svc_name in HOST_SERVICES and ports:
                name, svc_port, role = HOST_SERVICES[svc_name]
                wanted[name] = (svc_port, ports.get(role) if role else next(iter(ports.values())))
        for svc in self.core.list_namespaced_service(ns, label_selector=MANAGED).items:
            if svc.metadata.name not in wanted:
                self.core.delete_namespaced_service(svc.metadata.name, ns)
                with contextlib.suppress(ApiException):
                    self.discovery.delete_namespaced_endpoint_slice(f"{svc.metadata.name}-host", ns)
        for name, (svc_port, target) in wanted.items():
            svc = {"metadata": {"name": name, "namespace": ns,
                                "labels": {"app.kubernetes.io/managed-by": "kaiops-sandbox"}},
                   "spec": {"ports": [{"name": "main", "port": svc_port, "targetPort": target, "protocol": "TCP"}]}}
            try:
                self.core.create_namespaced_service(ns, svc)
            except ApiException as exc:
                if exc.status != 409:
                    raise
            slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": f"{name}-host", "namespace": ns,
                                   "labels": {"kubernetes.io/service-name": name,
                                              "endpointslice.kubernetes.io/managed-by": "kaiops-sandbox"}},
                      "addressType": "IPv4",
                      "endpoints": [{"addresses": [self.addresses.host_ip], "conditions": {"ready": True}}],
                      "ports": [{"name": "main", "port": target, "protocol": "TCP"}]}
            try:
                self.discovery.create_namespaced_endpoint_slice(ns, slice_)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                self.discovery.replace_namespaced_endpoint_slice(
                    f"{name}-host", ns, {**slice_, "metadata": {
                        **slice_["metadata"], "resourceVersion": self.discovery.read_namespaced_endpoint_slice(
                            f"{name}-host", ns).metadata.resource_version}})

    # ------------------------------------------------------------------------------------------- run

    def cleanup_previous(self) -> None:
        """Processes of Pods a previous (killed) agent ran: their recorded network namespaces' members."""
        table = self._netns_table()
        if table:
            network.kill_in_netns({int(v) for v in table.values()})
            fsguard.remove(self.netns_file, self.state_dir)
        for entry in self.pods_dir.iterdir():
            if entry.name != fsguard.MARKER:
                with contextlib.suppress(fsguard.UnsafePath, OSError):
                    fsguard.remove(entry, self.pods_dir)

    def run(self, health: Path) -> None:
        from sandbox.node import kubelet_api

        self.cleanup_previous()
        self.kubelet_port = kubelet_api.serve(self)
        self.register()
        self.prometheus_targets()
        threading.Thread(target=self.heartbeat, daemon=True).start()
        for n in self.nodes:
            threading.Thread(target=self.watch_node, args=(n["name"],), daemon=True).start()
        with contextlib.suppress(Exception):
            self.sync_host_services()
        health.write_text(str(os.getpid()))
        self.stop.wait()
        self.shutdown()

    def shutdown(self) -> None:
        """Stop every Pod's processes (SIGTERM then SIGKILL, 5 s), as a node going down."""
        with contextlib.suppress(Exception):
            self.prometheus_targets(remove=True)
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            threading.Thread(target=w._kill_all, args=(5.0, "Killing"), daemon=True).start()
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and any(c.proc for w in workers for c in w.ctrs):
            time.sleep(0.1)
        for w in workers:
            w._stop_holder()
        table = self._netns_table()
        if table:
            network.kill_in_netns({int(v) for v in table.values()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sandbox.node.agent")
    parser.add_argument("--instance-dir", required=True, type=Path)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--health-file", required=True, type=Path)
    parser.add_argument("--nodes", type=Path, default=Path(os.environ.get("KAIOPS_SANDBOX_NODES", NODES_FILE)))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    agent = Agent(args.instance_dir, args.kubeconfig, args.nodes)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stop.set())
    agent.run(args.health_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
