"""Shared fixtures. The sandbox is started once per test session by the same launcher as
``kaiops sandbox up`` (instance ``test``); whatever this session started is stopped when it ends."""

from __future__ import annotations

import contextlib
import multiprocessing.util
import os
import platform
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.sandbox_env import exported

os.environ.setdefault("KAIOPS_SANDBOX", "test")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


_RUNNING_BEFORE: set[str] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note which services of the test instance were already running (a developer's warm sandbox)."""
    from sandbox import launcher

    _RUNNING_BEFORE.update(s.name for s in launcher.status() if s.state != "stopped")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop every service this session started, whichever fixture started it (``KAIOPS_KEEP_SANDBOX=1`` keeps
    them), so a test run leaves no process behind."""
    if os.environ.get("KAIOPS_KEEP_SANDBOX"):
        return
    from sandbox import launcher

    started = tuple(s.name for s in launcher.status() if s.state != "stopped" and s.name not in _RUNNING_BEFORE)
    if started:
        launcher.down(names=started)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[dict[str, str]]:
    """Start (or reuse) the test sandbox; yield its environment (KUBECONFIG, AWS_ENDPOINT_URL, ...).

    The variables are also set in ``os.environ`` for the session, as ``eval "$(kaiops sandbox env)"`` would.
    """
    from sandbox import launcher

    launcher.up()
    with exported(launcher.env()) as env:
        yield env
    # services started here are stopped at the end of the session (pytest_sessionfinish)


@pytest.fixture(scope="session")
def dyn(sandbox: dict[str, str]):
    """A dynamic Kubernetes client for the sandbox apiserver (admin)."""
    from tasks import kube as kube_tasks

    return kube_tasks.connect(sandbox["KUBECONFIG"])


def _ray_clusters() -> set[tuple[str, str]] | None:
    """(namespace, name) of every RayCluster on the test sandbox's apiserver, or None when it is not running."""
    from sandbox import launcher
    from sandbox.procs import alive

    state = launcher.load()
    record = state.services.get("kube-apiserver")
    if record is None or not alive(record.pid) or not state.kubeconfig.exists():
        return None
    try:
        from tasks import kube

        items = kube.list_objects(kube.connect(str(state.kubeconfig)), "ray.io/v1", "RayCluster")
    except Exception:  # no CRD yet, the apiserver starting or stopping: nothing to clean
        return None
    return {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items}


@pytest.fixture(autouse=True, scope="module")
def _delete_ray_clusters_the_module_created(request: pytest.FixtureRequest) -> Iterator[None]:
    """RayClusters are workloads now: the real KubeRay operator starts a Ray head Pod for each (about a core
    while it starts). The RayClusters a test module created are deleted when it ends, as a user tears down,
    so that heads left by backup or RBAC tests do not load the machine for the rest of the suite. The
    operator and the garbage collector remove their Pods; nothing waits for that."""
    if "/unit/" in str(request.path):
        yield
        return
    before = _ray_clusters()
    yield
    after = _ray_clusters()
    if before is None or not after:
        return
    from sandbox import launcher
    from tasks import kube

    cluster = kube.resource_for(kube.connect(str(launcher.load().kubeconfig)), "ray.io/v1", "RayCluster")
    for namespace, name in sorted(after - before):
        with contextlib.suppress(Exception):  # already gone, or its namespace is being deleted
            cluster.delete(name=name, namespace=namespace)


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test under tests/unit that starts a process (subprocess, fork, spawn, multiprocessing) fails, naming
    where it belongs: ``unit`` means pure logic, no processes (DESIGN.md). One exception: the stdlib
    ``platform`` module's probes (``uname -p``, ``file``), which libraries run once at import (mlflow's
    telemetry, Prefect's vendored croniter) - not something a test starts."""
    if "/unit/" not in str(request.path):
        return
    original = subprocess.Popen._execute_child

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test marked unit started a process: move it to tests/integration")

    def popen_child(self: subprocess.Popen, *args: object, **kwargs: object) -> object:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == platform.__file__:
                return original(self, *args, **kwargs)
            frame = frame.f_back
        return refuse()

    monkeypatch.setattr(subprocess.Popen, "_execute_child", popen_child)
    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", refuse)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "spawnv", "spawnve", "execv", "execve"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)
