"""Why an object is not ready: its conditions, its last Events and the likely cause, in one line per object.

Used where a wait fails (restore drills): instead of "2 object(s) not ready", each object is named with what
its controller says (``status.conditions``, KServe's ``status.modelStatus.lastFailureInfo``), what the last
Events say, and a likely cause kaiops can see from the objects around it (a ServiceAccount Secret that is
missing - e.g. left out of a backup made without an encryption key - means the storage initializer cannot
download the model). Pure text builders plus two reads (:func:`recent_events`, :func:`missing_credentials`).
"""

from __future__ import annotations

from typing import Any

from tasks import kube


def conditions_text(obj: dict[str, Any]) -> str:
    """``Ready False (RevisionMissing: ...); PredictorReady False`` - every condition that is not True, and
    KServe's ``modelStatus`` failure; ``""`` when there is nothing to say."""
    status = obj.get("status") or {}
    parts = []
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True":
            continue
        why = ": ".join(p for p in (cond.get("reason"), cond.get("message")) if p)
        parts.append(f"{cond.get('type')} {cond.get('status', 'Unknown')}" + (f" ({why})" if why else ""))
    if "state" in status and status.get("state") not in ("ready", None):
        parts.append(f"state {status['state']}")
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    if failure:
        parts.append("model " + ": ".join(str(failure[k]) for k in ("reason", "message") if failure.get(k)))
    return "; ".join(parts) if parts else ("no status yet (no controller has reconciled it)" if not status else "")


def recent_events(dyn: Any, obj: dict[str, Any], limit: int = 3) -> list[str]:
    """The last ``limit`` Events about ``obj`` (``Warning Reason: message``), oldest first; [] when none or
    Events cannot be read."""
    meta = obj.get("metadata") or {}
    return kube.recent_events(dyn, str(obj.get("kind")), meta.get("name", ""), meta.get("namespace"), limit,
                              counts=False)


def missing_credentials(dyn: Any, obj: dict[str, Any]) -> list[str]:
    """For an InferenceService: the ServiceAccount and Secrets its storage initializer needs that do not
    exist in its namespace (``["ServiceAccount ns/sa", "Secret ns/s3-creds"]``).

    Source: KServe's storage initializer takes S3/GCS credentials from the Secrets of
    ``predictor.serviceAccountName`` (pkg/credentials/service_account_credentials.go).
    """
    if obj.get("kind") != "InferenceService":
        return []
    ns = (obj.get("metadata") or {}).get("namespace")
    sa_name = ((obj.get("spec") or {}).get("predictor") or {}).get("serviceAccountName")
    if not sa_name:
        return []
    try:
        sa = kube.get(dyn, "v1", "ServiceAccount", sa_name, ns)
    except kube.NotFound:
        return [f"ServiceAccount {ns}/{sa_name}"]
    except Exception:
        return []
    missing = []
    for ref in sa.get("secrets") or []:
        try:
            kube.get(dyn, "v1", "Secret", ref.get("name", ""), ns)
        except kube.NotFound:
            missing.append(f"Secret {ns}/{ref.get('name')}")
        except Exception:
            continue
    return missing


def likely_cause(obj: dict[str, Any], missing: list[str], secrets_left_out: bool) -> str:
    """One sentence on the likely cause, or ``""``.

    Args:
        obj: the object as last read.
        missing: what :func:`missing_credentials` found.
        secrets_left_out: the backup this object came from left Secrets out (no encryption key).
    """
    if missing:
        what = ", ".join(missing)
        if secrets_left_out and any(m.startswith("Secret ") for m in missing):
            return (f"{what} missing: the backup left Secrets out because no encryption key is configured, so "
                    "the storage initializer has no credentials to download the model; set the policy's "
                    "encryption_key_env (KAIOPS_BACKUP_KEY) and back up again")
        return f"{what} missing: the storage initializer has no credentials to download the model"
    failure = ((obj.get("status") or {}).get("modelStatus") or {}).get("lastFailureInfo") or {}
    if failure.get("reason"):
        return f"the model failed to load ({failure['reason']})"
    if not obj.get("status"):
        return "no controller reconciled it: is the operator (KubeRay / KServe) running for this namespace?"
    return ""


def describe(dyn: Any, obj: dict[str, Any], *, secrets_left_out: bool = False) -> str:
    """``Kind ns/name: <conditions>; last events: ...; likely cause: ...`` for an object that is not ready,
    read fresh from the cluster (falls back to ``obj`` when it cannot be read)."""
    meta = obj.get("metadata") or {}
    try:
        live = kube.get(dyn, obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    except Exception:
        live = obj
    parts = [conditions_text(live) or "not ready"]
    events = recent_events(dyn, live)
    if events:
        parts.append("last events: " + " | ".join(events))
    cause = likely_cause(live, missing_credentials(dyn, live), secrets_left_out)
    if cause:
        parts.append(f"likely cause: {cause}")
    return "; ".join(parts)
