"""Verify MLflow webhook deliveries: ``X-MLflow-Signature: v1,<base64 HMAC-SHA256>`` over
``"<delivery id>.<timestamp>.<raw body>"`` with the webhook's secret.

The scheme is MLflow 3.x's ``mlflow/webhooks/delivery.py::_generate_hmac_signature`` (Standard Webhooks
style): the timestamp header is Unix seconds; the signed content is the delivery id, a dot, the timestamp,
a dot and the exact body bytes. Pure functions; no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from enum import StrEnum

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300.0


class SignatureVerdict(StrEnum):
    """Outcome of checking one delivery's headers and body."""

    VALID = "valid"  # signature matches and the timestamp is within tolerance
    MISSING = "missing"  # a signature, timestamp or delivery-id header is absent or empty
    MALFORMED = "malformed"  # the timestamp is not an integer or the signature not "v1,<base64>"
    MISMATCH = "mismatch"  # the HMAC does not match: wrong secret or altered body/headers
    STALE = "stale"  # signed correctly but the timestamp is outside the tolerance (old or from the future)


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """Return the ``X-MLflow-Signature`` value for a delivery (``"v1,<base64>"``)."""
    content = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(
    secret: str,
    *,
    delivery_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> SignatureVerdict:
    """Check a delivery.

    Args:
        secret: the webhook secret shared with MLflow.
        delivery_id, timestamp, signature: the three ``X-MLflow-*`` header values (None when absent).
        body: the raw request body bytes, exactly as received.
        now: current Unix time, seconds.
        tolerance: how far (seconds, either way) the timestamp may be from ``now``.

    Returns:
        A :class:`SignatureVerdict`; the signature is compared in constant time and checked before the
        timestamp, so a forged delivery is reported as ``mismatch`` whatever its timestamp.
    """
    if not delivery_id or not timestamp or not signature:
        return SignatureVerdict.MISSING
    version, _, _ = signature.partition(",")
    # ASCII digits only: str.isdigit() is true for '\u00b2', which int() refuses (and would answer 500)
    if version != SIGNATURE_VERSION or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return SignatureVerdict.MALFORMED
    expected = sign(secret, delivery_id, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return SignatureVerdict.MISMATCH
    if abs(now - int(timestamp)) > tolerance:
        return SignatureVerdict.STALE
    return SignatureVerdict.VALID
