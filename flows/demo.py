"""The demo: what kaiops does, end to end, on the local sandbox. ``make demo`` runs it via ``kaiops demo``.

The story, one section per job (each section's summary, with ``ok``, lands in ``demo-out/summary.json``):

1. ``platform`` — the real apiserver with its CRDs, S3, Prometheus and a Ray job on the sandbox head.
2. ``ray`` — provision ``configs/clusters/sandbox.yaml`` (the real KubeRay operator: Ray head and workers
   as Pods) + smoke job.
3. ``models`` — train iris v1 (good), v2 (better), v3 (bad on purpose); publish to S3; warm up v1.
4. ``serving`` — serve v1 as InferenceService ``demo/iris``; predictions and per-revision series.
5. ``canary`` — roll v2 out to 100 % on Prometheus evidence, then v3 with injected errors: rolled back.
6. ``release`` — register a version in MLflow; its webhook starts the ``release`` flow, start to finish.
7. ``backup`` — back up what the demo made (Secrets encrypted) and drill the restore.

A section that fails is reported as failed; the next sections still run. The demo's own tasks are in
:mod:`tasks.demo`; the sandbox-side helpers it calls (serving and loading the InferenceService, the MLflow
release) are ``sandbox/kserve/demo.py`` and ``sandbox/release_demo.py`` (besides the ``kaiops sandbox``
commands, the only sandbox code ``flows/`` imports).
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
    from tasks.demo.setup import ensure_bucket, train_iris_models_task, wire_s3_credentials, write_isvc_manifest

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


def _g(data: object, *keys: str) -> object:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _where(path: object, out: Path) -> str:
    """A report path relative to the current directory when it is under it (short), else as given."""
    if not isinstance(path, str) or not path:
        return "-"
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _figure(name: str, s: dict, out: Path) -> tuple[str, str]:
    """(the figure that matters, where to read more) for one demo section."""
    if name == "platform":
        k = s.get("kubernetes") or {}
        return (f"{k.get('crds_established')}/{k.get('crds_expected')} CRDs; Ray job {_g(s, 'ray', 'status')}",
                "kaiops sandbox status")
    if name == "ray":
        w = s.get("workers") or {}
        return (f"{s.get('state')}, workers {w.get('ready')}/{w.get('desired')} in {s.get('seconds')}s",
                str(s.get("dashboard") or "-"))
    if name == "models":
        return (f"{len(s.get('published') or {})} published; warm-up {_g(s, 'warmup', 'verdict')}",
                _where(s.get("isvc_manifest"), out))
    if name == "serving":
        load = s.get("load") or {}
        return f"{load.get('ok')}/{load.get('sent')} predictions OK, p95 {load.get('p95_ms')}ms", str(
            s.get("url") or "-")
    if name == "canary":
        return (f"v2 {_g(s, 'v2', 'phase')}, v3 {_g(s, 'v3', 'phase')}",
                _where(_g(s, "v3", "report"), out))
    if name == "release":
        return f"release {s.get('outcome') or s.get('state') or '-'}", f"flow run {s.get('flow_run') or '-'}"
    if name == "backup":
        drill = s.get("drill") or {}
        rto = drill.get("rto_seconds")
        return (f"drill {drill.get('verdict')}" + (f", RTO {rto:.0f}s" if isinstance(rto, int | float) else ""),
                f"{s.get('destination', '-')}/{s.get('backup_id', '-')}")
    return "-", "-"


def summary_rows(summary: dict[str, dict], out: Path) -> list[dict[str, str]]:
    """The demo's summary for people: per section its result, the figure that matters and where to read more
    (the whole summary stays in ``<out>/summary.json``). A failed section's figure is its reason."""
    rows = []
    for name, section in summary.items():
        ok = bool(section.get("ok"))
        figure, where = _figure(name, section, out)
        if not ok and section.get("reason"):
            figure = " ".join(str(section["reason"]).split())
            if len(figure) > 240:  # a short table: the whole reason is in summary.json
                figure = figure[:200].rsplit(" ", 1)[0] + " ... (the whole reason: summary.json)"
        rows.append({"section": name, "result": "ok" if ok else "FAILED", "figure": figure, "where": where})
    return rows


def render_summary(rows: list[dict[str, str]], summary_path: Path, width: int = 80) -> str:
    """The summary rows as a plain table of at most ``width`` columns. The figure wraps at words inside its
    column; a "where" (path, URL, id) too long for its column goes whole on the next line, under the figure,
    so it can be copied in one piece. Nothing is cut."""
    import textwrap

    gap = "   "
    widths = {"section": 8, "result": 6, "where": 28}
    widths["figure"] = width - sum(widths.values()) - 3 * len(gap)
    indent = widths["section"] + widths["result"] + 2 * len(gap)
    lines = [gap.join(c.ljust(widths[c]) for c in ("section", "result", "figure", "where")).rstrip(),
             gap.join("-" * widths[c] for c in ("section", "result", "figure", "where"))]
    for row in rows:
        figure = textwrap.wrap(row["figure"], widths["figure"], break_long_words=True) or [""]
        fits = len(row["where"]) <= widths["where"]
        for i, part in enumerate(figure):
            cells = {"section": row["section"] if i == 0 else "", "result": row["result"] if i == 0 else "",
                     "figure": part, "where": row["where"] if i == 0 and fits else ""}
            lines.append(gap.join(cells[c].ljust(widths[c]) for c in ("section", "result", "figure", "where"))
                         .rstrip())
        if not fits:
            where = row["where"]
            lines.append(" " * indent + f"→ {where}" if indent + 2 + len(where) <= width else f"  → {where}")
    failed = sum(r["result"] != "ok" for r in rows)
    lines.append(f"{len(rows) - failed} of {len(rows)} sections ok; everything in {summary_path}")
    return "\n".join(lines)
