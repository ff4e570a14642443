"""Tests for the offline manifest validator (tasks.manifests) and `kaiops validate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.manifests import Rule, Severity, validate_documents, validate_files
from tasks.manifests.rules import REGISTRY
from tasks.manifests.rules.ray_start_params import KNOWN_PARAMS, quantity_to_bytes

CORPUS = Path(__file__).resolve().parent.parent / "manifests"
BAD = sorted((CORPUS / "bad").glob("*.yaml"))
GOOD = sorted((CORPUS / "good").glob("*.yaml"))
runner = CliRunner()


def expectation(path: Path) -> tuple[str, str]:
    """Return ``(rule id, field path)`` from the ``# expect: <rule> <path>`` first line (``-`` = no path)."""
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <rule> <path>'"
    rule, field = first.removeprefix("# expect: ").split()
    return rule, "" if field == "-" else field


@pytest.mark.unit
def test_corpus_sizes() -> None:
    assert len(BAD) >= 40
    assert len(GOOD) >= 12


@pytest.mark.unit
@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_manifest_reports_expected_rule_and_field(path: Path) -> None:
    rule, field = expectation(path)
    findings = validate_files([path])
    reported = {(str(f.rule), f.field) for f in findings}
    assert (rule, field) in reported, f"{path.name}: expected {rule} at {field!r}, got {sorted(reported)}"


@pytest.mark.unit
@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_manifest_is_clean(path: Path) -> None:
    findings = validate_files([path])
    noisy = [str(f) for f in findings if f.severity in (Severity.error, Severity.warning)]
    assert noisy == []


@pytest.mark.unit
def test_every_rule_has_a_bad_manifest() -> None:
    covered = {expectation(p)[0] for p in BAD}
    assert set(map(str, Rule)) - covered == set()


@pytest.mark.unit
def test_every_domain_rule_is_registered_once() -> None:
    ids = [r.rule for r in REGISTRY]
    assert len(ids) == len(set(ids))
    assert all(r.fn.__doc__ and "Source:" in r.fn.__doc__ for r in REGISTRY)


@pytest.mark.unit
def test_finding_names_file_field_and_fix() -> None:
    path = CORPUS / "bad" / "ray.start-params.memory-units.yaml"
    [finding] = [f for f in validate_files([path]) if f.rule is Rule.RAY_MEMORY_UNITS]
    assert finding.file == str(path)
    assert finding.document == 0
    assert finding.object == "RayCluster/training-cluster"
    assert finding.field == "spec.headGroupSpec.rayStartParams.object-store-memory"
    assert finding.severity is Severity.error
    assert finding.fix.startswith('object-store-memory: "2147483648"')
    assert str(path) in str(finding) and finding.field in str(finding)


@pytest.mark.unit
def test_unquoted_start_param_is_a_type_error_with_quoting_fix() -> None:
    doc = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "x"},
        "spec": {"headGroupSpec": {"rayStartParams": {"num-cpus": 2}, "template": {"spec": {"containers": []}}}},
    }
    [finding] = validate_documents([doc], "inline")
    assert (finding.rule, finding.field, finding.fix) == (
        Rule.SCHEMA_TYPE,
        "spec.headGroupSpec.rayStartParams.num-cpus",
        'quote it: "2"',
    )


@pytest.mark.unit
def test_domain_finding_replaces_generic_unknown_field() -> None:
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m"},
        "spec": {"predictor": {"modelUri": "s3://b/m"}},
    }
    rules = [(f.rule, f.field) for f in validate_documents([doc])]
    assert rules == [(Rule.KSERVE_FIELD, "spec.predictor.modelUri")]


@pytest.mark.unit
def test_int_or_string_and_quantities_accept_both_forms() -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]},
    }
    assert validate_documents([doc]) == []
    doc["spec"]["ports"][0]["targetPort"] = True
    assert [f.rule for f in validate_documents([doc])] == [Rule.SCHEMA_TYPE]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "expected"),
    [("8Gi", 8 * 2**30), ("2G", 2 * 10**9), ("16GB", 16 * 10**9), ("1.5Gi", int(1.5 * 2**30)), ("lots", None)],
)
def test_quantity_to_bytes(value: str, expected: int | None) -> None:
    assert quantity_to_bytes(value) == expected


@pytest.mark.unit
def test_known_start_params_match_installed_ray() -> None:
    from ray.scripts import scripts
    options = {o.removeprefix("--") for p in scripts.start.params for o in p.opts if o.startswith("--")}
    assert options == set(KNOWN_PARAMS)


@pytest.mark.unit
def test_cli_exit_0_on_clean_files() -> None:
    result = runner.invoke(app, ["validate", *map(str, GOOD[:3])])
    assert result.exit_code == 0, result.output


@pytest.mark.unit
def test_cli_exit_2_and_json_findings_on_errors() -> None:
    bad = CORPUS / "bad" / "kserve.field.nonexistent.model-uri.yaml"
    result = runner.invoke(app, ["validate", str(GOOD[0]), str(bad), "--output", "json"])
    assert result.exit_code == 2
    rows = json.loads(result.stdout)
    assert {"file", "document", "object", "field", "severity", "rule", "message", "fix"} <= set(rows[0])
    assert any(r["rule"] == "kserve.field.nonexistent" and r["file"] == str(bad) for r in rows)


@pytest.mark.unit
def test_cli_exit_0_with_only_info_findings() -> None:
    info_only = CORPUS / "bad" / "kserve.storage-uri.legacy-framework.yaml"
    result = runner.invoke(app, ["validate", str(info_only), "-o", "json"])
    assert result.exit_code == 0
    assert [r["severity"] for r in json.loads(result.stdout)] == ["info"]


@pytest.mark.unit
@pytest.mark.parametrize("content", ["key: [unclosed\n", "- just\n- a list\n", "plain text\n"])
def test_cli_not_yaml_or_not_object_is_exit_2(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(content)
    result = runner.invoke(app, ["validate", str(path), "-o", "json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)[0]["rule"] in {"document.yaml", "document.not-object"}


@pytest.mark.unit
def test_missing_file_is_a_finding(tmp_path: Path) -> None:
    [finding] = validate_files([tmp_path / "nope.yaml"])
    assert finding.rule is Rule.DOCUMENT_UNREADABLE and finding.severity is Severity.error


@pytest.mark.unit
def test_cli_checks_the_manifests_of_a_directory_and_with_r_its_subdirectories(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "ok.yaml").write_bytes(GOOD[0].read_bytes())
    bad = CORPUS / "bad" / "kserve.field.nonexistent.model-uri.yaml"
    (tmp_path / "nested" / "bad.yml").write_bytes(bad.read_bytes())
    (tmp_path / "notes.txt").write_text("not a manifest")
    flat = runner.invoke(app, ["validate", str(tmp_path), "-o", "json"])
    assert flat.exit_code == 0 and json.loads(flat.stdout) == [], flat.output
    deep = runner.invoke(app, ["validate", str(tmp_path), "-R", "-o", "json"])
    assert deep.exit_code == 2
    assert {(r["file"], r["rule"]) for r in json.loads(deep.stdout) if r["severity"] == "error"} == {
        (str(tmp_path / "nested" / "bad.yml"), "kserve.field.nonexistent")}


@pytest.mark.unit
def test_cli_a_directory_without_manifests_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2, result.output
