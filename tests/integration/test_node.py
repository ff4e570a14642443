"""The sandbox node agent runs real Pods: probes, restarts, logs, images, volumes, Pod networking.

No mocks: Pods are created on the real apiserver, bound to the agent's Node (``spec.nodeName``), and run as
host processes in their own namespaces; logs come through the apiserver's pods/log proxy from the agent's
kubelet API.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from sandbox import launcher
from sandbox.paths import binary
from tests.integration.node_support import (
    BASE,
    NODE,
    condition,
    logs,
    make_namespace,
    phase,
    pod,
    read,
    start,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api() -> Iterator[client.ApiClient]:
    yield from start(BASE)


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def ns(api: client.ApiClient) -> Iterator[str]:
    yield from make_namespace(api)


def test_pod_becomes_ready_through_its_readiness_probe(core: client.CoreV1Api, ns: str) -> None:
    script = "mkdir -p /www; (sleep 3; echo ok > /www/ready) & exec httpd -f -p 8080 -h /www"
    body = pod("web", [{"name": "web", "image": "busybox", "command": ["sh", "-c", script],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1,
                                           "failureThreshold": 1}}])
    t0 = time.monotonic()
    core.create_namespaced_pod(ns, body)
    running = wait_for(lambda: phase(core, ns, "web", "Running"), 90, "Pod Running")
    assert running == "Running"
    assert condition(read(core, ns, "web"), "Ready") == "False"  # /ready answers 404 for 3 s
    wait_for(lambda: condition(read(core, ns, "web"), "Ready") == "True", 90, "Pod Ready")
    assert time.monotonic() - t0 >= 3.0
    p = read(core, ns, "web")
    assert p["status"]["containerStatuses"][0]["ready"] is True
    assert condition(p, "ContainersReady") == "True" and condition(p, "PodReadyToStartContainers") == "True"
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=web").items
    assert any(e.reason == "Unhealthy" for e in events), [e.reason for e in events]
    ip = p["status"]["podIP"]
    with urllib.request.urlopen(f"http://{ip}:8080/ready", timeout=5) as resp:  # host -> Pod IP, as a kubelet
        assert resp.read() == b"ok\n"


def test_crashing_container_backs_off_and_previous_logs_show_its_output(core: client.CoreV1Api, ns: str) -> None:
    script = "n=$(cat /data/n 2>/dev/null || echo 0); echo attempt-$n; echo $((n + 1)) > /data/n; exit 3"
    body = pod("crash", [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                          "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
               volumes=[{"name": "data", "emptyDir": {}}])
    core.create_namespaced_pod(ns, body)

    def backing_off():
        st = (read(core, ns, "crash").get("status", {}).get("containerStatuses") or [{}])[0]
        waiting = st.get("state", {}).get("waiting") or {}
        return st if waiting.get("reason") == "CrashLoopBackOff" else None

    st = wait_for(backing_off, 120, "CrashLoopBackOff")
    assert st["restartCount"] >= 1
    assert st["lastState"]["terminated"]["exitCode"] == 3 and st["lastState"]["terminated"]["reason"] == "Error"
    assert "back-off" in st["state"]["waiting"]["message"]
    previous = logs(core, "crash", ns, container="c", previous=True)
    assert previous == f"attempt-{st['restartCount'] - 1}\n"
    # the same through kubectl, as a user types it
    out = subprocess.run([str(binary("kubectl")), "-n", ns, "logs", "crash", "--previous"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    assert out.startswith("attempt-")
    assert phase(core, ns, "crash", "Running")  # restartPolicy Always: a restarting Pod is Running


def test_unknown_image_is_err_image_pull_naming_the_catalog(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, pod("noimg", [{"name": "c", "image": "registry.example/none:1.0"}]))

    def pulled_failed():
        st = (read(core, ns, "noimg").get("status", {}).get("containerStatuses") or [{}])[0]
        waiting = st.get("state", {}).get("waiting") or {}
        return waiting if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff") else None

    waiting = wait_for(pulled_failed, 90, "ErrImagePull")
    assert "images.yaml" in waiting["message"] and "registry.example/none:1.0" in waiting["message"]
    assert phase(core, ns, "noimg", "Pending")
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=noimg").items
    assert any(e.reason == "Failed" and "images.yaml" in e.message for e in events)


def test_volumes_are_visible_inside_the_pod_only(core: client.CoreV1Api, ns: str) -> None:
    tag = uuid.uuid4().hex[:8]
    secret_value = f"not-on-the-host-{tag}"
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cfg"}, "data": {"greeting": f"hello-{tag}"}})
    core.create_namespaced_secret(ns, {"metadata": {"name": "sec"}, "stringData": {"password": secret_value}})
    cfg_path, sec_path = f"/etc/kaiops-node-test-{tag}", f"/var/run/kaiops-node-test-{tag}"
    script = f"cat {cfg_path}/greeting; echo; md5sum < {sec_path}/password; " \
             "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; sleep 300"
    body = pod("vols", [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                         "volumeMounts": [{"name": "cfg", "mountPath": cfg_path},
                                          {"name": "sec", "mountPath": sec_path, "readOnly": True}]}],
               volumes=[{"name": "cfg", "configMap": {"name": "cfg"}},
                        {"name": "sec", "secret": {"secretName": "sec"}}],
               terminationGracePeriodSeconds=1)
    core.create_namespaced_pod(ns, body)
    wait_for(lambda: phase(core, ns, "vols", "Running"), 90, "Pod Running")
    output = wait_for(lambda: logs(core, "vols", ns).count("\n") >= 3 and
                      logs(core, "vols", ns), 20, "Pod output")
    digest = hashlib.md5(secret_value.encode()).hexdigest()
    assert [line.split()[0] if i == 1 else line for i, line in enumerate(output.splitlines()[:3])] == \
        [f"hello-{tag}", digest, ns]
    # not on the host: neither the mount points nor the mounts nor the secret's bytes in the sandbox's files
    assert not Path(cfg_path).exists() and not Path(sec_path).exists()
    assert tag not in Path("/proc/self/mountinfo").read_text()
    node_files = launcher.load().dir / "node"  # the agent's state: Pod dirs, logs, records (etcd has it, of course)
    hits = subprocess.run(["grep", "-rl", "--", secret_value, str(node_files)], capture_output=True, text=True)
    assert hits.stdout == "", f"secret found on the host disk: {hits.stdout}"


def test_a_pod_reaches_another_by_ip(core: client.CoreV1Api, ns: str) -> None:
    server = pod("server", [{"name": "s", "image": "busybox",
                             "command": ["sh", "-c", "mkdir /www; hostname > /www/index.html; "
                                                     "exec httpd -f -p 8080 -h /www"],
                             "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}],
                 terminationGracePeriodSeconds=1)
    core.create_namespaced_pod(ns, server)
    wait_for(lambda: condition(read(core, ns, "server"), "Ready") == "True", 90, "server Ready")
    ip = read(core, ns, "server")["status"]["podIP"]
    # Debian's static busybox 1.35 wget segfaults with -q or -T; -O- prints the body, progress goes to stderr
    client_pod = pod("client", [{"name": "c", "image": "busybox",
                                 "command": ["sh", "-c", f"wget -O- http://{ip}:8080/ 2>/dev/null"]}],
                     restartPolicy="Never")
    core.create_namespaced_pod(ns, client_pod)
    wait_for(lambda: phase(core, ns, "client", "Succeeded", "Failed"), 90, "client finished")
    assert phase(core, ns, "client", "Succeeded"), logs(core, "client", ns)
    assert logs(core, "client", ns).strip() == "server"  # the server Pod's own hostname
    client_ip = read(core, ns, "client")["status"]["podIP"]
    assert client_ip != ip


def test_liveness_failure_runs_pre_stop_then_sigterm_and_restarts(core: client.CoreV1Api, ns: str) -> None:
    script = ("touch /tmp/alive; trap 'cat /data/marker; echo got-term; exit 0' TERM; "
              "(sleep 2; rm /tmp/alive) & while true; do sleep 0.2; done")
    body = pod("live", [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                         "livenessProbe": {"exec": {"command": ["cat", "/tmp/alive"]}, "periodSeconds": 1,
                                           "failureThreshold": 2},
                         "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo pre-stop > /data/marker"]}}},
                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
               volumes=[{"name": "data", "emptyDir": {}}], terminationGracePeriodSeconds=5)
    core.create_namespaced_pod(ns, body)

    def restarted():
        st = (read(core, ns, "live").get("status", {}).get("containerStatuses") or [{}])[0]
        return st if st.get("restartCount", 0) >= 1 else None

    st = wait_for(restarted, 120, "liveness restart")
    assert st["lastState"]["terminated"]["exitCode"] == 0  # its TERM trap exits 0
    assert logs(core, "live", ns, previous=True) == "pre-stop\ngot-term\n"
    core.delete_namespaced_pod("live", ns)
    wait_for(lambda: not [p for p in core.list_namespaced_pod(ns).items if p.metadata.name == "live"], 30,
             "Pod deleted by the node after its containers stopped")


def test_kubelet_metrics_carry_the_pods_cpu_and_memory(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, pod("busy", [{"name": "spin", "image": "busybox",
                                                 "command": ["sh", "-c", "while true; do :; done"]}],
                                       terminationGracePeriodSeconds=1))
    wait_for(lambda: phase(core, ns, "busy", "Running"), 90, "Pod Running")

    def series(path: str, name: str) -> float | None:
        text = core.connect_get_node_proxy_with_path(NODE, path, _preload_content=False).data.decode()
        for line in text.splitlines():
            if line.startswith(name + "{") and f'namespace="{ns}"' in line and 'pod="busy"' in line \
                    and 'container="spin"' in line:
                return float(line.split()[1])
        return None

    cpu = wait_for(lambda: (series("metrics/cadvisor", "container_cpu_usage_seconds_total") or 0) > 0.2 and
                   series("metrics/cadvisor", "container_cpu_usage_seconds_total"), 60, "CPU counted")
    assert cpu > 0.2
    assert (series("metrics/cadvisor", "container_memory_working_set_bytes") or 0) > 100_000
    assert (series("metrics/resource", "container_memory_working_set_bytes") or 0) > 100_000
    assert (series("metrics/resource", "container_cpu_usage_seconds_total") or 0) >= cpu


def test_pods_bound_to_other_nodes_are_left_alone(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, {"metadata": {"name": "elsewhere"}, "spec": {
        "nodeName": "a-node-the-agent-does-not-own",
        "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}]}})
    core.create_namespaced_pod(ns, pod("here", [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}],
                                       terminationGracePeriodSeconds=1))
    wait_for(lambda: phase(core, ns, "here", "Running"), 90, "own Pod Running")  # the agent is working meanwhile
    other = read(core, ns, "elsewhere")
    assert other["status"].get("phase") == "Pending" and not other["status"].get("containerStatuses")
    assert not other["status"].get("podIP")
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=elsewhere").items
    assert [e for e in events if e.source and e.source.component == "kubelet"] == []
    core.delete_namespaced_pod("elsewhere", ns, grace_period_seconds=0)
