"""The demo: what kaiops does, end to end, on the local sandbox. ``make demo`` runs it via ``kaiops demo``.

Each section is one flow or task call; its summary lands in ``demo-out/summary.json``.
"""

from __future__ import annotations

import os

from prefect import flow

from tasks import platform


@flow(name="demo", log_prints=True)
def demo() -> dict:
    """Run every demo section on the platform described by the environment; return the summary.

    Returns:
        ``{"platform": {...}, ...}``: one entry per section; each has ``ok`` (bool).
    """
    summary: dict[str, dict] = {}
    kubernetes = platform.check_kubernetes()
    summary["platform"] = {
        "kubernetes": kubernetes,
        "s3": platform.check_s3(os.environ.get("AWS_ENDPOINT_URL")),
        "prometheus": platform.check_prometheus(os.environ["PROMETHEUS_URL"]),
        "ray": platform.check_ray(os.environ["RAY_ADDRESS"]),
    }
    summary["platform"]["ok"] = (
        kubernetes["crds_established"] == kubernetes["crds_expected"]
        and summary["platform"]["ray"]["status"] == "SUCCEEDED"
    )
    # serving: iris v1 from the sandbox S3 as an InferenceService; predictions through its router, per-revision
    # queue-proxy series in Prometheus
    from prefect import task

    from sandbox.kserve.demo import serve_iris

    summary["serving"] = task(name="serve-iris")(serve_iris)(dict(os.environ))
    # models: train iris v1 (good) / v2 (better) / v3 (bad on purpose), publish them to s3://models/iris/,
    # wire a ServiceAccount + Secret for KServe in namespace demo, and warm up v1 with KServe's own download code
    from flows.publish import publish_model
    from flows.warmup import warmup_model
    from tasks.storage.tasks import ensure_bucket, train_iris_models_task, wire_s3_credentials, write_isvc_manifest

    demo_out = os.environ.get("KAIOPS_DEMO_OUT", "demo-out")
    trained = train_iris_models_task(os.path.join(demo_out, "models", "iris"))
    ensure_bucket("s3://models/iris/")
    published = {m["version"]: publish_model(m["path"], f"s3://models/iris/{m['version']}", model_format="sklearn")
                 for m in trained}
    wired = wire_s3_credentials(["demo"], "iris-storage", "iris-s3")
    isvc_file = write_isvc_manifest(os.path.join(demo_out, "iris-isvc.yaml"), "iris", "demo",
                                    "s3://models/iris/v1/", "iris-storage")
    warm = warmup_model(isvc_file, cache_dir=os.path.join(demo_out, "warmup", "iris"))
    summary["models"] = {
        "trained": trained, "published": {v: p["outcome"] for v, p in published.items()}, "wired": wired,
        "isvc_manifest": isvc_file, "warmup": {k: warm[k] for k in ("verdict", "files", "bytes", "seconds",
                                                                     "mb_per_second")},
        "ok": all(p["ok"] for p in published.values()) and warm["ok"],
    }
    # backup: a backup of what the demo created (namespaces demo and ray), then a restore drill of it
    from configs.backup import BackupPolicy, DrillConfig
    from flows.backup import backup as backup_flow
    from flows.backup import restore_drill
    from tasks.backup.steps import existing_namespaces_task

    backup_namespaces = existing_namespaces_task(["demo", "ray"])
    if backup_namespaces:
        backup_policy = BackupPolicy(name="demo", destination="s3://kaiops-backups/demo", create_bucket=True,
                                     namespaces=backup_namespaces, drill=DrillConfig(readiness_timeout_seconds=180))
        made = backup_flow(policy=backup_policy)
        try:
            drilled = restore_drill(policy=backup_policy, backup_id=made["backup_id"])
            summary["backup"] = {"backup": made, "drill": drilled, "ok": drilled["verdict"] == "passed"}
        except Exception as exc:  # a failed drill is a failed section, not a crashed demo
            summary["backup"] = {"backup": made, "drill": {"reason": str(exc)}, "ok": False}
    else:
        summary["backup"] = {"namespaces": [], "reason": "neither demo nor ray namespace exists", "ok": False}
    # ray: provision configs/clusters/sandbox.yaml through the KubeRay emulation (a real Ray head) and run the
    # smoke job through the Job Submission API at the dashboard endpoint from the RayCluster status
    from pathlib import Path

    from flows.provision import provision_ray_cluster

    try:
        ray = provision_ray_cluster(str(Path(__file__).parents[1] / "configs" / "clusters" / "sandbox.yaml"),
                                    timeout_s=600)
        summary["ray"] = {**{k: ray[k] for k in ("cluster", "decision", "state", "workers", "dashboard", "seconds")},
                          "smoke": (ray.get("smoke") or {}).get("status"),
                          "ok": ray["state"] == "ready" and (ray.get("smoke") or {}).get("status") == "SUCCEEDED"}
    except Exception as exc:  # a cluster that does not come up is a failed section, not a crashed demo
        summary["ray"] = {"reason": str(exc)[:2000], "ok": False}
    # release: register the trained iris v2 as a new version in MLflow and set alias "challenger"; the signed
    # webhook reaches the registry receiver, which posts a Prefect event; the release/registry deployment's
    # trigger starts the release flow (version typed int), which a process worker runs: publish -> warmup ->
    # canary on demo/iris -> champion alias and outcome tag in the registry
    from sandbox.release_demo import release_demo

    better = next((m for m in trained if m["version"] == "v2"), trained[-1])
    summary["release"] = task(name="registry-release-demo")(release_demo)(
        better["path"], (summary.get("serving") or {}).get("url"))
    # canary: roll iris v2 out on demo/iris through 20/50/100 % under live load (configs/canary/demo.yaml), then
    # v3 with 20 % injected errors on its newest revision: rolled back at its first look; reports in demo-out
    from flows.rollout import canary_rollout
    from sandbox.kserve.demo import isvc_url, set_error_rate
    from sandbox.kserve.load import Background

    canary: dict = {}
    canary_policy = str(Path(__file__).parents[1] / "configs" / "canary" / "demo.yaml")
    try:
        with Background(task(name="isvc-url")(isvc_url)("demo", "iris"), "iris", rps=20) as load:
            canary["v2"] = canary_rollout(isvc="iris", namespace="demo", storage_uri="s3://models/iris/v2/",
                                          policy_file=canary_policy, out_dir=os.path.join(demo_out, "canary-v2"))
            task(name="inject-errors")(set_error_rate)("demo", "iris", 0.2)
            try:
                canary["v3"] = canary_rollout(isvc="iris", namespace="demo", storage_uri="s3://models/iris/v3/",
                                              policy_file=canary_policy,
                                              out_dir=os.path.join(demo_out, "canary-v3"))
            finally:
                task(name="clear-errors")(set_error_rate)("demo", "iris", None)
        canary["load"] = load.report.summary()
        canary["ok"] = canary["v2"]["phase"] == "Succeeded" and canary["v3"]["phase"] == "RolledBack"
    except Exception as exc:  # a failed rollout is a failed section, not a crashed demo
        canary.update(reason=str(exc)[:2000], ok=False)
    summary["canary"] = canary
    return summary
