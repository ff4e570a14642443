"""The shape of a domain rule and the registry that runs them.

A rule is one function decorated with :func:`rule`: it names its :class:`~tasks.manifests.findings.Rule` id
and the kinds it applies to, receives a :class:`Manifest` and yields :class:`Hit` rows. The registry stamps
the rule id on every hit, so a rule cannot report under another rule's id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tasks.manifests.findings import Problem, Rule, Severity
from tasks.manifests.paths import mapping

Kind = tuple[str, str]  # (API group, kind)

RAYCLUSTER: Kind = ("ray.io", "RayCluster")
RAYJOB: Kind = ("ray.io", "RayJob")
RAYSERVICE: Kind = ("ray.io", "RayService")
RAY_KINDS: tuple[Kind, ...] = (RAYCLUSTER, RAYJOB, RAYSERVICE)
ISVC: Kind = ("serving.kserve.io", "InferenceService")
SERVING_RUNTIME: Kind = ("serving.kserve.io", "ServingRuntime")
CLUSTER_SERVING_RUNTIME: Kind = ("serving.kserve.io", "ClusterServingRuntime")
LOCAL_MODEL_CACHE: Kind = ("serving.kserve.io", "LocalModelCache")
TRAINED_MODEL: Kind = ("serving.kserve.io", "TrainedModel")
SECRET: Kind = ("", "Secret")
SERVICE_ACCOUNT: Kind = ("", "ServiceAccount")


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object under validation (nulls pruned, YAML-only types made JSON).

    Attributes:
        doc: the object.
        group: API group of ``apiVersion`` (``""`` for core).
        kind: ``kind``.
    """

    doc: dict[str, Any]
    group: str
    kind: str

    @property
    def name(self) -> str:
        """``metadata.name`` (or ``generateName``), ``""`` when absent."""
        meta = mapping(self.doc.get("metadata"))
        return str(meta.get("name") or meta.get("generateName") or "")

    @property
    def annotations(self) -> dict[str, Any]:
        """``metadata.annotations`` (empty when absent)."""
        return mapping(mapping(self.doc.get("metadata")).get("annotations"))

    @property
    def spec(self) -> dict[str, Any]:
        """``spec`` (empty when absent)."""
        return mapping(self.doc.get("spec"))


@dataclass(frozen=True)
class Hit:
    """What a rule function reports; :func:`run` adds the rule id."""

    severity: Severity
    field: str
    message: str
    fix: str


RuleFn = Callable[[Manifest], Iterable[Hit]]


@dataclass(frozen=True)
class RegisteredRule:
    """A rule function with its id and the kinds it applies to."""

    rule: Rule
    kinds: frozenset[Kind]
    fn: RuleFn

    def applies_to(self, manifest: Manifest) -> bool:
        """Return True when the rule checks this manifest's kind."""
        return (manifest.group, manifest.kind) in self.kinds


REGISTRY: list[RegisteredRule] = []


def rule(rule_id: Rule, *kinds: Kind) -> Callable[[RuleFn], RuleFn]:
    """Register the decorated function as the check for ``rule_id`` on ``kinds``."""

    def register(fn: RuleFn) -> RuleFn:
        REGISTRY.append(RegisteredRule(rule_id, frozenset(kinds), fn))
        return fn

    return register


def run(manifest: Manifest) -> Iterator[Problem]:
    """Run every registered rule that applies to ``manifest``; yield its problems."""
    for registered in REGISTRY:
        if registered.applies_to(manifest):
            for hit in registered.fn(manifest):
                yield Problem(registered.rule, hit.severity, hit.field, hit.message, hit.fix)
