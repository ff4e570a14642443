"""Shared helpers of the node-agent integration tests: a sandbox with the node, a namespace, waiting on Pods."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client, config

from sandbox import launcher
from tests.sandbox_env import exported

NODE = "sandbox-node"
BASE = ("node", "kube-controller-manager", "kube-scheduler")


def start(names: tuple[str, ...]) -> Iterator[client.ApiClient]:
    """Start ``names`` (and what they need) on the test instance; yield an API client (admin)."""
    launcher.up(names)
    with exported(launcher.env()) as env:
        yield config.new_client_from_config(config_file=env["KUBECONFIG"])


def make_namespace(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"node-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    # the ServiceAccount controller creates "default"; Pods are refused until it exists
    wait_for(lambda: core.list_namespaced_service_account(name).items, 30, "default ServiceAccount")
    yield name
    core.delete_namespace(name)


def wait_for(check: Callable[[], object], timeout: float, what: str, interval: float = 0.3):
    """Call ``check`` until it returns something truthy; return it. Fails the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what}: not true after {timeout:.0f}s (last: {last!r})")


def pod(name: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODE, "containers": containers, **spec}}


def read(core: client.CoreV1Api, ns: str, name: str) -> dict:
    return core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, ns))


def condition(p: dict, type_: str) -> str | None:
    return next((c["status"] for c in p.get("status", {}).get("conditions") or [] if c["type"] == type_), None)


def phase(core: client.CoreV1Api, ns: str, name: str, *phases: str) -> str | None:
    current = read(core, ns, name).get("status", {}).get("phase")
    return current if current in phases else None


def logs(core: client.CoreV1Api, name: str, ns: str, **kw) -> str:
    """``kubectl logs`` through the apiserver's pods/log (the client's own str decoding mangles text/plain)."""
    resp = core.read_namespaced_pod_log(name, ns, _preload_content=False, **kw)
    return resp.data.decode()
