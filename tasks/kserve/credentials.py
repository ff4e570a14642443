"""The storage credentials KServe's storage initializer gets for an InferenceService, and the wiring problems
found on the way: the types, with no rules and no I/O.

:class:`CredentialConfig` mirrors the cluster's ``inferenceservice-config`` ``credentials`` section;
:class:`StorageCredentials` is what :func:`tasks.kserve.resolve.resolve` returns; each mistake is a
:class:`WiringProblem` with its fix. Secret values never appear in ``repr``/``str`` of anything here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

ANNOTATION_PREFIX = "serving.kserve.io/"
SECRET_ENV = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "STORAGE_CONFIG", "STORAGE_OVERRIDE_CONFIG"})


@dataclass(frozen=True)
class CredentialConfig:
    """The ``credentials`` entry of KServe's ``inferenceservice-config`` ConfigMap (defaults as shipped)."""

    s3_access_key_id_name: str = "AWS_ACCESS_KEY_ID"
    s3_secret_access_key_name: str = "AWS_SECRET_ACCESS_KEY"
    s3_endpoint: str = ""
    s3_use_https: str = ""
    s3_region: str = ""
    s3_verify_ssl: str = ""
    s3_use_anonymous_credential: str = ""
    gcs_credential_file_name: str = "gcloud-application-credentials.json"
    storage_spec_secret_name: str = "storage-config"
    storage_secret_name_annotation: str = "serving.kserve.io/storageSecretName"

    @classmethod
    def from_configmap_json(cls, text: str) -> CredentialConfig:
        """Build from the JSON text of ``inferenceservice-config`` ``data.credentials``; empty fields keep KServe's
        Go fallbacks (``awsAccessKeyID``/``awsSecretAccessKey`` for the S3 key names)."""
        raw = json.loads(text or "{}")
        s3, gcs = raw.get("s3") or {}, raw.get("gcs") or {}
        return cls(
            s3_access_key_id_name=s3.get("s3AccessKeyIDName") or "awsAccessKeyID",
            s3_secret_access_key_name=s3.get("s3SecretAccessKeyName") or "awsSecretAccessKey",
            s3_endpoint=s3.get("s3Endpoint", ""),
            s3_use_https=s3.get("s3UseHttps", ""),
            s3_region=s3.get("s3Region", ""),
            s3_verify_ssl=s3.get("s3VerifySSL", ""),
            s3_use_anonymous_credential=s3.get("s3UseAnonymousCredential", ""),
            gcs_credential_file_name=gcs.get("gcsCredentialFileName") or "gcloud-application-credentials.json",
            storage_spec_secret_name=raw.get("storageSpecSecretName") or "storage-config",
            storage_secret_name_annotation=raw.get("storageSecretNameAnnotation", ""),
        )


class CredentialSource(StrEnum):
    """Where KServe took the storage credentials from."""

    SERVICE_ACCOUNT = "ServiceAccount"  # the Secrets listed in the ServiceAccount's secrets[]
    ANNOTATION = "StorageSecretNameAnnotation"  # the Secret named by serving.kserve.io/storageSecretName
    STORAGE_SPEC = "StorageSpec"  # predictor.model.storage: the storage-config Secret as STORAGE_CONFIG JSON
    NONE = "None"  # nothing injected: the download runs anonymously / with the node's identity


class StorageKind(StrEnum):
    """The storage protocol of the resolved credentials (or of the storage URI)."""

    S3 = "s3"  # s3:// with AWS-style keys
    GCS = "gcs"  # gs:// with a service-account key file
    OTHER = "other"  # a Secret KServe uses for Azure/HTTPS/HDFS/HF (not resolved here)
    NONE = "none"  # no credentials


