"""The storage credentials KServe's storage initializer would get for an InferenceService, and what is
wrong with their wiring.

This copies the rules of KServe v0.20 (Go, ``github.com/kserve/kserve``):

- ``pkg/webhook/admission/pod/storage_initializer_injector.go``: when the predictor has a storage spec
  (``predictor.model.storage``) the injector calls ``CreateStorageSpecSecretEnvs``; otherwise
  ``CreateSecretVolumeAndEnv`` with the pod's annotations (copied from the InferenceService) and
  ``predictor.serviceAccountName``.
- ``pkg/credentials/service_account_credentials.go``: ServiceAccount name defaults to ``default``; a missing
  ServiceAccount is logged and *nothing* is injected (the download then runs without credentials); the
  ``serving.kserve.io/storageSecretName`` annotation (config key ``storageSecretNameAnnotation``) names the one
  Secret to use and the ServiceAccount's ``secrets[]`` are then ignored; otherwise every Secret in
  ``secrets[]`` is read (a missing one fails the pod's admission). Per Secret, the first match wins: a key named
  ``s3SecretAccessKeyName`` (S3), else ``gcsCredentialFileName`` (GCS), else Azure/HTTPS/HDFS/HF (not
  resolved here), else the Secret is skipped.
- ``pkg/credentials/s3/s3_secret.go`` + ``s3/utils.go``: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` as
  ``secretKeyRef`` to the configured key names; the ``serving.kserve.io/s3-*`` annotations (else the config
  defaults) become ``S3_ENDPOINT``, ``AWS_ENDPOINT_URL`` (``https://`` + endpoint unless ``s3-usehttps`` is
  ``"0"``), ``S3_USE_HTTPS``, ``S3_VERIFY_SSL``, ``awsAnonymousCredential``, ``AWS_DEFAULT_REGION``,
  ``S3_USER_VIRTUAL_BUCKET``, ``S3_USE_ACCELERATE``, ``AWS_CA_BUNDLE``, ``AWS_CA_BUNDLE_CONFIGMAP``.
- ``pkg/credentials/gcs/gcs_secret.go``: the whole Secret is mounted at ``/var/secrets/`` and
  ``GOOGLE_APPLICATION_CREDENTIALS=/var/secrets/<gcsCredentialFileName>``.

The key names default to the ones KServe's shipped ``inferenceservice-config`` ConfigMap sets
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``); the Go constants' own fallbacks (``awsAccessKeyID``) only
apply when that ConfigMap leaves them empty. Pass a :class:`CredentialConfig` to mirror another cluster.

:func:`resolve` is pure (plain dicts in, :class:`StorageCredentials` out) and never raises on bad wiring: every
mistake becomes a :class:`WiringProblem` with its fix. :func:`read_and_resolve` reads the objects with
:mod:`tasks.kube`. Secret values never appear in ``repr``/``str`` of anything here.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

ANNOTATION_PREFIX = "serving.kserve.io/"
LEGACY_ANNOTATION_PREFIX = "serving.kubeflow.org/"
S3_ANNOTATIONS = {  # annotation suffix -> env var (s3/utils.go BuildS3EnvVars, besides the endpoint pair)
    "s3-verifyssl": "S3_VERIFY_SSL",
    "s3-useanoncredential": "awsAnonymousCredential",
    "s3-region": "AWS_DEFAULT_REGION",
    "s3-usevirtualbucket": "S3_USER_VIRTUAL_BUCKET",
    "s3-useaccelerate": "S3_USE_ACCELERATE",
    "s3-cabundle": "AWS_CA_BUNDLE",
    "s3-cabundle-configmap": "AWS_CA_BUNDLE_CONFIGMAP",
}
GCS_MOUNT_PATH = "/var/secrets/"  # gcs_secret.go GCSCredentialVolumeMountPath
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


# ---------------------------------------------------------------------------------------------- helpers


def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("metadata") or {}


def secret_data(secret: dict[str, Any]) -> tuple[dict[str, bytes], list[str]]:
    """Decoded ``data`` (base64) merged with ``stringData`` (as the apiserver does); returns (data, bad keys)."""
    out: dict[str, bytes] = {}
    bad: list[str] = []
    for key, value in (secret.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError):
            bad.append(key)
    for key, value in (secret.get("stringData") or {}).items():
        out[key] = str(value).encode()
    return out, bad


def storage_uri_of(isvc: dict[str, Any]) -> str:
    """``spec.predictor.model.storageUri``, else the legacy ``spec.predictor.<framework>.storageUri``."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model") or {}
    if model.get("storageUri"):
        return str(model["storageUri"])
    for value in predictor.values():
        if isinstance(value, dict) and value.get("storageUri"):
            return str(value["storageUri"])
    return ""


