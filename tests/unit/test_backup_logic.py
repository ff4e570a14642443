"""Pure backup logic: stripping, ownership, references, retention, order, readiness, drill comparison,
encryption, metrics, the policy model and the PrometheusRule."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from configs.backup import load_policy
from tasks.backup import crypto, metrics
from tasks.backup.drill import differences, scratch_map, summarise
from tasks.backup.export import Ref, operator_owned, references, strip
from tasks.backup.order import load_order, sort_objects, waves
from tasks.backup.readiness import readiness
from tasks.backup.retention import Candidate, Reason, plan
from tasks.backup.store import LocalStore, backup_time, delete_backup, new_backup_id, parse_destination
from tasks.errors import InputError

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def obj(kind, name="x", ns="a", api="v1", **extra):
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, **extra}


def test_strip_removes_server_set_fields_and_status() -> None:
    o = obj("ConfigMap", data={"k": "v"}, status={"x": 1})
    o["metadata"] |= {
        "uid": "u",
        "resourceVersion": "1",
        "generation": 2,
        "creationTimestamp": "t",
        "managedFields": [{}],
        "annotations": {crypto.__name__: "keep", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
    }
    out = strip(o)
    assert out["metadata"] == {"name": "x", "namespace": "a", "annotations": {crypto.__name__: "keep"}}
    assert "status" not in out and strip(o, keep_status=True)["status"] == {"x": 1}
    assert o["metadata"]["uid"] == "u"  # the input is not changed


@pytest.mark.parametrize(
    ("owner", "owned"),
    [
        ({"apiVersion": "ray.io/v1", "kind": "RayJob"}, True),
        ({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService"}, True),
        ({"apiVersion": "serving.knative.dev/v1", "kind": "Route"}, True),
        ({"apiVersion": "apps/v1", "kind": "Deployment"}, False),
    ],
)
def test_operator_owned_objects_are_left_out(owner, owned) -> None:
    o = obj("RayCluster", api="ray.io/v1")
    o["metadata"]["ownerReferences"] = [{**owner, "name": "o", "uid": "u"}]
    assert operator_owned(o) is owned
    assert operator_owned(obj("Service", metadata_labels=None)) is False


def test_references_follow_pod_specs_and_service_account_secrets() -> None:
    isvc = obj(
        "InferenceService",
        api="serving.kserve.io/v1beta1",
        spec={
            "predictor": {
                "serviceAccountName": "sa",
                "volumes": [{"name": "v", "configMap": {"name": "cm"}}, {"name": "s", "secret": {"secretName": "sec"}}],
                "containers": [
                    {
                        "envFrom": [{"configMapRef": {"name": "cm2"}}],
                        "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "sec2", "key": "k"}}}],
                    }
                ],
            }
        },
    )
    assert references(isvc) == {
        Ref("ServiceAccount", "sa"),
        Ref("ConfigMap", "cm"),
        Ref("ConfigMap", "cm2"),
        Ref("Secret", "sec"),
        Ref("Secret", "sec2"),
    }
    sa = obj("ServiceAccount", secrets=[{"name": "s3"}], imagePullSecrets=[{"name": "pull"}])
    assert references(sa) == {Ref("Secret", "s3"), Ref("Secret", "pull")}


T0 = datetime(2025, 3, 31, 2, 0, tzinfo=UTC)


def nightly(days: int, complete: bool = True) -> list[Candidate]:
    return [Candidate(f"b{i:03d}", T0 - timedelta(days=i), complete) for i in range(days)]


def test_retention_keeps_daily_weekly_monthly_and_deletes_the_rest() -> None:
    p = plan(nightly(120), daily=7, weekly=4, monthly=3, now=T0)
    assert all(f"b{i:03d}" in p.keep for i in range(7))
    assert Reason.newest in p.keep["b000"]
    monthly = [k for k, v in p.keep.items() if Reason.monthly in v]
    assert len(monthly) == 3
    assert len(p.keep) < 15 and len(p.keep) + len(p.delete) == 120


def test_retention_never_deletes_the_newest_good_backup() -> None:
    old_good = Candidate("b-old", T0 - timedelta(days=400), True)
    broken = [Candidate(f"x{i}", T0 - timedelta(days=i), False) for i in range(1, 5)]
    p = plan([old_good, *broken], daily=1, weekly=0, monthly=0, now=T0)
    assert "b-old" in p.keep and Reason.newest in p.keep["b-old"]
    assert set(p.delete) == {"x2", "x3", "x4"}  # older than a day: cleaned
    assert p.keep["x1"] == [Reason.in_progress]


def test_retention_keeps_a_fresh_incomplete_backup_and_ignores_it_for_newest() -> None:
    cands = [*nightly(3), Candidate("running", T0 + timedelta(hours=1), False)]
    p = plan(cands, daily=1, weekly=0, monthly=0, now=T0 + timedelta(hours=2))
    assert Reason.newest in p.keep["b000"] and p.keep["running"] == [Reason.in_progress]
    assert set(p.delete) == {"b001", "b002"}


def test_restore_order_is_data_with_a_reason_for_each_position() -> None:
    order = load_order()
    assert all(p.reason for p in order)
    objs = [
        obj("HTTPRoute", api="gateway.networking.k8s.io/v1"),
        obj("InferenceService", api="serving.kserve.io/v1beta1"),
        obj("Widget", api="example.com/v1"),
        obj("RayCluster", api="ray.io/v1"),
        obj("ServingRuntime", api="serving.kserve.io/v1alpha1"),
        obj("ConfigMap"),
        obj("ServiceAccount"),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
        obj("Secret"),
        obj("InferenceGraph", api="serving.kserve.io/v1alpha1"),
    ]
    kinds = [o["kind"] for o in sort_objects(objs, order)]
    assert kinds == [
        "Namespace",
        "Secret",
        "ConfigMap",
        "ServiceAccount",
        "ServingRuntime",
        "RayCluster",
        "InferenceService",
        "InferenceGraph",
        "HTTPRoute",
        "Widget",
    ]
    assert [len(w) for w in waves([*objs, obj("ConfigMap", name="y")], order)][:3] == [1, 1, 2]


def test_restore_order_refuses_an_entry_without_reason(tmp_path) -> None:
    bad = tmp_path / "order.yaml"
    bad.write_text("priorities:\n  - kind: Namespace\n")
    with pytest.raises(InputError, match="reason"):
        load_order(bad)


@pytest.mark.parametrize(
    ("o", "ready"),
    [
        (
            {
                "kind": "RayCluster",
                "apiVersion": "ray.io/v1",
                "status": {"state": "ready", "conditions": [{"type": "HeadPodReady", "status": "True"}]},
            },
            True,
        ),
        ({"kind": "RayCluster", "apiVersion": "ray.io/v1", "status": {"state": "ready"}}, False),
        (
            {
                "kind": "RayCluster",
                "apiVersion": "ray.io/v1",
                "status": {"conditions": [{"type": "HeadPodReady", "status": "True"}]},
            },
            False,
        ),
        (
            {
                "kind": "InferenceService",
                "apiVersion": "serving.kserve.io/v1beta1",
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
            True,
        ),
        (
            {
                "kind": "InferenceService",
                "apiVersion": "serving.kserve.io/v1beta1",
                "status": {"conditions": [{"type": "Ready", "status": "False"}]},
            },
            False,
        ),
        ({"kind": "ServingRuntime", "apiVersion": "serving.kserve.io/v1alpha1"}, True),
        ({"kind": "ConfigMap", "apiVersion": "v1"}, True),
    ],
)
def test_readiness_rules(o, ready) -> None:
    assert readiness(o).ready is ready


def test_drill_comparison_ignores_namespace_and_server_fields_only() -> None:
    backup = obj("ConfigMap", data={"a": "1"})
    restored = obj("ConfigMap", ns="d-abc-a", data={"a": "1"})
    restored["metadata"] |= {"uid": "u", "resourceVersion": "9", "managedFields": []}
    assert differences(backup, restored) == []
    restored["data"]["a"] = "2"
    assert differences(backup, restored) == ["data.a"]


def test_scratch_namespaces_are_unique_per_drill_and_short() -> None:
    long = "n" * 63
    a, b = scratch_map(["x", long], "aaaaaa"), scratch_map(["x", long], "bbbbbb")
    assert a["x"] != b["x"] and all(len(v) <= 63 for v in [*a.values(), *b.values()])


def test_drill_summary_fails_with_a_reason() -> None:
    from tasks.backup.drill import ObjectResult

    ok = summarise(
        [ObjectResult("a", True, True, True)],
        rto=1.0,
        max_rto=None,
        failed_applies=0,
        cluster_checked=0,
        cluster_failed=0,
    )
    bad = summarise(
        [ObjectResult("a", True, False, False)],
        rto=10.0,
        max_rto=5.0,
        failed_applies=1,
        cluster_checked=0,
        cluster_failed=0,
    )
    assert ok["verdict"] == "passed" and bad["verdict"] == "failed"
    assert "not ready" in bad["reason"] and "RTO" in bad["reason"] and "not restored" in bad["reason"]


def test_encryption_round_trip_binds_the_path_and_detects_the_wrong_key() -> None:
    key = os.urandom(32)
    sealed = crypto.seal(key, b"secret-bytes", "objects/core/Secret/a/s.json.sealed")
    assert b"secret-bytes" not in sealed
    assert crypto.open_sealed(key, sealed, "objects/core/Secret/a/s.json.sealed") == b"secret-bytes"
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(key, sealed, "objects/core/Secret/a/other.json.sealed")
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(os.urandom(32), sealed, "objects/core/Secret/a/s.json.sealed")
    with pytest.raises(InputError) as err:
        crypto.parse_key("c2hvcnQ=", "$K")
    assert "c2hvcnQ" not in str(err.value)


def test_metrics_keep_the_last_success_after_a_failure(tmp_path) -> None:
    metrics.record_backup(tmp_path, "nightly", success=True, now=1000.0, duration=2.5, counts={"RayCluster": 3})
    text = metrics.record_backup(tmp_path, "nightly", success=False, now=2000.0).read_text()
    assert 'kaiops_backup_last_success_timestamp_seconds{policy="nightly"} 1000.000' in text
    assert 'kaiops_backup_last_run_success{policy="nightly"} 0.000' in text
    assert 'kaiops_backup_objects{policy="nightly",kind="RayCluster"} 3' in text


def test_backup_ids_and_destinations() -> None:
    assert backup_time(new_backup_id(T0)) == T0 and backup_time("not-a-backup") is None
    assert parse_destination("s3://b/p/q").prefix == "p/q/"
    with pytest.raises(InputError):
        parse_destination("http://b/p")


def test_deleting_a_backup_removes_the_manifest_first(tmp_path) -> None:
    st = LocalStore(str(tmp_path))
    dest = parse_destination(f"file://{tmp_path}")
    for k in ("b1/objects/core/ConfigMap/a/x.json", "b1/manifest.json"):
        st.put(k, b"{}")
    assert delete_backup(st, dest, "b1") == 2 and st.list_keys("b1/") == []


def test_a_backup_that_does_not_exist_is_not_found_and_a_cut_off_one_is_incomplete(tmp_path) -> None:
    from tasks.backup.restore import BackupIncomplete, load_backup
    from tasks.errors import NotFound

    st = LocalStore(str(tmp_path))
    dest = parse_destination(f"file://{tmp_path}")
    with pytest.raises(NotFound, match=r"no backup 20261129T000000Z-aaaaaa .*backups list"):
        load_backup(st, dest, "20261129T000000Z-aaaaaa")
    st.put("20261129T000000Z-bbbbbb/started.json", b"{}")
    with pytest.raises(BackupIncomplete, match=r"no manifest\.json"):
        load_backup(st, dest, "20261129T000000Z-bbbbbb")


def test_policy_file_errors_name_the_field(tmp_path) -> None:
    assert load_policy().name == "nightly"
    bad = tmp_path / "p.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "destination": "s3://b/p", "retention": {"daily": 0}}))
    with pytest.raises(InputError, match=r"retention\.daily"):
        load_policy(bad)
    bad.write_text(yaml.safe_dump({"name": "x", "destination": "s3://b/p", "kinds": ["Pod"]}))
    with pytest.raises(InputError, match="kinds"):
        load_policy(bad)


@pytest.mark.parametrize("bad", ["../../etc", "20250101T000000Z-abcdef/../x", "/etc", "nightly", ""])
def test_a_backup_id_with_path_parts_is_refused_naming_the_argument(bad) -> None:
    from tasks.backup.store import check_backup_id

    with pytest.raises(InputError, match="BACKUP"):
        check_backup_id(bad)
    assert check_backup_id("20250101T000000Z-abcdef") == "20250101T000000Z-abcdef"


def test_cli_restore_refuses_a_path_as_backup_id_and_list_says_when_empty(tmp_path, monkeypatch, capsys) -> None:
    import sys

    from typer.testing import CliRunner

    from flows.cli import app, main

    monkeypatch.setattr(sys, "argv", ["kaiops", "restore", "../../etc"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2 and "BACKUP" in capsys.readouterr().err
    runner = CliRunner()
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump({"name": "p", "destination": f"file://{tmp_path}/store"}))
    listed = runner.invoke(app, ["backups", "list", "--policy", str(policy)])
    assert listed.exit_code == 0 and "no backups under" in listed.output


def test_packs_round_trip_and_garbage_collection_spares_referenced_and_fresh_packs(tmp_path) -> None:
    from tasks.backup.store import PACKS, PackWriter, collect_packs

    dest = parse_destination(f"file://{tmp_path}")
    st = LocalStore(str(tmp_path))
    writer = PackWriter(st, dest, parallelism=2, pack_bytes=10)
    blobs = [f"object-{i}".encode() for i in range(5)]  # 8 bytes each: two per pack
    locations = [writer.add(b) for b in blobs]
    writer.close()
    assert writer.packs == 3 and len({loc["pack"] for loc in locations}) == 3
    for data, loc in zip(blobs, locations, strict=True):
        assert st.get(dest.prefix + loc["pack"])[loc["offset"]:loc["offset"] + loc["size"]] == data
    keep = {locations[0]["pack"]}
    now = datetime.now(UTC)
    assert collect_packs(st, dest, keep, older_than=now - timedelta(hours=1)) == []  # all fresh: none collected
    gone = collect_packs(st, dest, keep, older_than=now + timedelta(hours=1))
    assert len(gone) == 2 and keep == {k[len(dest.prefix):] for k in st.list_keys(PACKS)}


def test_a_conflict_on_controller_metadata_is_yielded_and_on_data_is_not() -> None:
    import json

    from tasks.backup.restore import FieldConflict, field_conflicts, without_metadata_entries

    class Api(Exception):
        body = json.dumps({"kind": "Status", "code": 409, "details": {"causes": [
            {"reason": "FieldManagerConflict", "field": ".metadata.annotations.sandbox.kaiops.io/url",
             "message": 'conflict with "route-controller" using gateway.networking.k8s.io/v1'}]}})

    try:
        raise RuntimeError("conflict") from Api()
    except RuntimeError as exc:
        conflicts = field_conflicts(exc)
    assert conflicts == [FieldConflict(".metadata.annotations.sandbox.kaiops.io/url", "route-controller")]
    route = obj("HTTPRoute", api="gateway.networking.k8s.io/v1", spec={"rules": []})
    route["metadata"]["annotations"] = {"sandbox.kaiops.io/url": "http://old"}
    yielded = without_metadata_entries(route, conflicts)
    assert "annotations" not in yielded["metadata"] and yielded["spec"] == {"rules": []}
    assert "annotations" in route["metadata"]  # the backup's copy is untouched
    assert without_metadata_entries(route, [FieldConflict(".data.threshold", "someone-else")]) is None


def test_gc_pause_nests_and_restores_the_collector() -> None:
    import gc

    from tasks.backup.export import gc_paused

    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a collector someone else turned off stays off
    finally:
        gc.enable()


def test_a_v1_backup_one_object_per_key_still_loads(tmp_path) -> None:
    import json

    from tasks.backup.restore import load_backup
    from tasks.backup.store import encode, sha256

    dest = parse_destination(f"file://{tmp_path}")
    st = LocalStore(str(tmp_path))
    backup_id = new_backup_id()
    cm = obj("ConfigMap", name="c", data={"k": "v"})
    data = encode(cm)
    st.put(f"{backup_id}/objects/core/ConfigMap/a/c.json", data)
    st.put(f"{backup_id}/manifest.json", json.dumps({"format": "kaiops-backup/v1", "objects": [
        {"key": "objects/core/ConfigMap/a/c.json", "sha256": sha256(data), "size": len(data), "encrypted": False,
         "kind": "ConfigMap", "apiVersion": "v1", "namespace": "a", "name": "c"}]}).encode())
    assert load_backup(st, dest, backup_id).objects == [cm]


class RecordingStore(LocalStore):
    """A ``file://`` store that records the order of its PUTs."""

    def __init__(self, root: str, create_bucket: bool = True) -> None:
        super().__init__(root, create_bucket)
        self.puts: list[str] = []

    def put(self, key: str, data: bytes) -> None:
        super().put(key, data)
        self.puts.append(key)


