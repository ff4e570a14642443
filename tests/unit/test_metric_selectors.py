"""The PromQL selector reader: numbers and durations are literals, never metric names."""

from __future__ import annotations

import pytest

from tasks.metrics import metric_selectors

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("promql", "expected"),
    [
        ("x offset 5m", [("x", ())]),
        ("x offset -5m", [("x", ())]),
        ("x offset 1h30m", [("x", ())]),
        ("x offset 500ms", [("x", ())]),
        ("rate(x[5m] offset 5m)", [("x", ())]),
        ("foo[5m:1m] offset 1d", [("foo", ())]),
        ('sum(rate(a{b="c"}[1m] offset 1h)) / 1e3', [("a", ("b",))]),
        ("x * 1e3", [("x", ())]),
        ("x > 1e-3", [("x", ())]),
        ("2.5e+3 * foo", [("foo", ())]),
        ("0x1F * y", [("y", ())]),
        (".5 * b + 1.", [("b", ())]),
        ("x @ 1609746000", [("x", ())]),
        ("NaN + foo > Inf", [("foo", ())]),
        ("a1e3 + b5m", [("a1e3", ()), ("b5m", ())]),
    ],
)
def test_numbers_and_durations_are_not_metrics(promql: str, expected: list[tuple[str, tuple[str, ...]]]) -> None:
    assert [(s.metric, s.labels) for s in metric_selectors(promql)] == expected


def test_offset_inside_a_latency_template() -> None:
    sels = metric_selectors(
        'histogram_quantile(0.99, sum by (le) (rate(request_predict_seconds_bucket{model_name="iris"}[1m]'
        " offset 30s))) * 1e3"
    )
    assert [(s.metric, s.labels) for s in sels] == [("request_predict_seconds_bucket", ("model_name",))]