def uri_kind(uri: str) -> StorageKind:
    """The storage kind of a URI (``s3://`` -> S3, ``gs://`` -> GCS, else OTHER; empty -> NONE)."""
    if not uri:
        return StorageKind.NONE
    scheme = urlparse(uri).scheme
    return {"s3": StorageKind.S3, "gs": StorageKind.GCS}.get(scheme, StorageKind.OTHER)


def _ref(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}"


def _s3_env(annotations: dict[str, str], cfg: CredentialConfig, where: str,
            problems: list[WiringProblem]) -> dict[str, str]:
    """The non-key S3 env vars, as s3/utils.go BuildS3EnvVars builds them; scheme mistakes go to ``problems``."""
    env: dict[str, str] = {}
    endpoint = annotations.get(ANNOTATION_PREFIX + "s3-endpoint")
    use_https = annotations.get(ANNOTATION_PREFIX + "s3-usehttps")
    if endpoint is not None:
        url = ("http://" if use_https == "0" else "https://") + endpoint
        if use_https is not None:
            env["S3_USE_HTTPS"] = use_https
        env["S3_ENDPOINT"] = endpoint
        env["AWS_ENDPOINT_URL"] = url
        _check_endpoint(endpoint, use_https, where, problems)
    elif cfg.s3_endpoint:
        url = ("http://" if cfg.s3_use_https == "0" else "https://") + cfg.s3_endpoint
        if cfg.s3_use_https == "0":
            env["S3_USE_HTTPS"] = cfg.s3_use_https
        env["S3_ENDPOINT"] = cfg.s3_endpoint
        env["AWS_ENDPOINT_URL"] = url
    defaults = {"s3-verifyssl": cfg.s3_verify_ssl, "s3-useanoncredential": cfg.s3_use_anonymous_credential,
                "s3-region": cfg.s3_region}
    for suffix, var in S3_ANNOTATIONS.items():
        value = annotations.get(ANNOTATION_PREFIX + suffix, defaults.get(suffix, ""))
        if value:
            env[var] = value
    return env


def _check_endpoint(endpoint: str, use_https: str | None, where: str, problems: list[WiringProblem]) -> None:
    scheme = endpoint.split("://", 1)[0].lower() if "://" in endpoint else ""
    host = endpoint.split("://", 1)[-1]
    if not scheme:
        return
    wants = "0" if scheme == "http" else "1"
    built = ("http://" if use_https == "0" else "https://") + endpoint
    if (scheme == "http" and use_https != "0") or (scheme == "https" and use_https == "0"):
        said = repr(use_https) if use_https is not None else "unset (https)"
        problem = f"s3-endpoint {endpoint!r} says {scheme} but s3-usehttps is {said}; KServe builds {built!r}"
    else:
        problem = f"s3-endpoint {endpoint!r} carries a scheme; KServe prepends one and builds {built!r}"
    problems.append(WiringProblem(
        ProblemKind.ENDPOINT_SCHEME, Severity.ERROR, where, problem,
        f"annotate serving.kserve.io/s3-endpoint: {host!r} (host[:port] only) and serving.kserve.io/s3-usehttps: "
        f"{wants!r}"))


_S3_LOOKALIKE = ("access", "secret", "aws", "key")


