"""How KServe v0.20 reads one storage Secret (pure: dicts in, env out).

The rules are ``pkg/credentials/service_account_credentials.go`` ``mountSecretCredential`` (per Secret, the
first match wins: S3, then GCS, then Azure/HTTPS/HDFS/HF), ``pkg/credentials/s3/s3_secret.go`` +
``s3/utils.go`` (``BuildS3EnvVars``) and ``pkg/credentials/gcs/gcs_secret.go``. Which Secrets are read at all is
:mod:`tasks.kserve.resolve`'s.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tasks.kserve.credentials import (
    ANNOTATION_PREFIX,
    CredentialConfig,
    ProblemKind,
    Severity,
    StorageCredentials,
    StorageKind,
    WiringProblem,
)

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


def object_meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    """``metadata`` of a manifest dict ({} when absent)."""
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


def ref(kind: str, namespace: str, name: str) -> str:
    """How a problem names an object: ``"<Kind> <namespace>/<name>"``."""
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


def apply_secret(secret: dict[str, Any], creds: StorageCredentials, cfg: CredentialConfig,
                  problems: list[WiringProblem]) -> bool:
    """Apply one Secret as mountSecretCredential does; return True when KServe would use it."""
    name = object_meta(secret).get("name", "")
    where = ref("Secret", creds.namespace, name)
    data, bad = secret_data(secret)
    for key in bad:
        problems.append(WiringProblem(ProblemKind.BAD_SECRET_DATA, Severity.ERROR, where,
                                      f"data.{key} is not valid base64",
                                      f"put the plain value under stringData.{key} or base64-encode it"))
    annotations = object_meta(secret).get("annotations") or {}
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


def looks_like_storage_secret(secret: dict[str, Any], cfg: CredentialConfig) -> bool:
    """True when the Secret holds S3/GCS keys KServe recognises or carries ``serving.kserve.io/s3-*`` annotations."""
    data, _ = secret_data(secret)
    annotations = object_meta(secret).get("annotations") or {}
    return (cfg.s3_secret_access_key_name in data or cfg.gcs_credential_file_name in data
            or any(k.startswith(ANNOTATION_PREFIX + "s3-") for k in annotations))
