"""Registry-driven releases on real servers: the sandbox's ``mlflow server`` (SQLite, webhooks on) posts
signed deliveries to ``kaiops registry serve``, which posts a Prefect event; the ``release/registry``
deployment trigger on the sandbox's ``prefect server start`` creates the flow run.

No worker runs here: the tests assert on the created flow run (its typed parameters and its Scheduled
state). The release steps themselves are tested in ``test_release_flow_*`` by running the flow in-process.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid

import httpx
import pytest

from configs.release import load_releases
from tests.e2e.registry_support import (
    delete_runs,
    receiver,
    register_version,
    release_runs,
    unique,
    wait_for,
    write_release_config,
)
from tests.sandbox_env import services_fixture

pytestmark = pytest.mark.e2e


services = services_fixture("prefect", "mlflow", "kube-apiserver", stop="all", prefect=True)


@pytest.fixture(scope="module")
def env(services):
    from configs.release import concurrency_limit_name, load_releases
    from tasks import prefect_admin

    prefect_admin.sync(prefect_admin.load_project(),
                       limits={concurrency_limit_name(m): 1 for m in load_releases()},
                       blocks_env=None, dry_run=False)
    return services


@pytest.fixture(scope="module")
def wired(env, tmp_path_factory):
    """A receiver for a fresh model, and the MLflow webhook pointing at it."""
    from tasks.registry.mlflow_ops import ensure_webhook

    model = unique("e2e-reg")
    releases = tmp_path_factory.mktemp("releases")
    write_release_config(releases, model)
    secret = secrets.token_urlsafe(32)
    with receiver(releases, secret, tmp_path_factory.mktemp("recv") / "deliveries.sqlite") as url:
        ensure_webhook(f"kaiops-test-{model}", url, secret)
        yield {"model": model, "url": url, "secret": secret}
    from mlflow import MlflowClient

    client = MlflowClient()
    for hook in client.list_webhooks(max_results=1000):
        if hook.name == f"kaiops-test-{model}":
            client.delete_webhook(hook.webhook_id)
    delete_runs(release_runs(model))


def test_alias_set_starts_exactly_one_typed_release(wired):
    from mlflow import MlflowClient

    model = wired["model"]
    version = register_version(model)  # model_version.created: this model releases on the alias, not this
    MlflowClient().set_registered_model_alias(model, "challenger", str(version))
    runs = wait_for(lambda: release_runs(model), 180, "release flow run created by the trigger")
    time.sleep(10)  # give a duplicate delivery or a second trigger firing the chance to show up
    runs = release_runs(model)
    assert len(runs) == 1, [r.parameters for r in runs]
    request = runs[0].parameters["request"]
    assert request["version"] == version and isinstance(request["version"], int)
    assert request["alias"] == "challenger"
    uuid.UUID(request["source"])  # the MLflow delivery id
    assert runs[0].state.type.value in ("SCHEDULED", "PENDING")


def _signed(secret: str, body: dict, delivery_id: str) -> tuple[bytes, dict[str, str]]:
    from tasks.registry.signature import sign

    raw = json.dumps(body).encode()
    ts = str(int(time.time()))
    return raw, {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id,
                 "X-MLflow-Timestamp": ts, "X-MLflow-Signature": sign(secret, delivery_id, ts, raw)}


def test_forged_and_replayed_deliveries_start_nothing(wired):
    model, url = wired["model"], wired["url"]
    before = len(release_runs(model))
    body = {"entity": "model_version_alias", "action": "created", "timestamp": "now",
            "data": {"name": model, "alias": "challenger", "version": "41"}}
    raw, headers = _signed("not-the-secret-" + secrets.token_hex(8), body, str(uuid.uuid4()))
    assert httpx.post(url, content=raw, headers=headers).status_code == 401
    body["data"]["version"] = "42"
    raw, headers = _signed(wired["secret"], body, str(uuid.uuid4()))
    assert httpx.post(url, content=raw, headers=headers).status_code == 202
    assert httpx.post(url, content=raw, headers=headers).status_code == 409  # the same delivery again
    runs = wait_for(lambda: [r for r in release_runs(model) if r.parameters["request"]["version"] == 42], 180,
                    "release for the genuine delivery")
    time.sleep(10)
    versions = sorted(r.parameters["request"]["version"] for r in release_runs(model))
    assert versions.count(42) == 1 and 41 not in versions, versions
    assert len(release_runs(model)) == before + 1
    delete_runs(runs)


def test_reconcile_starts_the_release_a_lost_webhook_missed(env, tmp_path):
    """A model the receiver does not know (its webhook is 'lost'): reconcile finds the alias and asks."""
    from mlflow import MlflowClient

    from flows.reconcile import reconcile

    model = unique("e2e-rec")
    write_release_config(tmp_path, model)
    version = register_version(model)
    MlflowClient().set_registered_model_alias(model, "challenger", str(version))
    rows = reconcile(releases_dir=str(tmp_path))
    assert [r["action"] for r in rows] == ["start-release"]
    runs = wait_for(lambda: release_runs(model), 180, "release flow run started by reconcile")
    assert runs[0].parameters["request"] == {"model": model, "version": version, "alias": "challenger",
                                             "source": "reconcile"}
    again = reconcile(releases_dir=str(tmp_path))  # the release is queued: nothing more is asked
    assert [r["action"] for r in again] == ["running"]
    time.sleep(5)
    assert len(release_runs(model)) == 1
    delete_runs(release_runs(model))


def test_release_flow_success_sets_champion_and_tags(env, tmp_path, monkeypatch):
    """The release flow in-process against the real MLflow, with publish/warmup/rollout replaced by stubs
    that record what they were given (those flows have their own tests)."""
    from mlflow import MlflowClient

    import flows.release as release_mod
    from flows.release import ModelVersionRef, release

    model = unique("e2e-rel")
    write_release_config(tmp_path, model)
    version = register_version(model, b"weights-v1")
    calls: dict[str, object] = {}
    monkeypatch.setattr(release_mod, "load_releases", lambda *a: load_releases(tmp_path))
    monkeypatch.setattr(release_mod, "_publish", lambda src, dest, force: calls.setdefault(
        "publish", {"dest": dest, "files": sorted(p.name for p in src.rglob("*") if p.is_file())}))
    monkeypatch.setattr(release_mod, "_warmup", lambda cfg, uri: calls.setdefault("warmup", {"ok": True}))
    monkeypatch.setattr(release_mod, "_rollout", lambda cfg, uri: calls.setdefault("rollout", {"phase": "Succeeded"}))
    result = release(ModelVersionRef(model=model, version=version))
    assert result["outcome"] == "succeeded" and result["ok"]
    assert calls["publish"] == {"dest": f"s3://kaiops-models/{model}/v{version}", "files": ["model.joblib"]}
    mv = MlflowClient().get_model_version(model, str(version))
    assert "champion" in mv.aliases
    assert mv.tags["kaiops.release.outcome"] == "succeeded"
    again = release(ModelVersionRef(model=model, version=version))  # idempotent: nothing runs twice
    assert again["outcome"] == "already-released"


def test_release_flow_failure_tags_the_reason(env, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    import flows.release as release_mod
    from flows.release import ModelVersionRef, ReleaseFailed, release

    model = unique("e2e-fail")
    write_release_config(tmp_path, model)
    version = register_version(model)
    monkeypatch.setattr(release_mod, "load_releases", lambda *a: load_releases(tmp_path))
    monkeypatch.setattr(release_mod, "_publish", lambda src, dest, force: {"ok": True})
    monkeypatch.setattr(release_mod, "_warmup", lambda cfg, uri: release_mod._require_ok(
        release_mod.ReleaseStep.WARMUP, {"ok": False, "verdict": "miswired"}))
    with pytest.raises(ReleaseFailed, match="warmup"):
        release(ModelVersionRef(model=model, version=version))
    mv = MlflowClient().get_model_version(model, str(version))
    assert mv.tags["kaiops.release.outcome"] == "failed"
    assert mv.tags["kaiops.release.reason"].startswith("warmup:") and "miswired" in mv.tags["kaiops.release.reason"]
    assert "champion" not in mv.aliases
