"""A ServiceMonitor/PodMonitor selector and endpoint ports compared with what the operators create (pure).

Selector semantics are Kubernetes' ``metav1.LabelSelector`` (``matchLabels`` AND ``matchExpressions`` with
In/NotIn/Exists/DoesNotExist; apimachinery pkg/apis/meta/v1/helpers.go ``LabelSelectorAsSelector``), which the
Prometheus Operator applies to Services (ServiceMonitor) or Pods (PodMonitor) in the selected namespaces
(prometheus-operator v0.89.0 pkg/prometheus/promcfg.go:1415-1476 for PodMonitors: ``keep`` relabelings on
``__meta_kubernetes_pod_label_*`` then on ``__meta_kubernetes_pod_container_port_name``; :1930-1990 for
ServiceMonitors: on ``__meta_kubernetes_service_label_*`` then ``__meta_kubernetes_endpoint_port_name``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tasks.monitoring.targets import ObjectKind, Target, operator_key, targets_of


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: ``key`` with ``operator`` over ``values``."""

    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()


def requirements(selector: dict[str, Any]) -> list[Requirement]:
    """The terms of a LabelSelector mapping (``matchLabels`` become ``In`` with one value)."""
    out = [Requirement(str(k), "In", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        if isinstance(expr, dict) and isinstance(expr.get("key"), str):
            values = tuple(str(v) for v in expr.get("values") or [])
            out.append(Requirement(expr["key"], str(expr.get("operator", "")), values))
    return out


def _mismatch(req: Requirement, target: Target) -> str | None:
    """Why ``target`` cannot satisfy ``req`` (None when it can, or when it cannot be known offline)."""
    value = target.labels.get(req.key)
    if value is None:
        if target.open_labels and not operator_key(req.key):
            return None  # possibly a label of the user's own, copied by the operator
        if req.operator in ("NotIn", "DoesNotExist"):
            return None
        return f"has no label {req.key}"
    if req.operator == "In" and not any(value.allows(v) for v in req.values):
        return f"has {req.key}={value.show()}, not {'|'.join(req.values)}"
    if req.operator == "NotIn" and value.fixed is not None and not value.overridable and value.fixed in req.values:
        return f"has {req.key}={value.fixed}"
    if req.operator == "DoesNotExist" and not value.overridable:
        return f"always has {req.key}"
    return None


def claims_operator_objects(reqs: list[Requirement]) -> bool:
    """True when the selector names a label key only the operators write (else it is about the user's own
    workloads, which cannot be checked offline)."""
    return any(operator_key(r.key) for r in reqs if r.operator in ("In", "Exists"))


@dataclass(frozen=True)
class Match:
    """How well one target fits a selector: ``reasons`` is empty when it matches."""

    target: Target
    reasons: tuple[str, ...]

    @property
    def matches(self) -> bool:
        return not self.reasons


def rank(reqs: list[Requirement], kind: ObjectKind) -> list[Match]:
    """Every target of ``kind`` with why it does not match, best (fewest reasons) first."""
    matches = [Match(t, tuple(r for r in (_mismatch(q, t) for q in reqs) if r)) for t in targets_of(kind)]
    return sorted(matches, key=lambda m: len(m.reasons))


def port_allowed(name: str, ports: tuple[str, ...]) -> bool:
    """True when ``name`` is one of ``ports`` (``<isvc>-predictor`` style entries are patterns)."""
    for port in ports:
        pattern = re.escape(port).replace(re.escape("<isvc>"), ".+")
        if re.fullmatch(pattern, name):
            return True
    return False
