"""The input parsers of ``configs/inputs/`` and the registry payload parser: tables of bad values and
Hypothesis properties (they never raise anything but their own refusal; what they accept, KServe's storage
initializer and ``int()`` accept the same way; the receiver never answers 5xx for what it was sent)."""

from __future__ import annotations

import json
import string
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from configs.inputs import ModelUri, check_name, name_problem, parse_storage_uri, positive_int
from configs.release import ReleaseConfig
from tasks.errors import InputError
from tasks.registry.replay import DeliveryStore
from tasks.registry.requests import IgnoreReason, PayloadRefused, ReleaseRequest, to_request
from tasks.registry.signature import sign
from tasks.registry.webhook import create_app, decide
from tests.bad_input_corpus import NAMES, URIS

pytestmark = pytest.mark.unit
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRET = "unit-test-secret-0123456789"
NOW = 1_800_000_000
RELEASES = {"churn": ReleaseConfig.model_validate({
    "registered_model": "churn", "inference_service": "churn", "namespace": "ml",
    "destination_prefix": "s3://models/churn", "trigger": "version_created"})}

GOOD_URIS = ["s3://models/iris/v1", "s3://models", "gs://my_bucket/x/", "pvc://my-claim/models/v1", "pvc://claim",
             "hf://meta-llama/Llama-3:main", "hf://owner/model", "oci://ghcr.io/org/model:1.0",
             "oci+native://reg.io:5000/a/b@sha256:" + "a" * 64, "https://example.com/models/model.joblib",
             "https://acct.blob.core.windows.net/c/p", "https://github.com/x/y.git", "hdfs://nn/path",
             "file:///models/x", "/mnt/models", "http://127.0.0.1:9000/m/model.tar.gz"]


@pytest.mark.parametrize("uri", GOOD_URIS)
def test_storage_uri_forms_the_initializer_reads(uri):
    parsed = parse_storage_uri(uri)
    assert isinstance(parsed, ModelUri) and parsed.uri == uri


@pytest.mark.parametrize("uri", [*URIS, None, 3, ["s3://a/b"], "s3://models/x\n", "hf://a--b/c"])
def test_storage_uri_refusals_name_the_field_and_the_fix(uri):
    with pytest.raises(InputError) as info:
        parse_storage_uri(uri, source="<cli>", field="--storage-uri")
    assert info.value.field == "--storage-uri" and info.value.fix and info.value.problem


def test_storage_uri_messages():
    with pytest.raises(InputError, match="U\\+0455 CYRILLIC SMALL LETTER DZE"):
        parse_storage_uri("\u04553://models/v2")
    with pytest.raises(InputError, match="'S3://models/v2': the S3:// scheme") as info:
        parse_storage_uri("S3://models/v2")
    assert info.value.fix == "write it as s3://<bucket>/<prefix>"
    with pytest.raises(InputError, match=r"'\.\.' path segment"):
        parse_storage_uri("s3://models/../v2")
    with pytest.raises(InputError, match="no file name"):
        parse_storage_uri("https://host/models/")


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none(), st.lists(st.text(), max_size=2)))
@FAST
def test_storage_uri_parser_only_ever_refuses(value):
    try:
        parsed = parse_storage_uri(value)
    except InputError:
        return
    assert parsed.uri.isascii() and not any(c.isspace() for c in parsed.uri)


_BUCKET = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
_SEGMENT = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12).filter(
    lambda s: s not in (".", ".."))


@given(st.sampled_from(["s3", "gs"]), _BUCKET, st.lists(_SEGMENT, max_size=4))
@FAST
def test_valid_bucket_uris_are_accepted_and_split_as_kserve_splits_them(scheme, bucket, segments):
    uri = f"{scheme}://{bucket}/" + "/".join(segments)
    parsed = parse_storage_uri(uri)
    # kserve_storage: _download_s3 uses urlparse(uri, scheme="s3").netloc, _download_gcs splits on the first "/"
    assert parsed.location == urlparse(uri, scheme="s3").netloc == uri[len(scheme) + 3:].split("/", 1)[0]
    assert parsed.path == urlparse(uri).path.lstrip("/")


@given(st.sampled_from(GOOD_URIS), st.integers(min_value=0, max_value=80),
       st.sampled_from([" ", "\t", "\n", "\u00a0", "\u200b", "\uff11", "\u0455", "\x00"]))
@FAST
def test_any_whitespace_or_lookalike_in_a_good_uri_is_refused(uri, at, char):
    at = min(at, len(uri))
    with pytest.raises(InputError):
        parse_storage_uri(uri[:at] + char + uri[at:])


@pytest.mark.parametrize("name", NAMES)
def test_kubernetes_name_refusals(name):
    with pytest.raises(InputError) as info:
        check_name(name, source="<cli>", field="--namespace")
    assert info.value.field == "--namespace"


@given(st.text(max_size=80))
@FAST
def test_name_rule_is_kubernetes_dns1123_label(text):
    import re

    ok = name_problem(text) is None
    assert ok == bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", text, re.ASCII) and len(text) <= 63)


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "\uff13", "", " 3", "3 ", "-1", "0", "+3", "1.0", "3e2",
                                   True, 3.0, None, [3], "99999999999999999999", 2**31])
