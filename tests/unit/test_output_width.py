"""Every human output at 80 columns: nothing a user needs (path, URL, id, field) is cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from flows import output
from flows.demo import render_summary, summary_rows

LONG_LOG = "/root/.cache/kaiops/sandbox/output/logs/kube-apiserver-with-a-long-name.log"
LONG_URL = "https://127.0.0.1:41234/api/v1/namespaces/ml-platform-production/services"


def _plain(renderable: object, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def _unbroken(text: str) -> str:
    """The text with table borders and line breaks removed, so a value folded over lines reads whole."""
    return "".join(ch for ch in text if ch not in "│┃║|\n ")


@pytest.mark.unit
def test_a_table_too_wide_for_80_columns_becomes_a_list_with_every_value_whole(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(output, "console", Console(width=80, color_system=None))
    rows = [{"name": "kube-apiserver", "state": "healthy", "url": LONG_URL, "pid": 4242, "log": LONG_LOG},
            {"name": "s3", "state": "stopped", "url": "", "pid": None, "log": ""}]
    output.emit(rows, output.OutputFormat.table, title="sandbox")
    text = capsys.readouterr().out
    assert "…" not in text
    for value in (LONG_URL, LONG_LOG, "kube-apiserver", "4242"):
        assert value in text.splitlines()[2] + text or value in text, value
    assert f"    url: {LONG_URL}" in text.splitlines() and f"    log: {LONG_LOG}" in text.splitlines()
    assert "- name: s3" in text.splitlines()


@pytest.mark.unit
def test_a_table_that_fits_stays_a_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(output, "console", Console(width=80, color_system=None))
    output.emit([{"backup": "20261201T120000Z-abc123", "complete": True}], output.OutputFormat.table)
    text = capsys.readouterr().out
    assert "┃ backup" in text and "20261201T120000Z-abc123" in text


def _demo_summary(out: Path) -> dict:
    report = str(Path.cwd() / out / "canary-v3" / "iris-rollout" / "report.md")
    return {
        "platform": {"kubernetes": {"crds_established": 17, "crds_expected": 17}, "ray": {"status": "SUCCEEDED"},
                     "ok": True},
        "ray": {"state": "ready", "workers": {"ready": 1, "desired": 1}, "seconds": 41.2,
                "dashboard": "http://127.0.0.1:38265", "ok": True},
        "models": {"published": {"v1": "uploaded", "v2": "uploaded", "v3": "uploaded"}, "warmup": {"verdict": "ok"},
                   "isvc_manifest": str(Path.cwd() / out / "iris-isvc.yaml"), "ok": True},
        "serving": {"url": "http://127.0.0.1:40123", "load": {"ok": 200, "sent": 200, "p95_ms": 12.5}, "ok": True},
        "canary": {"v2": {"phase": "Succeeded"}, "v3": {"phase": "RolledBack", "report": report}, "ok": True},
        "release": {"outcome": "promoted", "flow_run": "0b9c5b0e-4a51-4d2c-9d52-7f3e1c1f7a10", "ok": True},
        "backup": {"destination": "s3://kaiops-backups/demo", "backup_id": "20261201T120000Z-1a2b3c",
                   "drill": {"verdict": "failed", "rto_seconds": 12.3},
                   "reason": "drill failed: 2 object(s) not ready: InferenceService demo/iris (Ready False: "
                             "the storage initializer cannot read s3://models/iris/v1/: no credentials)",
                   "ok": False},
    }


@pytest.mark.unit
def test_demo_summary_fits_80_columns_and_keeps_every_figure_and_path() -> None:
    out = Path("demo-out")
    summary = _demo_summary(out)
    rows = summary_rows(summary, out)
    text = render_summary(rows, out / "summary.json")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    assert len(lines) <= 20
    assert lines[0].split() == ["section", "result", "figure", "where"]
    squeezed = _unbroken(text)
    for needed in ("17/17CRDs", "http://127.0.0.1:38265", "demo-out/iris-isvc.yaml", "200/200predictionsOK",
                   "v2Succeeded,v3RolledBack", "demo-out/canary-v3/iris-rollout/report.md",
                   "0b9c5b0e-4a51-4d2c-9d52-7f3e1c1f7a10", "s3://kaiops-backups/demo/20261201T120000Z-1a2b3c",
                   "nocredentials)"):
        assert needed in squeezed, needed
    assert [r["result"] for r in rows] == ["ok"] * 6 + ["FAILED"]
    assert lines[-1] == "6 of 7 sections ok; everything in demo-out/summary.json"


@pytest.mark.unit
def test_kaiops_status_renders_whole_at_80_columns() -> None:
    from flows.commands.status import render
    from tasks.rollout.state import Phase, RolloutRecord
    from tasks.status import backup_row, by_health, isvc_row, ray_cluster_row

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    record = RolloutRecord(phase=Phase.PROGRESSING, step=1, traffic=25, lease_holder="flow-run/6f1c2d3e-aaaa-bbbb",
                           lease_expires=(now + timedelta(seconds=60)).isoformat())
    isvc = {"metadata": {"namespace": "ml-platform-production", "name": "sklearn-iris-classifier",
                         "annotations": record.to_annotations()},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "components": {"predictor": {
                "latestReadyRevision": "sklearn-iris-classifier-predictor-00002",
                "traffic": [{"revisionName": "sklearn-iris-classifier-predictor-00001", "percent": 75},
                            {"revisionName": "sklearn-iris-classifier-predictor-00002", "percent": 25}]}}}}
    cluster = {"metadata": {"namespace": "ray", "name": "training-cluster-with-a-long-name"},
               "status": {"state": "ready", "readyWorkerReplicas": 1, "desiredWorkerReplicas": 2}}
    backups = backup_row("nightly", "s3://kaiops-backups/nightly", None,
                         {"id": "20261201T020000Z-abc123", "time": now - timedelta(hours=10), "complete": True,
                          "objects": 42}, {"last_run_timestamp_seconds": now.timestamp() - 36000,
                                           "last_run_success": 1}, {}, now)
    view = {"checked_at": now.isoformat(), "unhealthy": 1, "rayclusters": by_health([ray_cluster_row(cluster)]),
            "inferenceservices": [isvc_row(isvc, now)], "backups": [backups], "errors": []}
    text = _plain(render(view, width=80))
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for needed in ("- name: ml-platform-production/sklearn-iris-classifier",
                   "revision: sklearn-iris-classifier-predictor-00002",
                   "traffic: sklearn-iris-classifier-predictor-00001 75%, sklearn-iris-classifier-predictor-00002 25%",
                   "lease: flow-run/6f1c2d3e-aaaa-bbbb (1m left)", "rollout: Progressing step 2 at 25%",
                   "ray/training-cluster-with-a-long-name", "1 of 2 workers ready",
                   "20261201T020000Z-abc123 (42 objects)", "never drilled here"):
        assert needed in " ".join(text.split()), needed  # long lines wrap at spaces, values stay whole
    wide = _plain(render(view, width=250), width=250)
    assert "┃ name" in wide and "sklearn-iris-classifier-predictor-00002" in wide


@pytest.mark.unit
def test_live_views_get_a_real_console():
    """``kaiops rollout`` and ``kaiops status --watch`` hand the console to ``rich.live.Live``, which enters it as a
    context manager: the lazy proxy must give the real Console (a proxy made both commands crash in a terminal)."""
    import io

    from rich.live import Live

    from flows.output import _LazyConsole

    lazy = _LazyConsole(file=io.StringIO(), width=80)
    with Live("look 1 of 4", console=lazy.real, auto_refresh=False) as live:
        live.update("look 2 of 4", refresh=True)
    assert "look 2 of 4" in lazy.file.getvalue()