class ProblemKind(StrEnum):
    """A wiring mistake between InferenceService, ServiceAccount, Secret and bucket."""

    SERVICE_ACCOUNT_MISSING = "ServiceAccountMissing"  # KServe logs it and injects nothing
    SECRET_MISSING = "SecretMissing"  # a referenced Secret does not exist: the pod is not admitted
    SECRET_NOT_REFERENCED = "SecretNotReferenced"  # a storage Secret exists but the ServiceAccount does not list it
    NO_STORAGE_SECRET = "NoStorageSecret"  # no referenced Secret has keys KServe recognises
    MISSING_KEY = "MissingKey"  # an env var's secretKeyRef points at a key the Secret lacks
    WRONG_KEY_NAMES = "WrongKeyNames"  # S3-looking keys under names KServe does not look for
    ENDPOINT_SCHEME = "EndpointScheme"  # the s3-endpoint carries a scheme that breaks or contradicts s3-usehttps
    LEGACY_ANNOTATION = "LegacyAnnotation"  # serving.kubeflow.org/s3-* annotations, ignored since KServe 0.7
    WRONG_PROTOCOL = "WrongProtocol"  # credentials for one store, storage URI on another
    NO_STORAGE_URI = "NoStorageUri"  # the predictor has no storageUri
    BAD_SECRET_DATA = "BadSecretData"  # a data value that is not base64 / JSON where JSON is needed
    BUCKET_MISSING = "BucketMissing"  # HEAD bucket with these credentials answered 404
    BUCKET_FORBIDDEN = "BucketForbidden"  # HEAD bucket answered 403: the keys are wrong or lack access


class Severity(StrEnum):
    """How bad a wiring problem is."""

    ERROR = "error"  # the storage initializer will fail (or the pod will not start)
    WARNING = "warning"  # works, but not the way it looks


@dataclass(frozen=True)
class WiringProblem:
    """One wiring mistake: what, where (``obj`` like ``Secret demo/s3creds``), why it matters, and the fix."""

    kind: ProblemKind
    severity: Severity
    obj: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.severity.value}: {self.kind.value}: {self.obj}: {self.problem} (fix: {self.fix})"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "severity": self.severity.value, "object": self.obj,
                "problem": self.problem, "fix": self.fix}


@dataclass
class StorageCredentials:
    """What the storage-initializer container would get.

    Attributes:
        storage_uri: the model URI (``predictor.model.storageUri``).
        namespace: the InferenceService's namespace.
        service_account: the ServiceAccount name KServe used (``default`` when unset).
        source: which rule supplied the credentials.
        kind: S3 / GCS / none.
        secret_names: the Secrets whose values were used, in order.
        env: env var name -> value (secret values included; never shown by repr/str).
        files: in-container path -> content bytes (the GCS Secret volume at ``/var/secrets/``).
        problems: wiring mistakes found.
    """

    storage_uri: str
    namespace: str
    service_account: str
    source: CredentialSource = CredentialSource.NONE
    kind: StorageKind = StorageKind.NONE
    secret_names: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    problems: list[WiringProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem of severity error was found."""
        return not self.errors

    @property
    def errors(self) -> list[WiringProblem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    def redacted_env(self) -> dict[str, str]:
        """The env with secret values replaced by ``***`` (endpoints, regions, flags stay readable)."""
        return {k: ("***" if k in SECRET_ENV else v) for k, v in self.env.items()}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description without any secret value."""
        return {
            "storage_uri": self.storage_uri, "namespace": self.namespace, "service_account": self.service_account,
            "source": self.source.value, "kind": self.kind.value, "secrets": list(self.secret_names),
            "env": self.redacted_env(), "files": sorted(self.files),
            "problems": [p.as_dict() for p in self.problems],
        }

    def __repr__(self) -> str:
        return (f"StorageCredentials(storage_uri={self.storage_uri!r}, namespace={self.namespace!r}, "
                f"service_account={self.service_account!r}, source={self.source.value}, kind={self.kind.value}, "
                f"secrets={self.secret_names!r}, env={self.redacted_env()!r}, files={sorted(self.files)!r}, "
                f"problems={len(self.problems)})")

    __str__ = __repr__
