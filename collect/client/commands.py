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

from collect.client.http import Api, ClientError, Interrupted, resolve_task_id
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
    if args.force:
        metadata["force"] = "true"
    try:
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
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted during the upload: what was sent is kept on the server, and the "
            "same command again resumes it"
        ) from None
    print(task_id)
    if not args.wait:
        console.print(f"import {task_id} started; `collect wait {task_id[:8]}` follows it")
        return 0
    return _finished(_wait(api, task_id))


def wait(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    return _finished(_wait(api, resolve_task_id(api, args.task_id)))


def download(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    found = resolve_task_id(api, args.task_id)
    job = api.get(f"tasks/{found}/")
    if job["kind"] != "export":
        raise ClientError(f"task {found} is an import: only an export has a file to download")
    if job["status"] not in FINAL_STATES:
        job = _wait(api, found)
    if job["status"] != "completed":
        return _finished(job)
    output = args.output or Path(f"{job['dataset']}-{found}.csv".replace("/", "_"))
    _download(api, found, output)
    console.print(f"{job['progress']['rows_done']:,} rows written to {output}")
    return 0


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
    job = api.post(f"tasks/{resolve_task_id(api, args.task_id)}/{args.command}/")
    console.print(f"{job['kind']} {job['task_id']} is {job['status']}{_state_note(job)}")
    return 0


def _state_note(job: dict[str, Any]) -> str:
    """What a state means that its name does not say."""
    if job.get("pause_expires_at"):
        return f"; it is terminated at {job['pause_expires_at']} unless resumed"
    if job.get("rows_rolled_back"):
        return f"; {job['rows_rolled_back']:,} rows rolled back"
    if job.get("queued_reason"):
        return f" ({job['queued_reason']})"
    return ""


def export(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    body = {"dataset": args.dataset, "from": args.first, "to": args.last, "raw": args.raw}
    job = api.post("exports/", json=body)
    started = job["task_id"]
    console.print(f"export {started} started")
    try:
        job = _wait(api, started)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: export {started} goes on on the server; "
            f"`collect download {started[:8]} -o {args.output}` fetches it when done, "
            f"`collect pause {started[:8]}` pauses it"
        ) from None
    if job["status"] != "completed":
        return _finished(job)
    _download(api, started, args.output)
    rows = job["progress"]["rows_done"]
    console.print(f"{rows:,} rows written to {args.output}" if rows else _no_rows(job))
    return 0


def _no_rows(job: dict[str, Any]) -> str:
    span = job.get("export_range") or {}
    first, last = span.get("from"), span.get("to")
    return f"no rows in that range ({first} to {last}): the file holds the header only"


def _wait(api: Api, task_id: str) -> dict[str, Any]:
    """Follow a job with a progress bar until it ends. Ctrl-C leaves the job running on
    the server, and says so."""
    try:
        return _follow(api, task_id)
    except KeyboardInterrupt:
        job = api.get(f"tasks/{task_id}/")
        if job["status"] in FINAL_STATES:
            raise Interrupted(f"interrupted; {job['kind']} {task_id} is {job['status']}") from None
        short = task_id[:8]
        raise Interrupted(
            f"interrupted: {job['kind']} {task_id} goes on on the server ({job['status']}); "
            f"`collect wait {short}` follows it again, `collect pause {short}` pauses it"
        ) from None


def _follow(api: Api, task_id: str) -> dict[str, Any]:
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
                description=f"{job['kind']} {job['status']}{_state_note(job)}",
                completed=done["percent"],
                rows=f"{done['rows_done']:,}",
                rate=f"{done['rows_per_s']:,.0f}/s" if done["rows_per_s"] else "",
            )
            if job["status"] in FINAL_STATES:
                return job
            time.sleep(POLL_S)


def _finished(job: dict[str, Any]) -> int:
    if job["status"] == "completed":
        console.print(f"{job['kind']} completed: {_summary(job)}")
        rejected = job["progress"]["rows_rejected"]
        if rejected:
            console.print(f"rejected rows: {job['errors_url']}")
        return 0
    reason = job.get("error") or job.get("termination_reason") or ""
    rolled_back = job.get("rows_rolled_back")
    note = f"; {rolled_back:,} rows rolled back" if rolled_back else ""
    raise ClientError(f"{job['kind']} {job['status']}" + (f": {reason}" if reason else "") + note)


def _summary(job: dict[str, Any]) -> str:
    summary = job.get("summary") or {}
    size = f"{summary.get('bytes', 0):,} bytes in {summary.get('seconds', 0):,.1f} s"
    if job["kind"] == "export":
        return f"{summary.get('rows_exported', 0):,} rows, {size}"
    return (
        f"{summary.get('rows_imported', 0):,} rows imported of {summary.get('rows_read', 0):,} "
        f"read, {summary.get('rows_rejected', 0):,} rejected, {size}"
    )


def _download(api: Api, task_id: str, output: Path) -> None:
    """Stream the file to OUTPUT.part and rename it, so OUTPUT only ever appears whole."""
    partial = output.with_name(output.name + ".part")
    try:
        with (
            api.download(f"tasks/{task_id}/download/") as response,
            _byte_progress() as progress,
        ):
            size = int(response.headers.get("Content-Length") or 0) or None
            bar = progress.add_task(f"download {output.name}", total=size)
            with open(partial, "wb") as file:
                for piece in response.iter_content(chunk_size=1 << 20):
                    file.write(piece)
                    progress.advance(bar, len(piece))
    except KeyboardInterrupt:
        partial.unlink(missing_ok=True)
        raise Interrupted(
            f"interrupted during the download; the export is kept on the server: "
            f"`collect download {task_id[:8]} -o {output}` fetches it again"
        ) from None
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