def _lookalike_keys(keys: list[str], cfg: CredentialConfig) -> list[str]:
    wanted = {cfg.s3_access_key_id_name, cfg.s3_secret_access_key_name}
    return [k for k in keys if k not in wanted and any(w in k.lower() for w in _S3_LOOKALIKE)
            and k != cfg.gcs_credential_file_name]


def _apply_secret(secret: dict[str, Any], creds: StorageCredentials, cfg: CredentialConfig,
                  problems: list[WiringProblem]) -> bool:
    """Apply one Secret as mountSecretCredential does; return True when KServe would use it."""
    name = _meta(secret).get("name", "")
    where = _ref("Secret", creds.namespace, name)
    data, bad = secret_data(secret)
    for key in bad:
        problems.append(WiringProblem(ProblemKind.BAD_SECRET_DATA, Severity.ERROR, where,
                                      f"data.{key} is not valid base64",
                                      f"put the plain value under stringData.{key} or base64-encode it"))
    annotations = _meta(secret).get("annotations") or {}
    legacy = sorted(k for k in annotations if k.startswith(LEGACY_ANNOTATION_PREFIX))
    if legacy:
        problems.append(WiringProblem(
            ProblemKind.LEGACY_ANNOTATION, Severity.ERROR if not any(
                k.startswith(ANNOTATION_PREFIX) for k in annotations) else Severity.WARNING, where,
            f"annotations {', '.join(legacy)} use the pre-0.7 prefix and are ignored",
            "rename them to " + ", ".join(k.replace(LEGACY_ANNOTATION_PREFIX, ANNOTATION_PREFIX) for k in legacy)))
    if cfg.s3_secret_access_key_name in data:
        creds.kind = StorageKind.S3
        creds.secret_names.append(name)
        for var, key in (("AWS_ACCESS_KEY_ID", cfg.s3_access_key_id_name),
                         ("AWS_SECRET_ACCESS_KEY", cfg.s3_secret_access_key_name)):
            if key in data:
                creds.env[var] = data[key].decode(errors="replace")
            else:
                creds.env.pop(var, None)
                problems.append(WiringProblem(
                    ProblemKind.MISSING_KEY, Severity.ERROR, where,
                    f"no key {key!r} for {var} (the storage-initializer container fails with "
                    f"CreateContainerConfigError)", f"add data.{key} to the Secret"))
        # utils.MergeEnvs: a later Secret's values override an earlier one's.
        creds.env.update(_s3_env(annotations, cfg, where, problems))
        return True
    if cfg.gcs_credential_file_name in data:
        creds.kind = StorageKind.GCS
        creds.secret_names.append(name)
        for key, value in data.items():
            creds.files[GCS_MOUNT_PATH + key] = value
        creds.env["GOOGLE_APPLICATION_CREDENTIALS"] = GCS_MOUNT_PATH + cfg.gcs_credential_file_name
        return True
    if any(k in data for k in ("AZURE_CLIENT_ID", "AZ_CLIENT_ID", "AZURE_STORAGE_ACCESS_KEY", "https-host",
                               "HDFS_NAMENODE", "HF_TOKEN")):
        creds.secret_names.append(name)
        if creds.kind is StorageKind.NONE:
            creds.kind = StorageKind.OTHER
        return True
    lookalikes = _lookalike_keys(sorted(data), cfg)
    if lookalikes:
        problems.append(WiringProblem(
            ProblemKind.WRONG_KEY_NAMES, Severity.ERROR, where,
            f"keys {lookalikes} look like S3 credentials but KServe only recognises "
            f"{cfg.s3_access_key_id_name!r}/{cfg.s3_secret_access_key_name!r} (GCS: "
            f"{cfg.gcs_credential_file_name!r}); the Secret is skipped",
            f"rename the keys to {cfg.s3_access_key_id_name} and {cfg.s3_secret_access_key_name}"))
    return False


