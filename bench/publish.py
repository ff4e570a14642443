"""Benchmark: ``kaiops`` publish vs a plain boto3 ``upload_file`` loop, against the same S3 in the same run,
and an unchanged republish as a fraction of the first publish.

    python bench/publish.py [--size-mib 1024] [--files 200] [--workers 8]

Needs ``AWS_ENDPOINT_URL`` and keys in the environment (``eval "$(kaiops sandbox env)"``). Goals: ours/baseline
seconds <= 1.0; republish/first <= 0.05.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_files(root: Path, total_mib: int, files: int) -> int:
    """``files`` files of random bytes totalling ``total_mib`` MiB, a few large and many small (like a model:
    some weight shards plus configs). Returns total bytes."""
    total = total_mib << 20
    big = max(1, files // 20)  # 5 % of the files hold 80 % of the bytes
    sizes = [int(total * 0.8 / big)] * big + [int(total * 0.2 / (files - big))] * (files - big) if files > big \
        else [total // files] * files
    block = os.urandom(1 << 20)
    for i, size in enumerate(sizes):
        path = root / ("shards" if i < big else "misc") / f"f{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(i.to_bytes(8, "big"))  # unique content per file
            left = size - 8
            while left > 0:
                fh.write(block[: min(left, len(block))])
                left -= len(block)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def baseline(client, bucket: str, root: Path) -> float:
    start = time.monotonic()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"baseline/{path.relative_to(root).as_posix()}")
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)

    import boto3
    from rich.console import Console
    from rich.table import Table

    from tasks.storage import publish
    from tasks.storage.s3 import S3Store

    store = S3Store.from_env()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    store.create_bucket(bucket)
    plain = boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="kaiops-bench-") as tmp:
        root = Path(tmp)
        total = make_files(root, args.size_mib, args.files)
        t_base = baseline(plain, bucket, root)
        t0 = time.monotonic()
        first = publish(root, f"s3://{bucket}/ours/v1", store, workers=args.workers)
        t_ours = time.monotonic() - t0
        t0 = time.monotonic()
        again = publish(root, f"s3://{bucket}/ours/v1", store, workers=args.workers)
        t_again = time.monotonic() - t0
    mb = total / 1e6
    where = os.environ.get('AWS_ENDPOINT_URL')
    table = Table(title=f"publish {args.files} files, {total / (1 << 20):.0f} MiB to {where}")
    for col in ("run", "seconds", "MB/s", "uploaded files"):
        table.add_column(col)
    table.add_row("boto3 upload_file loop (baseline)", f"{t_base:.2f}", f"{mb / t_base:.1f}", str(args.files))
    table.add_row(f"kaiops publish (sha256 + {args.workers} workers + manifest)", f"{t_ours:.2f}",
                  f"{mb / t_ours:.1f}", str(len(first.files_uploaded)))
    table.add_row("kaiops republish, unchanged", f"{t_again:.2f}", "-", str(len(again.files_uploaded)))
    Console().print(table)
    ratio, frac = t_ours / t_base, t_again / t_ours
    print(f"ours/baseline seconds: {ratio:.2f} (goal <= 1.0)  {'OK' if ratio <= 1.0 else 'MISSED'}")
    print(f"unchanged republish / first publish: {frac:.1%} (goal <= 5 %)  {'OK' if frac <= 0.05 else 'MISSED'}")
    store.delete(bucket, list(store.list(bucket, "")))


if __name__ == "__main__":
    main()
