"""Canary policy files, templates and the PromQL selector parser."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from configs.canary import CanaryPolicy, load_policy
from tasks.errors import InputError
from tasks.metrics import QueryContext, metric_selectors

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["default.yaml", "model-server.yaml"])
def test_shipped_policies_load(name: str) -> None:
    policy = load_policy(ROOT / "configs" / "canary" / name)
    assert policy.steps[-1] == 100
    assert policy.analysis_policy().metrics


def _raw() -> dict:
    return yaml.safe_load((ROOT / "configs/canary/default.yaml").read_text())


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_placeholder_fails_naming_file_and_field(tmp_path: Path) -> None:
    raw = _raw()
    raw["metrics"][0]["canary"]["total"] = 'sum(increase(revision_request_count{revision_name="${revison}"}[${range}]))'
    with pytest.raises(InputError) as info:
        load_policy(_write(tmp_path, raw))
    assert "policy.yaml" in str(info.value) and "revison" in str(info.value)
    assert info.value.field.startswith("metrics.0")


@pytest.mark.parametrize(
    "change",
    [
        {"steps": [10, 50]},  # does not end at 100
        {"steps": [50, 25, 100]},  # not increasing
        {"approval_steps": [30]},  # not a step
        {"unknown_key": 1},
        {"interval_seconds": 0},
    ],
)
def test_bad_policies_are_refused(tmp_path: Path, change: dict) -> None:
    with pytest.raises(InputError):
        load_policy(_write(tmp_path, {**_raw(), **change}))


def test_ratio_metric_needs_events(tmp_path: Path) -> None:
    raw = _raw()
    del raw["metrics"][0]["baseline"]["events"]
    with pytest.raises(InputError, match=r"baseline\.events"):
        load_policy(_write(tmp_path, raw))


def test_templates_fill_revisions_and_range() -> None:
    policy = CanaryPolicy.model_validate(_raw())
    ctx = QueryContext(namespace="demo", isvc="iris", canary_revision="iris-predictor-00002",
                       baseline_revision="iris-predictor-00001")
    text = ctx.fill(policy.metrics[0].canary.events, 123.4)
    assert 'kn_revision_name="iris-predictor-00002"' in text and "[124s]" in text and "${" not in text
    assert "offset 124s" in text  # a series born inside the window is counted from zero (see default.yaml)


def test_selector_parser_finds_metrics_and_labels() -> None:
    sels = metric_selectors(
        'histogram_quantile(0.95, sum by (le) (rate(revision_request_latencies_bucket{namespace_name="x",'
        ' revision_name=~"a.*"}[1m]))) / on(job) group_left up or vector(0)'
    )
    assert [(s.metric, s.labels) for s in sels] == [
        ("revision_request_latencies_bucket", ("namespace_name", "revision_name")),
        ("up", ()),
    ]


def test_selector_parser_reads_a_placeholder_as_a_literal() -> None:
    sels = metric_selectors('(increase(x_count[${range}]) and x_count offset ${range})'
                            ' or max_over_time(x_count[${range}]) * on (job, instance) group_left ()'
                            ' target_info{kn_revision_name="${canary_revision}"}')
    assert [(s.metric, s.labels) for s in sels] == [
        ("x_count", ()), ("x_count", ()), ("x_count", ()), ("target_info", ("kn_revision_name",))]
