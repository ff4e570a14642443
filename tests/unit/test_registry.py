"""Registry receiver logic: signatures (checked against MLflow's own signer), replay store, delivery
mapping, the FastAPI app's answers, release configs and the prefect.yaml schema."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from configs.release import ReleaseConfig, ReleaseTrigger, load_release, load_releases
from tasks.errors import InputError, TemporaryError
from tasks.registry.replay import DeliveryStore
from tasks.registry.requests import IgnoreReason, PayloadRefused, ReleaseRequest, to_request
from tasks.registry.signature import SignatureVerdict, sign, verify
from tasks.registry.webhook import create_app

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-0123456789"
NOW = 1_800_000_000


def _cfg(**kw) -> ReleaseConfig:
    base = {"registered_model": "churn", "inference_service": "churn", "namespace": "ml",
            "destination_prefix": "s3://models/churn"}
    return ReleaseConfig.model_validate({**base, **kw})


def test_signature_matches_mlflows_own_signer():
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = json.dumps({"entity": "model_version", "action": "created", "data": {"name": "x", "version": "1"}})
    ours = sign(SECRET, "d-1", str(NOW), body.encode())
    assert ours == _generate_hmac_signature(SECRET, "d-1", str(NOW), body)
    assert verify(SECRET, delivery_id="d-1", timestamp=str(NOW), signature=ours, body=body.encode(),
                  now=NOW + 5) is SignatureVerdict.VALID


@pytest.mark.parametrize(("change", "verdict"), [
    ({"secret": "wrong-secret-0123456789"}, SignatureVerdict.MISMATCH),
    ({"body": b'{"tampered": true}'}, SignatureVerdict.MISMATCH),
    ({"delivery_id": "d-2"}, SignatureVerdict.MISMATCH),
    ({"now": NOW + 301}, SignatureVerdict.STALE),
    ({"now": NOW - 301}, SignatureVerdict.STALE),
    ({"signature": None}, SignatureVerdict.MISSING),
    ({"timestamp": "abc"}, SignatureVerdict.MALFORMED),
    ({"signature": "v2,AAAA"}, SignatureVerdict.MALFORMED),
])
def test_signature_refusals(change, verdict):
    body = b'{"a": 1}'
    args = {"secret": SECRET, "delivery_id": "d-1", "timestamp": str(NOW), "body": body, "now": NOW,
            "signature": sign(SECRET, "d-1", str(NOW), body)}
    args.update(change)
    secret = args.pop("secret")
    assert verify(secret, **args) is verdict


def test_replay_store_persists_and_expires(tmp_path: Path):
    path = tmp_path / "d.sqlite"
    store = DeliveryStore(path, ttl=100)
    assert store.first_time("a", NOW)
    assert not store.first_time("a", NOW + 1)
    store.close()
    again = DeliveryStore(path, ttl=100)  # a restarted receiver still refuses the replay
    assert not again.first_time("a", NOW + 2)
    assert again.first_time("a", NOW + 500)  # past the TTL it is forgotten (the timestamp check refuses it)


def _delivery(entity: str, action: str, **data) -> dict:
    return {"entity": entity, "action": action, "timestamp": "2026-01-01T00:00:00Z", "data": data}


def test_delivery_mapping_follows_the_configured_trigger():
    by_alias = {"churn": _cfg()}
    by_version = {"churn": _cfg(trigger="version_created")}
    alias_set = _delivery("model_version_alias", "created", name="churn", alias="challenger", version="7")
    created = _delivery("model_version", "created", name="churn", version="7", source="models:/m-1")
    got = to_request(alias_set, by_alias, "d")
    assert got == ReleaseRequest(model="churn", version=7, alias="challenger", source="d")
    assert isinstance(got.version, int)
    assert to_request(created, by_version, "d") == ReleaseRequest(model="churn", version=7, source="d")
    assert to_request(created, by_alias, "d") is IgnoreReason.OTHER_TRIGGER
    other_alias = _delivery("model_version_alias", "created", name="churn", alias="champion", version="7")
    assert to_request(other_alias, by_alias, "d") is IgnoreReason.OTHER_ALIAS
    assert to_request({**alias_set, "data": {"name": "nope", "alias": "challenger", "version": "1"}}, by_alias,
                      "d") is IgnoreReason.UNKNOWN_MODEL
    refused = to_request(_delivery("model_version", "created", name="churn", version="x"), by_version, "d")
    assert isinstance(refused, PayloadRefused) and refused.field == "data.version"
    assert to_request(_delivery("registered_model", "created", name="churn"), by_alias,
                      "d") is IgnoreReason.NOT_A_RELEASE_EVENT


class _Posted(list):
    def __call__(self, request: ReleaseRequest) -> str:
        self.append(request)
        return f"event-{len(self)}"


def _client(posted, tmp_path: Path, secret: str = SECRET) -> TestClient:
    app = create_app(secret=secret, releases={"churn": _cfg()}, store=DeliveryStore(tmp_path / "s.sqlite"),
                     post_event=posted, clock=lambda: NOW)
    return TestClient(app)


def _post(client: TestClient, body: dict, delivery_id: str = "d-1", ts: int = NOW, secret: str = SECRET):
    raw = json.dumps(body).encode()
    return client.post("/mlflow", content=raw, headers={
        "Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": str(ts),
        "X-MLflow-Signature": sign(secret, delivery_id, str(ts), raw)})


def test_receiver_answers(tmp_path: Path, caplog):
    posted = _Posted()
    client = _client(posted, tmp_path)
    alias_set = _delivery("model_version_alias", "created", name="churn", alias="challenger", version="3")
    ok = _post(client, alias_set)
    assert ok.status_code == 202 and ok.json()["version"] == 3
    assert _post(client, alias_set).status_code == 409  # replayed delivery id
    assert _post(client, alias_set, delivery_id="d-2", secret="forged-secret-0123456789").status_code == 401
    assert _post(client, alias_set, delivery_id="d-3", ts=NOW - 3600).status_code == 401  # stale
    ignored = _post(client, {**alias_set, "data": {**alias_set["data"], "alias": "champion"}}, delivery_id="d-4")
    assert ignored.status_code == 200 and ignored.json() == {"ignored": "other-alias"}
    assert posted == [ReleaseRequest(model="churn", version=3, alias="challenger", source="d-1")]
    assert SECRET not in caplog.text


def test_receiver_lets_mlflow_retry_when_prefect_is_down(tmp_path: Path):
    calls = []

    def failing(request: ReleaseRequest) -> str:
        calls.append(request)
        if len(calls) == 1:
            raise TemporaryError("prefect down")
        return "event-2"

    client = _client(failing, tmp_path)
    body = _delivery("model_version_alias", "created", name="churn", alias="challenger", version="3")
    assert _post(client, body).status_code == 503
    assert _post(client, body).status_code == 202  # MLflow's retry (same delivery id) is accepted


def test_release_configs_in_repo_are_valid():
    releases = load_releases()
    assert releases, "configs/releases has at least one release"
    for cfg in releases.values():
        assert Path(cfg.canary_policy).exists() or (Path(__file__).parents[2] / cfg.canary_policy).exists()


@pytest.mark.parametrize(("doc", "field"), [
    ({"registered_model": "m", "inference_service": "Bad_Name", "namespace": "ml",
      "destination_prefix": "s3://bkt/m"}, "inference_service"),
    ({"registered_model": "m", "inference_service": "m", "namespace": "ml", "destination_prefix": "s3://bkt/m",
      "colour": "red"}, "colour"),
    ({"registered_model": "m", "inference_service": "m", "namespace": "ml", "destination_prefix": "ftp://bkt/m"},
     "destination_prefix"),
])
def test_release_config_refuses_bad_files(tmp_path: Path, doc, field):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as err:
        load_release(path)
    assert err.value.field == field


def test_trigger_alias_cannot_be_champion():
    with pytest.raises(ValueError, match="must differ"):
        _cfg(trigger_alias="champion")
    assert _cfg().trigger is ReleaseTrigger.ALIAS_SET


def test_prefect_yaml_validates_and_has_every_flow():
    from tasks.prefect_admin import ProjectSpec, load_project

    spec = load_project(env={"KAIOPS_TIMEZONE": "Europe/Berlin", "KAIOPS_HOME": "/srv/kaiops"})
    by_entry = {d.entrypoint: d for d in spec.deployments}
    assert by_entry["flows/backup.py:backup"].schedules[0].cron == "0 2 * * *"
    assert by_entry["flows/backup.py:backup"].schedules[0].timezone == "Europe/Berlin"
    assert by_entry["flows/backup.py:restore_drill"].schedules[0].cron
    assert by_entry["flows/rollout.py:canary_guard"].schedules[0].cron == "* * * * *"
    for on_demand in ("flows/provision.py:provision_ray_cluster", "flows/publish.py:publish_model",
                      "flows/rollout.py:canary_rollback"):
        assert not by_entry[on_demand].schedules
    release = by_entry["flows/release.py:release"]
    assert release.concurrency_limit is not None
    params = release.triggers[0].parameters["request"]
    # each template is one expression, so Prefect renders it with tojson and the type survives
    assert params["version"].strip().startswith("{{") and params["version"].count("{{") == 1
    assert spec.pull[0]["prefect.deployments.steps.set_working_directory"]["directory"] == "/srv/kaiops"
    raw = yaml.safe_load((Path(__file__).parents[2] / "deployments" / "prefect.yaml").read_text())
    raw["deployments"][0]["schedule"] = {"cron": "0 3 * * *"}  # a typo Prefect would silently ignore
    with pytest.raises(ValueError, match="schedule"):
        ProjectSpec.model_validate(raw)


def test_prefect_yaml_refuses_unknown_timezone():
    from tasks.prefect_admin import load_project

    with pytest.raises(InputError, match="timezone"):
        load_project(env={"KAIOPS_TIMEZONE": "Mars/Olympus"})


def test_trigger_template_renders_an_int():
    """Prefect's own upgrade of a single-expression template keeps the payload's int an int."""
    from prefect.server.events.actions import RunDeployment

    wrapped = RunDeployment._wrap_v1_template("{{ event.payload.version }}")
    assert wrapped["__prefect_kind"] == "json" and "tojson" in wrapped["value"]["template"]
    text = RunDeployment._wrap_v1_template("v{{ event.payload.version }}")
    assert text["__prefect_kind"] == "jinja"


def test_release_flow_refuses_a_string_version():
    from pydantic import ValidationError

    from flows.release import ModelVersionRef

    assert ModelVersionRef(model="m", version=3).version == 3
    with pytest.raises(ValidationError):
        ModelVersionRef.model_validate({"model": "m", "version": "3"})
    with pytest.raises(ValidationError):
        ModelVersionRef.model_validate({"model": "m", "version": 0})


def test_reconcile_decisions():
    from tasks.registry.reconcile import ModelState, ReconcileAction, decide, deployed_version

    cfg = _cfg()
    isvc = {"spec": {"predictor": {"model": {"storageUri": "s3://models/churn/v4"}}}}
    assert deployed_version(cfg, isvc) == 4
    assert deployed_version(cfg, {"spec": {"predictor": {"model": {"storageUri": "s3://other/v4"}}}}) is None

    def state(**kw):
        return ModelState(**{"model": "churn", "wanted": 5, "deployed": 4, "outcome_tag": None, "running": False,
                             **kw})

    assert decide(state()) is ReconcileAction.START_RELEASE
    assert decide(state(deployed=5)) is ReconcileAction.IN_SYNC
    assert decide(state(running=True)) is ReconcileAction.RUNNING
    assert decide(state(outcome_tag="failed")) is ReconcileAction.ALREADY_TRIED
    assert decide(state(wanted=None)) is ReconcileAction.NO_TARGET


def test_event_keeps_version_an_int():
    from tasks.registry.prefect_events import release_event

    event = release_event(ReleaseRequest(model="churn", version=12, alias="challenger", source="d-9"))
    assert event["payload"]["version"] == 12
    assert event["resource"]["prefect.resource.id"] == "kaiops.model.churn"
    assert event["id"] == release_event(ReleaseRequest(model="churn", version=12, alias="challenger",
                                                        source="d-9"))["id"]
    assert time.time() > 0


def test_candidate_manifest_changes_only_the_storage_uri():
    from tasks.errors import PermanentError
    from tasks.registry.candidate import candidate_manifest

    live = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": "demo", "uid": "u", "resourceVersion": "9",
                         "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
            "spec": {"predictor": {"serviceAccountName": "sa", "canaryTrafficPercent": 10,
                                   "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://m/iris/v1/"}}},
            "status": {"url": "x"}}
    out = candidate_manifest(live, "s3://m/iris-registry/v4/")
    assert out["spec"]["predictor"]["model"] == {"modelFormat": {"name": "sklearn"},
                                                 "storageUri": "s3://m/iris-registry/v4/"}
    assert out["spec"]["predictor"]["serviceAccountName"] == "sa"
    assert "status" not in out and "uid" not in out["metadata"]
    assert live["spec"]["predictor"]["model"]["storageUri"] == "s3://m/iris/v1/"  # the live object is untouched
    with pytest.raises(PermanentError):
        candidate_manifest({"spec": {"predictor": {}}}, "s3://m/x/v1/")


@pytest.mark.unit
def test_release_configs_are_refused_when_missing_empty_or_pointing_at_a_bad_policy(tmp_path) -> None:
    import yaml

    from configs.release import RELEASES_DIR, load_releases
    from tasks.errors import InputError

    with pytest.raises(InputError, match="not a directory"):
        load_releases(tmp_path / "nope")
    with pytest.raises(InputError, match="no release configs"):
        load_releases(tmp_path)
    good = yaml.safe_load(next(RELEASES_DIR.glob("*.yaml")).read_text())
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({**good, "canary_policy": "configs/canary/missing.yaml"}))
    with pytest.raises(InputError) as err:
        load_releases(tmp_path)
    assert err.value.field == "canary_policy" and "missing.yaml" in str(err.value)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(good))
    assert list(load_releases(tmp_path)) == [good["registered_model"]]
