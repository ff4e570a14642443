"""Backups and restores against the sandbox apiserver and S3: what a user would notice if they broke."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from configs.backup import BackupPolicy
from tasks import kube
from tasks.backup import steps, store
from tasks.backup.drill import differences
from tasks.backup.restore import (
    Action,
    BackupIncomplete,
    ChecksumMismatch,
    ExistingObjects,
    ExistingPolicy,
    MissingKinds,
    ProductionMarker,
    ProductionRefused,
)
from tests.integration.backup_support import namespace, owned_ray_cluster, platform_objects
from tests.sandbox_env import exported

pytestmark = pytest.mark.integration
CANARY = "plain-text-canary-7f3a"
# A controller-written annotation. The sandbox HTTPRoute router writes sandbox.kaiops.io/url the same way (field
# manager OpenAPI-Generator) when the kserve service runs; a key of the test's own keeps the test deterministic
# either way (with the router running, its annotation is yielded as well).
ROUTE_URL = "route.example.com/address"
ROUTE_AV = "gateway.networking.k8s.io/v1"


@pytest.fixture(scope="module")
def env():
    """Only what backups need: the apiserver and S3 of this instance."""
    from sandbox import launcher

    launcher.up(("kube-apiserver", "s3"))
    with exported(launcher.env()) as values:
        yield values


@pytest.fixture(scope="module")
def kdyn(env):
    return kube.connect(env["KUBECONFIG"])


@pytest.fixture(scope="module")
def source(kdyn) -> str:
    ns = f"src-{uuid.uuid4().hex[:6]}"
    kube.apply(kdyn, namespace(ns, {"kaiops.io/environment": "production"}))
    for obj in [*platform_objects(ns), owned_ray_cluster(ns)]:
        kube.apply(kdyn, obj)
    return ns


@pytest.fixture
def key(monkeypatch) -> bytes:
    raw = os.urandom(32)
    monkeypatch.setenv("KAIOPS_TEST_BACKUP_KEY", base64.urlsafe_b64encode(raw).decode())
    return raw


def policy(ns: str, **extra) -> BackupPolicy:
    return BackupPolicy(name="t", destination=f"s3://bk-{uuid.uuid4().hex[:8]}/nightly", create_bucket=True,
                        namespaces=[ns], encryption_key_env="KAIOPS_TEST_BACKUP_KEY", **extra)


def take_backup(pol: BackupPolicy, **kwargs) -> steps.Written:
    key = steps.policy_key(pol)
    return steps.write_backup(pol, steps.export_objects(pol, include_secrets=key is not None), key=key, **kwargs)


def restore_into(pol, backup_id, mapping, existing=ExistingPolicy.fail, yes=False, dry_run=False):
    loaded = steps.verify_backup(pol, backup_id, steps.policy_key(pol))
    plan = steps.plan_restore(loaded, kubeconfig=None, namespace_map=mapping, existing=existing,
                              marker=ProductionMarker(), yes=yes)
    return steps.apply_restore(plan, kubeconfig=None, backup_id=backup_id, existing=existing, dry_run=dry_run)


def live(kdyn, obj, ns):
    return kube.get(kdyn, obj["apiVersion"], obj["kind"], obj["metadata"]["name"], ns)


def namespace_exists(kdyn, name: str) -> bool:
    try:
        kube.get(kdyn, "v1", "Namespace", name)
        return True
    except kube.NotFound:
        return False


@pytest.mark.parametrize("layout", ["packs", "objects"])
def test_round_trip_restores_every_object_equal(kdyn, source, key, layout) -> None:
    pol = policy(source, layout=layout)
    written = take_backup(pol)
    assert written.counts == {"ConfigMap": 2, "HTTPRoute": 1, "InferenceService": 1, "Namespace": 1,
                              "RayCluster": 1, "Secret": 1, "ServiceAccount": 1, "ServingRuntime": 1}
    target = f"dst-{uuid.uuid4().hex[:6]}"
    report = restore_into(pol, written.backup_id, {source: target}, yes=True)
    assert report.outcome.value == "succeeded", report.items
    assert all(i.action is Action.created for i in report.items)
    loaded = steps.verify_backup(pol, written.backup_id, key)
    for obj in loaded.objects:
        if obj["kind"] in ("Namespace", "Secret"):
            continue
        assert differences(obj, live(kdyn, obj, target)) == [], obj["kind"]
    secret = kube.get(kdyn, "v1", "Secret", "s3-creds", target)
    assert base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == CANARY


@pytest.mark.parametrize("layout", ["packs", "objects"])
def test_secrets_are_never_stored_in_plain_text(env, source, key, monkeypatch, layout) -> None:
    pol = policy(source, layout=layout)
    written = take_backup(pol)
    assert written.encrypted == 1
    monkeypatch.delenv("KAIOPS_TEST_BACKUP_KEY")
    unkeyed = take_backup(pol)
    assert "Secret" not in unkeyed.counts
    dest = store.parse_destination(pol.destination)
    st = store.open_store(dest)
    blobs = [st.get(k) for k in st.list_keys(dest.prefix)]
    encoded = base64.b64encode(CANARY.encode())
    assert blobs and not any(CANARY.encode() in b or encoded in b for b in blobs)


@pytest.mark.parametrize("layout", ["packs", "objects"])
def test_altered_object_is_detected_and_nothing_restored(kdyn, source, key, layout) -> None:
    pol = policy(source, layout=layout)
    written = take_backup(pol)
    dest = store.parse_destination(pol.destination)
    st = store.open_store(dest)
    manifest = store.read_manifest(st, dest, written.backup_id)
    entry = next(e for e in manifest["objects"] if e["kind"] == "ConfigMap" and e["name"] == "model-config")
    victim = dest.prefix + (entry["pack"] if layout == "packs" else f"{written.backup_id}/{entry['key']}")
    st.put(victim, st.get(victim).replace(b'"0.5"', b'"0.9"'))
    target = f"dst-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ChecksumMismatch, match="ConfigMap"):
        restore_into(pol, written.backup_id, {source: target}, yes=True)
    assert not namespace_exists(kdyn, target)


@pytest.mark.parametrize("layout", ["packs", "objects"])
def test_backup_cut_off_before_its_manifest_is_ignored_by_restore_and_retention(source, key, layout) -> None:
    pol = policy(source, layout=layout)
    good = take_backup(pol)
    cut = take_backup(pol, stop_before_manifest=True)
    listed = {b.id: b.complete for b in steps.list_backups(pol)}
    assert listed == {good.backup_id: True, cut.backup_id: False}
    assert steps.newest_good(pol) == good.backup_id
    with pytest.raises(BackupIncomplete):
        steps.verify_backup(pol, cut.backup_id, key)
    plan = steps.retention_plan(pol, now=datetime.now(UTC) + timedelta(days=2))
    assert cut.backup_id in plan.delete and good.backup_id in plan.keep
    steps.apply_retention(pol, plan)
    assert [b.id for b in steps.list_backups(pol)] == [good.backup_id]


def test_missing_crd_is_reported_before_any_write(kdyn, source, key) -> None:
    pol = policy(source)
    target = f"dst-{uuid.uuid4().hex[:6]}"
    exported = steps.export_objects(pol, include_secrets=True)
    exported.objects.append({"apiVersion": "widgets.example.com/v1", "kind": "Widget",
                             "metadata": {"name": "w", "namespace": source}, "spec": {}})
    written = steps.write_backup(pol, exported, key=key)
    with pytest.raises(MissingKinds, match=r"Widget.widgets.example.com \(CRD not installed\)"):
        restore_into(pol, written.backup_id, {source: target}, yes=True)
    assert not namespace_exists(kdyn, target)


def annotate_as_controller(kdyn, ns: str, url: str) -> None:
    """Write the route address annotation as the sandbox HTTPRoute router does: another field manager."""
    kube.apply(kdyn, {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                      "metadata": {"name": "iris", "namespace": ns, "annotations": {ROUTE_URL: url}}},
               field_manager="route-controller", force=True)


def test_existing_object_policies(kdyn, source, key) -> None:
    annotate_as_controller(kdyn, source, "http://src.example")
    pol = policy(source)
    written = take_backup(pol)
    target = f"dst-{uuid.uuid4().hex[:6]}"
    restore_into(pol, written.backup_id, {source: target}, yes=True)
    # the route controller writes the restored route's own address (as on a real cluster a controller would)
    annotate_as_controller(kdyn, target, "http://dst.example")
    changed = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "model-config", "namespace": target},
               "data": {"threshold": "0.1"}}
    kube.apply(kdyn, changed, field_manager="someone-else", force=True)

    with pytest.raises(ExistingObjects, match="ConfigMap"):
        restore_into(pol, written.backup_id, {source: target}, existing=ExistingPolicy.fail, yes=True)
    skipped = restore_into(pol, written.backup_id, {source: target}, existing=ExistingPolicy.skip, yes=True)
    assert {i.action for i in skipped.items} == {Action.skipped}
    assert kube.get(kdyn, "v1", "ConfigMap", "model-config", target)["data"]["threshold"] == "0.1"
    dry = restore_into(pol, written.backup_id, {source: target}, existing=ExistingPolicy.update, yes=True,
                       dry_run=True)
    assert Action.would_update in {i.action for i in dry.items}
    assert kube.get(kdyn, "v1", "ConfigMap", "model-config", target)["data"]["threshold"] == "0.1"
    # update: kaiops never forces another manager's fields; the conflict is reported for that object only
    updated = restore_into(pol, written.backup_id, {source: target}, existing=ExistingPolicy.update, yes=True)
    failed = [i for i in updated.items if i.action is Action.failed]
    assert [i.name for i in failed] == ["model-config"], [(i.name, i.message) for i in failed]
    assert "conflict: .data.threshold (owned by someone-else)" in failed[0].message
    assert updated.outcome.value == "partially-failed"
    # the controller's annotation is left to it (named, not forced); the route's spec is restored
    route = next(i for i in updated.items if i.kind == "HTTPRoute")
    assert route.action is Action.updated_except, route.message
    assert f".metadata.annotations.{ROUTE_URL} (owned by route-controller)" in route.message
    assert kube.get(kdyn, ROUTE_AV, "HTTPRoute", "iris", target)["metadata"]["annotations"][ROUTE_URL] == \
        "http://dst.example"
    others = {i.action for i in updated.items if i.name != "model-config" and i.kind != "HTTPRoute"}
    assert others == {Action.updated}


def test_production_namespace_refused_without_yes(kdyn, source, key) -> None:
    pol = policy(source)
    written = take_backup(pol)
    target = f"dst-{uuid.uuid4().hex[:6]}"
    # the backed-up namespace carries the production marker, so creating it needs --yes
    with pytest.raises(ProductionRefused, match=target):
        restore_into(pol, written.backup_id, {source: target})
    assert not namespace_exists(kdyn, target)
    report = restore_into(pol, written.backup_id, {source: target}, yes=True)
    assert report.outcome.value == "succeeded"


def test_cluster_scoped_kinds_only_with_all_namespaces_or_when_asked(kdyn, source) -> None:
    name = f"csr-{uuid.uuid4().hex[:6]}"
    kube.apply(kdyn, {
        "apiVersion": "serving.kserve.io/v1alpha1", "kind": "ClusterServingRuntime", "metadata": {"name": name},
        "spec": {"supportedModelFormats": [{"name": "sklearn", "version": "1"}],
                 "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.20.0"}]},
    })

    def runtimes(pol: BackupPolicy) -> set[str]:
        exported = steps.export_objects(pol)
        return {o["metadata"]["name"] for o in exported.objects if o["kind"] == "ClusterServingRuntime"}

    assert name not in runtimes(policy(source))
    assert name in runtimes(policy(source, include_cluster_resources=True))


def test_nightly_backup_uploads_only_what_changed_and_retention_keeps_shared_packs(kdyn, source, key) -> None:
    pol = policy(source)
    first = take_backup(pol)
    assert first.extra["reused"] == 0 and first.extra["packs"] >= 1
    unchanged = take_backup(pol)
    # only the sealed Secret is uploaded again (every seal has a fresh nonce)
    assert unchanged.extra["base"] == first.backup_id and unchanged.extra["uploaded"] == 1
    kube.apply(kdyn, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ray-env", "namespace": source},
                      "data": {"RAY_LOG": "debug"}})
    changed = take_backup(pol)
    assert changed.extra["uploaded"] == 2 and changed.extra["reused"] == changed.objects - 2

    # retention deletes the two older backups; the packs the newest still uses survive, restore works
    plan = steps.retention_plan(pol)
    plan.delete = {b: [] for b in (first.backup_id, unchanged.backup_id)}
    plan.keep = {changed.backup_id: []}
    steps.apply_retention(pol, plan, now=datetime.now(UTC) + timedelta(days=2))
    assert [b.id for b in steps.list_backups(pol)] == [changed.backup_id]
    dest = store.parse_destination(pol.destination)
    left = {k[len(dest.prefix):] for k in store.open_store(dest).list_keys(dest.prefix + store.PACKS)}
    manifest = store.read_manifest(store.open_store(dest), dest, changed.backup_id)
    assert left == store.referenced_packs([manifest])
    target = f"dst-{uuid.uuid4().hex[:6]}"
    report = restore_into(pol, changed.backup_id, {source: target}, yes=True)
    assert report.outcome.value == "succeeded", report.items
    assert kube.get(kdyn, "v1", "ConfigMap", "ray-env", target)["data"] == {"RAY_LOG": "debug"}

    # packs removed behind kaiops' back (a bucket lifecycle rule) are uploaded again, never referenced
    st = store.open_store(dest)
    st.delete(st.list_keys(dest.prefix + store.PACKS))
    again = take_backup(pol)
    assert again.extra["reused"] == 0 and again.extra["uploaded"] == again.objects
    assert len(steps.verify_backup(pol, again.backup_id, key).objects) == again.objects


@pytest.fixture
def gcs(env):
    """The instance's fake-gcs-server (STORAGE_EMULATOR_HOST), started only for the GCS test."""
    from sandbox import launcher

    launcher.up(("gcs",))
    with exported(launcher.env()) as values:
        yield values


