"""The manifest-corpus checks of tests/unit/test_validate.py for the PrometheusRule manifests, whose rule
``monitoring.rule.promql`` runs Prometheus's own parser (``promtool check rules``, a process), so they are
not unit tests. Same assertions, called from the unit module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit import test_validate as corpus

pytestmark = pytest.mark.integration
BAD = [p for p in corpus.PROMTOOL if p.parent.name == "bad"]
GOOD = [p for p in corpus.PROMTOOL if p.parent.name == "good"]


def test_the_promtool_manifests_are_the_monitoring_rule_ones() -> None:
    assert {p.stem for p in BAD} == {"monitoring.rule.promql", "monitoring.rule.unknown-metric"}
    assert GOOD and all(p.stem.startswith("monitoring") for p in GOOD)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_rule_manifest_reports_its_rule_field_and_position(path: Path) -> None:
    corpus.test_bad_manifest_reports_expected_rule_and_field(path)
    corpus.test_bad_manifest_finding_is_one_compiler_line_with_the_key_position(path)


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_rule_manifest_is_clean(path: Path) -> None:
    corpus.test_good_manifest_is_clean(path)


def test_every_rule_fix_says_what_to_do() -> None:
    corpus.check_fixes(BAD)
