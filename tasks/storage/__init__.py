"""Model versions in object storage (S3, GCS): publish a local directory under a versioned prefix with a
sha256 per file and ``manifest.json`` written last, list and read published versions, verify a local copy.

This is the one object-store layer: publishing, warmup and backups (:mod:`tasks.backup`) all use its stores.
A version exists for a reader only when its ``manifest.json`` exists (:func:`list_versions`,
:func:`read_manifest`). Stores (:mod:`.s3`, :mod:`.gcs`, and :mod:`.local` for ``file://``) are small classes
over boto3 / google-cloud-storage / the file system with one shape (:class:`.layout.ObjectStore`) and one error
mapping each; :class:`.bucket.Bucket` addresses one bucket by key (what backups use); :mod:`.publisher` is the
upload logic (no Prefect here), the Prefect tasks live in :mod:`.tasks`. Not here: the backup format
(:mod:`tasks.backup.store`), KServe credential resolution (:mod:`tasks.kserve.resolve`) and the
storage-initializer download (:mod:`tasks.kserve.storage_initializer`).
"""

from tasks.storage.layout import ObjectInfo, ObjectStore, StorageUri, parse_uri
from tasks.storage.manifest import Manifest, ManifestFile
from tasks.storage.publisher import PublishOutcome, PublishResult, list_versions, publish, read_manifest

__all__ = [
    "Manifest", "ManifestFile", "ObjectInfo", "ObjectStore", "PublishOutcome", "PublishResult", "StorageUri",
    "list_versions", "parse_uri", "publish", "read_manifest",
]
