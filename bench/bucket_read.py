"""Peak memory of reading an upload from a bucket the way an import does, against its size:
a SeaweedFS of its own (tests/seaweedfs.py), files of each size stored through upload
storage, then read to the end in 256 KiB reads (CsvSource's block) by a fresh process
whose peak RSS is reported. Only reported, never asserted.

    .venv/bin/python bench/bucket_read.py [--mb 100 400]
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

READER = """
import os, resource, sys, time
import django
django.setup()
from collect.files import upload_open
start = time.monotonic()
total = 0
with upload_open(sys.argv[1]) as file:
    while data := file.read(256 * 1024):
        total += len(data)
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(total, round(peak_mb, 1), round(time.monotonic() - start, 2))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, nargs="+", default=[100, 400])
    args = parser.parse_args()
    from tests.seaweedfs import SeaweedFS

    server = SeaweedFS().start()
    try:
        bucket = server.create_bucket("collect-bench")
        env = {**os.environ, **server.env(bucket), "DJANGO_SETTINGS_MODULE": "collect.settings"}
        env["COLLECT_DATA_DIR"] = tempfile.mkdtemp(prefix="collect-bench-")
        client = server.client()
        print("| file | bytes read | peak RSS of the reader | seconds |\n|---|---|---|---|")
        for mb in args.mb:
            with tempfile.NamedTemporaryFile() as source:
                block = os.urandom(1 << 20)
                for _ in range(mb):
                    source.write(block)
                source.flush()
                client.upload_file(source.name, bucket, f"uploads/bench-{mb}.csv")
            result = subprocess.run(
                [sys.executable, "-c", READER, f"bench-{mb}.csv"],
                env=env, cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            total, peak, seconds = result.stdout.split()
            print(f"| {mb} MB | {total} | {peak} MB | {seconds} |")
            client.delete_object(Bucket=bucket, Key=f"uploads/bench-{mb}.csv")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
