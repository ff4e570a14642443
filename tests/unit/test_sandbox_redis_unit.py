"""The sandbox Redis's configuration (sandbox/services/kuberay_redis.py), without starting it."""

from __future__ import annotations

import socket

import pytest

from sandbox.services.kuberay_redis import _config, ping

pytestmark = pytest.mark.unit


def test_redis_binds_loopback_with_a_password_and_keeps_nothing_on_disk() -> None:
    lines = _config(6390, "s3cr3t", "/tmp/x").splitlines()
    assert "bind 127.0.0.1" in lines and "port 6390" in lines and "protected-mode yes" in lines
    assert 'requirepass "s3cr3t"' in lines
    assert 'save ""' in lines and "appendonly no" in lines


def test_ping_is_false_when_nothing_listens() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert ping(port, "x", timeout=0.5) is False
