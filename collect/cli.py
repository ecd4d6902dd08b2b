"""The `collect` command."""

import argparse
import os
import sys
from pathlib import Path

from collect.datasets import DEFAULT_DATASET
from collect.imports.choices import OnError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    if argv[:1] == ["manage"]:  # everything after `manage` belongs to Django
        _setup_django()
        from django.core.management import execute_from_command_line

        execute_from_command_line(["collect manage", *argv[1:]])
        return 0
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from collect.client.http import ClientError

    try:
        return args.run(args) or 0
    except ClientError as error:
        print(f"collect: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # a command's phases say more (client.http.Interrupted)
        print("collect: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collect", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run Collect (HTTP API, docs and job workers)")
    serve.add_argument("--host", default=os.environ.get("COLLECT_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("COLLECT_PORT", 8000)))
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run a Celery worker (distributed deployment)")
    worker.add_argument("--concurrency", type=int, help="jobs at once (default COLLECT_WORKERS)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(run=_worker)

    token = commands.add_parser("token", help="print an API token for USERNAME (created if new)")
    token.add_argument("username")
    token.set_defaults(run=_token)

    user = commands.add_parser(
        "user", help="create USERNAME, or set its password, for signing in to the web page"
    )
    user.add_argument("username")
    user.set_defaults(run=_user)

    commands.add_parser("manage", help="Django's management commands (migrate, createsuperuser…)")

    _client_commands(commands)

    generate = commands.add_parser("generate", help="write N dummy form responses as CSV")
    generate.add_argument("rows", type=int, nargs="?", default=20_000)
    generate.add_argument("-o", "--output", type=Path, default=Path("responses.csv"))
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument(
        "--realistic",
        action="store_true",
        help="responses as people type them: quoted commas, two-line answers, many scripts",
    )
    generate.add_argument("--crlf", action="store_true", help="with --realistic: CRLF line ends")
    generate.add_argument(
        "--bad-every",
        type=int,
        default=0,
        metavar="N",
        help="with --realistic: an unreadable date every N rows",
    )
    generate.set_defaults(run=_generate)
    return parser


def _client_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """The client (PRODUCT.md section 5): it talks HTTP to a server and needs no Django."""
    from collect.client import commands as client

    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--url", help="the server (default: COLLECT_URL, else localhost:8000)")
    server.add_argument("--token", help="your API token (default: COLLECT_TOKEN)")

    upload = commands.add_parser(
        "upload", parents=[server], help="upload a CSV (or .csv.gz) file and start its import"
    )
    upload.add_argument("file", type=Path)
    upload.add_argument("--dataset", default=DEFAULT_DATASET)
    upload.add_argument("--timestamp-column", help="the column that dates each row")
    upload.add_argument("--on-error", choices=OnError.values, default=OnError.ABORT.value)
    upload.add_argument(
        "--max-rejects", type=int, metavar="N", help="with --on-error skip: fail past N bad rows"
    )
    upload.add_argument("--wait", action="store_true", help="follow the import to its end")
    upload.add_argument(
        "--force",
        action="store_true",
        help="import even if the dataset has these bytes already (else: attach to that import)",
    )
    upload.add_argument("--chunk-mib", type=int, default=8, help=argparse.SUPPRESS)
    upload.set_defaults(run=client.upload)

    tasks = commands.add_parser("tasks", parents=[server], help="list your jobs, newest first")
    tasks.add_argument("--status")
    tasks.add_argument("--kind", choices=["import", "export"])
    tasks.set_defaults(run=client.tasks)

    task_help = "a task id, or any unique start of one"
    for action in ("pause", "resume", "terminate"):
        control = commands.add_parser(action, parents=[server], help=f"{action} a job")
        control.add_argument("task_id", help=task_help)
        control.set_defaults(run=client.control)

    wait = commands.add_parser("wait", parents=[server], help="follow a job to its end")
    wait.add_argument("task_id", help=task_help)
    wait.set_defaults(run=client.wait)

    download = commands.add_parser(
        "download", parents=[server], help="download an export's CSV (waits until it is done)"
    )
    download.add_argument("task_id", help=task_help)
    download.add_argument(
        "-o", "--output", type=Path, help="the file (default: DATASET-TASK_ID.csv here)"
    )
    download.set_defaults(run=client.download)

    export = commands.add_parser(
        "export", parents=[server], help="export a date range, wait, and download the CSV"
    )
    export.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    export.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
    export.add_argument("--dataset", default=DEFAULT_DATASET)
    export.add_argument("--raw", action="store_true", help="leave formula-like cells as they are")
    export.add_argument("-o", "--output", type=Path, required=True)
    export.set_defaults(run=client.export)


def _setup_django() -> None:
    # The data directory holds password hashes, API tokens and everyone's files: whatever
    # the service creates there is its user's alone.
    os.umask(0o077)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collect.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as error:  # a setting that cannot be read: say which
        sys.exit(f"collect: {error}")
    _make_private(Path(django.conf.settings.DATA_DIR))


def _make_private(data_dir: Path) -> None:
    """0700 for the data directory, 0600 for its files, also those of an older version."""
    if os.name != "posix":
        return
    data_dir.chmod(0o700)
    for path in data_dir.iterdir():
        if path.is_file() and not path.is_symlink():
            path.chmod(0o600)


def _serve(args: argparse.Namespace) -> None:
    _setup_django()
    from django.conf import settings

    from collect.server import serve

    if args.host not in ("0.0.0.0", "::") and args.host not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append(args.host)
    serve(args.host, args.port)


def _worker(args: argparse.Namespace) -> None:
    _setup_django()
    from collect.worker import run_worker

    run_worker(args.concurrency, args.loglevel)


def _token(args: argparse.Namespace) -> None:
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username=args.username)
    token, _ = Token.objects.get_or_create(user=user)
    print(token.key)


def _user(args: argparse.Namespace) -> int:
    """The password comes from COLLECT_PASSWORD if set (for scripts), else from a prompt."""
    import getpass

    password = os.environ.get("COLLECT_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for {args.username}: ")
        if password != getpass.getpass("again: "):
            print("collect: the passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("collect: an empty password is not allowed", file=sys.stderr)
        return 1
    _setup_django()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    user, created = get_user_model().objects.get_or_create(username=args.username)
    user.set_password(password)
    user.save()
    print(f"{'created' if created else 'updated'} user {args.username}")
    return 0


def _generate(args: argparse.Namespace) -> None:
    from collect.generate import generate, generate_realistic

    if args.realistic:
        line_end = "\r\n" if args.crlf else "\n"
        generate_realistic(
            args.output, args.rows, seed=args.seed, line_end=line_end, bad_every=args.bad_every
        )
    else:
        generate(args.output, args.rows, seed=args.seed)
    print(f"wrote {args.rows} responses to {args.output}")
