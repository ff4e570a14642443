"""Benchmark: ``kaiops backup`` and ``kaiops drill`` at scale, each a fresh process beside kubectl.

1. Seeds ``--objects`` custom resources (RayCluster, RayJob, InferenceService, ServingRuntime, HTTPRoute) in
   ``--namespaces`` namespaces through the real apiserver, plus one ConfigMap per namespace that the
   InferenceServices and RayClusters reference, all labelled ``kaiops.io/bench-scale=<run>``. Seeding is skipped
   when the objects of ``--run`` are already there (re-runs reuse them).
2. Backup, ``--pairs`` alternating pairs: ``kubectl get <the kinds kaiops backs up> -A -l ... -o json`` then
   ``kaiops backup -p <policy>`` into an empty destination (a first FULL backup), then kubectl again and
   ``kaiops backup`` once more (the NIGHTLY: unchanged, incremental). Every run is a fresh process, started the
   way a nightly run starts (the CLI, a flow run against the sandbox's Prefect server); kubectl's discovery cache
   is warmed once, untimed.
3. Drill, ``--pairs`` alternating pairs, on a backup of the first ``--drill-namespaces`` namespaces: ``kubectl
   apply --server-side -f <dir>`` of the same objects into fresh namespaces (created untimed, emptied after,
   untimed), then ``kaiops drill -p <policy> --readiness present`` (verify every checksum, plan, apply, read back
   and compare, delete what it restored).
4. Prints each row's median seconds, ratio (kaiops / kubectl), peak RSS of each process (GNU time ``%M``), the
   machine's load average, and writes ``bench/results/backup_scale.{txt,json}``.

Needs the sandbox services kube-apiserver (with etcd, net), s3 and prefect:
``.venv/bin/python -c "from sandbox import launcher; launcher.up(('kube-apiserver', 's3', 'prefect'))"``.
Run: ``KAIOPS_SANDBOX=<instance> .venv/bin/python bench/backup_scale.py [--objects 50000] [--namespaces 500]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import launcher  # noqa: E402
from sandbox.paths import binary  # noqa: E402
from tasks import kube  # noqa: E402
from tasks.backup import discovery  # noqa: E402

LABEL = "kaiops.io/bench-scale"
# per namespace, per 100 objects: how many of each kind
MIX = (("RayCluster", 30), ("RayJob", 10), ("InferenceService", 30), ("ServingRuntime", 10), ("HTTPRoute", 20))
# what `kaiops backup` lists (discovery.CUSTOM_KINDS served by the sandbox) plus the referenced ConfigMaps
KUBECTL_KINDS = ("rayclusters.ray.io,rayjobs.ray.io,rayservices.ray.io,inferenceservices.serving.kserve.io,"
                 "servingruntimes.serving.kserve.io,clusterservingruntimes.serving.kserve.io,"
                 "inferencegraphs.serving.kserve.io,trainedmodels.serving.kserve.io,"
                 "localmodelcaches.serving.kserve.io,httproutes.gateway.networking.k8s.io,configmaps")


def make_object(kind: str, ns: str, i: int, label: dict[str, str]) -> dict[str, Any]:
    """One seeded object of ``kind`` number ``i`` in ``ns`` (a minimal valid spec; the ISVC and RayCluster
    reference the namespace's ConfigMap ``bench-cfg``)."""
    meta = {"name": f"{kind.lower()}-{i}", "namespace": ns, "labels": label}
    container = {"name": "ray-head", "image": "rayproject/ray:2.46.0",
                 "envFrom": [{"configMapRef": {"name": "bench-cfg"}}]}
    specs: dict[str, tuple[str, dict[str, Any]]] = {
        "RayCluster": ("ray.io/v1", {"headGroupSpec": {"rayStartParams": {"num-cpus": "1"},
                                                       "template": {"spec": {"containers": [container]}}}}),
        "RayJob": ("ray.io/v1", {"entrypoint": f"python job_{i}.py", "shutdownAfterJobFinishes": True}),
        "InferenceService": ("serving.kserve.io/v1beta1", {"predictor": {
            "model": {"modelFormat": {"name": "sklearn"}, "storageUri": f"s3://models/{ns}/{i}"},
            "volumes": [{"name": "c", "configMap": {"name": "bench-cfg"}}]}}),
        "ServingRuntime": ("serving.kserve.io/v1alpha1", {
            "supportedModelFormats": [{"name": "sklearn"}],
            "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.15.0"}]}),
        "HTTPRoute": ("gateway.networking.k8s.io/v1", {
            "rules": [{"backendRefs": [{"name": f"inferenceservice-{i}-predictor", "port": 80}]}]}),
    }
    api_version, spec = specs[kind]
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec}


