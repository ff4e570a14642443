"""S3 (and S3-compatible: moto, MinIO) object store over boto3, with uploads that hash as they send.

Where the time of an upload goes (measured with ``bench/publish.py`` against moto on 2 cores): mostly in the
server; on the client, in botocore hashing every byte again for the SigV4 payload signature (on ``http://``
endpoints; on ``https://`` botocore already sends ``UNSIGNED-PAYLOAD`` with a checksum) and a CRC32 of every
byte. kaiops has already hashed each file (sha256, for the manifest), so its clients send ``UNSIGNED-PAYLOAD``
and, for a file sent in one PUT, that sha256 as ``ChecksumSHA256``: S3 verifies the stored bytes against the
very hash the manifest records (``x-amz-checksum-sha256``; AWS refuses a mismatch with HTTP 400; moto 5.2
stores the checksum without checking it), and no byte is hashed twice on the client. S3 has no whole-object
SHA-256 for multipart uploads; their parts go without a checksum of their own (see :meth:`S3Store.upload_file`).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.errors import PermanentError, TemporaryError
from tasks.storage.layout import CLIENT_POOL, SHA256_METADATA, ObjectInfo

MiB = 1 << 20
# botocore client settings for uploads whose bytes kaiops has hashed already (see the module docstring):
# no second SHA-256 of every byte for the signature, no CRC32 unless asked for (``ChecksumSHA256`` or
# ``ChecksumAlgorithm`` on each upload below carries the integrity check instead).
FAST: dict[str, Any] = {"s3": {"payload_signing_enabled": False}, "request_checksum_calculation": "when_required"}


@functools.lru_cache(maxsize=8)
def _env_client(endpoint: str | None, access_key: str | None) -> Any:
    """One boto3 S3 client (thread-safe, with its connection pool of :data:`CLIENT_POOL`) per endpoint and key
    id, shared by every :meth:`S3Store.from_env` store of the process: building a client loads the service
    model, which costs more than a small backup's uploads. The arguments only key the cache; boto3 reads them
    from the environment."""
    from botocore.config import Config

    return session().client("s3", config=Config(max_pool_connections=CLIENT_POOL, **FAST))


def _timestamp(value: Any) -> Any:
    """botocore's timestamp parser, with ISO 8601 (every ``LastModified`` of a listing) parsed by
    :meth:`datetime.fromisoformat` first: botocore's default goes through dateutil, which measured 2.3 ms per
    key on a busy machine, half the client time of listing a 200-file version (unchanged republish)."""
    from datetime import datetime

    from botocore.utils import parse_timestamp

    if isinstance(value, str) and "T" in value:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed
        except ValueError:
            pass
    return parse_timestamp(value)


def session(**kwargs: Any) -> Any:
    """A boto3 session (``kwargs`` as for :class:`boto3.session.Session`) whose clients parse timestamps with
    :func:`_timestamp` (botocore's ``response_parser_factory`` component, the documented way to change it)."""
    import boto3

    out = boto3.session.Session(**kwargs)
    out._session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    return out


def _translate(exc: Exception, what: str) -> Exception:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = exc.response.get("Error", {}).get("Code", "")
        if status >= 500 or code in ("SlowDown", "RequestTimeout"):
            return TemporaryError(f"{what}: S3 {code or status}")
        return PermanentError(f"{what}: S3 {code or status}: {exc.response.get('Error', {}).get('Message', '')}")
    if isinstance(exc, (EndpointConnectionError, BotoCoreError)):
        return TemporaryError(f"{what}: {type(exc).__name__}: {exc}")
    return exc


class S3Store:
    """boto3-backed :class:`tasks.storage.layout.ObjectStore`.

    Args:
        client: a boto3 S3 client (from env, an AwsCredentials/MinIOCredentials block, or explicit keys).
        multipart_threshold: bytes above which a file goes multipart (at most one PUT's 5 GiB); smaller files
            go in one PUT with their sha256 verified by the server.
        multipart_chunksize: part size in bytes (boto3's default, 8 MiB).
        max_concurrency: parts in flight per multipart file (default :func:`default_part_threads`).
        parallel_parts: send a large file as parallel multipart parts (above ``multipart_threshold``) rather than
            as one streamed PUT (up to S3's 5 GiB). Default: parallel unless the endpoint is on this machine
            (loopback). A local server (the sandbox's moto) shares the client's cores: parallel parts add its
            part bookkeeping and the final assembly (a copy of every byte) and gain no bandwidth; measured on 2
            cores at load 35-44 for one 256 MiB file: 14-16 s streamed against 26-38 s in 8 MiB parts on 4-10
            threads, and the moto server's CPU 1.6 s against 3.3-4.1 s. A remote S3 gains from parallel parts
            (one TCP stream to AWS carries far less than the link).
    """

    scheme = "s3"

    def __init__(self, client: Any, *, multipart_threshold: int = 64 * MiB, multipart_chunksize: int = 8 * MiB,
                 max_concurrency: int | None = None, parallel_parts: bool | None = None) -> None:
        self.client = client
        self.parallel_parts = (not _loopback(getattr(getattr(client, "meta", None), "endpoint_url", None))
                               if parallel_parts is None else parallel_parts)
        self.single_put_max = multipart_threshold
        self.part_size = max(5 * MiB, multipart_chunksize)  # S3's smallest part (but the last)
        self.part_threads = max_concurrency or default_part_threads()

    @classmethod
    def from_env(cls, **kwargs: Any) -> S3Store:
        """Client from the standard variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...),
        one per endpoint and key id in the process (:func:`_env_client`)."""
        return cls(_env_client(endpoint_from_env(), os.environ.get("AWS_ACCESS_KEY_ID")), **kwargs)

    @classmethod
    def from_keys(cls, *, access_key_id: str | None, secret_access_key: str | None, endpoint_url: str | None,
                  region: str | None = None, verify: bool | str | None = None, anonymous: bool = False,
                  **kwargs: Any) -> S3Store:
        """Client from explicit values (e.g. the credentials KServe would inject); nothing read from env."""
        from botocore import UNSIGNED
        from botocore.config import Config

        boto = session(aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                       region_name=region or "us-east-1")
        config = Config(max_pool_connections=CLIENT_POOL, retries={"max_attempts": 2},
                        signature_version=UNSIGNED if anonymous else None, **FAST)
        return cls(boto.client("s3", endpoint_url=endpoint_url, verify=verify, config=config), **kwargs)

    @classmethod
    def from_block(cls, slug: str, **kwargs: Any) -> S3Store:
        """Client from a Prefect block: ``aws-credentials/NAME`` or ``minio-credentials/NAME``."""
        from prefect.blocks.core import Block

        block: Any = Block.load(slug)
        return cls(block.get_s3_client(), **kwargs)

    def bucket_exists(self, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=bucket)
            return True
        except ClientError as exc:
            if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) == 404:
                return False
            raise _translate(exc, f"HEAD bucket {bucket}") from exc
        except Exception as exc:
            raise _translate(exc, f"HEAD bucket {bucket}") from exc

    def list(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        out: dict[str, ObjectInfo] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents") or []:
                    out[item["Key"]] = ObjectInfo(item["Key"], int(item["Size"]), modified=item.get("LastModified"))
        except Exception as exc:
            raise _translate(exc, f"list s3://{bucket}/{prefix}") from exc
        return out

    def list_dirs(self, bucket: str, prefix: str) -> builtins.list[str]:
        out: builtins.list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                                              Delimiter="/"):
                out += [p["Prefix"] for p in page.get("CommonPrefixes") or []]
        except Exception as exc:
            raise _translate(exc, f"list s3://{bucket}/{prefix}*/") from exc
        return out

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) == 404:
                return None
            raise _translate(exc, f"HEAD s3://{bucket}/{key}") from exc
        except Exception as exc:
            raise _translate(exc, f"HEAD s3://{bucket}/{key}") from exc
        sha256 = (resp.get("Metadata") or {}).get(SHA256_METADATA)
        if sha256 is None and resp.get("TagCount"):  # a multipart upload records it as a tag (upload_file)
            try:
                tags = self.client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
            except Exception as exc:
                raise _translate(exc, f"tags of s3://{bucket}/{key}") from exc
            sha256 = next((t["Value"] for t in tags if t["Key"] == SHA256_METADATA), None)
        return ObjectInfo(key, int(resp["ContentLength"]), sha256)

    def upload_file(self, bucket: str, key: str, path: Path, sha256: str | None = None,
                    progress: Callable[[int], None] | None = None) -> str:
        """Upload ``path`` and return its hex sha256 (``sha256`` when given, else computed while uploading).

        Up to ``multipart_threshold`` bytes: one PUT with the sha256 in the metadata and as ``ChecksumSHA256``,
        so S3 refuses bytes that do not match it (without ``sha256`` the file is hashed first: the header goes
        before the body). Larger, when the endpoint is on this machine (``parallel_parts`` False): one PUT whose
        body is hashed as botocore sends it, the sha256 then recorded as a tag as below. Larger, otherwise: a
        multipart upload that reads each byte once: parts of ``part_size`` are read
        in order, fed to one sha256 of the whole file, and sent by ``part_threads`` threads while the next
        parts are read (at most ``part_threads + 1`` parts in memory). S3 has no whole-object SHA-256 for a
        multipart object and its metadata is fixed when the upload starts, so the sha256 is recorded as the
        object tag ``sha256`` after ``CompleteMultipartUpload`` (:meth:`head` reads it; an object that lacks it,
        e.g. a process killed in between, is simply uploaded again). Parts carry no checksum of their own (with
        UNSIGNED-PAYLOAD botocore would send it as an aws-chunked trailer, which moto decodes byte by byte in
        Python: measured 0.62x the loop's speed on one 256 MiB file); every reader verifies the whole file's
        sha256 against the manifest, as ``kaiops warmup`` does.

        Raises:
            TemporaryError / PermanentError: S3 refused or failed (an unfinished multipart upload is aborted).
        """
        size = path.stat().st_size
        try:
            if size <= self.single_put_max:
                from tasks.storage.manifest import sha256_file

                sha256 = sha256 or sha256_file(path)
                with open(path, "rb") as body:
                    self.client.put_object(Bucket=bucket, Key=key, Body=body, Metadata={SHA256_METADATA: sha256},
                                           ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode())
                if progress is not None:
                    progress(size)
                return sha256
            if not self.parallel_parts and size <= MAX_PUT:
                computed = self._stream_put(bucket, key, path, size, progress)
            else:
                computed = self._multipart(bucket, key, path, progress)
        except Exception as exc:
            raise _translate(exc, f"upload s3://{bucket}/{key}") from exc
        if sha256 is not None and computed != sha256:
            raise PermanentError(f"upload s3://{bucket}/{key}: {path} changed while it was read (sha256 "
                                 f"{computed[:12]}..., expected {sha256[:12]}...)")
        return computed

    def _stream_put(self, bucket: str, key: str, path: Path, size: int,
                    progress: Callable[[int], None] | None) -> str:
        """One PUT of ``path`` whose body hashes the bytes as botocore sends them; returns the hex sha256."""
        with open(path, "rb") as fh:
            body = _HashingReader(fh, size, progress)
            self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentLength=size)
        sha256 = body.hexdigest()
        self._tag(bucket, key, sha256)
        return sha256

    def _tag(self, bucket: str, key: str, sha256: str) -> None:
        self.client.put_object_tagging(Bucket=bucket, Key=key,
                                       Tagging={"TagSet": [{"Key": SHA256_METADATA, "Value": sha256}]})

    def _multipart(self, bucket: str, key: str, path: Path, progress: Callable[[int], None] | None) -> str:
        """One multipart upload of ``path``, hashed in order as it is read; returns the hex sha256."""
        import hashlib
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor

        digest = hashlib.sha256()
        upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

        def send(number: int, data: bytes) -> dict[str, Any]:
            resp = self.client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                           Body=data)
            if progress is not None:
                progress(len(data))
            return {"PartNumber": number, "ETag": resp["ETag"]}

        parts: builtins.list[dict[str, Any]] = []
        try:
            with open(path, "rb", buffering=0) as fh, ThreadPoolExecutor(self.part_threads) as pool:
                inflight: deque[Future[dict[str, Any]]] = deque()
                number = 0
                while data := fh.read(self.part_size):
                    number += 1
                    digest.update(data)  # releases the GIL: hashing overlaps the parts being sent
                    inflight.append(pool.submit(send, number, data))
                    del data
                    while len(inflight) > self.part_threads:
                        parts.append(inflight.popleft().result())
                parts += [f.result() for f in inflight]
            self.client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        sha256 = digest.hexdigest()
        self._tag(bucket, key, sha256)
        return sha256

    def put_bytes(self, bucket: str, key: str, data: bytes, sha256: str) -> None:
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data, Metadata={SHA256_METADATA: sha256},
                                   ContentType="application/json" if key.endswith(".json") else
                                   "application/octet-stream")
        except Exception as exc:
            raise _translate(exc, f"put s3://{bucket}/{key}") from exc

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise _translate(exc, f"get s3://{bucket}/{key}") from exc
        except Exception as exc:
            raise _translate(exc, f"get s3://{bucket}/{key}") from exc

    def delete(self, bucket: str, keys: builtins.list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            try:
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            except Exception as exc:
                raise _translate(exc, f"delete under s3://{bucket}") from exc

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if missing (sandbox/demo helper)."""
        if not self.bucket_exists(bucket):
            try:
                self.client.create_bucket(Bucket=bucket)
            except Exception as exc:
                raise _translate(exc, f"create bucket {bucket}") from exc


MAX_PUT = 5 << 30  # S3's largest single PUT


def _loopback(url: str | None) -> bool:
    """True when the endpoint ``url`` is on this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _HashingReader:
    """A file body for one PUT that feeds each byte botocore reads to a sha256, in order, and reports progress.
    A retry rewinds it (seek to 0) and the hash starts again; any other seek makes the hash unusable (error)."""

    def __init__(self, fh: Any, size: int, progress: Callable[[int], None] | None) -> None:
        import hashlib

        self._fh, self._size, self._progress = fh, size, progress
        self._digest = hashlib.sha256()
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._fh.read(n)
        self._digest.update(data)
        self._pos += len(data)
        if self._progress is not None and data:
            self._progress(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        import hashlib

        if (offset, whence) == (0, 0):
            self._digest, self._pos = hashlib.sha256(), 0
        elif not (whence == 0 and offset == self._pos):
            raise PermanentError(f"{self._fh.name}: the upload body was rewound to {offset}; cannot hash it in order")
        return int(self._fh.seek(offset, whence))

    def tell(self) -> int:
        return int(self._fh.tell())

    def hexdigest(self) -> str:
        if self._pos != self._size:
            raise PermanentError(f"{self._fh.name}: {self._pos} of {self._size} bytes were sent (file changed?)")
        return self._digest.hexdigest()


def default_part_threads() -> int:
    """Parts in flight per multipart file, sized to the machine: two per core, 2 to 10 (boto3's default is 10;
    on a small machine the object store, the hashing and the senders share the same cores)."""
    return max(2, min(10, 2 * (os.cpu_count() or 1)))


def endpoint_from_env() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
