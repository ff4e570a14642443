"""A rollout look retries transient errors before they count (decision logic and task wiring; no processes)."""

from __future__ import annotations

import pytest

from tasks.analysis import MetricSample, Outcome
from tasks.metrics import failed_queries
from tasks.rollout import tasks as rollout_tasks
from tasks.rollout.tasks import retry_queries

pytestmark = pytest.mark.unit
OK = MetricSample(metric="latency", outcome=Outcome.OK, canary_total=10, baseline_total=10)
FAILED = MetricSample(metric="errors", outcome=Outcome.QUERY_FAILED, error="prometheus: ConnectError")
EMPTY = MetricSample(metric="p99", outcome=Outcome.NO_DATA, error="empty: canary_total")


def test_failed_queries_names_only_the_failed_metrics() -> None:
    assert failed_queries([OK, EMPTY]) == ""  # no data is evidence of its own, not a failed query
    assert failed_queries([OK, FAILED]) == "errors: prometheus: ConnectError"


@pytest.mark.parametrize(("attempt", "retried"), [(1, True), (2, True), (3, True), (4, False)])
def test_failed_queries_are_retried_until_the_last_attempt(attempt: int, retried: bool) -> None:
    why = retry_queries(failed_queries([FAILED]), attempt, retries=3)
    assert (why is not None) is retried
    if retried:
        assert "errors: prometheus: ConnectError" in why and f"attempt {attempt} of 4" in why


def test_nothing_to_retry_when_every_query_answered_or_outside_a_task_run() -> None:
    assert retry_queries("", 1, retries=3) is None
    assert retry_queries("errors: x", 0, retries=3) is None  # called as a plain function: counts at once


def test_the_look_and_its_after_step_are_retried_tasks() -> None:
    for task_ in (rollout_tasks.analyse_look, rollout_tasks.after_look):
        assert task_.retries == rollout_tasks._IO["retries"] == 3
        assert task_.retry_condition_fn is rollout_tasks._IO["retry_condition_fn"]
