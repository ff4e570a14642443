"""What a validation problem looks like: :class:`Finding`, its :class:`Severity` and the :class:`Rule` ids.

Rule ids are stable strings (``ray.start-params.memory-units``) that users can grep for and tests pin; they
live in one enum so that no module invents one by typo.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is; any ``error`` makes ``kaiops validate`` exit 2."""

    error = "error"  # the apiserver, the operator or the workload will reject or break on this
    warning = "warning"  # accepted, but silently ignored or overridden; almost surely not what was meant
    info = "info"  # works, but there is a newer or clearer way to write it


class Rule(StrEnum):
    """Every rule id kaiops reports, with a one-line meaning."""

    # documents
    DOCUMENT_UNREADABLE = "document.unreadable"  # the file cannot be read
    DOCUMENT_YAML = "document.yaml"  # the file is not valid YAML
    DOCUMENT_NOT_OBJECT = "document.not-object"  # a document is not a mapping with apiVersion and kind
    DOCUMENT_DUPLICATE = "document.duplicate-object"  # the same kind/namespace/name appears twice
    # structural schema (apiserver strict field validation)
    SCHEMA_UNKNOWN_KIND = "schema.unknown-kind"  # no pinned schema for this apiVersion/kind
    SCHEMA_API_VERSION = "schema.api-version"  # the kind exists but not at this apiVersion
    SCHEMA_UNKNOWN_FIELD = "schema.unknown-field"  # a field the schema does not declare
    SCHEMA_TYPE = "schema.type"  # a value of the wrong JSON type
    SCHEMA_REQUIRED = "schema.required"  # a required field is missing
    SCHEMA_ENUM = "schema.enum"  # a value outside the allowed set
    SCHEMA_VALUE = "schema.value"  # any other schema constraint (pattern, bounds, lengths, formats)
    METADATA_NAME_REQUIRED = "metadata.name-required"  # neither metadata.name nor generateName
    METADATA_NAME_FORMAT = "metadata.name-format"  # name not a valid DNS subdomain/label for the kind
    # KubeRay / Ray
    RAY_NAME_LENGTH = "ray.name.length"  # RayCluster > 53, RayJob/RayService > 47 characters
    RAY_NAME_DNS1035 = "ray.name.dns1035"  # Ray CR names must be DNS-1035 labels (start with a letter)
    RAY_MEMORY_UNITS = "ray.start-params.memory-units"  # memory/object-store-memory not integer bytes
    RAY_NUMERIC = "ray.start-params.numeric"  # num-cpus/num-gpus/ports not whole numbers
    RAY_RESOURCES_JSON = "ray.start-params.resources-json"  # resources not a JSON object of numbers
    RAY_UNKNOWN_PARAM = "ray.start-params.unknown"  # not a `ray start` option
    RAY_PORT_NAME = "ray.ports.name-mismatch"  # a well-known port name on the wrong number (or vice versa)
    RAY_PORT_DUPLICATE = "ray.ports.duplicate"  # the same port number or name twice in one container
    RAY_PORT_MISSING = "ray.ports.default-missing"  # a custom head port list drops a port Ray clients need
    RAY_PROBE_PORT = "ray.probes.health-port"  # a probe on a port where Ray serves no health check
    RAY_ENV_MANAGED = "ray.env.operator-managed"  # an env var KubeRay sets or overrides itself
    RAY_ENV_UNKNOWN = "ray.env.unknown"  # a RAY_* env var that neither Ray nor KubeRay reads
    # KServe
    KSERVE_FIELD = "kserve.field.nonexistent"  # a commonly guessed field that KServe does not have
    KSERVE_LEGACY_FRAMEWORK = "kserve.storage-uri.legacy-framework"  # predictor.<framework>.storageUri
    KSERVE_URI_SCHEME = "kserve.storage-uri.scheme"  # a URI scheme the storage initializer cannot read
    KSERVE_CANARY_IGNORED = "kserve.canary.ignored-in-raw"  # canaryTrafficPercent in Raw/Standard mode
    KSERVE_MODEL_FORMAT = "kserve.model.format-missing"  # predictor.model without modelFormat
    KSERVE_RUNTIME_FORMATS = "kserve.runtime.formats-missing"  # a runtime that no model can select
    KSERVE_S3_ANNOTATION = "kserve.s3.annotation-unknown"  # a serving.kserve.io/s3-* key KServe never reads
    # core
    SECRET_BASE64 = "core.secret.base64"  # a Secret data value that is not base64
    SECRET_KEY_IN_BOTH = "core.secret.key-in-both"  # a key in both data and stringData
    SECRET_STRING_DATA_ENCODED = "core.secret.string-data-encoded"  # stringData that looks base64-encoded
    # monitoring (Prometheus Operator objects against what the operators create and export)
    MONITOR_SELECTS_NOTHING = "monitoring.selector.matches-nothing"  # no operator-made object has these labels
    MONITOR_PORT_UNKNOWN = "monitoring.port.unknown"  # the selected objects carry no port with that name
    MONITOR_PORT_NO_METRICS = "monitoring.port.no-metrics"  # the port exists but serves no Prometheus metrics
    ALERT_PROMQL = "monitoring.rule.promql"  # Prometheus's parser (promtool) rejects the rule
    ALERT_UNKNOWN_METRIC = "monitoring.rule.unknown-metric"  # a metric no pinned component exports


