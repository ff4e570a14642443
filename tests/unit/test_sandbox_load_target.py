"""``kaiops sandbox load`` sends to the gateway with the InferenceService's host when that host does not resolve."""

from __future__ import annotations

import pytest

from sandbox.kserve.load import target

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("url", "gateway", "can_resolve", "want"), [
    # KServe Standard mode: http://<isvc>-<ns>.example.com resolves nowhere -> gateway + Host
    ("http://iris-ns.example.com", "http://127.0.0.1:4000", False, ("http://127.0.0.1:4000", "iris-ns.example.com")),
    ("http://iris-ns.example.com:8080", "http://127.0.0.1:4000/", False,
     ("http://127.0.0.1:4000", "iris-ns.example.com:8080")),
    # a URL that resolves (the emulator's loopback router), or no gateway running: the URL itself
    ("http://127.0.0.1:5000", "http://127.0.0.1:4000", True, ("http://127.0.0.1:5000", None)),
    ("http://iris-ns.example.com", None, False, ("http://iris-ns.example.com", None)),
])
def test_target(url, gateway, can_resolve, want) -> None:
    assert target(url, gateway, can_resolve) == want
