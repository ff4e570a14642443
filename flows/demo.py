"""The demo: what kaiops does, end to end, on the local sandbox. ``make demo`` runs it via ``kaiops demo``.

The story, one section per job (each section's summary, with ``ok``, lands in ``demo-out/summary.json``):

1. ``platform`` — the real apiserver with its CRDs, S3, Prometheus and a Ray job on the sandbox head.
2. ``ray`` — provision ``configs/clusters/sandbox.yaml`` (KubeRay emulation, real Ray head) + smoke job.
3. ``models`` — train iris v1 (good), v2 (better), v3 (bad on purpose); publish to S3; warm up v1.
4. ``serving`` — serve v1 as InferenceService ``demo/iris``; predictions and per-revision series.
5. ``canary`` — roll v2 out to 100 % on Prometheus evidence, then v3 with injected errors: rolled back.
6. ``release`` — register a version in MLflow; its webhook starts the ``release`` flow, start to finish.
7. ``backup`` — back up what the demo made (Secrets encrypted) and drill the restore.

A section that fails is reported as failed; the next sections still run.
"""

from __future__ import annotations

import os
import secrets
from base64 import urlsafe_b64encode
from collections.abc import Callable
from pathlib import Path

from prefect import flow, task

from tasks import platform

REPO = Path(__file__).resolve().parents[1]


def _out() -> str:
    return os.environ.get("KAIOPS_DEMO_OUT", "demo-out")


def platform_section() -> dict:
    kubernetes = platform.check_kubernetes()
    ray = platform.check_ray(os.environ["RAY_ADDRESS"])
    return {
        "kubernetes": kubernetes,
        "s3": platform.check_s3(os.environ.get("AWS_ENDPOINT_URL")),
        "prometheus": platform.check_prometheus(os.environ["PROMETHEUS_URL"]),
        "ray": ray,
        "ok": kubernetes["crds_established"] == kubernetes["crds_expected"] and ray["status"] == "SUCCEEDED",
    }


def ray_section() -> dict:
    from flows.provision import provision_ray_cluster

    ray = provision_ray_cluster(str(REPO / "configs" / "clusters" / "sandbox.yaml"), timeout_s=600)
    smoke = (ray.get("smoke") or {}).get("status")
    return {**{k: ray[k] for k in ("cluster", "decision", "state", "workers", "dashboard", "seconds")},
            "smoke": smoke, "ok": ray["state"] == "ready" and smoke == "SUCCEEDED"}


def models_section(state: dict) -> dict:
    from flows.publish import publish_model
    from flows.warmup import warmup_model
    from tasks.storage.tasks import ensure_bucket, train_iris_models_task, wire_s3_credentials, write_isvc_manifest

    trained = train_iris_models_task(os.path.join(_out(), "models", "iris"))
    state["trained"] = trained
    ensure_bucket("s3://models/iris/")
    published = {m["version"]: publish_model(m["path"], f"s3://models/iris/{m['version']}/", model_format="sklearn")
                 for m in trained}
    wired = wire_s3_credentials(["demo"], "iris-storage", "iris-s3")
    isvc_file = write_isvc_manifest(os.path.join(_out(), "iris-isvc.yaml"), "iris", "demo",
                                    "s3://models/iris/v1/", "iris-storage")
    warm = warmup_model(isvc_file, cache_dir=os.path.join(_out(), "warmup", "iris"))
    return {
        "trained": trained, "published": {v: p["outcome"] for v, p in published.items()}, "wired": wired,
        "isvc_manifest": isvc_file,
        "warmup": {k: warm[k] for k in ("verdict", "files", "bytes", "seconds", "mb_per_second")},
        "ok": all(p["ok"] for p in published.values()) and warm["ok"],
    }


def serving_section(state: dict) -> dict:
    from sandbox.kserve.demo import serve_iris

    serving = task(name="serve-iris")(serve_iris)(dict(os.environ))
    state["serving_url"] = serving.get("url")
    return serving