@pytest.mark.parametrize("layout", ["packs", "objects"])
def test_backup_to_gcs_restores_and_drills(kdyn, source, key, gcs, layout) -> None:
    from tasks.backup import drill

    pol = BackupPolicy(name="g", destination=f"gs://bk-{uuid.uuid4().hex[:8]}/nightly", create_bucket=True,
                       namespaces=[source], encryption_key_env="KAIOPS_TEST_BACKUP_KEY", layout=layout)
    written = take_backup(pol)
    assert written.destination.startswith("gs://") and written.encrypted == 1
    dest = store.parse_destination(pol.destination)
    keys = store.open_store(dest).list_keys(dest.prefix)
    one = f"{dest.prefix}{written.backup_id}/objects/ray.io/RayCluster/{source}/train.json"
    assert (one in keys) == (layout == "objects") and any("/packs/" in k for k in keys) == (layout == "packs")
    assert steps.newest_good(pol) == written.backup_id
    target = f"dst-{uuid.uuid4().hex[:6]}"
    report = restore_into(pol, written.backup_id, {source: target}, yes=True)
    assert report.outcome.value == "succeeded", report.items
    secret = kube.get(kdyn, "v1", "Secret", "s3-creds", target)
    assert base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == CANARY

    # a drill from the same gs:// backup: restored into scratch namespaces and equal to the backup
    loaded = steps.verify_backup(pol, written.backup_id, key)
    dplan = drill.plan_drill(loaded.objects, uuid.uuid4().hex[:6])
    loaded.objects = dplan.restore
    plan = steps.plan_restore(loaded, kubeconfig=None, namespace_map=dplan.namespace_map,
                              existing=ExistingPolicy.fail, marker=ProductionMarker(), yes=False)
    applied = steps.apply_restore(plan, kubeconfig=None, backup_id=written.backup_id, existing=ExistingPolicy.fail,
                                  dry_run=False)
    assert applied.outcome.value == "succeeded", applied.items
    pairs = [(o, a) for o, a in zip(dplan.restore, plan.objects, strict=True) if a["kind"] != "Namespace"]
    results = steps.drill_wait(pairs, kubeconfig=None, mode=drill.ReadinessMode.present, timeout=30)
    assert results and all(r.equal for r in results), [r for r in results if not r.equal]
    steps.drill_cleanup(plan.objects, list(dplan.namespace_map.values()), kubeconfig=None)
