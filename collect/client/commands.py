"""The client's commands: each takes the parsed arguments and returns the exit code."""

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from collect.client.http import Api, ClientError
from collect.client.upload import upload_file

FINAL_STATES = {"completed", "failed", "terminated"}
POLL_S = 0.5
# Progress and messages; stdout keeps what scripts read. Job fields come from the server
# and are printed as text, never read as rich markup (a dataset named "[link=…]" stays that).
console = Console(stderr=True, markup=False, highlight=False)


def upload(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    if not args.file.is_file():
        raise ClientError(f"no such file: {args.file}")
    metadata = {"on_error": args.on_error}
    if args.max_rejects is not None:
        metadata["max_rejects"] = str(args.max_rejects)
    if args.timestamp_column:
        metadata["timestamp_column"] = args.timestamp_column
    with _byte_progress() as progress:
        bar = progress.add_task(f"upload {args.file.name}", total=None)

        def show(done: int, total: int) -> None:
            if progress.tasks[bar].total is None and done:
                progress.console.print(f"resuming the upload at {done:,} of {total:,} bytes")
            progress.update(bar, completed=done, total=total)

        task_id = upload_file(
            api,
            args.file,
            dataset=args.dataset,
            metadata=metadata,
            on_progress=show,
            notify=progress.console.print,
            chunk_bytes=args.chunk_mib * 1024 * 1024,
        )
    print(task_id)
    if not args.wait:
        console.print(f"import {task_id} started; `collect tasks` shows it")
        return 0
    return _finished(_wait(api, task_id))


def tasks(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    page = api.get("tasks/", status=args.status or None, kind=args.kind or None)
    if not sys.stdout.isatty():  # for scripts: tab-separated, whole values
        print("task_id\tkind\tdataset\tstatus\tpercent\trows_done\trows_rejected\tfilename")
        for job in page["results"]:
            done = job["progress"]
            fields = (job["task_id"], job["kind"], job["dataset"], job["status"])
            counts = (done["percent"], done["rows_done"], done["rows_rejected"])
            print("\t".join(map(str, (*fields, *counts, job.get("filename") or ""))))
        return 0
    table = Table("task id", "kind", "dataset", "status", "progress", "rows", "rejected", "file")
    for job in page["results"]:
        progress = job["progress"]
        table.add_row(
            job["task_id"],
            job["kind"],
            job["dataset"],
            job["status"],
            f"{progress['percent']:.1f}%",
            f"{progress['rows_done']:,}",
            f"{progress['rows_rejected']:,}",
            job.get("filename") or "",
        )
    Console(markup=False, highlight=False).print(table)
    if page.get("next"):
        console.print(f"showing the newest {len(page['results'])} of {page['count']}")
    return 0


def control(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    job = api.post(f"tasks/{args.task_id}/{args.command}/")
    console.print(f"{job['kind']} {job['task_id']} is {job['status']}")
    return 0


def export(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    body = {"dataset": args.dataset, "from": args.first, "to": args.last, "raw": args.raw}
    job = api.post("exports/", json=body)
    console.print(f"export {job['task_id']} started")
    job = _wait(api, job["task_id"])
    if job["status"] != "completed":
        return _finished(job)
    _download(api, job["task_id"], args.output)
    console.print(f"{job['progress']['rows_done']:,} rows written to {args.output}")
    return 0


def _wait(api: Api, task_id: str) -> dict[str, Any]:
    """Follow a job with a progress bar until it ends."""
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows  {task.fields[rate]}", markup=False),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("", total=100, rows="0", rate="")
        while True:
            job = api.get(f"tasks/{task_id}/")
            done = job["progress"]
            progress.update(
                bar,
                description=f"{job['kind']} {job['status']}",
                completed=done["percent"],
                rows=f"{done['rows_done']:,}",
                rate=f"{done['rows_per_s']:,.0f}/s" if done["rows_per_s"] else "",
            )
            if job["status"] in FINAL_STATES:
                return job
            time.sleep(POLL_S)


def _finished(job: dict[str, Any]) -> int:
    if job["status"] == "completed":
        rejected = job["progress"]["rows_rejected"]
        note = f", {rejected:,} rejected (see `{job['errors_url']}`)" if rejected else ""
        console.print(f"{job['kind']} completed: {job['progress']['rows_done']:,} rows{note}")
        return 0
    reason = job.get("error") or job.get("termination_reason") or ""
    raise ClientError(f"{job['kind']} {job['status']}" + (f": {reason}" if reason else ""))


def _download(api: Api, task_id: str, output: Path) -> None:
    """Stream the file to OUTPUT.part and rename it, so OUTPUT only ever appears whole."""
    partial = output.with_name(output.name + ".part")
    with api.download(f"tasks/{task_id}/download/") as response, _byte_progress() as progress:
        size = int(response.headers.get("Content-Length") or 0) or None
        bar = progress.add_task(f"download {output.name}", total=size)
        with open(partial, "wb") as file:
            for piece in response.iter_content(chunk_size=1 << 20):
                file.write(piece)
                progress.advance(bar, len(piece))
    partial.replace(output)


def _byte_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