def canary_section() -> dict:
    from flows.rollout import canary_rollout
    from sandbox.kserve.demo import isvc_url, set_error_rate
    from sandbox.kserve.load import Background

    policy = str(REPO / "configs" / "canary" / "demo.yaml")
    canary: dict = {}
    with Background(task(name="isvc-url")(isvc_url)("demo", "iris"), "iris", rps=20) as load:
        canary["v2"] = canary_rollout(isvc="iris", namespace="demo", storage_uri="s3://models/iris/v2/",
                                      policy_file=policy, out_dir=os.path.join(_out(), "canary-v2"))
        task(name="inject-errors")(set_error_rate)("demo", "iris", 0.2)
        try:
            canary["v3"] = canary_rollout(isvc="iris", namespace="demo", storage_uri="s3://models/iris/v3/",
                                          policy_file=policy, out_dir=os.path.join(_out(), "canary-v3"))
        finally:
            task(name="clear-errors")(set_error_rate)("demo", "iris", None)
    canary["load"] = load.report.summary()
    canary["ok"] = canary["v2"]["phase"] == "Succeeded" and canary["v3"]["phase"] == "RolledBack"
    return canary


def release_section(state: dict) -> dict:
    from sandbox.release_demo import release_demo

    trained = state.get("trained") or []
    better = next((m for m in trained if m["version"] == "v2"), None)
    if better is None:
        return {"reason": "the models section trained nothing", "ok": False}
    return task(name="registry-release-demo")(release_demo)(better["path"], state.get("serving_url"))


def backup_section() -> dict:
    from configs.backup import BackupPolicy, DrillConfig
    from flows.backup import backup as backup_flow
    from flows.backup import restore_drill
    from tasks.backup.steps import existing_namespaces_task

    # A key for this demo only, so Secrets are backed up (encrypted) and the drill can make the restored
    # InferenceService load its model. Never printed.
    os.environ.setdefault("KAIOPS_BACKUP_KEY", urlsafe_b64encode(secrets.token_bytes(32)).decode())
    namespaces = existing_namespaces_task(["demo", "ray"])
    if not namespaces:
        return {"namespaces": [], "reason": "neither demo nor ray namespace exists", "ok": False}
    policy = BackupPolicy(name="demo", destination="s3://kaiops-backups/demo", create_bucket=True,
                          namespaces=namespaces, drill=DrillConfig(readiness_timeout_seconds=300))
    made = backup_flow(policy=policy)
    print(f"demo backup id: {made['backup_id']} (destination {policy.destination})")
    drilled = restore_drill(policy=policy, backup_id=made["backup_id"])
    return {"backup_id": made["backup_id"], "destination": policy.destination, "backup": made, "drill": drilled,
            "ok": drilled["verdict"] == "passed"}


def _run(name: str, section: Callable[[], dict]) -> dict:
    """Run one section; a failure is that section's result (with the reason), never a crashed demo."""
    try:
        return section()
    except Exception as exc:
        print(f"demo section {name} failed: {exc}")
        return {"reason": str(exc)[:2000], "ok": False}


@flow(name="demo", log_prints=True)
def demo() -> dict:
    """Run every demo section on the platform described by the environment; return the summary.

    Returns:
        ``{"platform": {...}, "ray": {...}, ...}``: one entry per section, in story order; each has ``ok``.
    """
    state: dict = {}
    sections: list[tuple[str, Callable[[], dict]]] = [
        ("platform", platform_section),
        ("ray", ray_section),
        ("models", lambda: models_section(state)),
        ("serving", lambda: serving_section(state)),
        ("canary", canary_section),
        ("release", lambda: release_section(state)),
        ("backup", backup_section),
    ]
    summary: dict[str, dict] = {}
    for name, section in sections:
        summary[name] = _run(name, section)
        print(f"demo section {name}: {'ok' if summary[name].get('ok') else 'FAILED'}")
    return summary
