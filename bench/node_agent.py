"""Benchmark: what the node agent and the sandbox network cost, side by side with a baseline in the same run.

1. Start time: on a fresh instance ``--instance`` (default ``bench-node``), ``sandbox up`` of the control
   plane (etcd, net, kube-apiserver, controller-manager, scheduler: the baseline), then of the ``node``
   service on top; prints both and the ratio (stack with node / stack without).
2. Idle memory: VmRSS of the node agent and the net process with no Pod, and of the agent with ``--pods``
   idle busybox Pods running.
3. Pod start latency: create -> Ready for a busybox Pod with an httpGet readiness probe (periodSeconds 1),
   against create -> Running of the same Pod without a probe (the baseline), median of ``--repeat``.
4. ``sandbox down`` of the instance (timed), which removes everything again.

Run: ``.venv/bin/python bench/node_agent.py [--repeat 5] [--pods 5]``. Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client, config

from sandbox import launcher


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pod_body(name: str, probe: bool) -> dict:
    c = {"name": "web", "image": "busybox",
         "command": ["sh", "-c", "mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www"]}
    if probe:
        c["readinessProbe"] = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    return {"metadata": {"name": name}, "spec": {"nodeName": "sandbox-node", "terminationGracePeriodSeconds": 1,
                                                  "containers": [c]}}


def wait(check, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instance", default="bench-node")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pods", type=int, default=5)
    args = parser.parse_args()
    launcher.down(instance=args.instance)
    try:
        t0 = time.monotonic()
        launcher.up(("kube-controller-manager", "kube-scheduler"), instance=args.instance)
        base = time.monotonic() - t0
        t0 = time.monotonic()
        state = launcher.up(("node",), instance=args.instance)
        node_extra = time.monotonic() - t0
        print(f"start: etcd+net+apiserver+controller-manager+scheduler {base:.1f} s "
              f"| + node {base + node_extra:.1f} s "
              f"(node alone {node_extra:.1f} s) | ratio {(base + node_extra) / base:.2f}")
        agent, net = state.services["node"].pid, state.services["net"].pid
        time.sleep(3)
        print(f"idle RSS: node agent {rss_mib(agent):.0f} MiB, net {rss_mib(net):.0f} MiB")
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(state.kubeconfig)))
        core.create_namespace({"metadata": {"name": "bench"}})
        wait(lambda: core.list_namespaced_service_account("bench").items)  # made by the controller-manager

        def latency(name: str, probe: bool) -> float:
            t = time.monotonic()
            core.create_namespaced_pod("bench", pod_body(name, probe))

            def done() -> bool:
                st = core.read_namespaced_pod(name, "bench").status
                if probe:
                    return any(c.type == "Ready" and c.status == "True" for c in st.conditions or [])
                return st.phase == "Running"

            wait(done)
            return time.monotonic() - t

        ready, running = [], []
        for i in range(args.repeat):
            running.append(latency(f"plain-{i}", False))
            ready.append(latency(f"probe-{i}", True))
        r, b = statistics.median(ready), statistics.median(running)
        print(f"pod start (median of {args.repeat}): create->Running without probe {b:.2f} s | "
              f"create->Ready with httpGet readiness {r:.2f} s | ratio {r / b:.2f}")
        print(f"RSS of the node agent with {2 * args.repeat} Pods running: {rss_mib(agent):.0f} MiB")
    finally:
        t0 = time.monotonic()
        launcher.down(instance=args.instance)
        print(f"down: {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
