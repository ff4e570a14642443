"""Benchmark: kaiops backup and restore drill against kubectl on the sandbox apiserver and S3.

1. Creates ``--objects`` custom resources and ConfigMaps (RayCluster, InferenceService, ServingRuntime,
   HTTPRoute and the ConfigMaps they reference) across ``--namespaces`` namespaces, in parallel, labelled
   ``kaiops.io/bench=<run>``.
2. Times kaiops backups of them against ``kubectl get <same kinds> -A -l ... -o json``, each paired with a
   kubectl run made just before it (goal: ratio <= 1.2): to S3 (moto) and to GCS (fake-gcs-server), each
   first a FULL backup into an empty destination, then the unchanged NIGHTLY (incremental: nothing changed,
   so no pack is uploaded; the manifest still lists every object), then a NIGHTLY after 1 % of the objects
   (ConfigMaps) changed (only those are uploaded, in one new pack); and a FULL backup in layout ``objects``
   (one PUT per resource) into its own empty destination. Each row is the median of ``--repeat`` pairs.
   Libraries are imported before timing (a flow worker has them loaded); kubectl's discovery cache is warmed
   by one untimed run.
3. Times a restore of ``--drill-objects`` of them into scratch namespaces (verify checksums, check CRDs,
   apply in order with server-side apply, read back and compare) against ``kubectl apply --server-side``
   of the same objects written as files.
4. Deletes what it created (namespaces stay Terminating: the sandbox runs no controller-manager).

Needs the sandbox services kube-apiserver, s3 and gcs (``kaiops sandbox up -s kube-apiserver -s s3 -s gcs``).
Run: ``KAIOPS_SANDBOX=<instance> .venv/bin/python bench/backup.py [--objects 5000] [--namespaces 50]``.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configs.backup import BackupPolicy, Layout
from sandbox import launcher
from sandbox.paths import binary
from tasks import kube
from tasks.backup import discovery, drill, steps
from tasks.backup.restore import ExistingPolicy, ProductionMarker

KINDS = ("rayclusters.ray.io,inferenceservices.serving.kserve.io,servingruntimes.serving.kserve.io,"
         "httproutes.gateway.networking.k8s.io,configmaps")


def make_objects(ns: str, count: int, label: dict[str, str]) -> list[dict]:
    """``count`` objects for ``ns``: groups of (ConfigMap, InferenceService using it, RayCluster using it,
    ServingRuntime, HTTPRoute)."""
    out: list[dict] = []
    i = 0
    while len(out) < count:
        meta = lambda name: {"name": name, "namespace": ns, "labels": label}  # noqa: E731
        group = [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(f"cfg-{i}"), "data": {"threshold": str(i)}},
            {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": meta(f"isvc-{i}"),
             "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": f"s3://m/{i}"},
                                    "volumes": [{"name": "c", "configMap": {"name": f"cfg-{i}"}}]}}},
            {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": meta(f"rc-{i}"),
             "spec": {"headGroupSpec": {"rayStartParams": {"num-cpus": "1"}, "template": {"spec": {"containers": [
                 {"name": "ray-head", "image": "rayproject/ray:2.46.0",
                  "envFrom": [{"configMapRef": {"name": f"cfg-{i}"}}]}]}}}}},
            {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime", "metadata": meta(f"rt-{i}"),
             "spec": {"supportedModelFormats": [{"name": "sklearn"}],
                      "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.15.0"}]}},
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta(f"route-{i}"),
             "spec": {"rules": [{"backendRefs": [{"name": f"isvc-{i}-predictor", "port": 80}]}]}},
        ]
        out += group[: count - len(out)]
        i += 1
    return out


def create_all(api, objects: list[dict], parallelism: int = 32) -> None:
    """POST every object (one request each, in parallel)."""
    kinds = {discovery.KindName(o["apiVersion"].rpartition("/")[0], o["kind"]) for o in objects}
    found = discovery.discover(api, kinds)

    def post(o: dict) -> None:
        info = found.served[discovery.KindName(o["apiVersion"].rpartition("/")[0], o["kind"])]
        api.call_api(info.path(o["metadata"].get("namespace")), "POST", body=o, auth_settings=["BearerToken"],
                     header_params={"Content-Type": "application/json"}, _preload_content=False)

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(post, objects))


def patch_all(api, objects: list[dict], patch: dict, parallelism: int = 16) -> None:
    """Merge-patch every object (one request each, in parallel)."""
    kinds = {discovery.KindName(o["apiVersion"].rpartition("/")[0], o["kind"]) for o in objects}
    found = discovery.discover(api, kinds)

    def one(o: dict) -> None:
        info = found.served[discovery.KindName(o["apiVersion"].rpartition("/")[0], o["kind"])]
        api.call_api(info.path(o["metadata"].get("namespace"), o["metadata"]["name"]), "PATCH", body=patch,
                     auth_settings=["BearerToken"], header_params={"Content-Type": "application/merge-patch+json"},
                     _preload_content=False)

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(one, objects))


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--drill-objects", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="pairs per row; the medians are printed")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    env = launcher.env()
    os.environ.update(env)
    kubectl = str(binary("kubectl"))
    dyn = kube.connect(env["KUBECONFIG"])
    api = dyn.client
    run = secrets.token_hex(3)
    label = {"kaiops.io/bench": run}
    namespaces = [f"bench-{run}-{i:03d}" for i in range(args.namespaces)]
    per_ns = [args.objects // args.namespaces + (1 if i < args.objects % args.namespaces else 0)
              for i in range(args.namespaces)]
    objects = [o for ns, n in zip(namespaces, per_ns, strict=True) for o in make_objects(ns, n, label)]
    create_all(api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": label}}
                     for n in namespaces])
    t_create, _ = timed(lambda: create_all(api, objects))
    print(f"created {len(objects)} objects in {args.namespaces} namespaces in {t_create:.1f}s")

    import boto3  # noqa: F401  (imported before timing, as in a running flow worker)
    from google.cloud import storage  # noqa: F401

    kubectl_cmd = [kubectl, "--kubeconfig", env["KUBECONFIG"], "get", KINDS, "-A", "-l", f"kaiops.io/bench={run}",
                   "-o", "json"]
    subprocess.run(kubectl_cmd, capture_output=True, check=True)  # warm kubectl's discovery cache

    def kubectl_get() -> tuple[float, int]:
        seconds, out = timed(lambda: subprocess.run(kubectl_cmd, capture_output=True, check=True).stdout)
        return seconds, len(json.loads(out)["items"])

    def do_backup(pol: BackupPolicy):
        exported = steps.export_objects(pol)
        return exported, steps.write_backup(pol, exported, key=None)

    # fake-gcs-server's memory backend keeps a bucket's objects in one list and scans it on every write (a PUT
    # costs O(objects in the bucket), unlike GCS): each GCS destination below gets a bucket of its own
    stores = (("S3 (moto)", f"s3://kaiops-bench/{run}"), ("GCS (fake-gcs)", f"gs://kaiops-bench-{run}/{run}"))
    samples: dict[tuple[str, str], list[tuple[float, float, float, int, int, int]]] = {}
    backups = {}
    configmaps = [o for o in objects if o["kind"] == "ConfigMap"][: max(1, len(objects) // 100)]

    def measure(store_name: str, mode: str, pol: BackupPolicy) -> None:
        t_kubectl, listed = kubectl_get()
        t_backup, (exported, written) = timed(lambda: do_backup(pol))
        samples.setdefault((store_name, mode), []).append(
            (t_backup, exported.seconds, t_kubectl, written.objects, len(exported.objects), listed))
        backups[(store_name, mode)] = written

    for repeat in range(args.repeat):  # each repeat: a fresh destination, so the first backup there is full
        policies = {name: BackupPolicy(name=f"bench-{run}", destination=f"{uri}/r{repeat}", create_bucket=True,
                                       label_selector=f"kaiops.io/bench={run}", encryption_key_env=None,
                                       parallelism=16) for name, uri in stores}
        for store_name, pol in policies.items():
            measure(store_name, "full (first)", pol)
            measure(store_name, "nightly (unchanged)", pol)
        for store_name, pol in policies.items():  # one PUT per resource, into an empty destination of its own
            fresh = (f"{pol.destination}-objects" if pol.destination.startswith("s3://")
                     else f"gs://kaiops-bench-{run}-o{repeat}/{run}")
            measure(store_name, "full, layout objects",
                    pol.model_copy(update={"layout": Layout.objects, "destination": fresh}))
        patch_all(api, configmaps, {"data": {"threshold": f"changed-{repeat}"}})  # 1 % of the objects, untimed
        for store_name, pol in policies.items():
            measure(store_name, f"nightly ({len(configmaps)} changed)", pol)
    rows = []
    for (store_name, mode), runs in samples.items():
        t_backup, t_export, t_kubectl = (statistics.median(r[i] for r in runs) for i in range(3))
        _, _, _, n_written, n_exported, listed = runs[-1]
        rows.append((f"backup {mode} -> {store_name}", t_backup, "kubectl get -A -o json", t_kubectl,
                     n_written, listed))
        rows.append(("  of which list/export", t_export, "kubectl get -A -o json", t_kubectl, n_exported, listed))
    policy = BackupPolicy(name=f"bench-{run}", destination=f"s3://kaiops-bench/{run}/r0", encryption_key_env=None,
                          parallelism=16)
    written = steps.list_backups(policy)[-1]  # the first (full) S3 backup of repeat 0 (the drill restores it)

    # drill: the first namespaces holding about --drill-objects objects
    take, total = [], 0
    for ns, n in zip(namespaces, per_ns, strict=True):
        if total >= args.drill_objects:
            break
        take.append(ns)
        total += n
    loaded = steps.verify_backup(policy, written.id, None)
    chosen = [o for o in loaded.objects if (o["metadata"].get("namespace") or o["metadata"]["name"]) in take]
    drill_id = secrets.token_hex(3)

    def do_drill():
        dplan = drill.plan_drill(chosen, drill_id)
        loaded.objects = dplan.restore
        plan = steps.plan_restore(loaded, kubeconfig=None, namespace_map=dplan.namespace_map,
                                  existing=ExistingPolicy.fail, marker=ProductionMarker(), yes=False)
        report = steps.apply_restore(plan, kubeconfig=None, backup_id=written.id,
                                     existing=ExistingPolicy.fail, dry_run=False, parallelism=16)
        pairs = [(o, a) for o, a in zip(dplan.restore, plan.objects, strict=True) if a["kind"] != "Namespace"]
        results = steps.drill_wait(pairs, kubeconfig=None, mode=drill.ReadinessMode.present, timeout=120)
        return dplan, plan, report, results

    t_drill, (dplan, _plan, report, results) = timed(do_drill)
    equal = sum(r.equal for r in results)

    # kubectl apply --server-side of the same objects (other scratch namespaces)
    kmap = drill.scratch_map(take, "k" + drill_id[1:])
    with tempfile.TemporaryDirectory() as tmp:
        from tasks.backup.restore import prepare

        docs = prepare(drill.plan_drill(chosen, "k" + drill_id[1:]).restore, kmap)
        for i, doc in enumerate(docs):
            Path(tmp, f"{i:05d}.json").write_text(json.dumps(doc))
        create_all(api, [d for d in docs if d["kind"] == "Namespace"])
        files = [d for d in docs if d["kind"] != "Namespace"]
        for i, doc in enumerate(docs):
            if doc["kind"] == "Namespace":
                Path(tmp, f"{i:05d}.json").unlink()
        t_apply, _ = timed(lambda: subprocess.run(
            [kubectl, "--kubeconfig", env["KUBECONFIG"], "apply", "--server-side", "--field-manager", "bench",
             "-f", tmp], capture_output=True, check=True))

    rows.append(("restore drill (verify+apply+compare)", t_drill, "kubectl apply --server-side", t_apply,
                 len(results), len(files)))
    lines = [f"median of {args.repeat} side-by-side pairs per backup row; one pair for the drill"]
    lines += [f"{'kaiops':45} {'s':>7} {'baseline':28} {'s':>7} {'ratio':>6} {'objects':>8}"]
    lines += [f"{name:45} {ts:7.2f} {base:28} {tb:7.2f} {ts / tb:6.2f} {n:>8} (baseline {nb})"
              for name, ts, base, tb, n, nb in rows]
    lines.append("")
    for (store_name, label_), w in backups.items():
        where = (f"{w.extra['packs']} pack(s)" if w.extra["layout"] == Layout.packs
                 else f"{w.extra['uploaded']} storage objects")
        lines.append(f"{store_name:15} {label_:20} {w.backup_id}: {w.objects} objects, {w.bytes / 1e6:.2f} MB; "
                     f"uploaded {w.extra['uploaded']} objects in {where} "
                     f"({w.extra['uploaded_bytes'] / 1e6:.2f} MB), reused {w.extra['reused']}")
    lines.append(f"drill of {len(take)} namespaces: {report.counts()}, equal {equal}/{len(results)}")
    print("\n" + "\n".join(lines))

    # clean up: the bench objects, the drill copies, then the namespaces (left Terminating: no controller-manager)
    all_ns = namespaces + list(dplan.namespace_map.values()) + list(kmap.values())
    found = discovery.discover(api, [discovery.KindName("ray.io", "RayCluster"),
                                     discovery.KindName("serving.kserve.io", "InferenceService"),
                                     discovery.KindName("serving.kserve.io", "ServingRuntime"),
                                     discovery.KindName("gateway.networking.k8s.io", "HTTPRoute"),
                                     discovery.KindName("", "ConfigMap"), discovery.KindName("", "Namespace")])

    def wipe(ns: str) -> None:
        for name, info in found.served.items():
            if name.kind != "Namespace":
                api.call_api(info.path(ns), "DELETE", auth_settings=["BearerToken"], _preload_content=False)
        api.call_api(found.served[discovery.KindName("", "Namespace")].path(None, ns), "DELETE",
                     auth_settings=["BearerToken"], _preload_content=False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(wipe, all_ns))
    if args.json:
        fields = ["kaiops", "seconds", "baseline", "baseline_seconds", "objects", "baseline_objects"]
        args.json.write_text(json.dumps({
            "objects": args.objects, "namespaces": args.namespaces, "drill_objects": args.drill_objects,
            "repeat": args.repeat,
            "rows": [dict(zip(fields, r, strict=True)) | {"ratio": round(r[1] / r[3], 3)} for r in rows],
            "printed": lines,
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
