"""A backup across many namespaces and pages, streamed: what breaks when the paged, parallel export or the
cluster-wide reference list is wrong (an object lost between pages, a referenced ConfigMap missed, a duplicate)."""

from __future__ import annotations

import uuid

import pytest

from configs.backup import BackupPolicy
from tasks import kube
from tasks.backup import export, steps
from tasks.backup.drill import compare_applied, plan_drill
from tasks.backup.restore import Action, ExistingPolicy, ProductionMarker
from tests.integration.backup_support import namespace
from tests.sandbox_env import services_fixture

pytestmark = pytest.mark.integration
env = services_fixture("kube-apiserver", "s3")
NAMESPACES = export.CLUSTER_WIDE_REFERENCE_LIST + 2  # more than the threshold: ConfigMaps are one list
PER_NAMESPACE = 7


def seeded(ns: str, label: dict[str, str]) -> list[dict]:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns},
          "data": {"threshold": ns}}
    isvcs = [{"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
              "metadata": {"name": f"m{i}", "namespace": ns, "labels": label},
              "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": f"s3://m/{i}"},
                                     "volumes": [{"name": "c", "configMap": {"name": "cfg"}}]}}}
             for i in range(PER_NAMESPACE)]
    return [cm, *isvcs]


def test_paged_parallel_export_streams_every_object_once_and_the_drill_compares_the_apply_answers(env) -> None:
    dyn = kube.connect(env["KUBECONFIG"])
    run = uuid.uuid4().hex[:6]
    label = {"kaiops.io/stream-test": run}
    spaces = [f"st-{run}-{i}" for i in range(NAMESPACES)]
    for ns in spaces:
        kube.apply(dyn, namespace(ns))
        for obj in seeded(ns, label):
            kube.apply(dyn, obj)
    # page_size 10 (the least the policy allows): every list is several pages; 3 lists at once
    pol = BackupPolicy(name="stream", destination=f"s3://st-{run}/n", create_bucket=True,
                       label_selector=f"kaiops.io/stream-test={run}", encryption_key_env=None,
                       page_size=10, parallelism=3)
    written = steps.run_backup(pol)
    assert written.counts == {"ConfigMap": NAMESPACES, "InferenceService": NAMESPACES * PER_NAMESPACE,
                              "Namespace": NAMESPACES}
    assert not [w for w in written.warnings if "does not exist" in w]

    loaded = steps.verify_backup(pol, written.backup_id, None)
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in loaded.objects]
    assert len(keys) == len(set(keys)) == written.objects  # no duplicate, none lost
    assert [e["key"] for e in loaded.manifest["objects"]] == sorted(e["key"] for e in loaded.manifest["objects"])

    dplan = plan_drill(loaded.objects, uuid.uuid4().hex[:6])
    loaded.objects = dplan.restore
    plan = steps.plan_restore(loaded, kubeconfig=None, namespace_map=dplan.namespace_map,
                              existing=ExistingPolicy.fail, marker=ProductionMarker(), yes=False)
    assert plan.existing == set()  # fresh scratch namespaces: nothing listed, nothing found
    report = steps.apply_restore(plan, kubeconfig=None, backup_id=written.backup_id, existing=ExistingPolicy.fail,
                                 dry_run=False, parallelism=4, keep_live=True)
    assert {i.action for i in report.items} == {Action.created}
    live = {(i.kind, i.namespace or "", i.name): i.live for i in report.items}
    triples = [(o, a, live[(a["kind"], a["metadata"].get("namespace") or "", a["metadata"]["name"])])
               for o, a in zip(dplan.restore, plan.objects, strict=True) if a["kind"] != "Namespace"]
    results = compare_applied(triples)
    assert results and all(r.equal for r in results), [r.reason for r in results if not r.equal][:3]
    # the answer is the stored object: the same as reading it back
    _, first, answer = next(t for t in triples if t[1]["kind"] == "InferenceService")
    meta = first["metadata"]
    stored = kube.get(dyn, first["apiVersion"], first["kind"], meta["name"], meta["namespace"])
    assert stored["spec"] == answer["spec"] and stored["metadata"]["uid"] == answer["metadata"]["uid"]

    errors = steps.drill_cleanup(plan.objects, sorted(dplan.namespace_map.values()), kubeconfig=None)
    assert errors == []
    scratch = sorted(dplan.namespace_map.values())[0]
    assert kube.list_objects(dyn, "serving.kserve.io/v1beta1", "InferenceService", scratch) == []
