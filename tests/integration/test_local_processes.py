"""Tests that start a local process but need no sandbox service (so they are not ``unit``): the sandbox's
process-group stop, Prometheus's own ``promtool`` on the kaiops PrometheusRule, and the installed ``kaiops``
CLI's bad-input output and exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandbox import procs

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
        f"open({str(child_pid_file)!r}, 'w').write(str(p.pid)); time.sleep(300)"
    )
    pid = procs.spawn([sys.executable, "-c", script], tmp_path / "log")
    procs.wait_until(child_pid_file.exists, 10, "child started")
    grandchild = int(child_pid_file.read_text())
    assert procs.alive(pid) and procs.alive(grandchild)
    procs.stop(pid, timeout=5)
    assert not procs.alive(pid)
    assert not procs.alive(grandchild), "a grandchild must not outlive `kaiops sandbox down`"


def test_prometheus_rule_passes_promtool(tmp_path) -> None:
    rule = yaml.safe_load((ROOT / "deployments/monitoring/prometheusrule-kaiops.yaml").read_text())
    spec = tmp_path / "rules.yaml"
    spec.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run(["promtool", "check", "rules", str(spec)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"KaiopsBackupStale", "KaiopsDrillStale"} <= names


def test_cli_prints_bad_input_as_json_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "cluster.yaml"
    bad.write_text("name: x\nbogus: 1\n")
    kaiops = str(Path(sys.executable).with_name("kaiops"))
    proc = subprocess.run([kaiops, "provision", str(bad), "-o", "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert out["ok"] is False and out["error"]["file"] == str(bad) and out["error"]["field"] == "bogus"
    assert out["error"]["fix"]
