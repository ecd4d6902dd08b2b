"""The schema-driven fuzzer `schemathesis` against a real server, as a client that knows only
/api/schema/ would call it: every operation, with the statuses and bodies the schema
documents, in all its phases (examples, coverage, fuzzing, stateful runs along the
schema's links). Its settings, and the few rules the schema cannot state, are in
tests/e2e/schemathesis/."""

import json
import os
import subprocess
import sys
from pathlib import Path

SETTINGS = Path(__file__).parent / "schemathesis"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
FUZZ_TIMEOUT_S = 240  # it takes well under a minute; a hang must not hold CI


def test_the_schema_fuzzer_finds_no_failure(server, tmp_path):
    user = server.client("fuzzer")
    rows = "id,submitted_at,answer\n" + "".join(f"{n},2025-03-01,x\n" for n in range(20))
    imported = user.start_import(rows.encode(), dataset="fuzzed")
    user.wait_for_status(imported["task_id"], "completed")
    body = json.dumps({"dataset": "fuzzed", "from": "2025-03-01", "to": "2025-03-01"})
    headers = {"Content-Type": "application/json"}
    export = user.request("POST", "/api/exports/", body=body, headers=headers).json()
    user.wait_for_status(export["task_id"], "completed")
    report = tmp_path / "junit.xml"

    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(SETTINGS / "schemathesis.toml"),
            "run",
            f"http://127.0.0.1:{server.port}/api/schema/",
            "--header",
            f"Authorization: Token {server.tokens['fuzzer']}",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "hooks",
            "PYTHONPATH": str(SETTINGS),
            # Ids that exist, so that operations on a task or dataset get past their 404.
            "COLLECT_FUZZ_TASK_ID": export["task_id"],
            "COLLECT_FUZZ_DATASET": "fuzzed",
        },
        capture_output=True,
        text=True,
        timeout=FUZZ_TIMEOUT_S,
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    tested = report.read_text()
    assert 'failures="0"' in tested and 'errors="0"' in tested, tested[:2000]
    schema = user.request("GET", "/api/schema/?format=json").json()
    operations = sum(len(path) for path in schema["paths"].values())
    # Every operation the schema has, and a run of the stateful phase.
    assert tested.count("<testcase ") == operations + 1, tested[:2000]
