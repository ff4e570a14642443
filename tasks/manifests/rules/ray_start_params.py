"""Rules for ``rayStartParams``: KubeRay turns each key/value into ``ray start --key=value``.

Source: KubeRay ray-operator/controllers/ray/common/pod.go (``generateRayStartCommand``, ``convertParamMap``:
``"true"``/``"false"`` become bare flags, everything else ``--key=value``; ``getResourcesMap`` trims quotes and
parses ``resources`` as a JSON object of numbers) and Ray python/ray/scripts/scripts.py (the ``ray start``
click options and their types, e.g. ``--memory``/``--object-store-memory`` are ``int`` bytes).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator

from tasks.manifests.findings import Rule, Severity
from tasks.manifests.paths import child
from tasks.manifests.rules.base import RAY_KINDS, Hit, Manifest, rule
from tasks.manifests.rules.raylayout import groups

# `ray start` options of Ray 2.60 (python/ray/scripts/scripts.py), by the type click parses them as.
INT_PARAMS = frozenset(
    {
        "port", "object-manager-port", "node-manager-port", "min-worker-port", "max-worker-port",
        "ray-client-server-port", "num-cpus", "num-gpus", "dashboard-port", "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port", "verbose",
    }
)  # fmt: skip
BYTES_PARAMS = frozenset({"memory", "object-store-memory", "system-reserved-memory"})
FLOAT_PARAMS = frozenset({"system-reserved-cpu"})
OTHER_PARAMS = frozenset(
    {
        "node-ip-address", "address", "node-name", "redis-username", "redis-password", "redis-shard-ports",
        "worker-port-list", "resources", "head", "include-dashboard", "dashboard-host", "block",
        "plasma-directory", "object-spilling-directory", "autoscaling-config", "no-redirect-output",
        "temp-dir", "system-config", "enable-object-reconstruction", "no-monitor", "tracing-startup-hook",
        "ray-debugger-external", "disable-usage-stats", "labels", "labels-file", "include-log-monitor",
        "enable-resource-isolation", "cgroup-path", "proxy-server-url", "log-style", "log-color",
    }
)  # fmt: skip
KNOWN_PARAMS = INT_PARAMS | BYTES_PARAMS | FLOAT_PARAMS | OTHER_PARAMS

_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGTPE]i?B?|[kmgtpe]i?b?)?\s*$")
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50, "E": 2**60}
_DECIMAL = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def _is_shell_reference(value: str) -> bool:
    """KubeRay passes values unquoted to bash, so ``$VAR`` is expanded at start; such values are not checked."""
    return value.lstrip("'\"").startswith("$")


def quantity_to_bytes(value: str) -> int | None:
    """Return the byte count of ``"8Gi"``/``"8G"``/``"8GB"``/``"1.5Gi"``, or None when it is not a quantity."""
    match = _QUANTITY.match(value)
    if not match:
        return None
    number, suffix = float(match.group(1)), match.group(2) or ""
    if not suffix:
        return int(number)
    unit = suffix[0].upper()
    table = _BINARY if len(suffix) > 1 and suffix[1] in "iI" else _DECIMAL
    return int(number * table[unit])


def _params(manifest: Manifest) -> Iterator[tuple[str, str, str]]:
    """Yield ``(path, key, value)`` for each string ``rayStartParams`` entry of every group."""
    for group in groups(manifest):
        for key, value in group.start_params.items():
            if isinstance(value, str):
                yield child(group.start_params_path, key), key, value


@rule(Rule.RAY_MEMORY_UNITS, *RAY_KINDS)
def memory_units(manifest: Manifest) -> Iterator[Hit]:
    """``memory``/``object-store-memory``/``system-reserved-memory`` must be integer bytes.

    Source: Ray python/ray/scripts/scripts.py (``--memory``/``--object-store-memory`` are ``type=int``); "8Gi"
    makes ``ray start`` exit with "is not a valid integer" and the pod crash-loops.
    """
    for path, key, value in _params(manifest):
        if key not in BYTES_PARAMS or _is_shell_reference(value) or value.strip().isdigit():
            continue
        size = quantity_to_bytes(value)
        fix = f'{key}: "{size}"' if size is not None else f'{key}: "<bytes as an integer>"'
        yield Hit(
            Severity.error,
            path,
            f"`ray start --{key}` takes an integer number of bytes, not {value!r}",
            fix + " (or leave it out: KubeRay derives memory from the container's memory limit)",
        )


@rule(Rule.RAY_NUMERIC, *RAY_KINDS)
def numeric(manifest: Manifest) -> Iterator[Hit]:
    """``num-cpus``, ``num-gpus`` and port options must be whole numbers in strings.

    Source: Ray python/ray/scripts/scripts.py (``--num-cpus``/``--num-gpus``/``--port``... are ``type=int``,
    ``--system-reserved-cpu`` is ``float``).
    """
    for path, key, value in _params(manifest):
        if _is_shell_reference(value):
            continue
        if key in INT_PARAMS and not value.strip().isdigit():
            whole = _whole(value)
            fix = f'{key}: "{whole}"' if whole is not None else f'{key}: "<whole number>"'
            yield Hit(Severity.error, path, f"`ray start --{key}` takes a whole number, not {value!r}", fix)
        elif key in FLOAT_PARAMS and _float(value) is None:
            yield Hit(Severity.error, path, f"`ray start --{key}` takes a number, not {value!r}", f'{key}: "1.0"')


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _whole(value: str) -> int | None:
    number = _float(value.strip())
    if number is None:
        return None
    return max(int(number), 1) if number > 0 else 0


@rule(Rule.RAY_RESOURCES_JSON, *RAY_KINDS)
def resources_json(manifest: Manifest) -> Iterator[Hit]:
    """``resources`` must be a JSON object of numbers, without ``CPU``/``GPU`` keys.

    Source: KubeRay pod.go ``getResourcesMap`` (trims ``'"`` and spaces, then ``json.Unmarshal`` into
    ``map[string]float64``); Ray scripts.py ``start`` rejects ``CPU``/``GPU`` in ``--resources``.
    """
    for path, key, value in _params(manifest):
        if key != "resources" or _is_shell_reference(value):
            continue
        text = value.strip("'\"` ")
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Hit(
                Severity.error,
                path,
                f"resources is not valid JSON ({exc.msg})",
                """resources: '{"custom_accelerator": 1}' (double-quoted keys, numeric values)""",
            )
            continue
        if not isinstance(parsed, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in parsed.values()
        ):
            yield Hit(
                Severity.error,
                path,
                "resources must be a JSON object whose values are numbers",
                """resources: '{"custom_accelerator": 1}'""",
            )
        elif {"CPU", "GPU"} & set(parsed):
            yield Hit(
                Severity.error,
                path,
                "Ray refuses CPU/GPU inside --resources",
                "use the num-cpus / num-gpus parameters (or container limits) for CPU and GPU",
            )


@rule(Rule.RAY_UNKNOWN_PARAM, *RAY_KINDS)
def unknown_param(manifest: Manifest) -> Iterator[Hit]:
    """Every ``rayStartParams`` key must be a ``ray start`` option (else "No such option" at start).

    Source: Ray python/ray/scripts/scripts.py (``ray start`` options, Ray 2.60); KubeRay pod.go
    ``convertParamMap`` (keys are passed as ``--key``).
    """
    for group in groups(manifest):
        for key in group.start_params:
            if key in KNOWN_PARAMS:
                continue
            normal = key.lstrip("-").replace("_", "-").lower()
            guess = normal if normal in KNOWN_PARAMS else None
            if guess is None:
                close = difflib.get_close_matches(normal, sorted(KNOWN_PARAMS), n=1, cutoff=0.6)
                guess = close[0] if close else None
            yield Hit(
                Severity.error,
                child(group.start_params_path, key),
                f"`ray start` has no option --{key}; the {group.role} would fail to start",
                f"use `{guess}`" if guess else "remove it (see `ray start --help` for the options)",
            )