def _looks_like_storage_secret(secret: dict[str, Any], cfg: CredentialConfig) -> bool:
    data, _ = secret_data(secret)
    annotations = _meta(secret).get("annotations") or {}
    return (cfg.s3_secret_access_key_name in data or cfg.gcs_credential_file_name in data
            or any(k.startswith(ANNOTATION_PREFIX + "s3-") for k in annotations))


# ---------------------------------------------------------------------------------------------- resolve


def resolve(
    isvc: dict[str, Any],
    service_account: dict[str, Any] | None,
    secrets: dict[str, dict[str, Any]],
    *,
    config: CredentialConfig | None = None,
    namespace_secrets: list[dict[str, Any]] | None = None,
) -> StorageCredentials:
    """Resolve what KServe v0.20 injects into the storage initializer of ``isvc``'s predictor.

    Args:
        isvc: the InferenceService manifest (dict).
        service_account: the ServiceAccount ``predictor.serviceAccountName`` (or ``default``) names, or None
            when it does not exist.
        secrets: Secret name -> Secret manifest for the Secrets that exist in the namespace and are referenced
            (by the ServiceAccount, the storageSecretName annotation or the storage spec). Values may be in
            ``data`` (base64) or ``stringData`` (plain, as in a manifest file).
        config: the cluster's credential config (defaults as KServe ships it).
        namespace_secrets: optionally every Secret of the namespace, to report storage Secrets that exist but
            are not referenced.

    Returns:
        :class:`StorageCredentials`; wiring mistakes are in ``.problems`` (never raised).
    """
    cfg = config or CredentialConfig()
    meta = _meta(isvc)
    namespace = meta.get("namespace") or "default"
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    sa_name = predictor.get("serviceAccountName") or "default"
    uri = storage_uri_of(isvc)
    creds = StorageCredentials(storage_uri=uri, namespace=namespace, service_account=sa_name)
    problems = creds.problems
    isvc_ref = _ref("InferenceService", namespace, meta.get("name", "?"))
    storage_spec = (predictor.get("model") or {}).get("storage")
    if not uri and not storage_spec:
        problems.append(WiringProblem(ProblemKind.NO_STORAGE_URI, Severity.ERROR, isvc_ref,
                                      "spec.predictor.model.storageUri is not set",
                                      "set spec.predictor.model.storageUri to the published version's URI"))
    annotations = meta.get("annotations") or {}
    annotated = annotations.get(cfg.storage_secret_name_annotation) if cfg.storage_secret_name_annotation else None

    if storage_spec:
        _resolve_storage_spec(storage_spec, annotated, secrets, cfg, creds)
    else:
        _resolve_service_account(service_account, annotated, secrets, cfg, creds)

    want = uri_kind(uri)
    if want in (StorageKind.S3, StorageKind.GCS) and creds.kind in (StorageKind.S3, StorageKind.GCS) \
            and creds.kind is not want:
        problems.append(WiringProblem(
            ProblemKind.WRONG_PROTOCOL, Severity.ERROR, isvc_ref,
            f"storageUri is {want.value} but the referenced Secret {creds.secret_names} holds {creds.kind.value} "
            f"credentials", f"reference a Secret with {want.value} credentials"))
    if want in (StorageKind.S3, StorageKind.GCS) and creds.kind is StorageKind.NONE and creds.source in (
            CredentialSource.NONE, CredentialSource.SERVICE_ACCOUNT, CredentialSource.ANNOTATION):
        _report_unreferenced(creds, cfg, namespace_secrets or [], isvc_ref, service_account is not None)
    return creds