def file_backup(tmp_path, monkeypatch, layout: str, objects: list[dict], key: bytes | None = None,
                backup_id: str | None = None, **policy):
    """Write one backup of ``objects`` to ``file://tmp_path`` in ``layout``; return (Written, store, dest)."""
    from configs.backup import BackupPolicy
    from tasks.backup import steps, store

    st = RecordingStore(str(tmp_path))
    monkeypatch.setattr(store, "open_store", lambda dest, create_bucket=False: st)
    pol = BackupPolicy(name="u", destination=f"file://{tmp_path}", layout=layout, encryption_key_env=None, **policy)
    exported = steps.Exported(objects=objects, cluster={}, crds={}, missing_kinds=[], left_out={}, warnings=[],
                              seconds=0.0)
    return steps.write_backup(pol, exported, key=key, backup_id=backup_id), st, parse_destination(pol.destination)


def test_objects_layout_writes_one_browsable_object_per_resource_manifest_last(tmp_path, monkeypatch) -> None:
    import base64
    import json

    from tasks.backup.store import sha256

    secret = obj("Secret", name="creds", data={"token": base64.b64encode(b"canary-plain").decode()})
    route = obj("HTTPRoute", name="r", api="gateway.networking.k8s.io/v1", spec={"rules": []})
    cluster = {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ClusterServingRuntime",
               "metadata": {"name": "rt"}, "spec": {}}
    key = os.urandom(32)
    written, st, _ = file_backup(tmp_path, monkeypatch, "objects", [obj("ConfigMap", name="c"), secret, route,
                                                                   cluster], key=key)
    base = f"{written.backup_id}/"
    assert st.puts[0] == base + "started.json" and st.puts[-1] == base + "manifest.json"
    assert sorted(st.puts[1:-1]) == sorted(base + k for k in (
        "objects/core/ConfigMap/a/c.json", "objects/core/Secret/a/creds.json.sealed",
        "objects/gateway.networking.k8s.io/HTTPRoute/a/r.json",
        "objects/serving.kserve.io/ClusterServingRuntime/_cluster/rt.json"))
    assert not list(tmp_path.glob("packs/*"))
    # one object alone, as `aws s3 cp` would fetch it, is the resource itself
    assert json.loads(st.get(base + "objects/gateway.networking.k8s.io/HTTPRoute/a/r.json")) == route
    assert b"canary-plain" not in st.get(base + "objects/core/Secret/a/creds.json.sealed")
    manifest = json.loads(st.get(base + "manifest.json"))
    assert manifest["format"] == "kaiops-backup/v2" and manifest["layout"] == "objects"
    for entry in manifest["objects"]:
        data = st.get(base + entry["key"])
        assert (entry["size"], entry["sha256"]) == (len(data), sha256(data)) and "pack" not in entry
    assert written.extra["layout"] == "objects" and written.extra["uploaded"] == 4
    assert "incremental applies to packs only" in written.extra["incremental_ignored"]


