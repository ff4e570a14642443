"""``manifest.json``: the list of files of a published version with sizes and sha256, written last."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (hashlib releases the GIL, so threads hash in parallel)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def kaiops_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kaiops")
    except PackageNotFoundError:
        return "0.0.0+unknown"


class ManifestFile(BaseModel):
    """One file of a version."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="POSIX path relative to the version prefix.", min_length=1)
    size: int = Field(description="Size in bytes.", ge=0)
    sha256: str = Field(description="Hex sha256 of the content.", pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    """The manifest of one published version."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(1, description="Manifest format version.", ge=1, le=1)
    model_format: str | None = Field(None, description="KServe modelFormat.name (sklearn, xgboost, ...).",
                                     max_length=63)
    source: str = Field(description="Where the files came from (local path, host).", max_length=4096)
    created_at: datetime = Field(description="When the version was published (UTC).")
    kaiops_version: str = Field(description="kaiops version that published it.", max_length=64)
    files: list[ManifestFile] = Field(description="Every file except manifest.json, sorted by path.")

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def by_path(self) -> dict[str, ManifestFile]:
        return {f.path: f for f in self.files}

    def same_content(self, other: Manifest) -> bool:
        """True when both list the same files with the same sizes and sha256 and the same model format."""
        return self.by_path() == other.by_path() and self.model_format == other.model_format

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()


def build_manifest(files: list[tuple[str, int, str]], *, model_format: str | None, source: str) -> Manifest:
    """Manifest from ``(path, size, sha256)`` triples, stamped now (UTC)."""
    return Manifest(
        model_format=model_format, source=source, created_at=datetime.now(UTC), kaiops_version=kaiops_version(),
        files=[ManifestFile(path=p, size=s, sha256=h) for p, s, h in sorted(files)],
    )


class FileVerdict(StrEnum):
    """How one local file compares with the manifest."""

    OK = "ok"  # size and sha256 match
    MISSING = "missing"  # listed in the manifest, absent locally
    SIZE_MISMATCH = "size_mismatch"  # different size
    SHA256_MISMATCH = "sha256_mismatch"  # same size, different content (tampered or corrupted)
    UNEXPECTED = "unexpected"  # present locally, not in the manifest


class FileCheck(BaseModel):
    """Result of checking one file."""

    path: str
    verdict: FileVerdict
    detail: str = ""


def verify_dir(manifest: Manifest, root: str | Path, ignore: frozenset[str] = frozenset()) -> list[FileCheck]:
    """Check every manifest file under ``root`` (size, then sha256) and report files the manifest lacks
    (but ``manifest.json`` and the relative paths in ``ignore``).

    Zero-byte files: kserve-storage skips empty S3 objects, so a missing 0-byte file is reported as MISSING
    with that explanation.
    """
    base = Path(root)
    checks: list[FileCheck] = []
    for entry in manifest.files:
        path = base / entry.path
        if not path.is_file():
            why = " (kserve-storage skips empty S3 objects)" if entry.size == 0 else ""
            checks.append(FileCheck(path=entry.path, verdict=FileVerdict.MISSING, detail="not downloaded" + why))
            continue
        size = path.stat().st_size
        if size != entry.size:
            checks.append(FileCheck(path=entry.path, verdict=FileVerdict.SIZE_MISMATCH,
                                    detail=f"{size} bytes, manifest says {entry.size}"))
            continue
        digest = sha256_file(path)
        if digest != entry.sha256:
            checks.append(FileCheck(path=entry.path, verdict=FileVerdict.SHA256_MISMATCH,
                                    detail=f"sha256 {digest[:12]}..., manifest says {entry.sha256[:12]}..."))
            continue
        checks.append(FileCheck(path=entry.path, verdict=FileVerdict.OK))
    listed = manifest.by_path()
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base).as_posix()
        if rel not in listed and rel != "manifest.json" and rel not in ignore:
            checks.append(FileCheck(path=rel, verdict=FileVerdict.UNEXPECTED, detail="not in the manifest"))
    return checks
