"""Filling the placeholders of a canary policy's PromQL templates (``${namespace}``, ``${range}``, ...)."""

from __future__ import annotations

import math
import string
from dataclasses import dataclass


@dataclass(frozen=True)
class QueryContext:
    """Values for the template placeholders (see configs.canary)."""

    namespace: str
    isvc: str
    canary_revision: str
    baseline_revision: str

    def fill(self, template: str, range_seconds: float) -> str:
        """Return ``template`` with every placeholder filled; ``range_seconds`` becomes ``${range}``."""
        return string.Template(template).substitute(
            namespace=self.namespace,
            isvc=self.isvc,
            canary_revision=self.canary_revision,
            baseline_revision=self.baseline_revision,
            range=f"{max(1, math.ceil(range_seconds))}s",
        )
#: Placeholder values for parsing a template before the real revisions are known.
SAMPLE_CONTEXT = QueryContext(namespace="ns", isvc="isvc", canary_revision="isvc-predictor-00002",
                              baseline_revision="isvc-predictor-00001")
