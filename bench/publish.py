"""Benchmark: ``kaiops`` publish vs a plain boto3 ``upload_file`` loop, against the same S3 in the same run,
and an unchanged republish as a fraction of the first publish (issue 18, item 3).

    python bench/publish.py [--size-mib 1024] [--files 200] [--repeat 3] [--json FILE]

Two shapes of ``--size-mib`` each: ``--files`` files (5 % of them hold 80 % of the bytes, like weight shards
plus configs) and one single file. For each shape, ``--repeat`` alternating pairs (baseline first, then kaiops,
each into a fresh prefix) and the medians; the ratio is baseline seconds / kaiops seconds (speed-up, goal >= 1.5).
kaiops hashes every byte (sha256 per file, in the manifest and the object metadata) and runs with its default
sizing for this machine; the baseline hashes nothing of its own. Hash caches are off (``hash_cache=False``), so
each kaiops run reads and hashes every byte. Then an unchanged republish (with the hash cache, as the CLI runs)
as a fraction of the first (goal <= 1 %).

Needs ``AWS_ENDPOINT_URL`` and keys in the environment (``eval "$(kaiops sandbox env)"``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def baseline(client, bucket: str, root: Path, prefix: str) -> float:
    start = time.monotonic()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--shape", choices=("both", "files", "single"), default="both")
    args = parser.parse_args(argv)

    import boto3

    from tasks.storage import publish
    from tasks.storage.s3 import S3Store

    store = S3Store.from_env()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    store.create_bucket(bucket)
    from botocore.config import Config

    # boto3's defaults but the read timeout: moto's CompleteMultipartUpload of 1 GiB on a busy 2-core machine
    # takes more than the default 60 s, and botocore's retry then races the first request (moto answers 500,
    # KeyError on the upload id); a longer wait only removes that spurious retry, it speeds nothing up.
    plain = boto3.client("s3", config=Config(read_timeout=900))
    load = [os.getloadavg()[0]]
    results, lines = [], []
    shapes = [(f"{args.files} files", args.files), ("1 file", 1)]
    shapes = shapes if args.shape == "both" else shapes[:1] if args.shape == "files" else shapes[1:]
    for shape, files in shapes:
        with tempfile.TemporaryDirectory(prefix="kaiops-bench-") as tmp:
            root = Path(tmp)
            total = make_files(root, args.size_mib, files)
            t_base, t_ours = [], []
            for r in range(args.repeat):
                t_base.append(baseline(plain, bucket, root, f"baseline/{files}/{r}"))
                t0 = time.monotonic()
                first = publish(root, f"s3://{bucket}/ours/{files}/{r}", store, hash_cache=False)
                t_ours.append(time.monotonic() - t0)
                assert len(first.files_uploaded) == files
                load.append(os.getloadavg()[0])
                print(f"{shape} pair {r}: baseline {t_base[-1]:.2f} s, kaiops {t_ours[-1]:.2f} s", flush=True)
                store.delete(bucket, list(store.list(bucket, f"baseline/{files}/{r}/")))
                if r < args.repeat - 1:
                    store.delete(bucket, list(store.list(bucket, f"ours/{files}/{r}/")))
            publish(root, f"s3://{bucket}/ours/{files}/{args.repeat - 1}", store)  # fills the hash cache
            t0 = time.monotonic()
            again = publish(root, f"s3://{bucket}/ours/{files}/{args.repeat - 1}", store)
            t_again = time.monotonic() - t0
            assert not again.files_uploaded
            store.delete(bucket, list(store.list(bucket, f"ours/{files}/")))
        b, o = statistics.median(t_base), statistics.median(t_ours)
        results.append({"shape": shape, "bytes": total, "baseline_seconds": b, "kaiops_seconds": o,
                        "speedup": b / o, "republish_seconds": t_again, "republish_fraction": t_again / o,
                        "pairs": [list(p) for p in zip(t_base, t_ours, strict=True)]})
    mib = args.size_mib
    lines.append(f"publish {mib} MiB to {os.environ.get('AWS_ENDPOINT_URL')} (moto); median of {args.repeat} "
                 f"alternating pairs; machine {os.cpu_count()} cores, load average {min(load):.1f}-{max(load):.1f}")
    lines.append(f"{'shape':10} {'boto3 loop s':>12} {'kaiops s':>9} {'MB/s':>6} {'speed-up':>9} {'goal':>5}  "
                 f"{'republish s':>11} {'of first':>8}")
    for r in results:
        fast = "OK" if r["speedup"] >= 1.5 else "MISSED"
        lines.append(f"{r['shape']:10} {r['baseline_seconds']:12.2f} {r['kaiops_seconds']:9.2f} "
                     f"{r['bytes'] / 1e6 / r['kaiops_seconds']:6.1f} {r['speedup']:8.2f}x {fast:>5}  "
                     f"{r['republish_seconds']:11.3f} {r['republish_fraction']:7.2%} "
                     f"{'OK' if r['republish_fraction'] <= 0.01 else 'MISSED'}")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"size_mib": mib, "files": args.files, "repeat": args.repeat,
                                         "load_average": load, "rows": results, "printed": lines}, indent=1) + "\n")


if __name__ == "__main__":
    main()