def _resolve_service_account(service_account: dict[str, Any] | None, annotated: str | None,
                             secrets: dict[str, dict[str, Any]], cfg: CredentialConfig,
                             creds: StorageCredentials) -> None:
    problems = creds.problems
    ns, sa_name = creds.namespace, creds.service_account
    if service_account is None:
        problems.append(WiringProblem(
            ProblemKind.SERVICE_ACCOUNT_MISSING, Severity.ERROR, _ref("ServiceAccount", ns, sa_name),
            "does not exist: KServe logs 'Failed to find service account' and injects no credentials",
            f"create ServiceAccount {sa_name} in {ns} listing the storage Secret in secrets[], or set "
            f"spec.predictor.serviceAccountName to one that exists"))
        return  # KServe returns before looking at the annotation too
    if annotated is not None:
        creds.source = CredentialSource.ANNOTATION
        secret = secrets.get(annotated)
        if secret is None:
            problems.append(WiringProblem(
                ProblemKind.SECRET_MISSING, Severity.ERROR, _ref("Secret", ns, annotated),
                f"named by annotation {cfg.storage_secret_name_annotation} but does not exist (the pod is not "
                f"admitted)", f"create Secret {annotated} in {ns} or fix the annotation"))
            return
        _apply_secret(secret, creds, cfg, problems)
        if creds.kind is StorageKind.NONE:
            problems.append(WiringProblem(
                ProblemKind.NO_STORAGE_SECRET, Severity.ERROR, _ref("Secret", ns, annotated),
                "has none of the keys KServe recognises, so nothing is injected",
                f"add {cfg.s3_access_key_id_name}/{cfg.s3_secret_access_key_name} (S3) or "
                f"{cfg.gcs_credential_file_name} (GCS)"))
        return
    creds.source = CredentialSource.SERVICE_ACCOUNT
    refs = [r.get("name", "") for r in (service_account.get("secrets") or []) if r.get("name")]
    for name in refs:
        secret = secrets.get(name)
        if secret is None:
            problems.append(WiringProblem(
                ProblemKind.SECRET_MISSING, Severity.ERROR, _ref("Secret", ns, name),
                f"listed in ServiceAccount {sa_name} secrets[] but does not exist (KServe fails the pod's "
                f"admission)", f"create Secret {name} in {ns} or remove it from the ServiceAccount"))
            continue
        _apply_secret(secret, creds, cfg, problems)
    if creds.kind is StorageKind.NONE:
        creds.source = CredentialSource.NONE


def _resolve_storage_spec(spec: dict[str, Any], annotated: str | None, secrets: dict[str, dict[str, Any]],
                          cfg: CredentialConfig, creds: StorageCredentials) -> None:
    """CreateStorageSpecSecretEnvs: STORAGE_CONFIG from the storage-config Secret, STORAGE_OVERRIDE_CONFIG."""
    ns = creds.namespace
    params = {str(k): str(v) for k, v in (spec.get("parameters") or {}).items()}
    stype = params.get("type", "")
    name = annotated if annotated is not None else cfg.storage_spec_secret_name
    key = spec.get("key") or ""
    creds.source = CredentialSource.STORAGE_SPEC
    where = _ref("Secret", ns, name)
    secret = secrets.get(name)
    if secret is None:
        if key:
            creds.problems.append(WiringProblem(ProblemKind.SECRET_MISSING, Severity.ERROR, where,
                                                "the storage spec's Secret does not exist",
                                                f"create Secret {name} with key {key}"))
    else:
        data, _ = secret_data(secret)
        key = key or ("default" if not stype else f"default_{stype}")
        value = data.get(key)
        if value is None and spec.get("key"):
            creds.problems.append(WiringProblem(ProblemKind.MISSING_KEY, Severity.ERROR, where,
                                                f"specified storage key {key!r} not found",
                                                f"add data.{key} (JSON) to the Secret"))
        elif value is not None:
            try:
                parsed = json.loads(value)
            except ValueError:
                creds.problems.append(WiringProblem(ProblemKind.BAD_SECRET_DATA, Severity.ERROR, where,
                                                    f"key {key!r} is not JSON", "store the storage config as JSON"))
                parsed = {}
            stype = stype or str(parsed.get("type", ""))
            creds.env["STORAGE_CONFIG"] = value.decode(errors="replace")
            creds.secret_names.append(name)
    if params:
        creds.env["STORAGE_OVERRIDE_CONFIG"] = json.dumps(params)
    if stype == "s3":
        creds.kind = StorageKind.S3
    elif stype:
        creds.kind = StorageKind.OTHER
    else:
        creds.problems.append(WiringProblem(
            ProblemKind.NO_STORAGE_SECRET, Severity.ERROR, where, "unable to determine storage type",
            f"set spec.predictor.model.storage.parameters.type or a \"type\" in Secret {name}"))


