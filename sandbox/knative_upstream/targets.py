"""Prometheus targets for every revision Pod's queue-proxy: ``python -m sandbox.knative_upstream.targets``.

The sandbox's Prometheus (Debian's, no Kubernetes service discovery) reads file-SD targets; this process does
what a cluster's ``kubernetes_sd_configs`` pod role with Knative's relabelling does: it watches the Pods that
carry ``serving.knative.dev/revision`` and writes one target per Running Pod with an IP,
``<podIP>:9091`` (the queue-proxy's ``http-usermetric`` port, pkg/networking/constants.go
``UserQueueMetricsPort``), labelled ``namespace``, ``pod`` and ``container="queue-proxy"`` plus the Pod's
``serving.knative.dev/{service,configuration,revision}`` labels as ``service``/``configuration``/``revision``.
The file is replaced atomically after every change and removed when the process stops.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

QUEUE_METRICS_PORT = 9091
SELECTOR = "serving.knative.dev/revision"
KNATIVE_LABELS = {"serving.knative.dev/service": "service", "serving.knative.dev/configuration": "configuration",
                  "serving.knative.dev/revision": "revision"}


def targets(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """File-SD target groups for ``pods`` (dicts as the API returns them); Pods not Running or without an IP
    and Pods without a ``queue-proxy`` container are left out. Sorted by namespace and Pod name."""
    out = []
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        status, meta = pod.get("status") or {}, pod["metadata"]
        names = {c["name"] for c in (pod.get("spec") or {}).get("containers") or []}
        if status.get("phase") != "Running" or not status.get("podIP") or "queue-proxy" not in names:
            continue
        labels = {"namespace": meta.get("namespace", ""), "pod": meta["name"], "container": "queue-proxy"}
        for key, label in KNATIVE_LABELS.items():
            if (meta.get("labels") or {}).get(key):
                labels[label] = meta["labels"][key]
        out.append({"targets": [f"{status['podIP']}:{QUEUE_METRICS_PORT}"], "labels": labels})
    return out


def write(path: Path, groups: list[dict[str, Any]]) -> None:
    """Replace ``path`` atomically with ``groups`` as JSON."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups, indent=1))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--out", required=True, type=Path, help="the file-SD JSON file to maintain")
    args = parser.parse_args(argv)
    from kubernetes import client, config, watch

    def stop(*_: object) -> None:
        args.out.unlink(missing_ok=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    api = client.CoreV1Api(config.new_client_from_config(args.kubeconfig))
    pods: dict[str, dict[str, Any]] = {}
    while True:
        try:
            listed = api.list_pod_for_all_namespaces(label_selector=SELECTOR)
            pods = {p.metadata.uid: api.api_client.sanitize_for_serialization(p) for p in listed.items}
            write(args.out, targets(list(pods.values())))
            for event in watch.Watch().stream(api.list_pod_for_all_namespaces, label_selector=SELECTOR,
                                              resource_version=listed.metadata.resource_version,
                                              timeout_seconds=300):
                obj = api.api_client.sanitize_for_serialization(event["object"])
                if event["type"] == "DELETED":
                    pods.pop(obj["metadata"]["uid"], None)
                else:
                    pods[obj["metadata"]["uid"]] = obj
                write(args.out, targets(list(pods.values())))
        except Exception as exc:  # apiserver restarting or busy: list again shortly
            print(f"knative targets: {exc.__class__.__name__}: {exc}", file=sys.stderr, flush=True)
            time.sleep(2.0)


if __name__ == "__main__":
    sys.exit(main())
