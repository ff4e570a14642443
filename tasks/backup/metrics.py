"""Metrics about kaiops's own backups and drills, as a Prometheus text file (node-exporter textfile style).

Point node-exporter's ``--collector.textfile.directory`` at the metrics directory, or serve it; each
policy gets ``kaiops_backup_<policy>.prom`` and ``kaiops_drill_<policy>.prom``, written atomically
(temp file + rename, as the textfile collector requires). The last-success timestamp survives a failed run:
it is kept in a small JSON next to the ``.prom`` file.

Series (all gauges, label ``policy``):

- ``kaiops_backup_last_success_timestamp_seconds`` / ``kaiops_backup_last_run_timestamp_seconds``
- ``kaiops_backup_last_run_success`` (1/0), ``kaiops_backup_duration_seconds``, ``kaiops_backup_objects{kind}``,
  ``kaiops_backup_bytes``
- ``kaiops_drill_last_success_timestamp_seconds`` / ``kaiops_drill_last_run_timestamp_seconds``,
  ``kaiops_drill_last_run_success``, ``kaiops_drill_rto_seconds``, ``kaiops_drill_objects{state}``
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tasks.crds import cache_root


def metrics_dir(configured: str | None = None) -> Path:
    """``configured``, else ``$KAIOPS_METRICS_DIR``, else ``<kaiops cache>/metrics`` (created)."""
    path = Path(configured or os.environ.get("KAIOPS_METRICS_DIR") or cache_root() / "metrics")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(prefix: str, policy: str, values: dict[str, Any]) -> str:
    """Prometheus exposition text for ``values`` (``{"name": number}`` or ``{"name": {label_value: n}}``
    with the label name given as ``name|label``)."""
    lines: list[str] = []
    for key, value in sorted(values.items()):
        name, _, label = key.partition("|")
        metric = f"{prefix}_{name}"
        lines.append(f"# TYPE {metric} gauge")
        if isinstance(value, dict):
            for lv, v in sorted(value.items()):
                lines.append(f'{metric}{{policy="{_label(policy)}",{label}="{_label(str(lv))}"}} {float(v):g}')
        else:
            lines.append(f'{metric}{{policy="{_label(policy)}"}} {float(value):.3f}')
    return "\n".join(lines) + "\n"


def _write(directory: Path, prefix: str, policy: str, update: dict[str, Any], success: bool, now: float) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", policy)
    state_path = directory / f"{prefix}_{safe}.json"
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    state["last_run_timestamp_seconds"] = now
    state["last_run_success"] = 1 if success else 0
    if success:
        state["last_success_timestamp_seconds"] = now
        state.update(update)
    tmp = state_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(state_path)
    prom = directory / f"{prefix}_{safe}.prom"
    tmp = prom.with_suffix(".prom.tmp")
    tmp.write_text(render(prefix, policy, state))
    tmp.replace(prom)
    return prom


def record_backup(directory: Path, policy: str, *, success: bool, now: float, duration: float = 0.0,
                  counts: dict[str, int] | None = None, size: int = 0) -> Path:
    """Write the backup metrics of ``policy``; return the ``.prom`` path. ``now`` is Unix seconds."""
    update = {"duration_seconds": duration, "objects|kind": counts or {}, "bytes": size}
    return _write(directory, "kaiops_backup", policy, update, success, now)


def record_drill(directory: Path, policy: str, *, success: bool, now: float, rto: float = 0.0,
                 objects: dict[str, int] | None = None) -> Path:
    """Write the drill metrics of ``policy`` (RTO seconds; ``objects`` by state restored/ready/equal)."""
    update = {"rto_seconds": rto, "objects|state": objects or {}}
    return _write(directory, "kaiops_drill", policy, update, success, now)
