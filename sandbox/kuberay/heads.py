"""One real local Ray head per RayCluster: start, probe, stop.

The head runs ``ray start --head --block ...`` (from :func:`sandbox.services.ray.ray_head_launch`) as a child
of the controller, in the controller's process group, so ``kaiops sandbox down`` (killpg) stops it too.
It plays the head pod: a process that exits is a container that crashed (the kubelet restarts it with an
exponential back-off as for ``restartPolicy: Always``; the kubelet starts at 10 s and caps at 300 s, the
sandbox starts at 5 s and caps at 40 s, because on a loaded machine ``ray start`` can hit Ray's hard-coded 30 s
raylet registration timeout and a 5-minute back-off would stall tests).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from sandbox.services.ray import ray_head_launch

BACKOFF_START_S = 5.0
BACKOFF_MAX_S = 40.0


@dataclass
class Head:
    """A running (or crashed) head process of one RayCluster generation.

    Attributes:
        cluster: ``namespace/name``.
        spec_hash: hash of the spec it was started for (Recreate upgrades compare it).
        pod_name: the emulated head pod name.
        ports: role -> loopback port (``gcs``, ``dashboard``, ``client``, ``metrics``, ``serve``).
        cmd: the exact command line (for the log and for diagnosis).
        log: where its stdout/stderr go.
    """

    cluster: str
    spec_hash: str
    pod_name: str
    ports: dict[str, int]
    cmd: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    last_exit: str = ""
    ready: bool = field(default=False)

    def start(self) -> None:
        """Start (or restart) the process; the log is appended to."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            out.write(f"\n--- kuberay emulation: {' '.join(self.cmd)}\n".encode())
            out.flush()
            # No start_new_session: the head stays in the controller's process group (sandbox down kills it).
            self.proc = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={k: v for k, v in {**os.environ, **self.env}.items() if v is not None},
            )
        self.ready = False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """Update ``ready``/``last_exit``; restart after the back-off when the process has exited."""
        if self.proc is None:
            return
        code = self.proc.poll()
        if code is None:
            self.ready = _healthy(self.ports["dashboard"], self.ports.get("agent"))
            if self.ready:
                self.last_exit = ""
            return
        self.ready = False
        if self.next_start == 0.0:  # first look at this exit: record it, schedule the restart
            self.last_exit = f"ray start exited with code {code}: {self.log_tail()}"
            self.next_start = time.monotonic() + min(BACKOFF_START_S * (2**self.restarts), BACKOFF_MAX_S)
        elif time.monotonic() >= self.next_start:
            self.restarts += 1
            self.next_start = 0.0
            self.start()

    def log_tail(self, lines: int = 6) -> str:
        """The last meaningful lines of the head's output (for conditions and Events)."""
        with contextlib.suppress(OSError):
            text = self.log.read_text(errors="replace").split("--- kuberay emulation:")[-1]
            kept = [ln.strip() for ln in text.splitlines()[1:] if ln.strip() and not ln.startswith("Usage:")]
            return " | ".join(kept[-lines:])[:900]
        return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the head and every process it started (raylet, GCS, dashboard ...): SIGTERM, then SIGKILL."""
        if self.proc is None:
            return
        try:
            family = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for p in family:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(family, timeout=timeout)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=5)
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=1)
        self.proc = None
        self.ready = False


def _healthy(dashboard_port: int, agent_port: int | None) -> bool:
    """KubeRay's head readiness probe (pod.go ``initLivenessAndReadinessProbe``, Ray >= 2.53): the raylet is
    healthy (``/api/local_raylet_healthz`` on the dashboard agent) and the GCS is (``/api/gcs_healthz``)."""
    urls = [f"http://127.0.0.1:{dashboard_port}/api/gcs_healthz"]
    if agent_port:
        urls.insert(0, f"http://127.0.0.1:{agent_port}/api/local_raylet_healthz")
    try:
        for url in urls:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status != 200:
                    return False
        return True
    except Exception:
        return False


def new_head(cluster: str, uid: str, name: str, spec_hash: str, flags: list[str], num_cpus: int,
             root: Path) -> Head:
    """Prepare (not start) a head for ``cluster`` with ``flags`` from its ``rayStartParams``.

    Args:
        cluster: ``namespace/name`` (for logs).
        uid: the RayCluster uid; the temp dir is ``root/<uid[:8]>`` (short for Ray's socket paths).
        name: RayCluster name (the pod is ``<name>-head-<5 chars>``).
        spec_hash: hash of the spec this head serves.
        flags: extra ``ray start`` flags (see :func:`sandbox.kuberay.startparams.sandbox_flags`).
        num_cpus: logical CPUs.
        root: ``<instance dir>/kr``.
    """
    from sandbox.procs import free_port

    temp = root / uid[:8]
    launch = ray_head_launch(temp, num_cpus=num_cpus, extra=flags)
    ports = {**launch.ports, "serve": free_port()}
    for flag in launch.cmd:
        if flag.startswith("--dashboard-agent-listen-port="):
            ports["agent"] = int(flag.split("=", 1)[1])
    pod = f"{name}-head-{uuid.uuid4().hex[:5]}"
    return Head(cluster=cluster, spec_hash=spec_hash, pod_name=pod, ports=ports, cmd=launch.cmd,
                env=launch.env or {}, log=temp / "head.log")
