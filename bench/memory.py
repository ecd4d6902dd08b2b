"""The benchmark's memory section: peak RSS of the web and worker processes against file size.

A small and a large generated file are each uploaded as one multipart POST and by tus, every
upload on a fresh stack (VmHWM never goes down, so a stack measures one upload), and the
import is awaited. The contract: peak RSS flat in file size, the large file's within ±20 %
of the small one's. Uploads are sent with http.client, streamed from disk in 1 MiB pieces.
"""

import base64
import http.client
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

BYTES_PER_ROW = 230  # of `collect generate`'s rows, to size the files
PIECE = 1 << 20  # bytes per socket send
METHODS = ("multipart", "tus")
FLAT = (0.8, 1.2)  # the large file's peak RSS over the small one's: ±20 %
TUS = {"Tus-Resumable": "1.0.0"}


def add_arguments(parser) -> None:
    group = parser.add_argument_group(
        "memory",
        "peak RSS against file size, per deployment and upload method; not in the default "
        "run, as it takes ~6 minutes with the default sizes (a 2 GB file, 8 fresh stacks)",
    )
    group.add_argument(
        "--memory", action="store_true", help="add the memory measurements to the run"
    )
    group.add_argument("--memory-only", action="store_true", help="only the memory measurements")
    group.add_argument(
        "--memory-mb",
        type=int,
        nargs=2,
        default=[100, 2000],
        metavar=("SMALL", "LARGE"),
        help="the two file sizes (MB, default 100 2000)",
    )
    group.add_argument(
        "--tus-chunk-mb", type=int, default=64, help="bytes per tus PATCH (MiB, default 64)"
    )


def describe(args) -> str:
    small, large = args.memory_mb
    return f"memory: {small} and {large} MB files, one upload per fresh stack"


@dataclass
class Measurement:
    """One upload on one fresh stack: its times, and peak RSS (MB) before and after."""

    size: int
    upload_seconds: float
    rows_per_second: float
    distributed: bool
    idle: dict[str, float]
    peak: dict[str, float]


def bench_memory(args, scratch: Path, stacks: dict[str, Callable], generate, report) -> None:
    """`stacks`: label → a context manager factory that starts a fresh stack."""
    files = []
    for megabytes in args.memory_mb:
        rows = round(megabytes * 1_000_000 / BYTES_PER_ROW)
        path = scratch / f"memory-{rows}.csv"
        generate(rows, path)
        files.append((path, rows))
    chunk = args.tus_chunk_mb << 20
    for label, start_stack in stacks.items():
        for method in METHODS:
            small, large = (measure(start_stack, path, rows, method, chunk) for path, rows in files)
            report_pair(label, method, small, large, report)
    for path, _ in files:
        path.unlink()


def measure(start_stack: Callable, path: Path, rows: int, method: str, chunk: int) -> Measurement:
    """Upload `path` to a fresh stack and wait for its import of `rows` rows to complete."""
    with start_stack() as stack:
        idle = stack.peak_rss_mb()
        started = time.perf_counter()
        if method == "multipart":
            task_id = stack.upload(path, "memory")["task_id"]
        else:
            task_id = upload_tus(stack, path, "memory", chunk)
        upload_seconds = time.perf_counter() - started
        job = stack.wait_for(task_id, {"completed", "failed", "terminated"}, 3600, every=0.5)
        if job["status"] != "completed" or job["progress"]["rows_done"] != rows:
            raise RuntimeError(f"the import of {rows} rows did not complete: {job}")
        elapsed = datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(
            job["created_at"]
        )
        result = Measurement(
            size=path.stat().st_size,
            upload_seconds=upload_seconds,
            rows_per_second=rows / elapsed.total_seconds(),
            distributed=bool(stack.workers),
            idle=idle,
            peak=stack.peak_rss_mb(),
        )
    peaks = ", ".join(f"{name} {mb:.0f}" for name, mb in result.peak.items() if mb)
    print(f"  … {method} {_size(result.size)}: peak RSS {peaks} MB", flush=True)
    return result


def report_pair(label: str, method: str, small: Measurement, large: Measurement, report) -> None:
    """One row per process: the peaks for both sizes and their ratio, with side info."""
    processes = (
        [("web", "web"), ("worker", "workers")] if small.distributed else [("server", "web")]
    )
    sizes = f"{_size(small.size)} / {_size(large.size)}"
    for number, (name, key) in enumerate(processes):
        ratio = large.peak[key] / small.peak[key]
        verdict = "" if FLAT[0] <= ratio <= FLAT[1] else ", NOT flat"
        note = f"ratio {ratio:.2f} (target ±20 %){verdict}; idle {small.idle[key]:.0f}"
        if number == 0:
            note += (
                f"; upload {small.upload_seconds:.1f} / {large.upload_seconds:.1f} s"
                f"; import {small.rows_per_second:,.0f} / {large.rows_per_second:,.0f} rows/s"
            )
        report(
            f"{label}: peak RSS {name}, {method} {sizes} (MB)",
            f"{small.peak[key]:.0f} / {large.peak[key]:.0f}",
            note,
        )


def upload_tus(stack, path: Path, dataset: str, chunk: int) -> str:
    """A tus creation, then one PATCH per `chunk` bytes; returns the import's task id."""
    size = path.stat().st_size
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in (("dataset", dataset), ("filename", path.name))
    )
    headers = {**TUS, "Upload-Length": str(size), "Upload-Metadata": metadata}
    _, answer, _ = _request(stack, "POST", "/api/uploads/", headers, expect=201)
    location = urlsplit(answer["Location"]).path
    offset, task_id = 0, None
    while offset < size:
        length = min(chunk, size - offset)
        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Content-Length": str(length),
        }
        body = _pieces(path, offset, length)
        _, answer, _ = _request(stack, "PATCH", location, headers, body, expect=204)
        if int(answer["Upload-Offset"]) != offset + length:
            raise RuntimeError(f"tus: offset {answer['Upload-Offset']} after {offset + length}")
        offset, task_id = offset + length, answer["Collect-Task-Id"]
    if not task_id:
        raise RuntimeError("tus: the completing PATCH named no Collect-Task-Id")
    return task_id


def _request(stack, method: str, path: str, headers: dict, body=(), *, expect: int):
    """One request on its own connection, the body sent piece by piece as `body` yields."""
    url = urlsplit(stack.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in {"Authorization": f"Token {stack.token}", **headers}.items():
            connection.putheader(name, value)
        if "Content-Length" not in headers:
            connection.putheader("Content-Length", "0")
        connection.endheaders()
        for piece in body:
            connection.send(piece)
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    if response.status != expect:
        raise RuntimeError(f"{method} {path} answered {response.status}: {answer[:500]!r}")
    return response.status, response.headers, answer


def _pieces(path: Path, offset: int, length: int) -> Iterator[bytes]:
    """`length` bytes of the file from `offset`, PIECE bytes at a time."""
    with open(path, "rb") as stream:
        stream.seek(offset)
        while length > 0:
            piece = stream.read(min(PIECE, length))
            if not piece:
                raise RuntimeError(f"{path} ended {length} bytes early")
            length -= len(piece)
            yield piece


def _size(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"