@pytest.mark.parametrize("layout", ["packs", "objects"])
def test_both_layouts_load_back_and_a_changed_stored_object_is_refused(tmp_path, monkeypatch, layout) -> None:
    import json

    from tasks.backup.restore import ChecksumMismatch, load_backup
    from tasks.backup.store import list_backups

    objects = [obj("ConfigMap", name=f"c{i}", data={"threshold": f"0.{i + 4}"}) for i in range(3)]  # c1: 0.5
    written, st, dest = file_backup(tmp_path, monkeypatch, layout, objects)
    assert load_backup(st, dest, written.backup_id).objects == objects
    listed = list_backups(st, dest)
    assert [(b.id, b.complete) for b in listed] == [(written.backup_id, True)]
    manifest = listed[0].manifest
    entry = manifest["objects"][1]
    victim = entry["pack"] if layout == "packs" else f"{written.backup_id}/{entry['key']}"
    st.put(victim, st.get(victim).replace(b'"0.5"', b'"0.9"'))
    with pytest.raises(ChecksumMismatch, match=r"c1\.json: sha256") as refused:
        load_backup(st, dest, written.backup_id)
    assert "1 object(s)" in str(refused.value)
    assert json.loads(st.get(f"{written.backup_id}/manifest.json"))["layout"] == layout


