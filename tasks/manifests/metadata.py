"""``metadata`` checks the apiserver makes before storing any object: a name, in the right format.

Source: k8s.io/apimachinery pkg/api/validation/objectmeta.go (``ValidateObjectMeta``: name or generateName
required) and pkg/util/validation/validation.go (``IsDNS1123Subdomain``, ``IsDNS1123Label``,
``IsDNS1035Label``); per-kind name validators in pkg/apis/core/validation (Namespace: DNS-1123 label, Service:
DNS-1035 label) and pkg/apis/rbac/validation (path segment names); custom resources use DNS-1123 subdomains
(apiextensions-apiserver customresource validator).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from tasks.manifests.findings import Problem, Rule, Severity
from tasks.manifests.paths import mapping

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _subdomain(name: str) -> str | None:
    ok = len(name) <= 253 and _SUBDOMAIN.match(name)
    return None if ok else "a DNS-1123 subdomain (lower-case alphanumerics, '-' and '.', at most 253)"


def _label_1123(name: str) -> str | None:
    ok = len(name) <= 63 and _LABEL_1123.match(name)
    return None if ok else "a DNS-1123 label (lower-case alphanumerics and '-', at most 63)"


def _label_1035(name: str) -> str | None:
    ok = len(name) <= 63 and _LABEL_1035.match(name)
    return None if ok else "a DNS-1035 label (lower-case, starting with a letter, at most 63)"


def _path_segment(name: str) -> str | None:
    ok = name not in (".", "..") and "/" not in name and "%" not in name
    return None if ok else "a path segment (no '/', no '%', not '.' or '..')"


_RBAC = "rbac.authorization.k8s.io"
NAME_RULES: dict[tuple[str, str], Callable[[str], str | None]] = {
    ("", "Namespace"): _label_1123,
    ("", "Service"): _label_1035,
    (_RBAC, "Role"): _path_segment,
    (_RBAC, "ClusterRole"): _path_segment,
    (_RBAC, "RoleBinding"): _path_segment,
    (_RBAC, "ClusterRoleBinding"): _path_segment,
}


def suggest_name(name: str) -> str:
    """Return a DNS-1123-safe spelling of ``name`` (``My_Model`` -> ``my-model``)."""
    return re.sub(r"[^-a-z0-9.]+", "-", name.lower()).strip("-.") or "my-object"


def check(doc: dict[str, Any], group: str, kind: str) -> Iterator[Problem]:
    """Yield ``metadata.*`` problems for one object.

    Args:
        doc: the object.
        group: its API group.
        kind: its kind.
    """
    meta = mapping(doc.get("metadata"))
    name, generate = meta.get("name"), meta.get("generateName")
    if not name and not generate:
        yield Problem(
            Rule.METADATA_NAME_REQUIRED,
            Severity.error,
            "metadata.name",
            f"{kind} has neither metadata.name nor metadata.generateName",
            "add metadata.name",
        )
        return
    if isinstance(name, str) and name:
        problem = NAME_RULES.get((group, kind), _subdomain)(name)
        if problem:
            yield Problem(
                Rule.METADATA_NAME_FORMAT,
                Severity.error,
                "metadata.name",
                f"{name!r} is not {problem}",
                f"name: {suggest_name(name)}",
            )
