"""``kaiops sandbox down`` leaves nothing of the node and network behind, even after SIGKILLed services.

Runs its own sandbox instance (``test-node-down``) so the shared test instance keeps running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from kubernetes import client, config

from sandbox import launcher
from sandbox.node import network
from sandbox.procs import alive
from tests.integration.node_support import NODE, wait_for

pytestmark = pytest.mark.integration
INSTANCE = "test-node-down"


def _sh(*cmd: str) -> str:
    return subprocess.run(list(cmd), capture_output=True, text=True).stdout


def _netns_members(inodes: set[int]) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                    out.append(int(entry))
            except OSError:
                pass
    return out


def _mentions(text: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().decode(errors="replace")
                if text in cmdline:
                    out.append(int(entry))
            except OSError:
                pass
    return out


def test_down_after_sigkill_removes_every_process_namespace_link_route_and_rule() -> None:
    nft_before = _sh("nft", "list", "ruleset")
    state = launcher.load(INSTANCE)
    a = network.allocate(INSTANCE)
    try:
        state = launcher.up(("node", "kube-proxy"), instance=INSTANCE)
        api = config.new_client_from_config(config_file=str(state.kubeconfig))
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "down"}})
        # no controller-manager in this small stack: what its ServiceAccount and root-CA publishers would make
        core.create_namespaced_service_account("down", {"metadata": {"name": "default"}})
        core.create_namespaced_config_map("down", {"metadata": {"name": "kube-root-ca.crt"},
                                                   "data": {"ca.crt": (state.dir / "pki" / "ca.crt").read_text()}})
        for name in ("a", "b"):
            core.create_namespaced_pod("down", {"metadata": {"name": name}, "spec": {
                "nodeName": NODE, "terminationGracePeriodSeconds": 30,
                # ignores SIGTERM and forks a grandchild in its own session: only the records can find it
                "containers": [{"name": "c", "image": "busybox", "command": [
                    "sh", "-c", "trap '' TERM; setsid sleep 1000 & while true; do sleep 1; done"]}]}})
        for name in ("a", "b"):
            wait_for(lambda n=name: core.read_namespaced_pod(n, "down").status.phase == "Running", 120, "Pod Running")
        pod_inodes = {int(v) for v in json.loads((state.dir / "node" / network.POD_NETNS_FILE).read_text()).values()}
        node_inode = os.stat(f"/run/netns/{a.netns}").st_ino
        assert len(pod_inodes) == 2 and _netns_members(pod_inodes)
        assert _netns_members({node_inode}), "kube-proxy runs in the node netns"
        assert a.host_link in _sh("ip", "-o", "link", "show")
        # the agent and the network service die without cleaning up
        for name in ("node", "net"):
            os.kill(state.services[name].pid, signal.SIGKILL)
        wait_for(lambda: not alive(state.services["node"].pid) and not alive(state.services["net"].pid), 10, "killed")
    finally:
        launcher.down(instance=INSTANCE)
    time.sleep(0.5)
    assert _netns_members(pod_inodes) == [], "a Pod process survived down"
    assert _netns_members({node_inode}) == [], "a process of the node netns survived down"
    assert _mentions(str(state.dir)) == [], "a process of the instance survived down"
    assert not os.path.exists(f"/run/netns/{a.netns}")
    assert a.netns not in _sh("ip", "netns", "list")
    assert a.host_link not in _sh("ip", "-o", "link", "show")
    assert f" {a.host_ip}/" not in _sh("ip", "-o", "-4", "addr", "show")
    assert _sh("ip", "route", "show", a.pod_cidr) == ""
    with open("/proc/self/mountinfo") as f:
        assert f"/run/netns/{a.netns}" not in f.read()
    # kube-proxy's nftables tables lived in the node netns; the host's ruleset never had any of ours
    ruleset = _sh("nft", "list", "ruleset")
    assert "kube-proxy" not in ruleset.replace(nft_before, "") and a.pod_cidr.rsplit(".", 2)[0] + "." not in ruleset
    assert not (state.dir / "net" / "record.json").exists()