def test_layout_is_a_described_choice_and_incremental_passes_over_objects_backups(tmp_path, monkeypatch) -> None:
    from configs.backup import BackupPolicy, Layout
    from tasks.backup.store import layout

    assert BackupPolicy(name="p", destination="s3://b/p").layout is Layout.packs
    assert "one storage object per resource" in BackupPolicy.model_fields["layout"].description
    bad = tmp_path / "p.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "destination": "s3://b/p", "layout": "tarball"}))
    with pytest.raises(InputError, match="layout"):
        load_policy(bad)
    assert layout({"format": "kaiops-backup/v2"}) == "packs" and layout({"format": "kaiops-backup/v1"}) == "objects"

    objects = [obj("ConfigMap", name="c")]
    ids = [new_backup_id(T0 + timedelta(minutes=m)) for m in range(3)]
    first, _, _ = file_backup(tmp_path, monkeypatch, "packs", objects, backup_id=ids[0])
    file_backup(tmp_path, monkeypatch, "objects", objects, backup_id=ids[1])  # newer, but has no packs to reuse
    nightly, _, _ = file_backup(tmp_path, monkeypatch, "packs", objects, backup_id=ids[2])
    assert nightly.extra["base"] == first.backup_id and nightly.extra["reused"] == 1

    # `kaiops backups list` names each backup's layout
    import json

    from typer.testing import CliRunner

    from flows.cli import app

    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump({"name": "p", "destination": f"file://{tmp_path}"}))
    for output in ("yaml", "json"):
        listed = CliRunner().invoke(app, ["backups", "list", "--policy", str(policy), "--output", output])
        assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["backup"], r["layout"]) for r in rows] == [(ids[2], "packs"), (ids[1], "objects"), (ids[0], "packs")]


