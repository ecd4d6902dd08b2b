"""The web page (`/`) in a real browser: headless Chromium driven by Playwright against a real
`collect serve` (and its Celery workers on the distributed stack, see conftest).

The scenario is a user's: sign in; upload a file by tus in small chunks, pause the transfer,
reload the page, pick the file again and see the upload continue where it stopped; pause and
resume the import from the jobs table and watch it complete; export the rows and download
the file. The file is the session's `big_csv` (1M rows) gzip-compressed: about 45 MB to send,
so the transfer takes many chunks, and about 5 s of import, so the import is surely still
running when the page pauses it.

Debian's Chromium is used as it is (`playwright install` downloads browsers, which this
project never does). Screenshots of the key moments go to tests/e2e/screenshots/.
"""

import csv
import gzip
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright import sync_api

from tests.e2e.conftest import COLLECT, assert_imported_exactly_once

expect = sync_api.expect

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium waits on services it cannot reach here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "a long enough password"
CHUNK_BYTES = 2 * 1024 * 1024
STEADY_WINDOW_S = 0.6
# collect.generate spreads its rows over the year before 2026-01-01 (both ends inclusive).
EXPORT_FROM, EXPORT_TO = "2025-01-01", "2026-01-01"
SLOW_MS = 120_000  # a whole import or export


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(
        base_url=f"http://127.0.0.1:{server.port}", viewport=VIEWPORT, accept_downloads=True
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page's scripts failed: {errors}"


@pytest.fixture(scope="module")
def web_user(server) -> str:
    """alice, with a password, made as an operator makes one: `collect user alice`."""
    result = subprocess.run(
        [str(COLLECT), "user", "alice"],
        env={**server.env, "COLLECT_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return "alice"


@pytest.fixture(scope="module")
def gz_file(big_csv, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("web") / "responses.csv.gz"
    with big_csv.path.open("rb") as source, gzip.open(path, "wb", compresslevel=6) as target:
        shutil.copyfileobj(source, target, 1 << 20)
    return path


def sign_in(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#sign-in")


def open_home(page, query: str = "") -> None:
    page.goto(f"/{query}")
    page.wait_for_selector("body[data-ready]")  # app.js has set up its handlers


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, animations="disabled")  # bars at their value


def test_signing_in_and_out(page, server, web_user):
    page.goto("/")
    expect(page).to_have_url("/login/?next=/")

    sign_in(page, web_user, "not the password")
    expect(page.locator("#signin-error")).to_be_visible()

    sign_in(page, web_user, PASSWORD)
    expect(page).to_have_url("/")
    expect(page.get_by_test_id("username")).to_have_text(web_user)
    expect(page.locator("#jobs")).to_be_visible()

    page.click("#sign-out")
    expect(page).to_have_url("/login/")
    page.goto("/")
    expect(page).to_have_url("/login/?next=/")


def test_upload_pause_reload_resume_import_control_and_export(
    page, server, web_user, big_csv, gz_file, tmp_path
):
    alice = server.client(web_user)  # the same account, by token, to check the server's side
    panel = page.locator("#upload-panel")
    patches: list[int] = []  # Upload-Offset of each chunk the page sends
    creations: list[str] = []
    page.on("request", lambda request: record(request, patches, creations))

    sign_in(page, web_user, PASSWORD)
    open_home(page, f"?chunk={CHUNK_BYTES}")

    # Pick the file; pause the transfer once some chunks are in.
    page.set_input_files("#file-input", gz_file)
    page.wait_for_function("Number(document.querySelector('#upload-panel').dataset.offset) > 0")
    page.click("#upload-pause")
    expect(panel).to_have_attribute("data-state", "paused")
    expect(page.locator("#upload-resume")).to_be_enabled()
    acknowledged = int(panel.get_attribute("data-offset"))
    upload_path = urlsplit(panel.get_attribute("data-url")).path
    assert len(creations) == 1

    # Paused means paused: the server's copy stops growing. The chunk whose request was
    # aborted may still land if all its bytes had reached the server: that one, no more.
    paused_at = steady_offset(alice, upload_path)
    assert acknowledged <= paused_at <= acknowledged + CHUNK_BYTES
    assert 0 < paused_at < gz_file.stat().st_size

    # After a reload the page knows the unfinished upload; picking the file continues it.
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#upload-pending")).to_contain_text("pick it again to resume")
    patches.clear()
    page.set_input_files("#file-input", gz_file)
    percent = 100 * paused_at // gz_file.stat().st_size
    expect(page.get_by_test_id("message").first).to_contain_text(
        f"Resuming the upload of {gz_file.name} at {percent}%"
    )
    expect(panel).to_have_attribute("data-state", "done", timeout=SLOW_MS)
    assert patches[0] == paused_at, "the first chunk after the reload must start where it stopped"
    assert len(creations) == 1, "the reload must not have started a new upload"
    task_id = panel.get_attribute("data-task-id")
    assert task_id

    # The import is in the table; pause it there at once (on PostgreSQL 1M rows take about
    # 3 s), then resume it and watch it run to the end.
    row = page.locator(f'#jobs-body tr[data-task-id="{task_id}"]')
    expect(row).to_have_attribute("data-status", re.compile("queued|running"), timeout=30_000)
    row.locator('[data-action="pause"]').click()
    expect(row.get_by_test_id("job-status")).to_have_text("paused", timeout=15_000)
    expect(row.locator('[data-action="pause"]')).to_be_disabled()
    expect(row.locator('[data-action="resume"]')).to_be_enabled()
    paused = alice.job(task_id)
    assert paused["status"] == "paused"
    assert paused["progress"]["rows_done"] < big_csv.rows, paused
    screenshot(page, "paused-import.png")

    row.locator('[data-action="resume"]').click()
    page.wait_for_function(
        "([id, before]) => Number(document.querySelector(`tr[data-task-id='${id}']`)"
        ".dataset.rowsDone) > before",
        arg=[task_id, paused["progress"]["rows_done"]],
        timeout=SLOW_MS,
    )
    if row.get_attribute("data-status") == "running":
        screenshot(page, "running-import.png")
    expect(row.get_by_test_id("job-status")).to_have_text("completed", timeout=SLOW_MS)
    expect(row).to_have_attribute("data-rows-done", str(big_csv.rows))
    assert_imported_exactly_once(server, alice.job(task_id), big_csv.rows)
    for action in ("pause", "resume", "terminate"):
        expect(row.locator(f'[data-action="{action}"]')).to_be_disabled()

    # Export everything imported; download the file from the table.
    page.fill("#export-dataset", "responses")
    page.fill("#export-from", EXPORT_FROM)
    page.fill("#export-to", EXPORT_TO)
    page.click("#export-submit")
    export_row = page.locator('#jobs-body tr[data-kind="export"]')
    expect(export_row).to_have_count(1)
    expect(export_row.get_by_test_id("job-status")).to_have_text("completed", timeout=SLOW_MS)
    expect(export_row).to_have_attribute("data-rows-done", str(big_csv.rows))
    screenshot(page, "completed-export.png")
    with page.expect_download() as download:
        export_row.locator('[data-link="download"]').click()
    exported = tmp_path / "export.csv"
    download.value.save_as(exported)
    with exported.open(newline="", encoding="utf-8") as stream:
        assert sum(1 for _ in csv.reader(stream)) - 1 == big_csv.rows  # less the header

    # A refused action is shown. The table is refreshed once a second, so a button can be a
    # second behind its job: a click on it then meets the server's 409. Re-enabling the
    # button of the completed job makes that click happen now.
    row.evaluate(
        """row => {
            const button = row.querySelector('[data-action="resume"]');
            button.disabled = false;
            button.click();
        }"""
    )
    expect(page.locator(".message.error").first).to_contain_text(
        "cannot resume a job that is completed"
    )


def test_an_upload_whose_import_cannot_start_shows_why(page, web_user, tmp_path):
    bad = tmp_path / "duplicate-header.csv"
    bad.write_text("id,id\n1,2\n")
    sign_in(page, web_user, PASSWORD)
    open_home(page)
    page.set_input_files("#file-input", bad)
    expect(page.locator("#upload-panel")).to_have_attribute("data-state", "failed")
    expect(page.locator(".message.error").first).to_contain_text(
        f"The upload of {bad.name} failed: "
    )
    expect(page.locator("#upload-text")).to_contain_text("the header names column 'id' twice")
    # Nothing is left to resume: the server has refused the file for good.
    assert page.evaluate("Object.keys(localStorage).length") == 0


def record(request, patches: list[int], creations: list[str]) -> None:
    if request.method == "PATCH" and "/api/uploads/" in request.url:
        patches.append(int(request.headers["upload-offset"]))
    elif request.method == "POST" and request.url.endswith("/api/uploads/"):
        creations.append(request.url)


def steady_offset(client, upload_path: str, *, timeout: float = 10.0) -> int:
    """The upload's offset on the server once it stays the same for STEADY_WINDOW_S."""
    deadline = time.monotonic() + timeout
    offset = head_offset(client, upload_path)
    while True:
        time.sleep(STEADY_WINDOW_S)
        again = head_offset(client, upload_path)
        if again == offset:
            return offset
        assert time.monotonic() < deadline, f"the upload still grows: {offset} then {again}"
        offset = again


def head_offset(client, upload_path: str) -> int:
    reply = client.request("HEAD", upload_path, headers={"Tus-Resumable": "1.0.0"})
    assert reply.status == 200, reply.status
    return int(reply.headers["Upload-Offset"])