def test_version_refusals(value):
    with pytest.raises(InputError) as info:
        positive_int(value, source="<payload>", field="data.version")
    assert info.value.field == "data.version"


@given(st.one_of(st.text(max_size=25), st.integers(), st.floats(), st.booleans(), st.none()))
@FAST
def test_positive_int_accepts_exactly_ascii_digits_in_range(value):
    try:
        got = positive_int(value, source="<payload>", field="data.version")
    except InputError:
        ok_text = isinstance(value, str) and value.isascii() and value.isdigit() and 1 <= int(value) < 2**31
        ok_int = type(value) is int and 1 <= value < 2**31
        assert not (ok_text or ok_int)
        return
    assert got == int(value) and 1 <= got < 2**31


# ------------------------------------------------------------------------------------------ registry payload

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=3), max_leaves=12)
_DELIVERY = st.fixed_dictionaries({
    "entity": st.sampled_from(["model_version", "model_version_alias", "registered_model", 3]),
    "action": st.sampled_from(["created", "deleted", None]),
    "data": st.one_of(_JSON, st.fixed_dictionaries({
        "name": st.one_of(st.just("churn"), st.text(max_size=6), st.integers()),
        "version": st.one_of(st.sampled_from(["1", "7", "\u00b2", "\u0663", "\uff13", "0", "-1", ""]), _JSON),
        "alias": st.one_of(st.just("challenger"), _JSON)})),
})


@given(st.one_of(_JSON, _DELIVERY))
@FAST
def test_payload_parser_is_total(delivery):
    outcome = to_request(delivery, RELEASES, "d-1")
    assert isinstance(outcome, (ReleaseRequest, IgnoreReason, PayloadRefused))
    if isinstance(outcome, ReleaseRequest):
        assert outcome.version >= 1 and outcome.model == "churn"


@given(st.binary(max_size=200))
@FAST
def test_body_parser_is_total(body):
    assert isinstance(decide(body, RELEASES, "d-1"), (ReleaseRequest, IgnoreReason, PayloadRefused))


def test_body_parser_survives_deep_nesting_and_huge_numbers():
    assert isinstance(decide(b"[" * 100_000 + b"]" * 100_000, RELEASES, "d"), PayloadRefused)
    assert isinstance(decide(b'{"data": {"version": ' + b"9" * 5000 + b"}}", RELEASES, "d"), PayloadRefused)


class _Posted(list):
    def __call__(self, request: ReleaseRequest) -> str:
        self.append(request)
        return f"event-{len(self)}"


def _client(tmp_path, posted) -> tuple[TestClient, DeliveryStore]:
    store = DeliveryStore(tmp_path / "deliveries.sqlite")
    app = create_app(secret=SECRET, releases=RELEASES, store=store, post_event=posted, clock=lambda: NOW)
    return TestClient(app, raise_server_exceptions=False), store


def _post(client: TestClient, raw: bytes, delivery_id: str):
    return client.post("/mlflow", content=raw, headers={
        "X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": str(NOW),
        "X-MLflow-Signature": sign(SECRET, delivery_id, str(NOW), raw)})


@pytest.mark.parametrize("version", ["\u00b2", "\u0663", "\uff13", "x", "", "0", 1.5, None, True])
def test_receiver_refuses_a_bad_version_with_422_naming_the_field(tmp_path, version):
    """The issue's case: '²' passes str.isdigit() but not int(); it answered 500 after storing the id."""
    posted = _Posted()
    client, _ = _client(tmp_path, posted)
    raw = json.dumps({"entity": "model_version", "action": "created",
                      "data": {"name": "churn", "version": version}}).encode()
    answer = _post(client, raw, "d-bad")
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "data.version" and answer.json()["fix"]
    assert _post(client, raw, "d-bad").status_code == 409  # refused for good: recorded, the replay is refused
    assert posted == []


def test_receiver_records_the_id_only_once_decided(tmp_path):
    calls = []

    def flaky(request: ReleaseRequest) -> str:
        calls.append(request)
        if len(calls) == 1:
            from tasks.errors import TemporaryError

            raise TemporaryError("prefect down")
        return "event-1"

    client, _ = _client(tmp_path, flaky)
    raw = json.dumps({"entity": "model_version", "action": "created",
                      "data": {"name": "churn", "version": "7"}}).encode()
    assert _post(client, raw, "d-7").status_code == 503  # not decided: the id is forgotten, MLflow retries
    assert _post(client, raw, "d-7").status_code == 202
    assert _post(client, raw, "d-7").status_code == 409


@given(st.one_of(st.binary(max_size=120), _DELIVERY.map(lambda d: json.dumps(d).encode()),
                 _JSON.map(lambda d: json.dumps(d).encode())))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
def test_receiver_never_answers_5xx_for_what_it_was_sent(tmp_path, raw):
    client, _ = _client(tmp_path, _Posted())
    delivery_id = f"d-{hash(raw)}"
    answer = _post(client, raw, delivery_id)
    assert answer.status_code in (200, 202, 409, 422), answer.text
    if answer.status_code == 422:
        assert answer.json()["field"]
