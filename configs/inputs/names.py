"""Kubernetes names (``k8s.io/apimachinery/pkg/util/validation``: ``IsDNS1123Label``, ``IsDNS1123Subdomain``,
``IsDNS1035Label``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from configs.errors import InputError
from configs.inputs.text import plain_text_problem

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_NAME_RULES = {
    "label": (_DNS1123_LABEL, 63, "lowercase letters, digits and '-', starting and ending with a letter or digit"),
    "subdomain": (_DNS1123_SUBDOMAIN, 253, "lowercase letters, digits, '-' and '.', each part starting and "
                  "ending with a letter or digit"),
    "dns1035": (_DNS1035_LABEL, 63, "lowercase letters, digits and '-', starting with a letter and ending with a "
                "letter or digit"),
}


def name_problem(value: Any, rule: str = "label", max_length: int | None = None) -> str | None:
    """Why ``value`` is not a Kubernetes name under ``rule`` (``label`` = DNS-1123 label, namespaces and most
    names; ``subdomain`` = DNS-1123 subdomain, e.g. PVCs, Secrets; ``dns1035`` = Services, RayClusters), or None.

    ``max_length`` overrides the rule's limit (e.g. 53 for RayCluster names, whose Services add suffixes).
    """
    if not isinstance(value, str):
        return f"{value!r} is a {type(value).__name__}, not a name"
    pattern, limit, words = _NAME_RULES[rule]
    limit = max_length or limit
    problem = plain_text_problem(value, what="the name")
    if problem:
        return problem
    if len(value) > limit:
        return f"{value!r} is {len(value)} characters long, more than {limit}"
    if not pattern.fullmatch(value):
        return f"{value!r} is not a valid name: use {words}"
    return None


def check_name(value: Any, *, source: str, field: str, rule: str = "label", max_length: int | None = None) -> str:
    """Return ``value`` when it is a valid Kubernetes name (see :func:`name_problem`).

    Raises:
        InputError: naming ``source``/``field``, with a suggested valid name when one can be derived.
    """
    problem = name_problem(value, rule, max_length)
    if problem is None:
        return str(value)
    raise InputError(source, field, problem, _name_fix(value, rule))


def _name_fix(value: Any, rule: str) -> str:
    if isinstance(value, str):
        ascii_ = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
        guess = re.sub(r"[^a-z0-9-.]" if rule == "subdomain" else r"[^a-z0-9-]", "-", ascii_).strip("-.")[:63]
        if guess and name_problem(guess, rule) is None:
            return f"write it as e.g. {guess!r}"
    return "use lowercase letters, digits and '-' (e.g. 'my-model')"


def name_validator(rule: str, max_length: int | None = None) -> Callable[[str], str]:
    """A pydantic ``AfterValidator`` that raises ``ValueError`` with :func:`name_problem`'s words and the fix."""
    def check(value: str) -> str:
        problem = name_problem(value, rule, max_length)
        if problem:
            raise ValueError(f"{problem} (fix: {_name_fix(value, rule)})")
        return value
    return check
