"""A real local Ray head (``ray start --head --block``); the Job Submission API is on its dashboard port.

Every Ray port is chosen free on 127.0.0.1, so several sandbox instances' heads live side by side.
Usage statistics are off: nothing leaves the machine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sandbox.paths import short_link
from sandbox.procs import free_port
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_USAGE_STATS_PROMPT_ENABLED": "0"}


def ray_head_launch(temp_dir: Path, num_cpus: int = 1, ports: dict[str, int] | None = None) -> Launch:
    """Return how to start a blocking Ray head on free loopback ports.

    Args:
        temp_dir: Ray's session directory root (keep the path short: Ray's socket paths must fit 107 bytes).
        num_cpus: logical CPUs the head advertises.
        ports: ports to use for ``gcs``, ``dashboard``, ``client``, ``metrics`` (others: free ones).

    Returns:
        A :class:`Launch` whose ``url`` is the dashboard (Job Submission API) and ``ports`` has
        ``gcs``, ``dashboard``, ``client``, ``metrics``.
    """
    ports = {role: (ports or {}).get(role) or free_port() for role in ("gcs", "dashboard", "client", "metrics")}
    temp_dir.mkdir(parents=True, exist_ok=True)
    ray = Path(sys.executable).with_name("ray")
    cmd = [
        str(ray), "start", "--head", "--block", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
        f"--port={ports['gcs']}",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={ports['dashboard']}",
        f"--ray-client-server-port={ports['client']}",
        f"--metrics-export-port={ports['metrics']}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--num-cpus={num_cpus}",
        f"--temp-dir={temp_dir}",
    ]
    # Job entrypoints run `python ...` from PATH: make that the interpreter Ray itself runs on.
    # A RAY_ADDRESS exported in the caller's shell (e.g. by `kaiops sandbox env`) must not point this head's
    # own `ray` commands at another cluster.
    env: dict[str, str | None] = {**RAY_ENV, "PATH": f"{ray.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                                  "RAY_ADDRESS": None}
    return Launch(cmd=cmd, url=f"http://127.0.0.1:{ports['dashboard']}", ports=ports, env=env)


class RayHead(Service):
    name = "ray"
    ready_timeout = 120.0

    def launch(self, state: SandboxState) -> Launch:
        ports = {role: self.port(state, role) for role in ("gcs", "dashboard", "client", "metrics")}
        return ray_head_launch(short_link(self.data_dir(state), "rh") / "t", num_cpus=2, ports=ports)

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/api/version")

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        """``RAY_ADDRESS``: the dashboard URL (Ray's job CLI, the Job Submission API);
        ``KAIOPS_RAY_INIT_ADDRESS``: the GCS address ``ray.init`` connects to (fan-out on ``RayTaskRunner``)."""
        return {"RAY_ADDRESS": record.url, "KAIOPS_RAY_INIT_ADDRESS": f"127.0.0.1:{record.ports['gcs']}"}
