"""KubeRay rules on names, probes and environment variables of RayCluster, RayJob and RayService."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tasks.manifests.findings import Rule, Severity
from tasks.manifests.paths import child, mapping, sequence
from tasks.manifests.rules.base import RAY_KINDS, RAYCLUSTER, RAYJOB, RAYSERVICE, Hit, Manifest, rule
from tasks.manifests.rules.raylayout import RayGroup, groups

# ray-operator/controllers/ray/utils/constant.go: MaxRayClusterNameLength = 53; RayJob and RayService names
# get 6 characters appended for their RayCluster (GenerateRayClusterName), so 47.
MAX_NAME_LENGTH = {RAYCLUSTER: 53, RAYJOB: 47, RAYSERVICE: 47}
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

# Ports where Ray answers health checks (KubeRay pod.go initLivenessAndReadinessProbe):
# dashboard agent /api/local_raylet_healthz, dashboard /api/gcs_healthz (head), Serve proxy /-/healthz.
DASHBOARD_AGENT_PORT = 52365
DASHBOARD_PORT = 8265
SERVE_PORT = 8000


@rule(Rule.RAY_NAME_LENGTH, *RAY_KINDS)
def name_length(manifest: Manifest) -> Iterator[Hit]:
    """RayCluster names are at most 53 characters, RayJob/RayService at most 47.

    Source: KubeRay ray-operator/controllers/ray/utils/validation.go (``ValidateRayClusterMetadata``,
    ``ValidateRayJobMetadata``, ``ValidateRayServiceMetadata``) and utils/constant.go (``Max*NameLength``):
    head Service and Pod names are derived from it and must stay within 63 characters.
    """
    limit = MAX_NAME_LENGTH[(manifest.group, manifest.kind)]
    name = manifest.name
    if len(name) > limit:
        yield Hit(
            Severity.error,
            "metadata.name",
            f"{manifest.kind} name is {len(name)} characters; KubeRay refuses names over {limit}",
            f"name: {name[:limit].rstrip('-')}",
        )


@rule(Rule.RAY_NAME_DNS1035, *RAY_KINDS)
def name_dns1035(manifest: Manifest) -> Iterator[Hit]:
    """Ray CR names must be DNS-1035 labels (lower-case, start with a letter) because they name Services.

    Source: KubeRay ray-operator/controllers/ray/utils/validation.go (``validation.IsDNS1035Label``).
    """
    name = manifest.name
    generated = "name" not in mapping(manifest.doc.get("metadata"))
    if name and not generated and not _DNS1035.match(name):
        fixed = re.sub(r"[^-a-z0-9]", "-", name.lower()).strip("-")
        fixed = fixed if fixed[:1].isalpha() else f"ray-{fixed}"
        yield Hit(
            Severity.error,
            "metadata.name",
            f"{name!r} is not a DNS-1035 label (lower-case letters, digits and '-', starting with a letter)",
            f"name: {fixed}",
        )


def _health_ports(group: RayGroup, kind: tuple[str, str]) -> set[int]:
    params = group.start_params
    ports = {_int(params.get("dashboard-agent-listen-port"), DASHBOARD_AGENT_PORT)}
    if group.is_head:
        ports.add(_int(params.get("dashboard-port"), DASHBOARD_PORT))
    if kind == RAYSERVICE or not group.is_head:
        ports.add(SERVE_PORT)
    return ports


def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, str) and value.isdigit() else default


def _probe_port(probe: dict[str, Any], container: dict[str, Any]) -> int | str | None:
    for handler in ("httpGet", "tcpSocket", "grpc"):
        port = mapping(probe.get(handler)).get("port")
        if port is None:
            continue
        if isinstance(port, str) and not port.isdigit():
            named = [p for p in sequence(container.get("ports")) if mapping(p).get("name") == port]
            return mapping(named[0]).get("containerPort", port) if named else port
        return int(port)
    return None


@rule(Rule.RAY_PROBE_PORT, *RAY_KINDS)
def probe_port(manifest: Manifest) -> Iterator[Hit]:
    """Liveness/readiness probes on the Ray container must target a port where Ray serves health checks.

    Source: KubeRay ray-operator/controllers/ray/common/pod.go (``initLivenessAndReadinessProbe``: KubeRay
    injects exec probes against the dashboard agent 52365 ``/api/local_raylet_healthz`` and, on the head, the
    dashboard 8265 ``/api/gcs_healthz``; RayService workers also check the Serve proxy on 8000). A user
    probe replaces the injected one; a liveness probe on e.g. the metrics port 8080 restarts the head.
    """
    for group in groups(manifest):
        container = group.ray_container
        healthy = _health_ports(group, (manifest.group, manifest.kind))
        for field in ("livenessProbe", "readinessProbe"):
            probe = mapping(container.get(field))
            port = _probe_port(probe, container)
            if port is None or port in healthy:
                continue
            liveness = field == "livenessProbe"
            yield Hit(
                Severity.error if liveness else Severity.warning,
                child(group.ray_container_path, field),
                f"{field} on the {group.role} targets port {port}, where Ray serves no health check"
                + ("; failures will restart the Ray container" if liveness else ""),
                f"remove {field} and let KubeRay inject its own (it checks ports {sorted(healthy)})",
            )


# Environment variables KubeRay sets on the Ray container (ray-operator/controllers/ray/common/pod.go,
# setContainerEnvVars / setInitContainerEnvVars), with what to do instead.
# "appended" ones are added after the user's list, so for duplicates the operator's value wins.
OPERATOR_ENV: dict[str, str] = {
    "RAY_ADDRESS": "remove it: KubeRay sets it to the GCS address (127.0.0.1:<port> on the head) and a hand-set "
    "value redirects ray.init() and job submission; to move the GCS, change rayStartParams.port",
    "RAY_PORT": "remove it and set rayStartParams.port instead (KubeRay derives RAY_PORT from it)",
    "RAY_IP": "remove it: it is deprecated and KubeRay appends its own value on workers, which wins",
    "FQ_RAY_IP": "remove it: KubeRay appends the head Service FQDN on workers, which wins",
    "RAY_CLUSTER_NAME": "remove it: KubeRay appends it from the ray.io/cluster label, which wins",
    "RAY_CLOUD_INSTANCE_ID": "remove it: KubeRay appends the Pod name for the autoscaler",
    "RAY_NODE_TYPE_NAME": "remove it: KubeRay appends the group name for the autoscaler",
    "KUBERAY_GEN_RAY_START_CMD": "remove it: KubeRay appends the generated `ray start` command",
    "RAY_USAGE_STATS_EXTRA_TAGS": "remove it: KubeRay appends it on the head",
}


@rule(Rule.RAY_ENV_MANAGED, *RAY_KINDS)
def operator_managed_env(manifest: Manifest) -> Iterator[Hit]:
    """Environment variables that KubeRay sets itself are ignored or overridden when set by hand.

    Source: KubeRay ray-operator/controllers/ray/common/pod.go (``setContainerEnvVars``: RAY_CLUSTER_NAME,
    RAY_CLOUD_INSTANCE_ID, RAY_NODE_TYPE_NAME, KUBERAY_GEN_RAY_START_CMD, FQ_RAY_IP/RAY_IP on workers are
    appended unconditionally; RAY_PORT and RAY_ADDRESS are set unless present).
    """
    for group in groups(manifest):
        env = sequence(group.ray_container.get("env"))
        for i, entry in enumerate(env):
            name = mapping(entry).get("name")
            if name in OPERATOR_ENV:
                yield Hit(
                    Severity.warning,
                    f"{group.ray_container_path}.env[{i}].name",
                    f"{name} on the {group.role} is managed by KubeRay",
                    OPERATOR_ENV[name],
                )
