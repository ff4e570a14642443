"""How KubeRay turns a group's ``rayStartParams`` into the ``ray start`` command, and how the sandbox adapts it.

Source: KubeRay v1.7 ray-operator/controllers/ray/common/pod.go:
- ``setMissingRayStartParams``: head gets ``dashboard-host=0.0.0.0`` unless set; ``metrics-export-port=8080``
  unless set; ``block=true`` always (it overrides the user's value); ``dashboard-agent-listen-port=52365`` unless set.
- ``generateRayStartCommand``: ``num-cpus`` from the container CPU limit (else request) as ``Quantity.Value()``
  (rounded up), ``memory`` from the memory limit in bytes, ``num-gpus`` from a ``*gpu`` limit; then
  ``ray start --head`` + ``convertParamMap``.
- ``convertParamMap``: keys sorted; a value ``true``/``false`` (any case) becomes a bare ``--key`` (or nothing for
  false), except ``log-color``, ``include-dashboard``, ``include-log-monitor`` which keep ``--key=value``;
  everything else ``--key=value``. The result runs in ``bash -c``, so the sandbox splits it with :mod:`shlex`
  (quote removal as bash does; no variable expansion).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from configs.ray_cluster import parse_quantity, quantity_value

DEFAULT_METRICS_PORT = 8080
DEFAULT_DASHBOARD_AGENT_LISTEN_PORT = 52365
EXPLICIT_BOOLEAN_OPTIONS = ("log-color", "include-dashboard", "include-log-monitor")

# Parameters the sandbox must choose itself, because every Ray head on this machine shares 127.0.0.1: the
# sandbox's ray_head_launch sets each to a free port / loopback / a short temp dir. A user value is dropped
# (not an error: in a pod these are private to the pod's network namespace and filesystem) and reported.
SANDBOX_OWNED = {
    "port": "GCS port: a free loopback port (status.endpoints.gcs-server)",
    "dashboard-port": "a free loopback port (status.endpoints.dashboard)",
    "ray-client-server-port": "a free loopback port (status.endpoints.client)",
    "metrics-export-port": "a free loopback port (status.endpoints.metrics)",
    "dashboard-agent-listen-port": "a free loopback port",
    "dashboard-agent-grpc-port": "a free loopback port",
    "runtime-env-agent-port": "a free loopback port",
    "node-manager-port": "a free loopback port",
    "object-manager-port": "a free loopback port",
    "min-worker-port": "Ray's default worker port range",
    "max-worker-port": "Ray's default worker port range",
    "worker-port-list": "Ray's default worker port range",
    "node-ip-address": "127.0.0.1",
    "dashboard-host": "127.0.0.1 (nothing in the sandbox listens beyond loopback)",
    "temp-dir": "<instance dir>/kr/<uid[:8]> (short: Ray's socket paths must fit 107 bytes)",
    "address": "heads start their own GCS",
    "block": "always --block (as KubeRay forces)",
    "head": "always --head",
}


def complete_params(
    params: Mapping[str, str], resources: Mapping[str, Any], *, head: bool = True
) -> dict[str, str]:
    """Return ``params`` as KubeRay completes them for a head (or worker) container.

    Args:
        params: the group's ``rayStartParams`` (strings).
        resources: the Ray container's ``resources`` (``limits``/``requests`` of quantities).
        head: head group (adds ``dashboard-host``) or worker group.

    Returns:
        A new map with the parameters KubeRay adds (``num-cpus``, ``memory``, ``num-gpus``, ``block``,
        ``metrics-export-port``, ``dashboard-agent-listen-port``, ``dashboard-host`` on the head).

    Raises:
        ValueError: a container quantity is not parseable (the apiserver would have refused it).
    """
    out = {str(k): str(v) for k, v in params.items()}
    if head:
        out.setdefault("dashboard-host", "0.0.0.0")
    out.setdefault("metrics-export-port", str(DEFAULT_METRICS_PORT))
    out["block"] = "true"
    out.setdefault("dashboard-agent-listen-port", str(DEFAULT_DASHBOARD_AGENT_LISTEN_PORT))
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    if "num-cpus" not in out:
        cpu = limits.get("cpu") if limits.get("cpu") not in (None, "0", 0) else requests.get("cpu")
        if cpu is not None and parse_quantity(cpu) > 0:
            out["num-cpus"] = str(quantity_value(cpu))
    if "memory" not in out and limits.get("memory") is not None and parse_quantity(limits["memory"]) > 0:
        out["memory"] = str(quantity_value(limits["memory"]))
    if "num-gpus" not in out:
        for key in sorted(limits):
            if key.endswith("gpu") and parse_quantity(limits[key]) > 0:
                out["num-gpus"] = str(quantity_value(limits[key]))
                break
    return out


def convert_param_map(params: Mapping[str, str]) -> str:
    """KubeRay's ``convertParamMap``: the flag string appended to ``ray start`` (keys sorted)."""
    flags = []
    for key in sorted(params):
        value = params[key]
        if value.lower() in ("true", "false") and key not in EXPLICIT_BOOLEAN_OPTIONS:
            if value.lower() == "true":
                flags.append(f" --{key} ")
        else:
            flags.append(f" --{key}={value} ")
    return "".join(flags)


def head_command(params: Mapping[str, str], resources: Mapping[str, Any]) -> str:
    """The command KubeRay would run in the head container (``ray start --head ...``), as one string."""
    return f"ray start --head {convert_param_map(complete_params(params, resources, head=True))}"


def sandbox_flags(params: Mapping[str, str], resources: Mapping[str, Any]) -> tuple[list[str], int, list[str]]:
    """Turn a head group's parameters into flags for :func:`sandbox.services.ray.ray_head_launch`.

    Returns:
        ``(extra_flags, num_cpus, dropped)``: the flags to append (user values, split as bash would),
        the ``num-cpus`` to pass (1 when absent or not a number: the flag in ``extra`` then still makes
        ``ray start`` fail as it would in a pod) and the parameter names replaced by sandbox choices.

    Raises:
        ValueError: the parameters cannot be split as a shell would (an unbalanced quote); in a pod
            bash would fail the same way.
    """
    full = complete_params(params, resources, head=True)
    dropped = sorted(k for k in full if k in SANDBOX_OWNED and k in params)
    kept = {k: v for k, v in full.items() if k not in SANDBOX_OWNED}
    extra = shlex.split(convert_param_map(kept))
    try:
        num_cpus = int(kept.get("num-cpus", "1"))
    except ValueError:
        num_cpus = 1
    return extra, num_cpus, dropped
