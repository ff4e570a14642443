"""Pure kubelet rules of the sandbox node agent (plain dicts, no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.node import network, podlogic

pytestmark = pytest.mark.unit

VALUES = {"venv": "/v", "python": "/py", "repo": "/r", "bin": "/b"}


def pod(**spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns1", "uid": "u1", "labels": {"app": "a", "tier": "web"}},
            "spec": {"nodeName": "n1", "containers": [], **spec},
            "status": {"podIP": "10.101.1.5", "podIPs": [{"ip": "10.101.1.5"}], "hostIP": "10.200.1.1"}}


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "x", "B": "y"}
    assert podlogic.expand("$(A)-$(B)", env) == "x-y"
    assert podlogic.expand("$(MISSING)", env) == "$(MISSING)"
    assert podlogic.expand("$$(A)", env) == "$(A)"
    assert podlogic.expand("$A $(A", env) == "$A $(A"


def test_command_and_args_against_entrypoint_and_cmd() -> None:
    image = podlogic.Image(ref="x", rootfs="host", entrypoint=("/ep",), cmd=("default",))
    env = {"N": "3"}
    assert podlogic.command_line({"name": "c"}, image, env) == ["/ep", "default"]
    assert podlogic.command_line({"name": "c", "args": ["a$(N)"]}, image, env) == ["/ep", "a3"]
    assert podlogic.command_line({"name": "c", "command": ["sh"]}, image, env) == ["sh"]  # CMD dropped
    assert podlogic.command_line({"name": "c", "command": ["sh"], "args": ["-c", "$(N)"]}, image, env) == \
        ["sh", "-c", "3"]
    with pytest.raises(ValueError, match="no command"):
        podlogic.command_line({"name": "c"}, podlogic.Image(ref="x", rootfs="host"), env)


def test_catalog_resolves_known_images_and_names_the_file_for_unknown() -> None:
    entries = podlogic.load_catalog()
    for ref in ("busybox", "busybox:1.36", "docker.io/library/busybox:latest", "python:3.11-slim",
                "rayproject/ray:2.60.0", "busybox@sha256:abc"):
        assert podlogic.resolve_image(ref, entries, VALUES).ref == ref
    py = podlogic.resolve_image("python:3.11-slim", entries, VALUES)
    assert py.env["PATH"].startswith("/v/bin:") and "/usr/bin/kubectl" in py.hide and "/v" in py.paths
    with pytest.raises(podlogic.CatalogError, match=r"images\.yaml"):
        podlogic.resolve_image("nginx:1.27", entries, VALUES)


def test_catalog_layout_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "images.yaml"
    bad.write_text("images:\n  - match: [x]\n    rootfs: docker\n")
    with pytest.raises(ValueError, match=r"images\.yaml: images\[0\]"):
        podlogic.load_catalog(bad)


def test_env_precedence_sources_and_expansion() -> None:
    p = pod()
    container = {
        "name": "c", "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "250m"}},
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"},
                    {"secretRef": {"name": "gone", "optional": True}}],
        "env": [
            {"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-$(CM_k)-$(KUBERNETES_SERVICE_HOST)"},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nokey", "optional": True}}},
        ],
    }
    image = podlogic.Image(ref="b", rootfs="busybox", env={"PATH": "/bin", "A": "from-image"})
    env = podlogic.container_env(p, container, image, services_env={"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
                                 configmaps={"cm": {"k": "v"}}, secrets={"s": {"pw": "hunter2"}, "gone": None},
                                 node_allocatable={"cpu": "2", "memory": "1Gi"})
    assert env["A"] == "x" and env["B"] == "x-v-10.96.0.1" and env["IP"] == "10.101.1.5"
    assert env["TIER"] == "web" and env["MEM"] == "256" and env["CPU"] == "2" and env["REQ"] == "250"
    assert env["PW"] == "hunter2" and "OPT" not in env and env["PATH"] == "/bin" and env["HOSTNAME"] == "p"


def test_missing_required_reference_is_a_config_error() -> None:
    image = podlogic.Image(ref="b", rootfs="busybox")
    c = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    with pytest.raises(podlogic.EnvError, match='secret "s" not found'):
        podlogic.container_env(pod(), c, image, services_env={}, configmaps={}, secrets={"s": None},
                               node_allocatable={})
    with pytest.raises(podlogic.EnvError, match="couldn't find key k in Secret ns1/s"):
        podlogic.container_env(pod(), c, image, services_env={}, configmaps={}, secrets={"s": {}},
                               node_allocatable={})


def test_service_links() -> None:
    svc = {"metadata": {"name": "my-db"}, "spec": {"clusterIP": "10.96.3.4",
                                                     "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}}
    env = podlogic.service_env([svc, {"metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": []}}])
    assert env["MY_DB_SERVICE_HOST"] == "10.96.3.4" and env["MY_DB_SERVICE_PORT_PG"] == "5432"
    assert env["MY_DB_PORT"] == "tcp://10.96.3.4:5432" and env["MY_DB_PORT_5432_TCP_ADDR"] == "10.96.3.4"
    assert not any(k.startswith("HEADLESS") for k in env)


def running(name="c"):
    return {"name": name, "state": {"running": {}}}


def term(code, name="c"):
    return {"name": name, "state": {"terminated": {"exitCode": code}}}


@pytest.mark.parametrize(("policy", "statuses", "phase"), [
    ("Always", [running()], "Running"),
    ("Always", [term(0)], "Running"),
    ("Never", [term(0), term(0, "d")], "Succeeded"),
    ("Never", [term(0), term(1, "d")], "Failed"),
    ("OnFailure", [term(1)], "Running"),
    ("OnFailure", [term(0)], "Succeeded"),
    ("Always", [{"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}], "Pending"),
    ("Always", [{"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 3}}}], "Running"),
])
def test_pod_phase(policy: str, statuses: list[dict], phase: str) -> None:
    assert podlogic.pod_phase(pod(restartPolicy=policy), statuses, True, False) == phase


def test_pod_phase_init() -> None:
    assert podlogic.pod_phase(pod(), [running()], False, False) == "Pending"
    assert podlogic.pod_phase(pod(restartPolicy="Never"), [], False, True) == "Failed"


def test_qos_class() -> None:
    best = pod(containers=[{"name": "c"}])
    guaranteed = pod(containers=[{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}])
    burstable = pod(containers=[{"name": "c", "resources": {"requests": {"cpu": "100m"}}}])
    assert [podlogic.qos_class(p) for p in (best, guaranteed, burstable)] == ["BestEffort", "Guaranteed", "Burstable"]


def test_dns_files() -> None:
    text = podlogic.resolv_conf(pod(dnsConfig={"options": [{"name": "edns0"}]}), "10.96.0.10")
    assert text.splitlines() == ["nameserver 10.96.0.10",
                                 "search ns1.svc.cluster.local svc.cluster.local cluster.local",
                                 "options ndots:5 edns0"]
    assert podlogic.resolv_conf(pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.2.3.4"]}), "x") == \
        "nameserver 1.2.3.4\n"
    hosts = podlogic.etc_hosts(pod(hostAliases=[{"ip": "10.0.0.9", "hostnames": ["a", "b"]}]), "10.101.1.5")
    assert "10.101.1.5\tp" in hosts and "10.0.0.9\ta b" in hosts


def test_backoff_doubles_to_five_minutes() -> None:
    assert [podlogic.backoff_seconds(n) for n in (1, 2, 3, 6, 10)] == [10, 20, 40, 300, 300]


def test_quantities() -> None:
    assert podlogic.quantity("500m") == podlogic.quantity("0.5")
    assert podlogic.quantity("1Gi") == 2**30
    with pytest.raises(ValueError):
        podlogic.quantity("1 GB")


def test_network_addresses_are_distinct_per_index(tmp_path: Path) -> None:
    alloc = tmp_path / "net-index.json"
    a = network.allocate("alpha", alloc, probe=False)
    b = network.allocate("beta", alloc, probe=False)
    assert network.allocate("alpha", alloc, probe=False) == a  # sticky
    assert a.index != b.index and a.host_ip != b.host_ip and a.pod_cidr != b.pod_cidr and a.netns != b.netns
    assert len(a.host_link) <= 15 and a.host_ip == f"10.200.{a.index}.1" and a.node_ip == f"10.200.{a.index}.2"
    assert a.node_pod_cidr(0) == f"10.{100 + a.index}.1.0/24" and a.node_pod_cidr(1) == f"10.{100 + a.index}.2.0/24"
    assert network.lookup("beta", alloc) == b and network.lookup("gamma", alloc) is None
    with pytest.raises(ValueError, match="instance name"):
        network.allocate("Bad_Name", alloc, probe=False)