def _report_unreferenced(creds: StorageCredentials, cfg: CredentialConfig, namespace_secrets: list[dict[str, Any]],
                         isvc_ref: str, sa_exists: bool) -> None:
    candidates = [_meta(s).get("name", "") for s in namespace_secrets
                  if _looks_like_storage_secret(s, cfg) and _meta(s).get("name") not in creds.secret_names]
    sa = _ref("ServiceAccount", creds.namespace, creds.service_account)
    for name in candidates:
        creds.problems.append(WiringProblem(
            ProblemKind.SECRET_NOT_REFERENCED, Severity.ERROR, _ref("Secret", creds.namespace, name),
            f"holds storage credentials but {sa} does not list it in secrets[]",
            f"add {{name: {name}}} to {sa} secrets[] (or annotate the InferenceService "
            f"{cfg.storage_secret_name_annotation}: {name})"))
    if sa_exists and not candidates and not any(
            p.kind in (ProblemKind.WRONG_KEY_NAMES, ProblemKind.SECRET_MISSING, ProblemKind.MISSING_KEY)
            for p in creds.problems):
        creds.problems.append(WiringProblem(
            ProblemKind.NO_STORAGE_SECRET, Severity.ERROR, sa,
            f"none of its Secrets holds {creds.storage_uri.split(':', 1)[0]} credentials KServe recognises, so "
            f"the storage initializer runs without credentials",
            f"create a Secret with {cfg.s3_access_key_id_name}/{cfg.s3_secret_access_key_name} (S3) or "
            f"{cfg.gcs_credential_file_name} (GCS) and list it in secrets[]"))


# ---------------------------------------------------------------------------------------------- cluster


def read_and_resolve(
    dyn: Any,
    isvc: dict[str, Any] | str,
    *,
    namespace: str | None = None,
    config: CredentialConfig | None = None,
) -> tuple[dict[str, Any], StorageCredentials]:
    """Read the InferenceService (if given by name), its ServiceAccount and Secrets, and :func:`resolve`.

    Args:
        dyn: a client from :func:`tasks.kube.connect`.
        isvc: the InferenceService manifest, or its name (then ``namespace`` is required).
        namespace: namespace for a name, or to override the manifest's.
        config: KServe credential config.

    Returns:
        (InferenceService dict, StorageCredentials).

    Raises:
        tasks.kube.NotFound: the InferenceService name does not exist.
        TemporaryError / PermanentError: the apiserver failed or refused (e.g. RBAC on Secrets).
    """
    from tasks import kube

    if isinstance(isvc, str):
        obj = kube.get(dyn, "serving.kserve.io/v1beta1", "InferenceService", isvc, namespace or "default")
    else:
        obj = dict(isvc)
        if namespace:
            obj["metadata"] = {**_meta(obj), "namespace": namespace}
    ns = _meta(obj).get("namespace") or "default"
    sa_name = ((obj.get("spec") or {}).get("predictor") or {}).get("serviceAccountName") or "default"
    try:
        sa: dict[str, Any] | None = kube.get(dyn, "v1", "ServiceAccount", sa_name, ns)
    except kube.NotFound:
        sa = None
    all_secrets = list_secrets(dyn, ns)
    by_name = {_meta(s).get("name", ""): s for s in all_secrets}
    return obj, resolve(obj, sa, by_name, config=config, namespace_secrets=all_secrets)


def list_secrets(dyn: Any, namespace: str) -> list[dict[str, Any]]:
    """Every Secret in ``namespace`` as dicts (values stay in the returned dicts only)."""
    from tasks import kube

    return kube.list_objects(dyn, "v1", "Secret", namespace)
