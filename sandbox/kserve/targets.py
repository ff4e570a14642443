"""Prometheus file-based service discovery for the sandbox KServe.

The Prometheus sandbox service reads ``<instance>/prometheus/targets/*.json`` every 5 s. This module keeps
``kserve-*.json`` files there: one for the routers' queue-proxy metrics, one per model-server revision (KServe's
``request_predict_seconds``). Files are written atomically (temp file + rename) so Prometheus never reads half
a file, and removed when their revision stops.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

PREFIX = "kserve-"


def targets_dir(instance_dir: Path) -> Path:
    """``<instance>/prometheus/targets`` (created)."""
    path = instance_dir / "prometheus" / "targets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file(directory: Path, key: str) -> Path:
    return directory / f"{PREFIX}{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.json"


def write(directory: Path, key: str, address: str, labels: dict[str, str]) -> Path:
    """Write one target group ``[{"targets": [address], "labels": labels}]`` as ``kserve-<key>.json``."""
    path = _file(directory, key)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": labels}], indent=1))
    os.replace(tmp, path)
    return path


def remove(directory: Path, key: str) -> None:
    """Delete ``kserve-<key>.json`` if present."""
    _file(directory, key).unlink(missing_ok=True)


def clear(directory: Path) -> None:
    """Delete every ``kserve-*.json`` (controller start: nothing of a previous run is alive)."""
    for path in directory.glob(f"{PREFIX}*.json"):
        path.unlink(missing_ok=True)


def revision_labels(namespace: str, isvc: str, revision: str) -> dict[str, str]:
    """Labels for a model-server target, shaped like a KServe pod scrape in a cluster whose relabelling maps the
    pod labels ``serving.knative.dev/revision`` to ``revision_name`` (what ``configs/canary/model-server.yaml``
    selects on) and ``serving.kserve.io/inferenceservice`` to ``inferenceservice``."""
    return {"namespace": namespace, "inferenceservice": isvc, "revision_name": revision,
            "component": "predictor", "job_kind": "kserve-model-server"}
