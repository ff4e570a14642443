"""Rules for the Ray container's ports versus the ports Ray really listens on.

Source: KubeRay ray-operator/controllers/ray/common/service.go (``getServicePorts``: the head Service takes the
head container's ports; only when that list is empty does it use the defaults gcs-server 6379, dashboard 8265,
client 10001, serve 8000; metrics 8080 is always added) and utils/constant.go (port names and numbers).
KubeRay and its clients find a port by *name* (``FindContainerPort(container, "dashboard", 8265)``), so the
name must sit on the port Ray really uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasks.manifests.findings import Rule, Severity
from tasks.manifests.paths import child, sequence
from tasks.manifests.rules.base import RAY_KINDS, RAYSERVICE, Hit, Manifest, rule
from tasks.manifests.rules.raylayout import RayGroup, groups, head_group

# port name -> (default number, rayStartParams key that moves it)
WELL_KNOWN_PORTS: dict[str, tuple[int, str | None]] = {
    "gcs-server": (6379, "port"),
    "dashboard": (8265, "dashboard-port"),
    "client": (10001, "ray-client-server-port"),
    "serve": (8000, None),
    "metrics": (8080, "metrics-export-port"),
}


def expected_ports(group: RayGroup) -> dict[str, int]:
    """Return ``{port name: number Ray listens on}`` for a group, honouring ``rayStartParams`` overrides."""
    params = group.start_params
    out: dict[str, int] = {}
    for name, (default, param) in WELL_KNOWN_PORTS.items():
        value = params.get(param) if param else None
        out[name] = int(value) if isinstance(value, str) and value.isdigit() else default
    return out


def _ports(group: RayGroup) -> Iterator[tuple[str, dict[str, Any]]]:
    path = child(group.ray_container_path, "ports")
    for i, port in enumerate(sequence(group.ray_container.get("ports"))):
        if isinstance(port, dict):
            yield f"{path}[{i}]", port


@rule(Rule.RAY_PORT_NAME, *RAY_KINDS)
def name_mismatch(manifest: Manifest) -> Iterator[Hit]:
    """A well-known port name (dashboard, client, gcs-server, serve, metrics) must sit on Ray's port number.

    Source: KubeRay service.go/utils ``FindContainerPort`` (ports are looked up by name); naming 10001
    ``dashboard`` sends the Job Submission client to the Ray client port and hides the real dashboard.
    """
    for group in groups(manifest):
        expected = expected_ports(group)
        by_number = {number: name for name, number in expected.items()}
        for path, port in _ports(group):
            name, number = port.get("name"), port.get("containerPort")
            if name not in expected or not isinstance(number, int) or expected[name] == number:
                continue
            real = by_number.get(number)
            also = f"; {number} is Ray's {real} port" if real else ""
            yield Hit(
                Severity.error,
                child(path, "name"),
                f"port {number} is named {name!r} but Ray serves {name} on {expected[name]}{also}",
                f"name: {real}" if real else f"containerPort: {expected[name]}",
            )


@rule(Rule.RAY_PORT_DUPLICATE, *RAY_KINDS)
def duplicate(manifest: Manifest) -> Iterator[Hit]:
    """Each containerPort/protocol and each port name appears once in the Ray container.

    Source: Kubernetes pkg/apis/core/validation/validation.go (``validateContainerPorts``: port names must be
    unique in a Pod) and KubeRay service.go (the head Service is built from these ports; duplicates collide).
    """
    for group in groups(manifest):
        seen_numbers: dict[tuple[Any, Any], str] = {}
        seen_names: dict[str, str] = {}
        for path, port in _ports(group):
            key = (port.get("containerPort"), port.get("protocol", "TCP"))
            if key in seen_numbers:
                yield Hit(
                    Severity.error,
                    child(path, "containerPort"),
                    f"containerPort {key[0]} is already declared at {seen_numbers[key]}",
                    "remove the duplicate entry",
                )
            seen_numbers.setdefault(key, path)
            name = port.get("name")
            if isinstance(name, str):
                if name in seen_names:
                    yield Hit(
                        Severity.error,
                        child(path, "name"),
                        f"port name {name!r} is already used at {seen_names[name]}",
                        "give each port a unique name",
                    )
                seen_names.setdefault(name, path)


@rule(Rule.RAY_PORT_MISSING, *RAY_KINDS)
def default_missing(manifest: Manifest) -> Iterator[Hit]:
    """A custom head port list replaces KubeRay's defaults; it should still name the ports clients use.

    Source: KubeRay service.go ``getServicePorts`` (user ports replace the defaults; only ``metrics`` is
    added back). Without ``dashboard`` the Job Submission API and RayJob submitter have no port, without
    ``client`` ``ray.init("ray://...")`` fails, without ``gcs-server`` the GCS is not on the Service; for a
    RayService, without ``serve`` the serve Service has no port.
    """
    head = head_group(manifest)
    ports = [p for _, p in _ports(head)] if head else []
    if not head or not ports:
        return
    expected = expected_ports(head)
    names = {p.get("name") for p in ports}
    needed = ["gcs-server", "dashboard", "client"] + (["serve"] if manifest.kind == RAYSERVICE[1] else [])
    for name in needed:
        if name not in names:
            yield Hit(
                Severity.warning,
                child(head.ray_container_path, "ports"),
                f"the head port list has no {name!r} port; it replaces KubeRay's defaults, so the head "
                f"Service will not expose {name} ({expected[name]})",
                f"add `- name: {name}` with `containerPort: {expected[name]}` (or remove the whole list)",
            )
