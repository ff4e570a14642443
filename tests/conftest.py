"""Shared fixtures. The sandbox is started once per test session by the same launcher as
``kaiops sandbox up`` (instance ``test``), and stopped at the end if this session started it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("KAIOPS_SANDBOX", "test")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[dict[str, str]]:
    """Start (or reuse) the test sandbox; yield its environment (KUBECONFIG, AWS_ENDPOINT_URL, ...).

    The variables are also set in ``os.environ`` for the session, as ``eval "$(kaiops sandbox env)"`` would.
    """
    from sandbox import launcher

    already = {s.name for s in launcher.status() if s.state == "healthy"}
    launcher.up()
    env = launcher.env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    started = tuple(s for s in launcher.DEFAULT_SERVICES if s not in already)
    if started and not os.environ.get("KAIOPS_KEEP_SANDBOX"):
        launcher.down(names=started)


@pytest.fixture(scope="session")
def dyn(sandbox: dict[str, str]):
    """A dynamic Kubernetes client for the sandbox apiserver (admin)."""
    from tasks import kube as kube_tasks

    return kube_tasks.connect(sandbox["KUBECONFIG"])