def namespace_objects(ns: str, count: int, label: dict[str, str]) -> list[dict[str, Any]]:
    """``count`` custom resources for ``ns`` in the proportions of :data:`MIX`, plus its ConfigMap (first)."""
    out: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "bench-cfg", "namespace": ns, "labels": label},
                                  "data": {"threshold": "0.5"}}]
    kinds = [k for k, n in MIX for _ in range(n)]
    out += [make_object(kinds[j % len(kinds)], ns, j, label) for j in range(count)]
    return out


def post_all(api: Any, objects: list[dict[str, Any]], parallelism: int = 16) -> int:
    """POST every object (one request each, ``parallelism`` at once); an existing one (409) counts as done.
    Returns the number created."""
    kinds = {discovery.KindName(o["apiVersion"].rpartition("/")[0], o["kind"]) for o in objects}
    found = discovery.discover(api, kinds)
    discovery.widen_pool(api, parallelism + 2)

    def post(o: dict[str, Any]) -> int:
        info = found.served[discovery.KindName(o["apiVersion"].rpartition("/")[0], o["kind"])]
        for attempt in range(5):  # an overloaded etcd times out now and then (500 "request timed out")
            try:
                api.call_api(info.path(o["metadata"].get("namespace")), "POST", body=o, auth_settings=["BearerToken"],
                             header_params={"Content-Type": "application/json"}, _preload_content=False)
                return 1
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status == 409:  # an object left by an earlier, interrupted seeding
                    return 0
                if attempt == 4 or (status is not None and status < 500 and status != 429):
                    raise
                time.sleep(2 + attempt)
        return 0

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        return sum(pool.map(post, objects))


def delete_collections(api: Any, namespaces: list[str], parallelism: int = 8) -> None:
    """Empty ``namespaces`` of the seeded kinds (one deletecollection per kind and namespace)."""
    found = discovery.discover(api, [discovery.KindName(o["apiVersion"].rpartition("/")[0], o["kind"])
                                     for o in namespace_objects("x", 100, {})])

    def wipe(ns: str) -> None:
        for info in found.served.values():
            api.call_api(info.path(ns), "DELETE", auth_settings=["BearerToken"], _preload_content=False)

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(wipe, namespaces))


