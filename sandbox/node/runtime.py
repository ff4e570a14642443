"""Pod runtime of the node agent: one worker thread per Pod bound to one of the agent's Nodes.

A worker does what the kubelet's pod worker does, for host processes instead of containers:
image resolution (catalog), volumes, the Pod's network (veth on the node bridge, a /32 Pod IP), the holder
process (namespaces + root filesystems, ``holder.py``), init containers in order then containers
(``enter.py``), probes, restarts with CrashLoopBackOff, graceful termination with preStop, and the Pod
status the kubelet writes. Deletes go through :mod:`sandbox.fsguard`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client.rest import ApiException

from sandbox import fsguard
from sandbox.node import podlogic
from sandbox.node.network import BRIDGE, NetAddresses

log = logging.getLogger("kaiops.node")
HERE = Path(__file__).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
RUNTIME = "kaiops-node"
# configMap/secret volumes are re-read this often and changed keys replaced atomically (rename), as the kubelet
# updates them on its sync loop (there: sync period 1 min + cache TTL; a subPath mount keeps the old content)
OBJECT_VOLUME_REFRESH_SECONDS = 5.0


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(*cmd: str) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")


@dataclass
class Probe:
    """Probe state of one container (kubelet prober worker)."""

    spec: dict
    kind: str  # readiness | liveness | startup
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0
    result: bool | None = None


@dataclass
class Ctr:
    """Runtime state of one container of the Pod."""

    spec: dict
    init: bool
    image: podlogic.Image | None = None
    proc: subprocess.Popen | None = None
    restart_count: int = 0
    started_at: str | None = None
    started_mono: float = 0.0
    state: dict = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict = field(default_factory=dict)
    backoff_until: float = 0.0
    backoff_n: int = 0
    ready: bool = False
    started: bool = False
    probes: dict[str, Probe] = field(default_factory=dict)
    done: bool = False  # init container finished successfully

    @property
    def name(self) -> str:
        return self.spec["name"]


class PodWorker(threading.Thread):
    """Runs one Pod until it is deleted (see the module docstring)."""

    def __init__(self, agent: Any, pod: dict) -> None:
        super().__init__(daemon=True, name=f"pod-{pod['metadata']['name']}")
        self.agent = agent
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.ns = pod["metadata"]["namespace"]
        self.name_ = pod["metadata"]["name"]
        self.dir = agent.pods_dir / self.uid
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.holder: subprocess.Popen | None = None
        self.pod_ip: str | None = None
        self.veth = "vp" + hashlib.sha256(self.uid.encode()).hexdigest()[:12]
        self.ctrs = [Ctr(c, True) for c in pod["spec"].get("initContainers") or []] + \
                    [Ctr(c, False) for c in pod["spec"].get("containers") or []]
        self.conditions: dict[str, dict] = {}
        self.start_time = now()
        self.gone = False  # the Pod object no longer exists
        self.last_status: str = ""
        self.message: str | None = None
        self.reason: str | None = None
        self.image_pull_failures = 0
        self.token_refresh_at = float("inf")
        self.objects_refresh_at = time.monotonic() + OBJECT_VOLUME_REFRESH_SECONDS

    # ------------------------------------------------------------------------------------------ events

    def update(self, pod: dict) -> None:
        with self.lock:
            self.pod = pod
        self.wake.set()

    def deleted(self) -> None:
        self.gone = True
        self.wake.set()

    def event(self, reason: str, message: str, type_: str = "Normal") -> None:
        self.agent.event(self.pod, reason, message, type_)

    # ------------------------------------------------------------------------------------------- main

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s/%s: worker failed", self.ns, self.name_)
        finally:
            self.agent.worker_done(self)

    def terminating(self) -> bool:
        return self.gone or bool(self.pod["metadata"].get("deletionTimestamp"))

    def _run(self) -> None:
        if (self.pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            # finished before this agent started (a restarted agent): a terminal phase never changes again,
            # so only wait for the deletion and confirm it, as the kubelet does for completed Pods
            while not self.terminating():
                self.wake.wait(5)
                self.wake.clear()
            return self._finish()
        if not self._resolve_images():
            return self._finish()
        if not self._sandbox():
            return self._finish()
        while not self.terminating():
            self._step()
            self._write_status()
            if self._terminal():
                self._stop_holder()
                while not self.terminating():
                    self.wake.wait(5)
                    self.wake.clear()
                break
            self.wake.wait(0.25)
            self.wake.clear()
        self._finish()

    def _terminal(self) -> bool:
        return self.phase() in ("Succeeded", "Failed")

    def _finish(self) -> None:
        grace = self.pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        self._kill_all(float(grace), "Killing")
        self._stop_holder()
        self.agent.release_ip(self)
        with contextlib.suppress(fsguard.UnsafePath, OSError):
            fsguard.remove(self.dir, self.agent.pods_dir)
        if not self.gone:
            with contextlib.suppress(ApiException):
                self.agent.core.delete_namespaced_pod(
                    self.name_, self.ns, grace_period_seconds=0,
                    body={"preconditions": {"uid": self.uid}, "gracePeriodSeconds": 0})

    # ----------------------------------------------------------------------------------------- images

    def _resolve_images(self) -> bool:
        delay = 5.0
        while not self.terminating():
            missing = None
            for c in self.ctrs:
                try:
                    c.image = self.agent.resolve_image(c.spec.get("image", ""))
                except podlogic.CatalogError as exc:
                    missing = (c, str(exc))
                    break
            if missing is None:
                return True
            c, msg = missing
            reason = "ErrImagePull" if self.image_pull_failures % 2 == 0 else "ImagePullBackOff"
            if reason == "ImagePullBackOff":
                msg = f'Back-off pulling image "{c.spec.get("image")}": {msg}'
            self.image_pull_failures += 1
            for other in self.ctrs:
                other.state = {"waiting": {"reason": "PodInitializing" if not other.init and any(
                    x.init for x in self.ctrs) else "ContainerCreating"}}
            c.state = {"waiting": {"reason": reason, "message": msg}}
            if reason == "ErrImagePull":
                self.event("Failed", msg, "Warning")
            self._write_status()
            self.wake.wait(delay)
            self.wake.clear()
            delay = min(delay * 2, 60.0)
        return False

    # ---------------------------------------------------------------------------------------- sandbox

    def _sandbox(self) -> bool:
        """Volumes, network and holder; False when the Pod was deleted meanwhile."""
        host_network = bool(self.pod["spec"].get("hostNetwork"))
        self.pod_ip = self.agent.addresses.node_ip if host_network else self.agent.allocate_ip(self)
        fsguard.claim(self.dir)
        spec = self._holder_spec()
        (self.dir / "holder.json").write_text(json.dumps(spec))
        ready = Path(spec["ready"])
        log_path = self.dir / "holder.log"
        cmd = ["unshare", "--mount", "--uts", "--propagation", "private"]
        if host_network:
            cmd = ["nsenter", f"--net=/run/netns/{self.agent.addresses.netns}", "--", *cmd]
        else:
            cmd.insert(1, "--net")
        cmd += ["--", sys.executable, "-I", str(HERE / "holder.py"), str(self.dir / "holder.json")]
        with open(log_path, "ab") as out:
            self.holder = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
        deadline = time.monotonic() + 30
        while not ready.exists() and self.holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        text = ready.read_text() if ready.exists() else f"holder exited: {log_path.read_text()[-500:]}"
        if text != "ok":
            self._sandbox_failed(text)
            return False
        self.agent.record_netns(self.uid, os.stat(f"/proc/{self.holder.pid}/ns/net").st_ino)
        if not host_network:
            self._plumb()
        delay = 1.0
        while True:  # as the kubelet: a volume whose source is missing is retried until it appears
            try:
                self._fill_volumes()
                break
            except Exception as exc:
                self.event("FailedMount", f"MountVolume.SetUp failed: {exc}", "Warning")
                for c in self.ctrs:
                    c.state = {"waiting": {"reason": "ContainerCreating"}}
                self._write_status()
                self.wake.wait(delay)
                self.wake.clear()
                delay = min(delay * 2, 30.0)
                if self.terminating():
                    return False
        self._condition("PodReadyToStartContainers", True)
        return True

    def _sandbox_failed(self, text: str, reason: str = "FailedCreatePodSandBox") -> None:
        self.event(reason, text, "Warning")
        for c in self.ctrs:
            c.state = {"waiting": {"reason": "ContainerCreating"}}
        self._write_status()
        while not self.terminating():
            self.wake.wait(5)
            self.wake.clear()

    def _plumb(self) -> None:
        a: NetAddresses = self.agent.addresses
        ns = ("ip", "-n", a.netns)
        pid = str(self.holder.pid)
        _run(*ns, "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", pid)
        _run(*ns, "link", "set", self.veth, "master", BRIDGE, "up")
        enter = ("nsenter", "-t", pid, "-n", "ip")
        _run(*enter, "addr", "add", f"{self.pod_ip}/32", "dev", "eth0")
        _run(*enter, "link", "set", "eth0", "up")
        _run(*enter, "route", "add", a.gateway, "dev", "eth0", "scope", "link")
        _run(*enter, "route", "add", "default", "via", a.gateway, "dev", "eth0")

    def _holder_spec(self) -> dict:
        vols: dict[str, dict] = {}
        for v in self.pod["spec"].get("volumes") or []:
            kind = "dir" if "emptyDir" in v and (v["emptyDir"] or {}).get("medium") != "Memory" else "tmpfs"
            if not any(k in v for k in ("emptyDir", "configMap", "secret", "projected", "downwardAPI")):
                kind = "unsupported"
            vols[v["name"]] = {"kind": kind, "path": str(self.dir / "volumes" / v["name"]), "empty": "emptyDir" in v}
        containers = {}
        for c in self.ctrs:
            mounts = []
            for m in c.spec.get("volumeMounts") or []:
                v = vols.get(m["name"])
                if v is None or v["kind"] == "unsupported":
                    continue
                src = v["path"] + ("/" + m["subPath"] if m.get("subPath") else "")
                mount = {"src": src, "dst": m["mountPath"], "ro": bool(m.get("readOnly"))}
                if m.get("subPath"):  # made before the volume is filled: a key of an object volume is a file
                    mount["missing"] = "dir" if v["kind"] == "dir" or v.get("empty") else "file"
                mounts.append(mount)
            containers[c.name] = {"root": str(self.dir / "roots" / c.name), "rootfs": c.image.rootfs,
                                  "paths": list(c.image.paths), "hide": list(c.image.hide), "mounts": mounts,
                                  "binds": dict(c.image.binds)}
        hostname = self.pod["spec"].get("hostname") or self.name_
        files = {"hosts": podlogic.etc_hosts(self.pod, self.pod_ip),
                 "resolv.conf": podlogic.resolv_conf(self.pod, self.agent.addresses.dns_ip),
                 "hostname": hostname[:63] + "\n"}
        return {"hostname": hostname[:63], "layers": str(self.dir / "layers"), "volumes": vols,
                "containers": containers, "files": files, "ready": str(self.dir / "holder.ready")}

    def _in_pod(self, path: str) -> Path:
        """A path of the holder's mount namespace, reached from the host through /proc/<pid>/root."""
        return Path(f"/proc/{self.holder.pid}/root") / path.lstrip("/")

    def _fill_volumes(self) -> None:
        for v in self.pod["spec"].get("volumes") or []:
            target = self._in_pod(str(self.dir / "volumes" / v["name"]))
            files: dict[str, tuple[bytes, int]] = {}
            if "configMap" in v or "secret" in v:
                files = self._object_files(v)
            elif "downwardAPI" in v:
                files = self._downward_files(v["downwardAPI"])
            elif "projected" in v:
                mode = v["projected"].get("defaultMode", 0o644)
                for src in v["projected"].get("sources") or []:
                    if "serviceAccountToken" in src:
                        files.update(self._token_file(src["serviceAccountToken"], mode))
                    elif "configMap" in src or "secret" in src:
                        files.update(self._object_files(src, mode))
                    elif "downwardAPI" in src:
                        files.update(self._downward_files(src["downwardAPI"], mode))
            elif not any(k in v for k in ("emptyDir",)):
                kinds = ", ".join(k for k in v if k != "name")
                raise ValueError(f"volume {v['name']}: {kinds} volumes are not supported by the sandbox node "
                                 "(emptyDir, configMap, secret, projected, downwardAPI are)")
            for rel, (data, fmode) in files.items():
                path = target / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                path.chmod(fmode)

    def _refresh_object_volumes(self) -> None:
        """Bring configMap and secret volumes up to date: changed or new keys are written to a temporary file and
        renamed over the old one (a reader never sees half a file). Unlike the kubelet, a key removed from the
        object stays in the volume (nothing is deleted here: the volume is reached through /proc/<pid>/root,
        which :mod:`sandbox.fsguard` would resolve to the host path). A missing object leaves the volume as is."""
        for v in self.pod["spec"].get("volumes") or []:
            if "configMap" not in v and "secret" not in v:
                continue
            target = self._in_pod(str(self.dir / "volumes" / v["name"]))
            for rel, (data, fmode) in self._object_files(v).items():
                path = target / rel
                if path.is_file() and path.read_bytes() == data:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.kaiops-tmp")
                tmp.write_bytes(data)
                tmp.chmod(fmode)
                tmp.replace(path)

    def _object_files(self, src: dict, default_mode: int | None = None) -> dict[str, tuple[bytes, int]]:
        kind = "configMap" if "configMap" in src else "secret"
        ref = src[kind]
        name = ref.get("name") or ref.get("secretName")
        mode = ref.get("defaultMode", default_mode if default_mode is not None else 0o644)
        data = self.agent.object_data(kind, self.ns, name)
        if data is None:
            if ref.get("optional"):
                return {}
            raise ValueError(f'{kind} "{name}" not found')
        items = ref.get("items")
        out = {}
        for key, value in data.items():
            if items is None:
                out[key] = (value, mode)
        for item in items or []:
            if item["key"] not in data:
                if ref.get("optional"):
                    continue
                raise ValueError(f"{kind} {name}: key {item['key']} not found")
            out[item["path"]] = (data[item["key"]], item.get("mode", mode))
        return out

    def _downward_files(self, spec: dict, default_mode: int | None = None) -> dict[str, tuple[bytes, int]]:
        mode = spec.get("defaultMode", default_mode if default_mode is not None else 0o644)
        out = {}
        for item in spec.get("items") or []:
            if "fieldRef" in item:
                value = podlogic.field_value(self._pod_with_ip(), item["fieldRef"]["fieldPath"])
            else:
                ref = item["resourceFieldRef"]
                c = next((x.spec for x in self.ctrs if x.name == ref.get("containerName")), self.ctrs[-1].spec)
                value = podlogic.resource_field(c, ref["resource"], ref.get("divisor"), self.agent.allocatable)
            out[item["path"]] = (value.encode(), item.get("mode", mode))
        return out

    def _token_file(self, src: dict, mode: int) -> dict[str, tuple[bytes, int]]:
        expiration = max(600, int(src.get("expirationSeconds", 3600)))
        token = self.agent.token(self.pod, src.get("audience"), expiration)
        self.token_refresh_at = min(self.token_refresh_at, time.monotonic() + 0.8 * expiration)
        return {src.get("path", "token"): (token.encode(), mode)}

    def _pod_with_ip(self) -> dict:
        pod = json.loads(json.dumps(self.pod))
        st = pod.setdefault("status", {})
        st["podIP"], st["podIPs"] = self.pod_ip, [{"ip": self.pod_ip}]
        st["hostIP"], st["hostIPs"] = self.agent.addresses.host_ip, [{"ip": self.agent.addresses.host_ip}]
        return pod

    # ------------------------------------------------------------------------------------- containers

    def _step(self) -> None:
        if time.monotonic() >= self.token_refresh_at:
            self.token_refresh_at = float("inf")
            with contextlib.suppress(Exception):
                self._fill_volumes()
        if time.monotonic() >= self.objects_refresh_at:
            self.objects_refresh_at = time.monotonic() + OBJECT_VOLUME_REFRESH_SECONDS
            with contextlib.suppress(Exception):
                self._refresh_object_volumes()
        inits = [c for c in self.ctrs if c.init]
        for c in inits:
            sidecar = c.spec.get("restartPolicy") == "Always"
            if c.done or (sidecar and c.started):
                self._tend(c, sidecar_policy=sidecar)
                continue
            self._tend(c, sidecar_policy=sidecar)
            if not (c.done or (sidecar and c.started)):
                return  # the next init container (and the main ones) wait for this one
        for c in self.ctrs:
            if not c.init:
                self._tend(c)

    def _policy(self, c: Ctr, sidecar_policy: bool = False) -> str:
        if sidecar_policy:
            return "Always"
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if c.init:
            return "Never" if policy == "Never" else "OnFailure"
        return policy

    def _tend(self, c: Ctr, sidecar_policy: bool = False) -> None:
        policy = self._policy(c, sidecar_policy)
        if c.proc is not None and c.proc.poll() is not None:
            self._exited(c, c.proc.returncode)
        if c.proc is None:
            term = c.state.get("terminated")
            if term is not None or c.done:
                code = term.get("exitCode", 0) if term else 0
                if policy == "Never" or (policy == "OnFailure" and code == 0):
                    if c.init and code == 0:
                        c.done = True
                    return
                # restart, after the back-off
                if c.backoff_n == 0:
                    c.backoff_n = 1
                    c.backoff_until = 0.0
                else:
                    delay = podlogic.backoff_seconds(c.backoff_n)
                    c.backoff_until = time.monotonic() + delay
                    c.backoff_n += 1
                    msg = (f"back-off {int(delay)}s restarting failed container={c.name} "
                           f"pod={self.name_}_{self.ns}({self.uid})")
                    c.last_state = {"terminated": term} if term else c.last_state
                    c.state = {"waiting": {"reason": "CrashLoopBackOff", "message": msg}}
                    self.event("BackOff", "Back-off restarting failed container " + c.name, "Warning")
                    return
                c.last_state = {"terminated": term} if term else c.last_state
                c.restart_count += 1
                self._start(c)
            elif "waiting" in c.state and c.state["waiting"].get("reason") == "CrashLoopBackOff":
                if time.monotonic() >= c.backoff_until:
                    c.restart_count += 1
                    self._start(c)
            else:
                self._start(c)
            return
        self._probe(c)

    def _exited(self, c: Ctr, code: int) -> None:
        if code < 0:
            code = 128 - code  # killed by signal N -> 128+N as container runtimes report it
        c.proc = None
        c.ready = False
        reason = "Completed" if code == 0 else "Error"
        c.state = {"terminated": {"exitCode": code, "reason": reason, "startedAt": c.started_at,
                                  "finishedAt": now(), "containerID": self._cid(c)}}
        if code != 0 and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            # kubelet: no termination-message file here, so the log's last 80 lines, at most 2048 bytes
            # (kubecontainer.MaxContainerTerminationMessageLogLines / ...LogLength)
            try:
                tail = self.log_path(c.name, c.restart_count).read_bytes()[-2048:]
                c.state["terminated"]["message"] = b"\n".join(tail.splitlines()[-80:]).decode(errors="replace")
            except OSError:
                pass
        if time.monotonic() - c.started_mono > 600:
            c.backoff_n = 0  # ran 10 minutes: the back-off starts over
        for p in c.probes.values():
            p.successes = p.failures = 0
            p.result = None

    def _cid(self, c: Ctr) -> str:
        return f"{RUNTIME}://{self.uid[:8]}-{c.name}-{c.restart_count}"

    def log_path(self, name: str, restart: int) -> Path:
        return self.dir / "logs" / name / f"{restart}.log"

    def _start(self, c: Ctr) -> None:
        try:
            env = self.agent.container_env(self._pod_with_ip(), c.spec, c.image)
            argv = podlogic.command_line(c.spec, c.image, env)
        except (podlogic.EnvError, ValueError) as exc:
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            self.event("Failed", f"Error: {exc}", "Warning")
            return
        path = self.log_path(c.name, c.restart_count)
        path.parent.mkdir(parents=True, exist_ok=True)
        workdir = c.spec.get("workingDir") or c.image.working_dir or "/"
        root = str(self.dir / "roots" / c.name)
        cmd = [sys.executable, "-I", str(HERE / "enter.py"), str(self.holder.pid), root, workdir, "--", *argv]
        with open(path, "ab") as out:
            c.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=env, start_new_session=True)
        c.started_at = now()
        c.started_mono = time.monotonic()
        c.state = {"running": {"startedAt": c.started_at}}
        c.started = "startupProbe" not in c.spec
        c.ready = False
        t0 = time.monotonic()
        for kind in ("startup", "liveness", "readiness"):
            spec = c.spec.get(f"{kind}Probe")
            if spec:
                c.probes[kind] = Probe(spec, kind, next_at=t0 + spec.get("initialDelaySeconds", 0))
        self.event("Started", f"Started container {c.name}")
        self._post_start(c)

    def _post_start(self, c: Ctr) -> None:
        hook = ((c.spec.get("lifecycle") or {}).get("postStart"))
        if hook:
            self._hook(c, hook, 30.0)

    # ----------------------------------------------------------------------------------------- probes

    def _probe(self, c: Ctr) -> None:
        t = time.monotonic()
        for kind in ("startup", "liveness", "readiness"):
            p = c.probes.get(kind)
            if p is None or t < p.next_at:
                continue
            if kind != "startup" and not c.started:
                continue
            if kind == "startup" and c.started:
                continue
            period = p.spec.get("periodSeconds", 10)
            p.next_at = t + period
            ok = self._run_probe(c, p.spec)
            if ok:
                p.successes, p.failures = p.successes + 1, 0
                threshold = 1 if kind != "readiness" else p.spec.get("successThreshold", 1)
                if p.successes >= threshold:
                    p.result = True
            else:
                p.failures, p.successes = p.failures + 1, 0
                if p.failures >= p.spec.get("failureThreshold", 3):
                    p.result = False
            if kind == "startup" and p.result:
                c.started = True
            if kind == "readiness" and p.result is not None:
                c.ready = p.result
            if not ok:
                self.event("Unhealthy", f"{kind.capitalize()} probe failed for container {c.name}", "Warning")
            if kind in ("startup", "liveness") and p.result is False:
                self.event("Killing", f"Container {c.name} failed {kind} probe, will be restarted")
                grace = p.spec.get("terminationGracePeriodSeconds",
                                   self.pod["spec"].get("terminationGracePeriodSeconds", 30))
                self._kill(c, float(grace))
                return
        if "readiness" not in c.probes:
            c.ready = c.started and c.proc is not None

    def _port(self, c: Ctr, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in c.spec.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"named port {port} not found in container {c.name}")

    def _run_probe(self, c: Ctr, spec: dict) -> bool:
        timeout = float(spec.get("timeoutSeconds", 1))
        try:
            if "exec" in spec:
                return self._exec(c, spec["exec"]["command"], timeout) == 0
            if "httpGet" in spec:
                return self._http(c, spec["httpGet"], timeout) < 400
            if "tcpSocket" in spec:
                host = spec["tcpSocket"].get("host") or self.pod_ip
                with socket.create_connection((host, self._port(c, spec["tcpSocket"]["port"])), timeout):
                    return True
            if "grpc" in spec:
                return self._grpc(spec["grpc"], timeout)
        except Exception:
            return False
        return False

    def _http(self, c: Ctr, spec: dict, timeout: float) -> int:
        host = spec.get("host") or self.pod_ip
        scheme = spec.get("scheme", "HTTP").lower()
        path = spec.get("path", "/")
        url = f"{scheme}://{host}:{self._port(c, spec['port'])}{path if path.startswith('/') else '/' + path}"
        req = urllib.request.Request(url, headers={"User-Agent": "kube-probe/1.35", **{
            h["name"]: h["value"] for h in spec.get("httpHeaders") or []}})
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if scheme == "https":  # the kubelet skips verification (OpenerDirector.open takes no context)
            handlers.append(urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))
        opener = urllib.request.build_opener(*handlers)
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def _grpc(self, spec: dict, timeout: float) -> bool:
        import grpc

        service = (spec.get("service") or "").encode()
        request = (b"\x0a" + bytes([len(service)]) + service) if service else b""
        with grpc.insecure_channel(f"{self.pod_ip}:{spec['port']}") as channel:
            call = channel.unary_unary("/grpc.health.v1.Health/Check")
            reply = call(request, timeout=timeout)
        return reply == b"\x08\x01"  # status: SERVING

    def _exec(self, c: Ctr, command: list[str], timeout: float) -> int:
        env = self.agent.container_env(self._pod_with_ip(), c.spec, c.image)
        root = str(self.dir / "roots" / c.name)
        cmd = [sys.executable, "-I", str(HERE / "enter.py"), str(self.holder.pid), root,
               c.spec.get("workingDir") or c.image.working_dir or "/", "--", *command]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            return proc.wait(timeout + 2.0)  # python start-up of enter.py is not the probe's time
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return -1

    def _hook(self, c: Ctr, hook: dict, timeout: float) -> None:
        try:
            if "exec" in hook:
                self._exec(c, hook["exec"]["command"], timeout)
            elif "httpGet" in hook:
                self._http(c, hook["httpGet"], timeout)
            elif "sleep" in hook:
                time.sleep(min(timeout, float(hook["sleep"]["seconds"])))
        except Exception as exc:
            self.event("FailedPreStopHook", f"hook of {c.name} failed: {exc}", "Warning")

    # ---------------------------------------------------------------------------------------- killing

    def _kill(self, c: Ctr, grace: float) -> None:
        """preStop (within the grace period), SIGTERM to the container's main process (its PID 1 in a real
        container), SIGKILL to its whole process group when the grace period ends."""
        proc = c.proc
        if proc is None:
            return
        deadline = time.monotonic() + grace
        pre = (c.spec.get("lifecycle") or {}).get("preStop")
        if pre and grace > 0:
            self._hook(c, pre, grace)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group
        self._exited(c, proc.returncode)

    def _kill_all(self, grace: float, reason: str) -> None:
        running = [c for c in self.ctrs if c.proc is not None]
        threads = [threading.Thread(target=self._kill, args=(c, grace)) for c in running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _stop_holder(self) -> None:
        if self.holder is not None and self.holder.poll() is None:
            from sandbox.node.network import kill_in_netns

            with contextlib.suppress(OSError):
                kill_in_netns({os.stat(f"/proc/{self.holder.pid}/ns/net").st_ino}, grace=1.0)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait()
        self.agent.forget_netns(self.uid)

    # ----------------------------------------------------------------------------------------- status

    def _condition(self, type_: str, status: bool, reason: str | None = None) -> None:
        value = "True" if status else "False"
        old = self.conditions.get(type_)
        if old and old["status"] == value and old.get("reason") == reason:
            return
        cond = {"type": type_, "status": value, "lastProbeTime": None, "lastTransitionTime": now()}
        if reason:
            cond["reason"] = reason
        self.conditions[type_] = cond

    def _status_of(self, c: Ctr) -> dict:
        st = {"name": c.name, "image": c.spec.get("image", ""), "imageID": "",
              "ready": c.ready, "restartCount": c.restart_count, "started": c.started and c.proc is not None,
              "state": c.state, "lastState": c.last_state}
        if c.image is not None:
            digest = hashlib.sha256(podlogic.normalize_ref(c.image.ref).encode()).hexdigest()
            st["imageID"] = f"{podlogic.normalize_ref(c.image.ref)}@sha256:{digest}"
        if "running" in c.state or "terminated" in c.state:
            st["containerID"] = self._cid(c)
        return st

    def phase(self) -> str:
        inits = [c for c in self.ctrs if c.init]
        init_failed = any("terminated" in c.state and c.state["terminated"]["exitCode"] != 0
                          and self._policy(c) == "Never" for c in inits)
        init_done = all(c.done or (c.spec.get("restartPolicy") == "Always" and c.started) for c in inits)
        main = [self._status_of(c) for c in self.ctrs if not c.init]
        return podlogic.pod_phase(self.pod, main, init_done, init_failed)

    def _write_status(self) -> None:
        phase = self.phase()
        inits = [c for c in self.ctrs if c.init]
        main = [c for c in self.ctrs if not c.init]
        init_done = all(c.done or (c.spec.get("restartPolicy") == "Always" and c.started) for c in inits)
        self._condition("Initialized", init_done, None if init_done else "ContainersNotInitialized")
        ready = bool(main) and all(c.ready for c in main) and phase == "Running"
        if phase == "Succeeded":
            ready = False
        self._condition("ContainersReady", ready, None if ready else (
            "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"))
        self._condition("Ready", ready, None if ready else (
            "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"))
        self._condition("PodScheduled", True)
        if self.holder is not None and self.holder.poll() is None:
            self._condition("PodReadyToStartContainers", True)
        elif "PodReadyToStartContainers" in self.conditions or phase in ("Succeeded", "Failed"):
            self._condition("PodReadyToStartContainers", False)
        for c in main:
            if "waiting" in c.state and c.state["waiting"].get("reason") == "ContainerCreating" and inits \
                    and not init_done:
                c.state = {"waiting": {"reason": "PodInitializing"}}
        status: dict[str, Any] = {
            "phase": phase, "conditions": list(self.conditions.values()),
            "hostIP": self.agent.addresses.host_ip, "hostIPs": [{"ip": self.agent.addresses.host_ip}],
            "startTime": self.start_time, "qosClass": podlogic.qos_class(self.pod),
            "containerStatuses": [self._status_of(c) for c in main],
        }
        if inits:
            status["initContainerStatuses"] = [self._status_of(c) for c in inits]
        if self.pod_ip:
            status["podIP"], status["podIPs"] = self.pod_ip, [{"ip": self.pod_ip}]
        text = json.dumps(status, sort_keys=True, default=str)
        if text == self.last_status:
            return
        if self.agent.write_pod_status(self, status):
            self.last_status = text

    # ----------------------------------------------------------------------------------------- metrics

    def usage(self) -> list[tuple[str, float, int, float]]:
        """Per running container: (name, cpu seconds, working-set bytes, start time) from /proc (session)."""
        sessions = {c.proc.pid: c for c in self.ctrs if c.proc is not None and c.proc.poll() is None}
        totals: dict[int, list[float]] = {sid: [0.0, 0] for sid in sessions}
        if not sessions:
            return []
        page = os.sysconf("SC_PAGE_SIZE")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                sid = int(fields[3])
                if sid in totals:
                    totals[sid][0] += (int(fields[11]) + int(fields[12])) / CLK_TCK
                    totals[sid][1] += int(fields[21]) * page
        return [(sessions[sid].name, cpu, int(rss), sessions[sid].started_mono) for sid, (cpu, rss) in
                totals.items()]


def decode_secret(data: dict[str, str] | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (data or {}).items()}
