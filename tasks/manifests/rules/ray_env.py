"""Environment variables on Ray containers that look like Ray settings but that neither Ray nor KubeRay reads.

Ray reads ``RAY_*`` variables in two places: its Python code (``ray/_private/ray_constants.py``,
``ray/serve/_private/constants.py`` ... through ``os.environ``/``env_integer``/``env_bool``) and its C++ core,
where every ``RayConfig`` entry ``name`` of ``ray_config_def.h`` is read from ``RAY_<name>`` (case as
written, e.g. ``RAY_gcs_rpc_server_reconnect_timeout_s``). A misspelt or wrongly cased name is silently
ignored. The names Ray knows are listed in :mod:`.ray_env_known`, generated from the installed Ray package by
``python -m tasks.manifests.rules.ray_env`` (a unit test checks the list against the installed Ray); the ones
KubeRay reads or sets are :data:`KUBERAY_ENV` below.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from tasks.manifests.findings import Rule, Severity
from tasks.manifests.paths import mapping, sequence
from tasks.manifests.rules.base import RAY_KINDS, Hit, Manifest, rule
from tasks.manifests.rules.ray_env_known import RAY_ENV_NAMES, RAY_VERSION
from tasks.manifests.rules.raylayout import groups

KUBERAY_VERSION = "v1.6.2"
# KubeRay ray-operator v1.6.2: controllers/ray/utils/constant.go ("Use as container env variable", the
# RayJob submitter and autoscaler v2 variables, RAY_AUTH_*) and the other RAY_* literals of controllers/.
KUBERAY_ENV: frozenset[str] = frozenset({
    "KUBERAY_GEN_RAY_START_CMD", "RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_CLOUD_INSTANCE_ID",
    "RAY_CLUSTER_NAME", "RAY_CLUSTER_NAMESPACE", "RAY_DASHBOARD_ADDRESS", "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE",
    "RAY_ENABLE_K8S_TOKEN_AUTH", "RAY_HEAD_POD_NAME", "RAY_IP", "FQ_RAY_IP", "RAY_JOB_SUBMISSION_ID",
    "RAY_NODE_TYPE_NAME", "RAY_OBJECT_STORE_ALLOW_SLOW_STORAGE", "RAY_PORT", "RAY_REDIS_ADDRESS",
    "RAY_SERVE_KV_TIMEOUT_S", "RAY_USAGE_STATS_EXTRA_TAGS", "RAY_USAGE_STATS_KUBERAY_IN_USE",
    "RAY_enable_autoscaler_v2", "RAY_external_storage_namespace", "RAY_gcs_rpc_server_reconnect_timeout_s",
    "RAY_gcs_server_request_timeout_seconds", "RAY_redis_db_connect_retries",
    "RAY_redis_db_connect_wait_milliseconds", "RAY_timeout_ms_task_wait_for_death_info",
})
KNOWN: frozenset[str] = RAY_ENV_NAMES | KUBERAY_ENV
_BY_LOWER = {name.lower(): name for name in sorted(KNOWN)}
_LOOKS_LIKE_RAY = re.compile(r"^(ray|kuberay)_", re.IGNORECASE)


def closest(name: str) -> str | None:
    """Return the known Ray/KubeRay variable closest to ``name`` (case-insensitive), or None."""
    lower = name.lower()
    if lower in _BY_LOWER:
        return _BY_LOWER[lower]
    match = difflib.get_close_matches(lower, list(_BY_LOWER), n=1, cutoff=0.75)
    return _BY_LOWER[match[0]] if match else None


@rule(Rule.RAY_ENV_UNKNOWN, *RAY_KINDS)
def unknown_ray_env(manifest: Manifest) -> Iterator[Hit]:
    """A ``RAY_*`` variable on a Ray container that Ray and KubeRay never read is silently ignored.

    Source: the variable names Ray reads (Python ``os.environ``/``env_*`` literals and the C++ ``RayConfig``
    entries, read as ``RAY_<name>`` by ``ray/common/ray_config.h``), taken from the installed Ray package,
    and KubeRay's ray-operator/controllers/ray/utils/constant.go.
    """
    for group in groups(manifest):
        for i, entry in enumerate(sequence(group.ray_container.get("env"))):
            name = mapping(entry).get("name")
            if not isinstance(name, str) or not _LOOKS_LIKE_RAY.match(name) or name in KNOWN:
                continue
            suggestion = closest(name)
            message = f"neither Ray {RAY_VERSION} nor KubeRay {KUBERAY_VERSION} reads {name} (on the {group.role})"
            if suggestion:
                case = "; Ray's names are case-sensitive" if suggestion.lower() == name.lower() else ""
                message += f"; it is ignored{case}. The setting that exists is {suggestion}"
                fix = f"name: {suggestion}"
            else:
                message += "; it is ignored"
                fix = ("remove it, or if your own code reads it, rename it without the RAY_ prefix (Ray's settings: "
                       "ray/_private/ray_constants.py and RayConfig's ray_config_def.h)")
            yield Hit(Severity.warning, f"{group.ray_container_path}.env[{i}].name", message, fix)


def scan_ray_package(root: Path) -> set[str]:
    """Return every ``RAY_*`` variable name the Ray package at ``root`` can read.

    Python: quoted ``"RAY_..."`` literals outside ``tests`` directories. C++: NUL-terminated ``RAY_...``
    strings in the shared objects and binaries (``_raylet.so``, ``core/src/ray/gcs/gcs_server``, ``raylet``),
    which is where the ``RAY_<RayConfig name>`` names end up.
    """
    names: set[str] = set()
    literal = re.compile(r"""["'](RAY_[A-Za-z0-9_]*[A-Za-z0-9])["']""")
    for path in root.rglob("*.py"):
        if "tests" not in path.relative_to(root).parts:
            names |= set(literal.findall(path.read_text(encoding="utf-8", errors="ignore")))
    binary = re.compile(rb"\x00(RAY_[A-Za-z0-9_]*[A-Za-z0-9])\x00")
    native = [*root.rglob("*.so"), *(p for p in (root / "core" / "src" / "ray").rglob("*") if p.is_file())]
    for path in native:
        names |= {m.decode() for m in binary.findall(path.read_bytes())}
    return names


def _write_known(target: Path) -> None:
    import ray

    names = sorted(scan_ray_package(Path(ray.__file__).parent))
    body = "\n".join(f"    {n!r}," for n in names)
    target.write_text(
        '"""Environment variable names Ray reads, generated by ``python -m tasks.manifests.rules.ray_env`` from\n'
        f'the installed Ray {ray.__version__} (do not edit by hand)."""\n\n'
        f"RAY_VERSION = {ray.__version__!r}\n"
        f"RAY_ENV_NAMES: frozenset[str] = frozenset({{\n{body}\n}})\n",
        encoding="utf-8",
    )


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    _write_known(Path(__file__).with_name("ray_env_known.py"))
    sys.exit(0)