def test_drill_comparison_leaves_out_metadata_a_controller_owns_on_the_restored_object() -> None:
    from tasks.backup.drill import differences, foreign_metadata

    backup = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"},
              "metadata": {"name": "c", "annotations": {"team": "ml", "sandbox.kaiops.io/url": "http://old"}}}
    restored = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"},
                "metadata": {"name": "c", "namespace": "dst",
                             "annotations": {"team": "ml", "sandbox.kaiops.io/url": "http://new"},
                             "managedFields": [
                                 {"manager": "kaiops", "operation": "Apply", "fieldsV1": {
                                     "f:data": {"f:a": {}}, "f:metadata": {"f:annotations": {"f:team": {}}}}},
                                 {"manager": "router", "operation": "Update", "fieldsV1": {
                                     "f:metadata": {"f:annotations": {"f:sandbox.kaiops.io/url": {}}}}}]}}
    assert foreign_metadata(restored) == {"labels": set(), "annotations": {"sandbox.kaiops.io/url"}}
    assert differences(backup, restored) == []
    restored["metadata"]["annotations"]["team"] = "other"  # what kaiops restored still has to be equal
    assert differences(backup, restored) == ["metadata.annotations.team"]


def test_steps_prefect_tasks_are_made_on_first_use_with_their_retry_options() -> None:
    from tasks.backup import steps

    for name, (task_name, fn_name, options) in steps.TASKS.items():
        wrapped = getattr(steps, name)
        assert wrapped.name == task_name and wrapped.fn is getattr(steps, fn_name)
        assert wrapped.retries == options.get("retries", 0)
        assert getattr(steps, name) is wrapped  # made once
    assert steps.apply_restore_task.retries == 0  # reports per object: never retried as a whole
    with pytest.raises(AttributeError, match="no_such_task"):
        _ = steps.no_such_task
