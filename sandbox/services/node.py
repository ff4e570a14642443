"""The sandbox node agent (``sandbox/node/agent.py``): registers Nodes and runs the Pods bound to them.

Healthy once its Nodes are registered and its Pod watches run (it writes its pid to ``node/healthy``).
Pods are host processes in their own network/mount/UTS namespaces, not in the agent's process group:
``cleanup`` (run by ``down``) kills whatever is left in the Pod network namespaces the agent recorded.
"""

from __future__ import annotations

import json
import sys

from sandbox import fsguard
from sandbox.node import network
from sandbox.services.base import Launch, Service
from sandbox.state import SandboxState, ServiceRecord


class Node(Service):
    name = "node"
    needs = ("net", "kube-apiserver")
    ready_timeout = 180.0  # imports of the kubernetes client take a minute on a machine under load

    def health_file(self, state: SandboxState):
        return fsguard.claim(state.dir / "node") / "healthy"

    def launch(self, state: SandboxState) -> Launch:
        self.cleanup(state)
        health = self.health_file(state)
        fsguard.remove(health, health.parent)
        cmd = [sys.executable, "-m", "sandbox.node.agent", f"--instance-dir={state.dir}",
               f"--kubeconfig={state.kubeconfig}", f"--health-file={health}"]
        return Launch(cmd=cmd, url=f"https://{network.allocate(state.dir.name).host_ip}", ports={})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        health = self.health_file(state)
        return health.exists() and health.read_text().strip() == str(record.pid)

    def cleanup(self, state: SandboxState) -> None:
        node_dir = fsguard.claim(state.dir / "node")
        table = node_dir / network.POD_NETNS_FILE
        if table.exists():
            network.kill_in_netns({int(v) for v in json.loads(table.read_text()).values()})
            fsguard.remove(table, node_dir)
        pods = node_dir / "pods"
        if pods.exists():
            fsguard.remove(pods, node_dir)