def seeded_keys(api: Any, run: str) -> set[tuple[str, str, str]]:
    """``(kind, namespace, name)`` of the objects labelled for ``run`` (metadata-only pages)."""
    found = discovery.discover(api, [discovery.KindName(o["apiVersion"].rpartition("/")[0], o["kind"])
                                     for o in namespace_objects("x", 100, {})])
    keys: set[tuple[str, str, str]] = set()
    for info in found.served.values():
        token = None
        while True:
            query = [("limit", 5000), ("labelSelector", f"{LABEL}={run}")] + ([("continue", token)] if token else [])
            page = discovery.get_json(api, info.path(), query,
                                     accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
            keys |= {(info.kind, i["metadata"].get("namespace", ""), i["metadata"]["name"])
                     for i in page.get("items") or []}
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
    return keys


def fresh(cmd: list[str], env: dict[str, str]) -> tuple[float, int, bytes]:
    """Run ``cmd`` as a fresh process; return (wall seconds, its peak RSS in MiB, stdout).

    The peak RSS is GNU time's ``%M`` for ``cmd`` alone: ``wait4``'s ``ru_maxrss`` of a child forked from this
    process also counts the pages it shared with this (large) parent before ``exec``.

    Raises:
        RuntimeError: the process exited non-zero (its stderr's tail in the message).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], stdout=out, stderr=err, env=env,
                              check=False)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])}... exit {proc.returncode}: {err.read()[-2000:].decode()}")
        return seconds, int(rss.read().split()[-1]) // 1024, out.read()


def parse_json(out: bytes) -> Any:
    """The JSON document a ``-o json`` command printed (anything a library printed before it is skipped)."""
    text = out.decode()
    start = 0 if text.lstrip().startswith(("{", "[")) else text.index("\n{") + 1
    return json.JSONDecoder().raw_decode(text[start:].lstrip())[0]


def write_policy(path: Path, **fields: Any) -> Path:
    path.write_text(json.dumps(fields))  # JSON is YAML
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50_000, help="custom resources to seed")
    parser.add_argument("--namespaces", type=int, default=500)
    parser.add_argument("--drill-namespaces", type=int, default=20, help="namespaces of the drilled backup")
    parser.add_argument("--pairs", type=int, default=3, help="alternating kubectl/kaiops pairs per row")
    parser.add_argument("--run", default="s50k", help="seed label value; objects already seeded are reused")
    parser.add_argument("--skip-drill", action="store_true")
    parser.add_argument("--seed-only", action="store_true", help="seed (or count) the objects, measure nothing")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "backup_scale")
    args = parser.parse_args()

    env = dict(os.environ) | launcher.env()
    os.environ.update(env)
    kubectl = str(binary("kubectl"))
    kaiops = str(ROOT / ".venv" / "bin" / "kaiops")
    api = kube.connect(env["KUBECONFIG"]).client
    label = {LABEL: args.run}
    namespaces = [f"scale-{args.run}-{i:03d}" for i in range(args.namespaces)]
    per_ns = [args.objects // args.namespaces + (1 if i < args.objects % args.namespaces else 0)
              for i in range(args.namespaces)]
    expected = args.objects + args.namespaces
    have = seeded_keys(api, args.run)
    if len(have) < expected:
        t0 = time.perf_counter()
        post_all(api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": label}}
                       for n in namespaces])
        missing = [o for ns, n in zip(namespaces, per_ns, strict=True) for o in namespace_objects(ns, n, label)
                   if (o["kind"], ns, o["metadata"]["name"]) not in have]
        created = post_all(api, missing)
        print(f"seeded {created} objects ({len(missing)} missing) in {time.perf_counter() - t0:.0f}s", flush=True)
    else:
        print(f"reusing {len(have)} objects of run {args.run}", flush=True)
    if args.seed_only:
        return

    tag = secrets.token_hex(3)
    work = Path(tempfile.mkdtemp(prefix="kaiops-bench-scale-"))
    selector = f"{LABEL}={args.run}"
    kubectl_get = [kubectl, "--kubeconfig", env["KUBECONFIG"], "get", KUBECTL_KINDS, "-A", "-l", selector, "-o", "json"]
    fresh(kubectl_get, env)  # warm kubectl's discovery cache (untimed)
    rows: dict[str, list[dict[str, Any]]] = {}

    Run = tuple[float, int, bytes]

    def sample(row: str, base: Run, ours: Run, n_base: int, n_ours: int) -> None:
        rows.setdefault(row, []).append({"kaiops_s": ours[0], "kaiops_rss_mib": ours[1], "kubectl_s": base[0],
                                         "kubectl_rss_mib": base[1], "objects": n_ours, "kubectl_objects": n_base,
                                         "load": os.getloadavg()[0]})
        print(f"  {row}: kaiops {ours[0]:.2f}s {ours[1]} MiB, kubectl {base[0]:.2f}s {base[1]} MiB, "
              f"ratio {ours[0] / base[0]:.2f} (load {os.getloadavg()[0]:.1f})", flush=True)

    for pair in range(args.pairs):
        policy = write_policy(work / f"backup-{pair}.yaml", name="bench-scale",
                              destination=f"s3://kaiops-bench-scale/{tag}/p{pair}", create_bucket=True,
                              label_selector=selector, encryption_key_env=None, metrics_dir=str(work / "metrics"))
        for row in ("backup full (first) -> S3", "backup nightly (unchanged) -> S3"):
            base = fresh(kubectl_get, env)
            ours = fresh([kaiops, "backup", "-p", str(policy), "-o", "json"], env)
            sample(row, base, ours, len(parse_json(base[2])["items"]), parse_json(ours[2])["objects"])

    if not args.skip_drill:
        drill_ns = namespaces[: args.drill_namespaces]
        dpolicy = write_policy(work / "drill.yaml", name="bench-scale-drill",
                               destination=f"s3://kaiops-bench-scale/{tag}/drill", create_bucket=True,
                               namespaces=drill_ns, label_selector=selector, encryption_key_env=None,
                               metrics_dir=str(work / "metrics"))
        fresh([kaiops, "backup", "-p", str(dpolicy), "-o", "json"], env)  # the backup the drills restore (untimed)
        for pair in range(args.pairs):
            mapped = [f"k{tag}{pair}-{ns}"[:63] for ns in drill_ns]
            post_all(api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": m}} for m in mapped])
            files = work / f"apply-{pair}"
            files.mkdir()
            n_files = 0
            for m, n in zip(mapped, per_ns, strict=False):
                docs = namespace_objects(m, n, label)
                (files / f"{m}.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
                n_files += len(docs)
            base = fresh([kubectl, "--kubeconfig", env["KUBECONFIG"], "apply", "--server-side", "--field-manager",
                          "bench", "-f", str(files)], env)
            ours = fresh([kaiops, "drill", "-p", str(dpolicy), "--readiness", "present", "-o", "json"], env)
            summary = parse_json(ours[2])
            if summary.get("verdict") != "passed":
                raise RuntimeError(f"drill did not pass: {json.dumps(summary)[:2000]}")
            sample("restore drill (verify+apply+compare+cleanup)", base, ours, n_files,
                   int(summary["objects"]["restored"]))
            delete_collections(api, mapped)

    result = {"objects": args.objects, "namespaces": args.namespaces, "drill_namespaces": args.drill_namespaces,
              "pairs": args.pairs, "cpus": os.cpu_count(), "rows": rows}
    lines = [f"{args.objects} custom resources + {args.namespaces} ConfigMaps in {args.namespaces} namespaces; "
             f"{args.pairs} alternating pairs per row, every command a fresh process; medians; "
             f"{os.cpu_count()} CPUs shared, load average during the runs in the last column",
             f"{'kaiops':46} {'s':>7} {'MiB':>5}  {'kubectl':30} {'s':>7} {'MiB':>5} {'ratio':>6} {'objects':>7} "
             f"{'(kubectl)':>9} {'load':>10}"]
    for row, runs in rows.items():
        ks, kr, bs, br = (statistics.median(r[k] for r in runs)
                          for k in ("kaiops_s", "kaiops_rss_mib", "kubectl_s", "kubectl_rss_mib"))
        base_name = "kubectl apply --server-side" if row.startswith("restore") else "kubectl get -A -o json"
        loads = [r["load"] for r in runs]
        lines.append(f"{row:46} {ks:7.2f} {kr:5.0f}  {base_name:30} {bs:7.2f} {br:5.0f} {ks / bs:6.2f} "
                     f"{runs[-1]['objects']:>7} {runs[-1]['kubectl_objects']:>9} {min(loads):4.1f}-{max(loads):4.1f}")
        pairs = ", ".join(f"{r['kaiops_s'] / r['kubectl_s']:.2f}" for r in runs)
        lines.append(f"{'  ratios of the pairs':46} {pairs}")
    text = "\n".join(lines)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".txt").write_text(text + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
