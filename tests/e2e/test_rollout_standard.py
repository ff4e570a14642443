"""``kaiops rollout`` against the real KServe v0.20.0 manager in Standard mode, both ways, no fault switch.

Services ``kserve-controller`` (KServe's own manager and webhooks), ``gateway`` (the sandbox Gateway API data
plane: kaiops's weighted HTTPRoute and the per-backend metrics the canary policy reads), ``s3``, ``prometheus`` and
``prefect``. The stable model is a HistGradientBoosting iris classifier, which handles missing values; the bad
canary is a LogisticRegression, which refuses them: the load sends every other row with a ``null`` feature, so the
real sklearnserver answers HTTP 500 (``{"error": "Input X contains NaN. ..."}``) for about half of the canary's
requests and never for the stable one. Models are trained in the sklearnserver image's own environment
(scikit-learn 1.5.2).

- ``iris`` rolls out through KServe's ``spec.canary[]`` (``gateway.way: auto`` picks it from the installed CRD);
- ``iris-two`` through a second InferenceService ``iris-two-canary`` (``gateway.way: second-inferenceservice``).

Both ways split traffic with kaiops's HTTPRoute ``<isvc>-rollout`` on the InferenceService's own host
(``status.url``), requests go to the gateway with that ``Host``.

Run: ``KAIOPS_SANDBOX=<instance> .venv/bin/python -m pytest tests/e2e/test_rollout_standard.py -x -q``
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e import rollout_support as rs

pytestmark = pytest.mark.e2e

NS = "rollout-std"
BUCKET = "rollout-std"
ONE, TWO = "iris", "iris-two"  # spec.canary[] way, second-InferenceService way
URI = {v: f"s3://{BUCKET}/iris/{v}" for v in ("v1", "v2", "v3")}
RPS = 20
READY_TIMEOUT_S = 900.0
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
KAIOPS = str(Path(sys.executable).parent / "kaiops")
ROWS = ([6.8, 2.8, 4.8, 1.4], [6.8, None, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2], [None, 3.0, 5.9, 2.1])
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, str]]:
    from sandbox import launcher
    from tests.sandbox_env import exported, prefect_api

    before = {s.name for s in launcher.status() if s.state == "healthy"}
    launcher.up(("kserve-controller", "gateway", "s3", "prometheus", "prefect"))
    with exported(launcher.env()) as values, prefect_api(values["PREFECT_API_URL"]):
        yield values
    if os.environ.get("KAIOPS_KEEP_SANDBOX"):
        return
    with contextlib.suppress(Exception):
        from tasks import kube

        kube.resource_for(kube.connect(values["KUBECONFIG"]), "v1", "Namespace").delete(name=NS)
    if "kserve-controller" not in before:
        launcher.down(names=("kserve-controller",))
    if "kserve" in before:  # the emulator was running: put it back for the modules that need it
        launcher.up(("kserve",))


@pytest.fixture(scope="module")
def kdyn(env: dict[str, str]):
    from tasks import kube

    return kube.connect(env["KUBECONFIG"])


@pytest.fixture(scope="module")
def models(env: dict[str, str], tmp_path_factory) -> dict[str, str]:
    """v1, v2: HistGradientBoosting (missing values fine); v3: LogisticRegression (raises on NaN)."""
    import boto3

    from tests.e2e.test_kserve_standard import sklearnserver_python

    out = tmp_path_factory.mktemp("models")
    code = ("import joblib,sys; from sklearn.datasets import load_iris; "
            "from sklearn.ensemble import HistGradientBoostingClassifier as H; "
            "from sklearn.linear_model import LogisticRegression as L; x,y=load_iris(return_X_y=True); d=sys.argv[1]; "
            "joblib.dump(H(max_iter=20).fit(x,y), d+'/v1.joblib'); "
            "joblib.dump(H(max_iter=30).fit(x,y), d+'/v2.joblib'); "
            "joblib.dump(L(max_iter=300).fit(x,y), d+'/v3.joblib')")
    subprocess.run([str(sklearnserver_python()), "-c", code, str(out)], check=True, timeout=600)
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    for v in URI:
        s3.upload_file(str(out / f"{v}.joblib"), BUCKET, f"iris/{v}/model.joblib")
    return URI


def _isvc(name: str, uri: str) -> dict:
    from tasks.rollout.isvc import ISVC_API, ISVC_KIND

    return {"apiVersion": ISVC_API, "kind": ISVC_KIND,
            "metadata": {"name": name, "namespace": NS,
                         "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
            "spec": {"predictor": {"serviceAccountName": "models",
                                   "model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri,
                                             "resources": RESOURCES}}}}


@pytest.fixture(scope="module")
def isvcs(kdyn, env: dict[str, str], models: dict[str, str]) -> dict[str, dict]:
    """Namespace, S3 Secret (in-cluster endpoint), ServiceAccount, and both InferenceServices Ready on v1."""
    from tasks import kube
    from tasks.rollout.isvc import ISVC_API, ISVC_KIND

    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "s3creds", "namespace": NS,
            "annotations": {"serving.kserve.io/s3-endpoint": "s3.kaiops-sandbox.svc.cluster.local:80",
                            "serving.kserve.io/s3-usehttps": "0", "serving.kserve.io/s3-region": "us-east-1"}},
         "type": "Opaque",
         "stringData": {"AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
                        "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "models", "namespace": NS},
         "secrets": [{"name": "s3creds"}]},
    ]
    for doc in docs:
        kube.apply(kdyn, doc)
    rs.delete_isvcs(kdyn, NS, [ONE, TWO, f"{TWO}-canary"], timeout=180)
    t0 = time.monotonic()
    for name in (ONE, TWO):
        kube.apply(kdyn, _isvc(name, URI["v1"]))
    out = {name: kube.wait_for(kdyn, ISVC_API, ISVC_KIND, name, lambda o: kube.condition_true(o, "Ready"),
                               namespace=NS, timeout=READY_TIMEOUT_S) for name in (ONE, TWO)}
    TIMINGS["two_isvcs_ready_s"] = time.monotonic() - t0
    print(f"\ntwo InferenceServices create -> Ready: {TIMINGS['two_isvcs_ready_s']:.1f} s")
    return out


class Load:
    """Predictions through the gateway with the InferenceService's ``Host`` at ``rps``, every other row holding
    a ``null`` feature, until the ``with`` block ends; counts HTTP codes (``by_code``)."""

    def __init__(self, gateway: str, url: str, model: str, rps: float = RPS) -> None:
        self.gateway, self.host, self.model, self.rps = gateway, urlparse(url).hostname, model, rps
        self.by_code: Counter = Counter()
        self.bodies: dict[int, str] = {}
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=12)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self, i: int) -> None:
        body = json.dumps({"instances": [ROWS[i % len(ROWS)]]}).encode()
        req = urllib.request.Request(f"{self.gateway}/v1/models/{self.model}:predict", data=body, method="POST",
                                     headers={"Host": self.host, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # KServe's route timeout
                code = resp.status
                resp.read()
        except urllib.error.HTTPError as exc:
            code = exc.code
            self.bodies.setdefault(code, exc.read().decode(errors="replace")[:300])
        except OSError:
            code = 0
        self.by_code[code] += 1

    def _run(self) -> None:
        began, i = time.monotonic(), 0
        while not self._stop.is_set():
            delay = began + i / self.rps - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
                continue
            self._pool.submit(self._one, i)
            i += 1

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)


def _policy(path: Path, way: str) -> Path:
    import yaml

    raw = yaml.safe_load(Path("configs/canary/gateway.yaml").read_text())
    raw.update({"steps": [20, 50, 100], "interval_seconds": 8, "warmup_seconds": 2, "min_requests_per_step": 20,
                "ready_deadline_seconds": READY_TIMEOUT_S, "lease_seconds": 20, "approval_timeout_seconds": 10,
                "latency_window_seconds": 4, "max_looks": 12, "history_seconds": 0})
    raw["gateway"].update({"way": way, "scale_down_delay_seconds": 4})
    raw["analysis"].update({"query_failure_limit": 1, "inconclusive_step_limit": 2})
    # this test judges errors; a 2-core machine shared by six helpers (load 20-40) makes latency noise (a canary
    # at 100 % once failed p95 against the idle baseline and paused for a human), so latency only has to be sane
    latency = next(m for m in raw["metrics"] if m["name"] == "latency_p95")
    latency.update({"absolute_bound": 30.0, "baseline_bound": {"factor": 10.0, "margin": 5.0}})
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def policies(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("policies")
    return {ONE: _policy(d / "auto.yaml", "auto"), TWO: _policy(d / "two.yaml", "second-inferenceservice")}


def _rollout(env: dict[str, str], name: str, uri: str, policy: Path, out: Path) -> dict:
    from flows.rollout import canary_rollout

    return canary_rollout(isvc=name, namespace=NS, storage_uri=uri, policy_file=str(policy),
                          prometheus_url=env["PROMETHEUS_URL"], out_dir=str(out))


def _record(kdyn, name: str):
    from tasks.rollout.record import read_record

    return read_record(kdyn, NS, name)


def _serving(kdyn, name: str) -> dict[str, int]:
    from tasks.rollout.isvc import get_isvc
    from tasks.rollout.routing import routing_for

    isvc = get_isvc(kdyn, NS, name)
    return {k: v for k, v in routing_for(kdyn, isvc, None, ("kserve-ingress-gateway", "kserve"), "-")
            .serving(isvc).items() if v}


def _gone(kdyn, api: str, kind: str, name: str, timeout: float = 120) -> None:
    from tasks import kube

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kube.get(kdyn, api, kind, name, NS)
        except kube.NotFound:
            return
        time.sleep(1)
    raise AssertionError(f"{kind} {name} still there after {timeout:.0f}s")


def _canary_requests(env: dict[str, str], backend: str) -> Counter:
    """Requests per response code class the gateway sent to ``backend``, as the sandbox Prometheus has them
    (the series the canary policy reads), after one more scrape."""
    from urllib.parse import urlencode

    time.sleep(3)  # one scrape interval and then some
    query = f'sum by (response_code_class) (gateway_backend_requests_total{{backend_namespace="{NS}", ' \
            f'backend_name="{backend}"}})'
    with urllib.request.urlopen(f"{env['PROMETHEUS_URL']}/api/v1/query?{urlencode({'query': query})}",
                                timeout=30) as resp:
        result = json.loads(resp.read())["data"]["result"]
    return Counter({r["metric"].get("response_code_class", ""): int(float(r["value"][1])) for r in result})


def test_the_way_is_picked_from_the_installed_release(kdyn, isvcs) -> None:
    """The live v0.20.0 CRD has ``spec.canary``: ``auto`` picks KServe's ``spec.canary[]``; a policy can still
    ask for the second InferenceService; ``canaryTrafficPercent`` (ignored in Standard mode) is refused."""
    from tasks.errors import InputError
    from tasks.rollout.isvc import get_isvc, installed_canary_list
    from tasks.rollout.routing import CanaryListRouting, RawRouting, routing_for

    assert installed_canary_list(kdyn) is True
    isvc = get_isvc(kdyn, NS, ONE)
    gw = ("kserve-ingress-gateway", "kserve")
    assert type(routing_for(kdyn, isvc, "RawDeployment", gw, "p.yaml", way="auto")) is CanaryListRouting
    assert type(routing_for(kdyn, isvc, "RawDeployment", gw, "p.yaml", way="second-inferenceservice")) is RawRouting
    assert routing_for(kdyn, isvc, None, gw, "-").host == f"{ONE}-{NS}.example.com"
    with pytest.raises(InputError, match="mode"):
        routing_for(kdyn, isvc, "Serverless", gw, "p.yaml")
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = 10
    with pytest.raises(InputError, match="canaryTrafficPercent"):
        routing_for(kdyn, isvc, "RawDeployment", gw, "p.yaml")


def test_sandbox_load_goes_through_the_gateway_with_the_isvc_host(env, isvcs) -> None:
    """``kaiops sandbox load``: ``iris-rollout-std.example.com`` resolves nowhere, so the requests go to the
    gateway with that ``Host`` and the real sklearnserver answers every one."""
    done = subprocess.run([KAIOPS, "sandbox", "load", ONE, "-n", NS, "--rps", "5", "--duration", "4", "-o", "json"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    got = json.loads(done.stdout)
    assert got["host"] == f"{ONE}-{NS}.example.com" and got["via"] == env["KAIOPS_GATEWAY_URL"], got
    assert got["sent"] >= 15 and got["by_code"] == {"200": got["sent"]}, got


def test_spec_canary_healthy_canary_is_promoted(env, kdyn, isvcs, policies, tmp_path) -> None:
    from tasks.rollout.isvc import get_isvc

    t0 = time.monotonic()
    with Load(env["KAIOPS_GATEWAY_URL"], isvcs[ONE]["status"]["url"], ONE) as load:
        result = _rollout(env, ONE, URI["v2"], policies[ONE], tmp_path)
    TIMINGS["spec_canary_promote_s"] = time.monotonic() - t0
    print(f"\nspec.canary rollout to Succeeded: {TIMINGS['spec_canary_promote_s']:.1f} s, load {dict(load.by_code)}")
    obj, record = _record(kdyn, ONE)
    assert result["phase"] == "Succeeded", result["message"]
    assert [h.decision.value for h in record.history if h.decision.value != "hold"] == ["advance", "advance", "promote"]
    assert [h.traffic for h in record.history if h.decision.value != "hold"] == [20, 50, 100]
    assert record.canary_revision == f"{ONE}-canary-predictor"
    assert _canary_requests(env, f"{ONE}-canary-predictor")["2xx"] > 0  # the canary Deployment really answered
    # not one failed request while the route moved and KServe replaced the stable Pod and deleted the canary
    assert set(load.by_code) == {200}, (load.by_code, load.bodies)
    obj = get_isvc(kdyn, NS, ONE)
    assert "canary" not in obj["spec"] and obj["spec"]["predictor"]["model"]["storageUri"] == URI["v2"]
    assert _serving(kdyn, ONE) == {f"{ONE}-predictor": 100}
    _gone(kdyn, "apps/v1", "Deployment", f"{ONE}-canary-predictor")  # KServe's orphan cleanup


def test_spec_canary_that_fails_on_missing_values_is_rolled_back(env, kdyn, isvcs, policies, tmp_path) -> None:
    from tasks.rollout.isvc import get_isvc

    before = _canary_requests(env, f"{ONE}-canary-predictor")
    stable_uri = get_isvc(kdyn, NS, ONE)["spec"]["predictor"]["model"]["storageUri"]  # v2 after the promote test
    with Load(env["KAIOPS_GATEWAY_URL"], isvcs[ONE]["status"]["url"], ONE) as load:
        result = _rollout(env, ONE, URI["v3"], policies[ONE], tmp_path)
    obj, record = _record(kdyn, ONE)
    assert result["phase"] == "RolledBack", result["message"]
    assert load.by_code[500] > 0 and "Input X contains NaN" in load.bodies[500], (load.by_code, load.bodies)
    assert _canary_requests(env, f"{ONE}-canary-predictor")["5xx"] > before["5xx"]
    # holds while evidence is short (the starved load generator on a loaded machine), then one rollback
    assert [h.decision.value for h in record.history if h.decision.value != "hold"] == ["rollback"]
    assert record.history[-1].metrics["error_rate"]["verdict"] == "fail"
    obj = get_isvc(kdyn, NS, ONE)
    assert "canary" not in obj["spec"] and obj["spec"]["predictor"]["model"]["storageUri"] == stable_uri
    assert _serving(kdyn, ONE) == {f"{ONE}-predictor": 100}
    _gone(kdyn, "apps/v1", "Deployment", f"{ONE}-canary-predictor")


def test_second_inferenceservice_healthy_canary_is_promoted(env, kdyn, isvcs, policies, tmp_path) -> None:
    from tasks.rollout.isvc import ISVC_API, ISVC_KIND, get_isvc

    with Load(env["KAIOPS_GATEWAY_URL"], isvcs[TWO]["status"]["url"], TWO) as load:
        result = _rollout(env, TWO, URI["v2"], policies[TWO], tmp_path)
    obj, record = _record(kdyn, TWO)
    assert result["phase"] == "Succeeded", result["message"]
    assert [h.decision.value for h in record.history if h.decision.value != "hold"] == ["advance", "advance", "promote"]
    assert _canary_requests(env, f"{TWO}-canary-predictor")["2xx"] > 0
    assert set(load.by_code) == {200}, (load.by_code, load.bodies)
    obj = get_isvc(kdyn, NS, TWO)
    assert "canary" not in obj["spec"] and obj["spec"]["predictor"]["model"]["storageUri"] == URI["v2"]
    assert _serving(kdyn, TWO) == {f"{TWO}-predictor": 100}
    _gone(kdyn, ISVC_API, ISVC_KIND, f"{TWO}-canary")


def test_second_inferenceservice_that_fails_on_missing_values_is_rolled_back(env, kdyn, isvcs, policies,
                                                                             tmp_path) -> None:
    from tasks.rollout.isvc import ISVC_API, ISVC_KIND, get_isvc

    stable_uri = get_isvc(kdyn, NS, TWO)["spec"]["predictor"]["model"]["storageUri"]  # v2 after the promote test
    with Load(env["KAIOPS_GATEWAY_URL"], isvcs[TWO]["status"]["url"], TWO) as load:
        result = _rollout(env, TWO, URI["v3"], policies[TWO], tmp_path)
    _, record = _record(kdyn, TWO)
    assert result["phase"] == "RolledBack", result["message"]
    assert load.by_code[500] > 0, load.by_code
    # holds while evidence is short (the starved load generator on a loaded machine), then one rollback
    assert [h.decision.value for h in record.history if h.decision.value != "hold"] == ["rollback"]
    assert record.history[-1].metrics["error_rate"]["verdict"] == "fail"
    assert get_isvc(kdyn, NS, TWO)["spec"]["predictor"]["model"]["storageUri"] == stable_uri
    assert _serving(kdyn, TWO) == {f"{TWO}-predictor": 100}
    _gone(kdyn, ISVC_API, ISVC_KIND, f"{TWO}-canary")


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_spec_canary_rollout_is_restored_by_the_guard(env, kdyn, isvcs, policies, tmp_path) -> None:
    """``kaiops rollout`` SIGKILLed while KServe's canary Deployment takes traffic: the lease runs out, ``kaiops
    guard`` moves kaiops's route back and removes ``spec.canary``; KServe deletes the canary Deployment."""
    from tasks.rollout.isvc import get_isvc

    out = tmp_path / "killed"
    out.mkdir()
    with Load(env["KAIOPS_GATEWAY_URL"], isvcs[ONE]["status"]["url"], ONE):
        with open(out / "cli.log", "wb") as log:
            proc = subprocess.Popen([KAIOPS, "rollout", ONE, "-n", NS, "--storage-uri", URI["v1"], "--policy",
                                     str(policies[ONE]), "--prometheus-url", env["PROMETHEUS_URL"], "--out", str(out),
                                     "-o", "json"], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
        try:
            _until(lambda: (r := _record(kdyn, ONE)[1]) and r.phase.value == "Progressing" and r.history,
                   READY_TIMEOUT_S, "the first look")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        killed = _record(kdyn, ONE)[1]
        assert not killed.phase.terminal
        assert get_isvc(kdyn, NS, ONE)["spec"].get("canary"), "the canary entry should still be there"
        assert _serving(kdyn, ONE) != {f"{ONE}-predictor": 100}  # traffic stuck on the canary
        _until(lambda: _record(kdyn, ONE)[1].lease_expired(datetime.now(UTC)), 120, "the lease to expire")
        guard = subprocess.run([KAIOPS, "guard", "-n", NS, "-o", "json"], capture_output=True, text=True,
                               env={**os.environ, **env}, timeout=300)
    assert guard.returncode == 0, guard.stdout[-2000:] + guard.stderr[-2000:]
    assert [(r["name"], r["changed"]) for r in json.loads(guard.stdout)] == [(ONE, True)]
    _, record = _record(kdyn, ONE)
    assert record.phase.value == "RolledBack" and "guard" in record.message
    obj = get_isvc(kdyn, NS, ONE)
    assert "canary" not in obj["spec"] and obj["spec"]["predictor"]["model"]["storageUri"] == URI["v2"]
    assert _serving(kdyn, ONE) == {f"{ONE}-predictor": 100}
    _gone(kdyn, "apps/v1", "Deployment", f"{ONE}-canary-predictor")
