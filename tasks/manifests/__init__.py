"""Offline validation of Kubernetes manifests before kaiops writes anything.

What it is: pure logic that checks RayCluster/RayJob/RayService, KServe (InferenceService, ServingRuntime,
LocalModelCache ...), Gateway API HTTPRoute and the core objects around them (Secret, ServiceAccount, RBAC,
Service ...) against (1) the pinned structural schemas, the way the apiserver does with strict field
validation, and (2) domain rules the apiserver cannot see (``rules/``: Ray start parameters, ports, probes,
KServe field names, canary modes, storage URIs, Secret encoding). Every problem is a
:class:`~tasks.manifests.findings.Finding` naming the file, document, object, field path, rule and fix.

What it is not: it never talks to a cluster, renders templates, applies anything or imports Prefect. The
entry points are :func:`~tasks.manifests.validate.validate_documents` and
:func:`~tasks.manifests.validate.validate_files`.
"""

from tasks.manifests.findings import Finding, Rule, Severity
from tasks.manifests.validate import validate_documents, validate_files

__all__ = ["Finding", "Rule", "Severity", "validate_documents", "validate_files"]
