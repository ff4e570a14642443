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
#: Manifests whose check runs Prometheus's own parser (``promtool``, a process): their cases run in
#: tests/integration/test_validate_promtool.py, the rest here.
PROMTOOL = sorted(p for p in (*BAD, *GOOD) if b"\nkind: PrometheusRule" in p.read_bytes())
BAD_UNIT = [p for p in BAD if p not in PROMTOOL]
GOOD_UNIT = [p for p in GOOD if p not in PROMTOOL]
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
@pytest.mark.parametrize("path", BAD_UNIT, ids=[p.stem for p in BAD_UNIT])
def test_bad_manifest_reports_expected_rule_and_field(path: Path) -> None:
    rule, field = expectation(path)
    findings = validate_files([path])
    reported = {(str(f.rule), f.field) for f in findings}
    assert (rule, field) in reported, f"{path.name}: expected {rule} at {field!r}, got {sorted(reported)}"


@pytest.mark.unit
@pytest.mark.parametrize("path", GOOD_UNIT, ids=[p.stem for p in GOOD_UNIT])
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


HEADLINE = r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning|info) (?P<rule>[a-z0-9.-]+) "


def _key_at(path: Path, line: int, column: int) -> str:
    return path.read_text(encoding="utf-8").splitlines()[line - 1][column - 1:]


@pytest.mark.unit
@pytest.mark.parametrize("path", [p for p in BAD_UNIT if p.stem != "document.unreadable"],
                         ids=[p.stem for p in BAD_UNIT if p.stem != "document.unreadable"])
def test_bad_manifest_finding_is_one_compiler_line_with_the_key_position(path: Path) -> None:
    import re

    rule, field = expectation(path)
    [finding] = [f for f in validate_files([path]) if (str(f.rule), f.field) == (rule, field)][:1]
    headline, fix = finding.lines()
    match = re.match(HEADLINE, headline)
    assert match, headline
    assert (match["file"], match["rule"], int(match["line"]), int(match["col"])) == (
        str(path), rule, finding.line, finding.column)
    assert "\n" not in headline and fix.startswith("  fix: ") and fix.strip() != "fix:"
    assert field in headline  # the whole field path, never cut
    from tasks.manifests.positions import load_with_positions, locate

    if finding.document is not None:
        index = load_with_positions(path.read_text(encoding="utf-8"))[finding.document][1]
        assert (finding.line, finding.column) == locate(index, field)
        if field in index and not field.endswith("]"):
            # a present field: the position is the offending key itself, where its last segment starts
            last = field.rsplit(".", 1)[-1] if "/" not in field.rsplit(".", 1)[-1] else field.split("annotations.")[-1]
            assert _key_at(path, finding.line, finding.column).startswith(last), (
                f"{path.name}:{finding.line}:{finding.column} is not at {field}")


@pytest.mark.unit
def test_a_file_with_schema_errors_still_gets_every_domain_finding() -> None:
    path = CORPUS / "bad" / "mixed.schema-and-domain.yaml"
    found = {(str(f.rule), f.field, f.line, f.column) for f in validate_files([path])}
    head = "spec.headGroupSpec"
    ray = f"{head}.template.spec.containers[0]"
    assert found == {
        ("schema.type", f"{head}.rayStartParams.num-cpus", 10, 7),
        ("ray.start-params.memory-units", f"{head}.rayStartParams.memory", 11, 7),
        ("ray.env.operator-managed", f"{ray}.env[0].name", 18, 13),
        ("ray.env.unknown", f"{ray}.env[1].name", 20, 13),
        ("ray.probes.health-port", f"{ray}.livenessProbe", 22, 11),
        ("schema.type", "spec.predictor.minReplicas", 32, 5),
        ("kserve.storage-uri.scheme", "spec.predictor.model.storageUri", 36, 7),
    }


@pytest.mark.unit
def test_cli_prints_compiler_lines_uncut_at_80_columns_and_a_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    monkeypatch.setenv("COLUMNS", "80")
    path = CORPUS / "bad" / "mixed.schema-and-domain.yaml"
    result = runner.invoke(app, ["validate", str(path), str(GOOD[0])])
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    heads = [ln for ln in lines if re.match(HEADLINE, ln)]
    assert len(heads) == 7 and all(ln.startswith("  fix: ") for ln in lines[1:14:2])
    assert "spec.headGroupSpec.template.spec.containers[0].env[1].name" in result.stdout
    assert "…" not in result.stdout
    assert lines[-1] == "invalid: 2 files checked: 5 errors, 2 warnings, 0 info"


@pytest.mark.unit
def test_cli_json_carries_line_and_column() -> None:
    path = CORPUS / "bad" / "ray.env.unknown.yaml"
    rows = json.loads(runner.invoke(app, ["validate", str(path), "-o", "json"]).stdout)
    assert [(r["rule"], r["line"], r["column"], r["fix"]) for r in rows] == [
        ("ray.env.unknown", 30, 13, "name: RAY_gcs_rpc_server_reconnect_timeout_s")]


@pytest.mark.unit
def test_yaml_syntax_error_has_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n")
    [finding] = validate_files([path])
    assert finding.rule is Rule.DOCUMENT_YAML and finding.headline().startswith(f"{path}:5:1: error document.yaml")


@pytest.mark.unit
def test_known_ray_env_names_match_installed_ray() -> None:
    import ray

    from tasks.manifests.rules.ray_env import scan_ray_package
    from tasks.manifests.rules.ray_env_known import RAY_ENV_NAMES, RAY_VERSION

    assert ray.__version__ == RAY_VERSION, "regenerate: python -m tasks.manifests.rules.ray_env"
    assert scan_ray_package(Path(ray.__file__).parent) == set(RAY_ENV_NAMES)


@pytest.mark.unit
@pytest.mark.parametrize(("uri", "fix"), [("s3//models/iris", "storageUri: s3://models/iris"),
                                          ("gs:/b/m", "storageUri: gs://b/m"),
                                          ("gcs//b/m", "storageUri: gs://b/m"),
                                          ("models/iris", "write it as pvc://<claim>/<path>")])
def test_mistyped_scheme_separator_is_repaired_in_the_fix(uri: str, fix: str) -> None:
    doc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "m"},
           "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}}}
    [finding] = validate_documents([doc])
    assert finding.rule is Rule.KSERVE_URI_SCHEME and finding.fix == fix


FIX_VERBS = ("add", "remove", "rename", "use", "write", "quote", "move", "keep", "make", "check", "fix", "change")


@pytest.mark.unit
def test_every_fix_says_what_to_do() -> None:
    """A fix is an instruction (a verb) or the line to write (``key: value``), never a description."""
    check_fixes(BAD_UNIT)


def check_fixes(paths: list[Path]) -> None:
    """Every fix of every finding of ``paths`` starts with a verb of :data:`FIX_VERBS` or is ``key: value``."""
    import re

    for path in paths:
        for f in validate_files([path]):
            first = f.fix.split()[0].strip("`").lower()
            assert first in FIX_VERBS or re.match(r"^[\w.-]+: ", f.fix), f"{path.name}: {f.rule}: {f.fix!r}"
