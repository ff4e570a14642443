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

import json
from typing import Any

from tasks.kserve.credentials import (
    CredentialConfig,
    CredentialSource,
    ProblemKind,
    Severity,
    StorageCredentials,
    StorageKind,
    WiringProblem,
)
from tasks.kserve.manifests import storage_uri_of, uri_kind
from tasks.kserve.secrets import (
    apply_secret,
    looks_like_storage_secret,
    object_meta,
    ref,
    secret_data,
)


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
    meta = object_meta(isvc)
    namespace = meta.get("namespace") or "default"
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    sa_name = predictor.get("serviceAccountName") or "default"
    uri = storage_uri_of(isvc)
    creds = StorageCredentials(storage_uri=uri, namespace=namespace, service_account=sa_name)
    problems = creds.problems
    isvc_ref = ref("InferenceService", namespace, meta.get("name", "?"))
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
            ProblemKind.SERVICE_ACCOUNT_MISSING, Severity.ERROR, ref("ServiceAccount", ns, sa_name),
            "does not exist: KServe logs 'Failed to find service account' and injects no credentials",
            f"create ServiceAccount {sa_name} in {ns} listing the storage Secret in secrets[], or set "
            f"spec.predictor.serviceAccountName to one that exists"))
        return  # KServe returns before looking at the annotation too
    if annotated is not None:
        creds.source = CredentialSource.ANNOTATION
        secret = secrets.get(annotated)
        if secret is None:
            problems.append(WiringProblem(
                ProblemKind.SECRET_MISSING, Severity.ERROR, ref("Secret", ns, annotated),
                f"named by annotation {cfg.storage_secret_name_annotation} but does not exist (the pod is not "
                f"admitted)", f"create Secret {annotated} in {ns} or fix the annotation"))
            return
        apply_secret(secret, creds, cfg, problems)
        if creds.kind is StorageKind.NONE:
            problems.append(WiringProblem(
                ProblemKind.NO_STORAGE_SECRET, Severity.ERROR, ref("Secret", ns, annotated),
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
                ProblemKind.SECRET_MISSING, Severity.ERROR, ref("Secret", ns, name),
                f"listed in ServiceAccount {sa_name} secrets[] but does not exist (KServe fails the pod's "
                f"admission)", f"create Secret {name} in {ns} or remove it from the ServiceAccount"))
            continue
        apply_secret(secret, creds, cfg, problems)
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
    where = ref("Secret", ns, name)
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
    candidates = [object_meta(s).get("name", "") for s in namespace_secrets
                  if looks_like_storage_secret(s, cfg) and object_meta(s).get("name") not in creds.secret_names]
    sa = ref("ServiceAccount", creds.namespace, creds.service_account)
    for name in candidates:
        creds.problems.append(WiringProblem(
            ProblemKind.SECRET_NOT_REFERENCED, Severity.ERROR, ref("Secret", creds.namespace, name),
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
            obj["metadata"] = {**object_meta(obj), "namespace": namespace}
    ns = object_meta(obj).get("namespace") or "default"
    sa_name = ((obj.get("spec") or {}).get("predictor") or {}).get("serviceAccountName") or "default"
    try:
        sa: dict[str, Any] | None = kube.get(dyn, "v1", "ServiceAccount", sa_name, ns)
    except kube.NotFound:
        sa = None
    all_secrets = list_secrets(dyn, ns)
    by_name = {object_meta(s).get("name", ""): s for s in all_secrets}
    return obj, resolve(obj, sa, by_name, config=config, namespace_secrets=all_secrets)


def list_secrets(dyn: Any, namespace: str) -> list[dict[str, Any]]:
    """Every Secret in ``namespace`` as dicts (values stay in the returned dicts only)."""
    from tasks import kube

    return kube.list_objects(dyn, "v1", "Secret", namespace)
