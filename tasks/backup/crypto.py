"""Client-side encryption of Secrets in a backup: AES-256-GCM from ``cryptography``.

Without a key, Secrets are left out of the backup (never stored in plain text). With a key, each Secret
is sealed as ``MAGIC | nonce(12) | ciphertext+tag`` with the object's store key as associated data, so a
sealed Secret moved to another path no longer opens. The key is 32 random bytes, urlsafe-base64 encoded,
read from an environment variable or a Prefect ``Secret`` block; it is never logged, printed or stored
(the manifest only holds :func:`key_id`, a short fingerprint to tell which key a backup needs).

Make a key: ``python -c "import os,base64;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tasks.errors import InputError, PermanentError

MAGIC = b"KAIOPS-AESGCM1\n"
ALGORITHM = "AES-256-GCM"


class DecryptionFailed(PermanentError):
    """A sealed object did not open: wrong key, or the bytes were changed."""


def parse_key(encoded: str, source: str) -> bytes:
    """Decode an urlsafe-base64 32-byte key.

    Raises:
        InputError: not base64 or not 32 bytes (the message never contains the key).
    """
    try:
        key = base64.urlsafe_b64decode(encoded.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise InputError(source, "encryption key", "not 32 bytes of urlsafe base64",
                         "generate one with python -c \"import os,base64;"
                         "print(base64.urlsafe_b64encode(os.urandom(32)).decode())\"")
    return key


def load_key(env_name: str | None = None, block_name: str | None = None) -> bytes | None:
    """Return the key from ``$env_name`` or the Prefect Secret block ``block_name`` (None when neither is set).

    Raises:
        InputError: the variable/block is named but empty or malformed.
    """
    if env_name:
        value = os.environ.get(env_name)
        if value:
            return parse_key(value, f"${env_name}")
        if not block_name:
            return None
    if block_name:
        from prefect.blocks.system import Secret

        try:
            secret: Any = Secret.load(block_name)
            value = secret.get()
        except ValueError as exc:
            raise InputError(f"Prefect Secret block {block_name}", "value", "block not found",
                             "create it or unset encryption_key_block") from exc
        return parse_key(str(value), f"Prefect Secret block {block_name}")
    return None


def key_id(key: bytes) -> str:
    """A 12-hex fingerprint of ``key`` (sha256 of a domain-separated key), safe to store and print."""
    return hashlib.sha256(b"kaiops-backup-key-id:" + key).hexdigest()[:12]


def seal(key: bytes, plaintext: bytes, associated: str) -> bytes:
    """Encrypt ``plaintext`` bound to ``associated`` (the object's store key)."""
    nonce = os.urandom(12)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, associated.encode())


def is_sealed(data: bytes) -> bool:
    """True when ``data`` was made by :func:`seal`."""
    return data.startswith(MAGIC)


def open_sealed(key: bytes, data: bytes, associated: str) -> bytes:
    """Decrypt what :func:`seal` made.

    Raises:
        DecryptionFailed: wrong key, other associated data, or changed bytes.
    """
    if not is_sealed(data):
        raise DecryptionFailed(f"{associated}: not a sealed object")
    body = data[len(MAGIC):]
    try:
        return AESGCM(key).decrypt(body[:12], body[12:], associated.encode())
    except InvalidTag as exc:
        raise DecryptionFailed(f"{associated}: does not open with this key (wrong key or changed bytes)") from exc
