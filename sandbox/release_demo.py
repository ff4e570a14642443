"""The ``release`` section of ``make demo``: a new model version in MLflow becomes a release, end to end.

1. register kaiops on the sandbox Prefect server (``kaiops deploy``: work pool, limits, deployments, trigger);
2. run the registry receiver (in a thread, on a free loopback port) and point an MLflow webhook at it;
3. log the trained iris model in an MLflow run, register it as a new version of ``iris``, set ``challenger``;
4. MLflow posts the signed delivery -> receiver -> Prefect event -> deployment trigger -> flow run;
5. a process worker (queue ``releases`` only) runs it: download -> publish -> warmup -> canary (with demo
   load on the InferenceService) -> ``champion`` alias and outcome tag.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.procs import free_port

MODEL = "iris"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@contextlib.contextmanager
def _receiver(secret: str):
    import uvicorn

    from configs.release import load_releases
    from tasks.registry.prefect_events import post_release_event
    from tasks.registry.replay import DeliveryStore
    from tasks.registry.webhook import create_app

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kaiops-receiver-") as tmp:
        app = create_app(secret=secret, releases=load_releases(), store=DeliveryStore(Path(tmp) / "d.sqlite"),
                         post_event=post_release_event)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            yield f"http://127.0.0.1:{port}/mlflow"
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _register(model_dir: Path) -> int:
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    with contextlib.suppress(Exception):
        client.create_registered_model(MODEL, description="iris classifier (kaiops demo)")
    mlflow.set_experiment("kaiops-demo")
    with mlflow.start_run(run_name="iris-demo") as run:
        mlflow.log_artifacts(str(model_dir), "model")
    mv = client.create_model_version(MODEL, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(MODEL, "challenger", mv.version)
    return int(mv.version)


def _release_run(version: int):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["release"])), limit=100)
    return [r for r in runs if (r.parameters or {}).get("request", {}).get("model") == MODEL
            and r.parameters["request"].get("version") == version]


def _load(url: str, stop: threading.Event) -> dict[str, int]:
    from sandbox.kserve.load import IRIS_ROWS, predict_once

    counts = {"sent": 0, "ok": 0}
    i = 0
    while not stop.is_set():
        with contextlib.suppress(Exception):
            code, _, _ = predict_once(url, MODEL, IRIS_ROWS[i % len(IRIS_ROWS)], timeout=10)
            counts["ok"] += code == 200
        counts["sent"] += 1
        i += 1
        stop.wait(0.1)
    return counts


def release_demo(model_dir: str, serving_url: str | None, timeout: float = 900.0) -> dict[str, Any]:
    """Run the section; return ``{"version", "flow_run", "parameters", "state", "outcome", "reason",
    "champion", "deploy", "load", "ok"}`` (ok: one typed run was triggered, ran, and its outcome was recorded
    in the registry). Failures are reported, not raised."""
    from mlflow import MlflowClient

    from configs.release import concurrency_limit_name, load_releases
    from tasks import prefect_admin
    from tasks.registry.mlflow_ops import TAG_OUTCOME, TAG_REASON, ensure_webhook

    out: dict[str, Any] = {"ok": False}
    try:
        changes = prefect_admin.sync(prefect_admin.load_project(),
                                     limits={concurrency_limit_name(m): 1 for m in load_releases()},
                                     blocks_env=dict(os.environ), dry_run=False)
        out["deploy"] = {a.value: sum(c.action is a for c in changes) for a in prefect_admin.Action}
        secret = secrets.token_urlsafe(32)
        with _receiver(secret) as url:
            ensure_webhook("kaiops-release", url, secret, rotate_secret=True)  # a fresh secret per demo run
            version = out["version"] = _register(Path(model_dir))
            print(f"registered {MODEL} v{version} and set alias challenger; waiting for the release flow run")
            deadline = time.monotonic() + 180
            while not (runs := _release_run(version)) and time.monotonic() < deadline:
                time.sleep(2)
        if len(runs) != 1:
            out["reason"] = f"expected one release flow run for v{version}, found {len(runs)}"
            return out
        run = runs[0]
        out["flow_run"], out["parameters"] = str(run.id), run.parameters
        print(f"release flow run {run.name} created by the trigger with parameters {run.parameters}")
        stop = threading.Event()
        load: dict[str, int] = {}
        loader = threading.Thread(target=lambda: load.update(_load(serving_url, stop)), daemon=True)
        if serving_url:
            loader.start()
        prefect = str(Path(sys.executable).with_name("prefect"))
        worker = subprocess.Popen([prefect, "worker", "start", "--pool", "kaiops-process", "--work-queue",
                                   "releases", "--limit", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            from prefect.client.orchestration import get_client

            deadline = time.monotonic() + timeout
            with get_client(sync_client=True) as client:
                while time.monotonic() < deadline:
                    state = client.read_flow_run(run.id).state
                    if state and state.type.value in TERMINAL:
                        break
                    time.sleep(5)
            out["state"] = state.type.value if state else None
        finally:
            worker.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=20)
            if worker.poll() is None:
                worker.kill()
            stop.set()
            if loader.is_alive():
                loader.join(timeout=15)
        out["load"] = load
        mv = MlflowClient().get_model_version(MODEL, str(version))
        out["outcome"], out["reason"] = mv.tags.get(TAG_OUTCOME), mv.tags.get(TAG_REASON)
        out["champion"] = "champion" in (mv.aliases or [])
        typed = isinstance(run.parameters["request"]["version"], int)
        out["ok"] = typed and out["state"] in TERMINAL and out["outcome"] is not None
    except Exception as exc:  # a failed section, not a crashed demo
        out["reason"] = f"{exc.__class__.__name__}: {exc}"
    return out