@dataclass(frozen=True)
class Finding:
    """One problem in one document.

    Attributes:
        file: the file the document came from (or ``<stdin>``/a caller-chosen source name).
        document: 0-based index of the document inside the file (``None`` for whole-file problems).
        object: ``Kind/name`` of the object, or ``""`` when unknown.
        field: dotted field path with ``[i]`` list indexes (``spec.headGroupSpec.rayStartParams.memory``).
        severity: :class:`Severity`.
        rule: :class:`Rule` id.
        message: what is wrong.
        fix: what to write instead.
        line: 1-based line of the offending key in the file (of its nearest present parent for a missing
            field; of the YAML error), ``None`` when the finding is about a whole file or not from a file.
        column: 1-based column, as ``line``.
    """

    file: str
    document: int | None
    object: str
    field: str
    severity: Severity
    rule: Rule
    message: str
    fix: str
    line: int | None = None
    column: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the finding as a flat JSON-ready mapping (enums as their string values)."""
        row = asdict(self)
        row["severity"], row["rule"] = str(self.severity), str(self.rule)
        return row

    @property
    def location(self) -> str:
        """``FILE:LINE:COL`` (``FILE`` alone when the line is unknown), as compilers and ruff print it."""
        return f"{self.file}:{self.line}:{self.column}" if self.line is not None else self.file

    def headline(self) -> str:
        """The finding on one line: ``FILE:LINE:COL: severity rule-id Kind/name field: message``."""
        subject = " ".join(p for p in (self.object, self.field) if p)
        message = " ".join(self.message.split())  # one line whatever a schema message holds
        return f"{self.location}: {self.severity} {self.rule} " + (f"{subject}: " if subject else "") + message

    def lines(self) -> list[str]:
        """What ``kaiops validate`` prints: the headline, then ``  fix: ...`` on the next line, never cut."""
        return [self.headline(), "  fix: " + " ".join(self.fix.split())]

    def __str__(self) -> str:
        return f"{self.headline()} (fix: {self.fix})"


def has_errors(findings: list[Finding]) -> bool:
    """Return True when any finding is an error."""
    return any(f.severity is Severity.error for f in findings)


@dataclass(frozen=True)
class Problem:
    """A finding before it is placed in a file: what a schema check or a rule reports about one object.

    Attributes:
        rule: the rule id.
        severity: how bad it is.
        field: dotted field path inside the object.
        message: what is wrong.
        fix: what to write instead.
    """

    rule: Rule
    severity: Severity
    field: str
    message: str
    fix: str
