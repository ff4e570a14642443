"""The sandbox network (``sandbox/node/netd.py``): node netns, pod bridge, host veth + route, forwarders.

Started before the apiserver, whose ``--advertise-address`` is :func:`addresses`'s ``host_ip``. Healthy once
the plumbing exists and the forwarders serve (the process wrote its pid to ``net/healthy``). ``down`` (and a
``up`` after a crash) removes what ``net/record.json`` names, even when the process was SIGKILLed.
"""

from __future__ import annotations

import sys

from sandbox import fsguard
from sandbox.node import network
from sandbox.services.base import Launch, Service
from sandbox.state import SandboxState, ServiceRecord


def addresses(state: SandboxState) -> network.NetAddresses:
    """The instance's network addresses (allocated on first call; sticky per instance name).

    Returns a :class:`sandbox.node.network.NetAddresses` (``host_ip``, ``node_ip``, ``netns``, ``pod_cidr``,
    ``gateway``, ``service_cidr``, ``dns_ip``). Raises ValueError for an instance name unfit for link names.
    """
    return network.allocate(state.dir.name)


class Net(Service):
    name = "net"
    ready_timeout = 30.0

    def health_file(self, state: SandboxState):
        return network.net_dir(state.dir) / "healthy"

    def launch(self, state: SandboxState) -> Launch:
        self.cleanup(state)  # leftovers of a SIGKILLed predecessor
        health = self.health_file(state)
        fsguard.remove(health, health.parent)
        a = addresses(state)
        cmd = [sys.executable, "-m", "sandbox.node.netd", f"--instance={state.dir.name}",
               f"--instance-dir={state.dir}", f"--health-file={health}"]
        return Launch(cmd=cmd, url=f"net://{a.host_ip}", ports={})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        health = self.health_file(state)
        return health.exists() and health.read_text().strip() == str(record.pid)

    def cleanup(self, state: SandboxState) -> None:
        network.teardown(state.dir)

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        a = addresses(state)
        return {"KAIOPS_SANDBOX_HOST_IP": a.host_ip, "KAIOPS_SANDBOX_POD_CIDR": a.pod_cidr}
