"""Benchmark: how fast the ``kaiops`` CLI answers, beside ``kubectl get`` on the same sandbox (issue 18, item 6).

Every command runs as a fresh process (as a user or a cron job starts it), alternating with ``kubectl get`` in
pairs; each row prints the median of ``--repeat`` pairs and the ratio to kubectl's median in the same pairs, so
the load of a shared machine cancels out of the ratio. Goals: ``kaiops --help`` <= 0.3 s; read-only commands
(``backups list``, ``validate``, every ``--dry-run``) <= 0.5 s; a command that finds nothing to change (an
unchanged ``publish``) <= 1.5 s against the sandbox's Prefect server, and the same with no ``PREFECT_API_URL``.

With ``--before DIR`` (a checkout of an earlier commit, e.g. ``git archive main | tar -x -C DIR``) each kaiops
row is also timed with that checkout's code (same venv, ``PYTHONPATH=DIR``), interleaved in the same pairs.

Set-up (untimed): a small model published once, and a backup of a few labelled objects (so ``backups list`` and
the drill/restore dry runs have something to read). Needs the sandbox services kube-apiserver, s3 and prefect.
Run: ``KAIOPS_SANDBOX=<instance> .venv/bin/python bench/cli.py [--repeat 7] [--json bench/results/cli.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

GOALS = {"help": 0.3, "read-only": 0.5, "nothing to change": 1.5}


def run_once(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the process and its children) of one fresh process. CPU
    time says what the wall time would be on an idle machine far better than wall time on a busy one."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(f"! {' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-400:]}\n")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="pairs per row; medians are printed")
    parser.add_argument("--before", type=Path, default=None, help="checkout of the code to compare with")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    from sandbox import launcher
    from sandbox.paths import binary

    senv = launcher.env()
    if "KUBECONFIG" not in senv or "PREFECT_API_URL" not in senv:
        sys.exit("needs the sandbox: kaiops sandbox up -s kube-apiserver -s s3 -s prefect")
    env = {**os.environ, **senv}
    no_api = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    kaiops = str(Path(sys.executable).with_name("kaiops"))
    kubectl = [str(binary("kubectl")), "--kubeconfig", senv["KUBECONFIG"]]
    load_before = os.getloadavg()

    # --- set-up (untimed) --------------------------------------------------------------------------------------
    from backup import create_all, make_objects  # bench/backup.py

    from configs.backup import BackupPolicy
    from tasks import kube
    from tasks.backup import steps

    run = secrets.token_hex(3)
    os.environ.update(senv)
    api = kube.connect(senv["KUBECONFIG"]).client
    namespaces = [f"clibench-{run}-{i}" for i in range(2)]
    label = {"kaiops.io/bench": run}
    create_all(api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": label}}
                     for n in namespaces])
    # no RayCluster: the sandbox's KubeRay emulation would start a real Ray head for each
    bench_objects = [o for ns in namespaces for o in make_objects(ns, 12, label) if o["kind"] != "RayCluster"]
    create_all(api, bench_objects)
    work = Path(tempfile.mkdtemp(prefix="kaiops-clibench-"))
    policy_file = work / "policy.yaml"
    dest = f"s3://kaiops-clibench/{run}"
    policy_file.write_text(json.dumps({"name": f"clibench-{run}", "destination": dest, "create_bucket": True,
                                       "label_selector": f"kaiops.io/bench={run}", "encryption_key_env": None}))
    pol = BackupPolicy(name=f"clibench-{run}", destination=dest, create_bucket=True,
                       label_selector=f"kaiops.io/bench={run}", encryption_key_env=None)
    written = steps.write_backup(pol, steps.export_objects(pol), key=None)
    model = work / "model"
    (model / "weights").mkdir(parents=True)
    for i in range(5):
        (model / "weights" / f"w{i}.bin").write_bytes(os.urandom(64 << 10))
    (model / "config.json").write_text("{}")
    from tasks.storage.s3 import S3Store

    S3Store.from_env().create_bucket("kaiops-clibench")
    version = f"s3://kaiops-clibench/models/{run}/v1"
    subprocess.run([kaiops, "publish", str(model), version], env=env, capture_output=True, check=True)
    manifest = ROOT / "tests" / "manifests" / "good"
    one_manifest = sorted(manifest.glob("*.yaml"))[0]
    has_status = subprocess.run([kaiops, "status", "--help"], env=env, capture_output=True).returncode == 0

    # --- rows: (group, name, argv, env) ------------------------------------------------------------------------
    rows: list[tuple[str, str, list[str], dict[str, str]]] = [
        ("help", "kaiops --help", ["--help"], env),
        ("read-only", "kaiops backups list", ["backups", "list", "-p", str(policy_file)], env),
        ("read-only", f"kaiops validate {one_manifest.name}", ["validate", str(one_manifest)], env),
        ("read-only", "kaiops backup --dry-run", ["backup", "--dry-run", "-p", str(policy_file)], env),
        ("read-only", "kaiops retention --dry-run", ["retention", "--dry-run", "-p", str(policy_file)], env),
        ("read-only", "kaiops drill --dry-run", ["drill", "--dry-run", "-p", str(policy_file)], env),
        ("read-only", "kaiops restore --dry-run (into new ns)",
         ["restore", written.backup_id, "--dry-run", "-p", str(policy_file),
          *[x for ns in namespaces for x in ("--namespace-map", f"{ns}={ns}-r")]], env),
        ("read-only", "kaiops publish --dry-run", ["publish", str(model), version, "--dry-run"], env),
        ("nothing to change", "kaiops publish (unchanged), Prefect server", ["publish", str(model), version], env),
        ("nothing to change", "kaiops publish (unchanged), no PREFECT_API_URL", ["publish", str(model), version],
         no_api),
    ]
    if has_status:
        rows.insert(2, ("read-only", "kaiops status", ["status"], env))
    kubectl_get = [*kubectl, "get", "rayclusters.ray.io,inferenceservices.serving.kserve.io", "-A"]
    run_once(kubectl_get, env)  # warm kubectl's discovery cache, as a user's is

    def before_cmd(argv: list[str]) -> list[str]:
        return [sys.executable, "-c", "import sys; from flows.cli import main; sys.argv[0] = 'kaiops'; main()", *argv]

    results = []
    for group, name, argv, renv in rows:
        ours, base, before = [], [], []
        for _ in range(args.repeat):
            base.append(run_once(kubectl_get, env))
            ours.append(run_once([kaiops, *argv], renv))
            if args.before is not None:
                benv = {**renv, "PYTHONPATH": str(args.before)}
                before.append(run_once(before_cmd(argv), benv, cwd=args.before))  # cwd first on sys.path
        med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
        row = {"group": group, "command": name, "seconds": med(ours, 0), "cpu_seconds": med(ours, 1),
               "kubectl_seconds": med(base, 0), "kubectl_cpu_seconds": med(base, 1), "goal_seconds": GOALS[group]}
        row["ratio_to_kubectl"] = row["seconds"] / row["kubectl_seconds"]
        if before:
            row["before_seconds"], row["before_cpu_seconds"] = med(before, 0), med(before, 1)
        results.append(row)
        print(f"{name:52} {row['seconds']:6.2f} s cpu {row['cpu_seconds']:5.2f}"
              + (f" (before {row['before_seconds']:6.2f} s cpu {row['before_cpu_seconds']:5.2f})" if before else "")
              + f"  kubectl get {row['kubectl_seconds']:5.2f} s  x{row['ratio_to_kubectl']:.1f}", flush=True)
    load_after = os.getloadavg()

    lines = [f"kaiops CLI vs `kubectl get rayclusters,inferenceservices -A` on the same sandbox; median of "
             f"{args.repeat} alternating pairs per row, each command a fresh process",
             f"machine: {os.cpu_count()} cores, load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at end",
             "",
             "wall = median wall seconds; cpu = median user+system CPU seconds of the process tree (what the wall",
             "time approaches on an idle machine); goal is checked on wall time",
             "",
             f"{'command':52} {'wall':>6} {'cpu':>5} " + (f"{'before':>6} {'cpu':>5} " if args.before else "")
             + f"{'kubectl':>7} {'cpu':>5} {'x kubectl':>9} {'goal':>5}"]
    for r in results:
        ok = "OK" if r["seconds"] <= r["goal_seconds"] else "MISSED"
        lines.append(f"{r['command']:52} {r['seconds']:6.2f} {r['cpu_seconds']:5.2f} "
                     + (f"{r['before_seconds']:6.2f} {r['before_cpu_seconds']:5.2f} " if args.before else "")
                     + f"{r['kubectl_seconds']:7.2f} {r['kubectl_cpu_seconds']:5.2f} {r['ratio_to_kubectl']:9.1f} "
                     f"{r['goal_seconds']:5.1f} {ok}")
    print("\n" + "\n".join(lines))

    # clean up: the objects, then the namespaces (left Terminating: no controller-manager in the sandbox)
    kinds = ",".join(sorted({o["kind"].lower() + "s" for o in bench_objects}))
    for ns in namespaces:
        subprocess.run([*kubectl, "delete", kinds, "--all", "-n", ns, "--wait=false"], capture_output=True)
        subprocess.run([*kubectl, "delete", "namespace", ns, "--wait=false"], capture_output=True)
    if args.json:
        args.json.write_text(json.dumps({"repeat": args.repeat, "load_average": [load_before, load_after],
                                         "rows": results, "printed": lines}, indent=1) + "\n")


if __name__ == "__main__":
    main()
