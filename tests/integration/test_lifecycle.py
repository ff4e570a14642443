"""``up`` is safe to call twice and ``down`` leaves no process and no listener behind."""

from __future__ import annotations

import os
import signal

import pytest

from sandbox import launcher, procs
from sandbox.procs import alive, port_open

pytestmark = pytest.mark.integration

SERVICES = ("kube-apiserver", "s3", "gcs")  # etcd and net (its advertised address) come with the apiserver


def test_up_twice_then_down_leaves_nothing_behind() -> None:
    instance = "lifecycle"
    try:
        first = launcher.up(SERVICES, instance=instance)
        pids = {n: r.pid for n, r in first.services.items()}
        assert set(pids) == {"etcd", "net", "kube-apiserver", "s3", "gcs"}

        second = launcher.up(SERVICES, instance=instance)
        assert {n: r.pid for n, r in second.services.items()} == pids, "a second up must not restart anything"

        ports = [p for r in second.services.values() for p in r.ports.values()]
        assert all(port_open(p) for p in (second.services["s3"].ports["http"], second.services["gcs"].ports["http"]))

        # A service that died comes back at the same address, so exported variables stay valid.
        s3_url = second.services["s3"].url
        os.kill(second.services["s3"].pid, signal.SIGKILL)
        procs.wait_until(lambda: not alive(pids["s3"]), 10, "s3 gone")
        third = launcher.up(("s3",), instance=instance)
        assert third.services["s3"].pid != pids["s3"] and third.services["s3"].url == s3_url
        pids = {n: r.pid for n, r in third.services.items()}
    finally:
        stopped = launcher.down(instance=instance)
    assert set(stopped) == {"etcd", "net", "kube-apiserver", "s3", "gcs"}
    assert not any(alive(pid) for pid in pids.values())
    assert not [p for p in ports if port_open(p)]
    assert launcher.load(instance).services == {}
