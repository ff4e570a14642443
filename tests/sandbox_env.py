"""The sandbox for a block of tests: start only the services it needs, export their environment (KUBECONFIG,
AWS_*, PROMETHEUS_URL, ...), point Prefect at it, stop what it started.

:func:`services_fixture` is the one factory for the module-scoped ``env`` fixture of the e2e (and integration)
modules: each names the services it needs and which of them to stop afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@contextlib.contextmanager
def exported(values: dict[str, str]) -> Iterator[dict[str, str]]:
    """Put ``values`` into ``os.environ`` for the block and yield them; afterwards restore what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def sandbox_services(*names: str, stop: tuple[str, ...] | str = "all", export: bool = True
                     ) -> Iterator[dict[str, str]]:
    """Start (or reuse) the named sandbox services of ``$KAIOPS_SANDBOX``; yield their env (exported into
    ``os.environ`` for the block unless ``export`` is False).

    Args:
        stop: which services this context stops at the end, of those it started: ``"all"`` (every one,
            dependencies included) or the names (e.g. only the heavy ``kserve``). ``KAIOPS_KEEP_SANDBOX``
            keeps them all.
    """
    from sandbox import launcher

    already = {s.name for s in launcher.status() if s.state == "healthy"}
    launcher.up(names)
    try:
        with exported(launcher.env()) if export else contextlib.nullcontext(launcher.env()) as env:
            yield env
    finally:
        candidates = launcher._with_dependencies(names) if stop == "all" else stop
        started = tuple(n for n in candidates if n not in already)
        if started and not os.environ.get("KAIOPS_KEEP_SANDBOX"):
            launcher.down(names=started)


@contextlib.contextmanager
def prefect_api(url: str) -> Iterator[None]:
    """Point this process's Prefect client at ``url`` (Prefect reads its settings once, at import)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


def services_fixture(*names: str, stop: tuple[str, ...] | str = (), prefect: bool = False, export: bool = True
                     ) -> Callable[..., Any]:
    """A module-scoped ``env`` fixture: :func:`sandbox_services` of ``names`` (``stop``: see there; default
    none - the session's end stops what the session started), with this process's Prefect client pointed at
    the sandbox's Prefect server when ``prefect``. Use as ``env = services_fixture("kube-apiserver", "s3")``."""

    @pytest.fixture(scope="module")
    def env() -> Iterator[dict[str, str]]:
        with contextlib.ExitStack() as stack:
            values = stack.enter_context(sandbox_services(*names, stop=stop, export=export))
            if prefect:
                stack.enter_context(prefect_api(values["PREFECT_API_URL"]))
            yield values

    return env
