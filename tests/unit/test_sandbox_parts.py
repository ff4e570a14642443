"""Pure parts of the sandbox and the shared plumbing: process groups, the state file, pins, output."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
import yaml

from flows.output import OutputFormat, emit
from sandbox import procs
from sandbox.paths import binary_version
from sandbox.state import SandboxState, ServiceRecord
from tasks import crds
from tasks.errors import InputError, PermanentError, TemporaryError, is_retryable

pytestmark = pytest.mark.unit


def test_wait_until_times_out_with_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_text("starting\nbind: address already in use\n")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="address already in use"):
        procs.wait_until(lambda: False, 0.3, "sandbox svc", log=log)
    assert time.monotonic() - started < 5


def test_free_port_is_bindable_on_loopback() -> None:
    port = procs.free_port()
    assert 1024 < port < 65536 and not procs.port_open(port)


def test_state_file_round_trips_and_is_private(tmp_path: Path) -> None:
    state = SandboxState(dir=tmp_path)
    state.services["s3"] = ServiceRecord("s3", 123, "http://127.0.0.1:1", "/tmp/log", {"http": 1})
    state.secrets["aws_secret_access_key"] = "k"
    state.save()
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    again = SandboxState.load(tmp_path)
    assert again.services == state.services and again.secrets == state.secrets
    assert SandboxState.load(tmp_path / "missing").services == {}


def test_binary_versions_come_from_the_pins() -> None:
    assert binary_version("kube-apiserver").startswith("v1.")
    assert int(binary_version("kube-apiserver").split(".")[1]) >= 34
    assert binary_version("etcd").startswith("v3.6.")
    assert binary_version("fake-gcs-server").startswith("v1.")


def test_crd_sources_pin_every_file_by_sha256() -> None:
    sources = crds.load_sources()
    names = {s.name for s in sources}
    assert {"kuberay", "kserve", "gateway-api"} <= names
    for source in sources:
        assert source.files and all(len(f.sha256) == 64 for f in source.files)


def test_a_crd_whose_content_differs_from_the_pin_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KAIOPS_CACHE", str(tmp_path / "cache"))
    fallback = tmp_path / "shared" / "crds" / "x"
    fallback.mkdir(parents=True)
    (fallback / "thing.yaml").write_text("kind: CustomResourceDefinition\n")
    source = crds.CrdSource(
        name="x", module="example.invalid/not-served", version="v0.0.1",
        files=(crds.CrdFile("config/thing.yaml", "0" * 64),), fallback="shared/crds/x",
    )
    monkeypatch.setenv("KAIOPS_SHARED_PARENT", str(tmp_path))
    monkeypatch.setattr(crds, "_module_dir", lambda s: None)
    with pytest.raises(PermanentError, match="sha256"):
        crds.ensure_crds([source])
    assert not (source.cache_dir / "thing.yaml").exists()


def test_errors_split_into_retryable_and_permanent() -> None:
    assert is_retryable(TemporaryError("503"))
    assert not is_retryable(PermanentError("422"))
    try:
        try:
            raise TemporaryError("connection refused")
        except TemporaryError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_retryable(outer)
    err = InputError("configs/clusters/x.yaml", "head.cpu", "not a quantity", "write e.g. '2' or '500m'")
    assert "configs/clusters/x.yaml" in str(err) and "head.cpu" in str(err) and "500m" in str(err)


def test_emit_json_and_yaml_are_machine_readable(capsys) -> None:
    rows = [{"name": "etcd", "state": "healthy"}, {"name": "s3", "state": "stopped", "extra": {"a": 1}}]
    emit(rows, OutputFormat.json)
    assert json.loads(capsys.readouterr().out) == rows
    emit(rows, OutputFormat.yaml)
    assert yaml.safe_load(capsys.readouterr().out) == rows
    emit(rows, OutputFormat.table, title="t")
    out = capsys.readouterr().out
    assert "etcd" in out and "extra" in out


def test_token_kubeconfig_keeps_the_admin_ca_and_swaps_user_and_server(tmp_path) -> None:
    import stat

    import yaml

    from sandbox.services.base import token_kubeconfig

    admin = tmp_path / "admin.yaml"
    admin.write_text(yaml.safe_dump({"clusters": [{"name": "x", "cluster": {
        "server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E="}}]}))
    out = token_kubeconfig(admin, tmp_path / "kc", "kuberay-operator", "tok", server="https://10.200.1.1:6443",
                           namespace="kuberay-system")
    config = yaml.safe_load(out.read_text())
    assert config["clusters"][0]["cluster"] == {"server": "https://10.200.1.1:6443",
                                                 "certificate-authority-data": "Q0E="}
    assert config["users"] == [{"name": "kuberay-operator", "user": {"token": "tok"}}]
    assert config["contexts"][0]["context"]["namespace"] == "kuberay-system"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    plain = yaml.safe_load(token_kubeconfig(admin, tmp_path / "kc2", "sa", "t").read_text())
    assert plain["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert "namespace" not in plain["contexts"][0]["context"]
