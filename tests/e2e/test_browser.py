"""The web page (`/`) in a real browser: headless Chromium driven by Playwright against a real
`collect serve` (and its Celery workers on the distributed stack, see conftest), on a phone's
width (390 px) and a laptop's (1280 px).

The scenarios are a user's: sign in; upload a file by tus in small chunks, pause the
transfer, reload the page, pick the file again and see it continue where it stopped, then
cancel it; upload it whole, pause and resume the import and watch it complete; export the
dataset picked from its list and download the file; send the same file again, see that it
was imported already and import it anyway, then terminate that job; look at rejected rows;
and check at both widths that the page fits: no sideways scroll, every button inside its
job's box with its text whole. The file is the session's `big_csv` (1M rows)
gzip-compressed: about 45 MB to send, so the transfer takes many chunks, and about 5 s of
import, so the import is surely still running when the page pauses it.

Debian's Chromium is used as it is (`playwright install` downloads browsers, which this
project never does). Screenshots of the key moments go to tests/e2e/screenshots/, and the
README's two to docs/.
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
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).parent / "screenshots"
DOCS = Path(__file__).parent.parent.parent / "docs"
PASSWORD = "a long enough password"
CHUNK_BYTES = 2 * 1024 * 1024
SMALL_CHUNK_BYTES = 64 * 1024
STEADY_WINDOW_S = 0.6
# collect.generate spreads its rows over the year before 2026-01-01 (both ends inclusive).
EXPORT_FROM, EXPORT_TO = "2025-01-01", "2026-01-01"
SLOW_MS = 120_000  # a whole import or export
DASH = " \u2013 "  # between the days of a span


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, server):
    """Opens pages of a given viewport; each must end without a script error."""
    opened: list[tuple] = []

    def new(viewport: dict[str, int]):
        context = browser.new_context(
            base_url=f"http://127.0.0.1:{server.port}", viewport=viewport, accept_downloads=True
        )
        context.set_default_timeout(30_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        opened.append((context, errors))
        return page

    yield new
    for context, errors in opened:
        context.close()
        assert not errors, f"the page's scripts failed: {errors}"


@pytest.fixture
def page(new_page):
    return new_page(LAPTOP)


@pytest.fixture
def phone(new_page):
    return new_page(PHONE)


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


def screenshot(page, name: str, *, directory: Path = SCREENSHOTS, full_page=False) -> None:
    directory.mkdir(exist_ok=True)
    path = directory / name
    page.screenshot(path=path, animations="disabled", full_page=full_page)  # bars at their value


def job_row(page, task_id: str):
    return page.locator(f'#jobs-body tr[data-task-id="{task_id}"]')


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


def test_an_upload_paused_reloaded_resumed_and_cancelled_on_a_phone(
    phone, server, web_user, gz_file
):
    page = phone
    alice = server.client(web_user)
    panel = page.locator("#upload-panel")
    patches: list[int] = []  # Upload-Offset of each chunk the page sends
    creations: list[str] = []
    deletions: list[str] = []
    page.on("request", lambda request: record(request, patches, creations, deletions))
    jobs_before = alice.get("/api/tasks/").json()["count"]

    sign_in(page, web_user, PASSWORD)
    open_home(page, f"?chunk={CHUNK_BYTES}")

    # Pick the file; once some chunks are in, the panel tells the speed and the time left.
    page.set_input_files("#file-input", gz_file)
    page.wait_for_function(
        f"Number(document.querySelector('#upload-panel').dataset.offset) >= {2 * CHUNK_BYTES}"
    )
    expect(page.locator("#upload-speed")).to_have_text(
        re.compile(r"^[\d.]+ [KMG]?B/s · (\d+ min )?\d+ s left$")
    )
    page.click("#upload-pause")
    expect(panel).to_have_attribute("data-state", "paused")
    expect(page.locator("#upload-resume")).to_be_enabled()
    expect(page.locator("#upload-speed")).to_have_text("")  # nothing moves while paused
    acknowledged = int(panel.get_attribute("data-offset"))
    upload_path = urlsplit(panel.get_attribute("data-url")).path
    assert len(creations) == 1

    # Paused means paused: the server's copy stops growing. The chunk whose request was
    # aborted may still land if all its bytes had reached the server: that one, no more.
    paused_at = steady_offset(alice, upload_path)
    assert acknowledged <= paused_at <= acknowledged + CHUNK_BYTES
    assert 0 < paused_at < gz_file.stat().st_size

    # After a reload the page lists the unfinished upload, as far as this browser knows it
    # (the chunk that was cut off is not counted); picking the file continues it from where
    # the server says it stands.
    # Small chunks from here on, so that the transfer is still under way when it is cancelled.
    open_home(page, f"?chunk={SMALL_CHUNK_BYTES}")
    known = 100 * acknowledged // gz_file.stat().st_size
    # On a loaded machine the aborted chunk can land later than the steady window: the
    # server's offset once more, which must still be that chunk at most.
    paused_at = steady_offset(alice, upload_path)
    assert acknowledged <= paused_at <= acknowledged + CHUNK_BYTES
    percent = 100 * paused_at // gz_file.stat().st_size
    expect(page.locator("#upload-pending-list li")).to_have_text(
        re.compile(
            rf"^{re.escape(gz_file.name)} into responses: stopped at {known}% of 4\d\.\d MB, "
            r"started .+ — pick it again to resume\.Discard$"
        )
    )
    patches.clear()
    page.set_input_files("#file-input", gz_file)
    expect(page.get_by_test_id("message").locator("span")).to_have_text(
        f"Resuming the upload of {gz_file.name} at {percent}%."
    )
    expect(page.locator("#upload-pending")).to_be_hidden()  # it is the one running now
    page.wait_for_function(
        f"Number(document.querySelector('#upload-panel').dataset.offset) > {paused_at}"
    )
    assert patches[0] == paused_at, "the first chunk after the reload must start where it stopped"
    assert len(creations) == 1, "the reload must not have started a new upload"

    expect(panel).to_have_attribute("data-state", "uploading")
    # Cancel: the transfer stops, the server's copy is deleted (tus termination), nothing is
    # left to resume and no import started.
    page.click("#upload-cancel")
    expect(panel).to_have_attribute("data-state", "cancelled")
    expect(page.locator("#upload-text")).to_have_text("Cancelled: what was sent is deleted.")
    assert [urlsplit(url).path for url in deletions] == [upload_path]
    head = alice.request("HEAD", upload_path, headers={"Tus-Resumable": "1.0.0"})
    assert head.status in (404, 410), head.status
    assert page.evaluate("Object.keys(localStorage).length") == 0
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#upload-pending")).to_be_hidden()
    assert alice.get("/api/tasks/").json()["count"] == jobs_before


def test_an_unfinished_upload_discarded_from_the_list(page, server, web_user, tmp_path):
    alice = server.client(web_user)
    small = tmp_path / "small.csv"
    small.write_text("id,answer\n" + "".join(f"{n},answer number {n}\n" for n in range(100_000)))
    sign_in(page, web_user, PASSWORD)
    open_home(page, f"?chunk={16 * 1024}")
    page.fill("#upload-dataset", "discarded")
    page.set_input_files("#file-input", small)
    page.wait_for_function("Number(document.querySelector('#upload-panel').dataset.offset) > 0")
    page.click("#upload-pause")
    expect(page.locator("#upload-panel")).to_have_attribute("data-state", "paused")
    upload_path = urlsplit(page.locator("#upload-panel").get_attribute("data-url")).path

    open_home(page)
    item = page.locator("#upload-pending-list li")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("small.csv into discarded: stopped at ")
    item.get_by_role("button", name="Discard the unfinished upload of small.csv").click()
    expect(page.get_by_test_id("message").locator("span")).to_have_text(
        "The unfinished upload of small.csv is discarded."
    )
    expect(page.locator("#upload-pending")).to_be_hidden()
    assert page.evaluate("Object.keys(localStorage).length") == 0
    head = alice.request("HEAD", upload_path, headers={"Tus-Resumable": "1.0.0"})
    assert head.status in (404, 410), head.status


def test_import_paused_resumed_exported_sent_again_and_terminated(
    page, server, web_user, big_csv, gz_file, tmp_path
):
    alice = server.client(web_user)
    panel = page.locator("#upload-panel")
    page.on("dialog", lambda dialog: dialog.accept())  # "Terminate this job?"
    sign_in(page, web_user, PASSWORD)
    open_home(page)

    page.set_input_files("#file-input", gz_file)
    expect(panel).to_have_attribute("data-state", "done", timeout=SLOW_MS)
    task_id = panel.get_attribute("data-task-id")
    assert task_id

    # The import is listed; pause it at once (on PostgreSQL 1M rows take about 3 s). Paused,
    # it shows no rate and no time left but when it will be terminated.
    row = job_row(page, task_id)
    expect(row).to_have_attribute("data-status", re.compile("queued|running"), timeout=30_000)
    row.locator('[data-action="pause"]').click()
    expect(row.get_by_test_id("job-status")).to_have_text("paused", timeout=15_000)
    detail = row.get_by_test_id("job-detail")
    expect(detail).to_have_text(re.compile(r"^Paused: terminated in [0-5]:\d\d unless resumed$"))
    expect(row.locator('[data-action="pause"]')).to_be_disabled()
    expect(row.locator('[data-action="resume"]')).to_be_enabled()
    paused = alice.job(task_id)
    assert paused["status"] == "paused"
    assert paused["pause_expires_at"]
    assert paused["progress"]["rows_done"] < big_csv.rows, paused
    screenshot(page, "paused-import.png")

    row.locator('[data-action="resume"]').click()
    expect(row.get_by_test_id("job-status")).to_have_text("completed", timeout=SLOW_MS)
    expect(row).to_have_attribute("data-rows-done", str(big_csv.rows))
    rows = f"{big_csv.rows:,}"
    expect(detail).to_have_text(
        re.compile(rf"^{rows} of {rows} rows imported · 4\d\.\d MB in (\d+ min )?\d+ s$")
    )
    assert_imported_exactly_once(server, alice.job(task_id), big_csv.rows)
    for action in ("pause", "resume", "terminate"):  # nothing left to control
        expect(row.locator(f'[data-action="{action}"]')).to_be_hidden()

    # The dataset is listed with its rows and span; the export form picks it and its span.
    dataset = alice.get("/api/datasets/responses/").json()
    span = f"{dataset['first_day']}{DASH}{dataset['last_day']}"
    listed = page.locator('#datasets li[data-name="responses"]')
    expect(listed.locator('[data-cell="rows"]')).to_have_text(f"{rows} rows")
    expect(listed.locator('[data-cell="span"]')).to_have_text(f"{span} · 1 import")
    expect(listed.locator('[data-cell="columns"]')).to_have_text(
        "11 columns: " + ", ".join(dataset["columns"])
    )
    page.select_option("#export-dataset", "responses")
    expect(page.locator("#export-from")).to_have_value(dataset["first_day"])
    expect(page.locator("#export-to")).to_have_value(dataset["last_day"])
    page.click("#export-submit")
    export_row = page.locator('#jobs-body tr[data-kind="export"]')
    expect(export_row).to_have_count(1)
    expect(export_row.get_by_test_id("job-status")).to_have_text("completed", timeout=SLOW_MS)
    expect(export_row).to_have_attribute("data-rows-done", str(big_csv.rows))
    expect(export_row.get_by_test_id("job-detail")).to_have_text(
        re.compile(rf"^{rows} rows exported · \d+\.\d MB in (\d+ min )?\d+ s$")
    )
    screenshot(page, "completed-export.png")
    with page.expect_download() as download:
        export_row.locator('[data-link="download"]').click()
    exported = tmp_path / "export.csv"
    download.value.save_as(exported)
    with exported.open(newline="", encoding="utf-8") as stream:
        assert sum(1 for _ in csv.reader(stream)) - 1 == big_csv.rows  # less the header

    # The same file again: the page says it was imported, links to that job, and imports
    # it anyway only when asked to.
    page.set_input_files("#file-input", gz_file)
    expect(panel).to_have_attribute("data-state", "duplicate", timeout=SLOW_MS)
    expect(page.locator("#upload-duplicate-text")).to_contain_text(
        f"{gz_file.name} was already imported into responses ("
    )
    expect(page.locator("#upload-duplicate-job")).to_have_attribute("href", f"#job-{task_id}")
    assert alice.get("/api/tasks/?kind=import").json()["count"] == 1
    assert page.evaluate("Object.keys(localStorage).length") == 0
    page.click("#upload-force")
    expect(panel).to_have_attribute("data-state", "done", timeout=SLOW_MS)
    again = panel.get_attribute("data-task-id")
    assert again and again != task_id

    # Terminated, it shows the rows it rolled back, not rows held.
    row = job_row(page, again)
    expect(row.locator('[data-action="terminate"]')).to_be_enabled()
    row.locator('[data-action="terminate"]').click()
    expect(row.get_by_test_id("job-status")).to_have_text("terminated", timeout=30_000)
    rolled_back = alice.job(again)["rows_rolled_back"]
    expect(row.get_by_test_id("job-detail")).to_have_text(
        f"{rolled_back:,} rows rolled back (terminated by user)"
    )
    expect(row.locator('[data-cell="rows"]')).to_have_text("")

    # A refused action is shown, one message at a time. The table is refreshed once a
    # second, so a button can be a second behind its job: a click on it then meets the
    # server's 409. Re-enabling the buttons of the completed job makes that happen now.
    for action in ("resume", "pause"):
        job_row(page, task_id).evaluate(
            """(row, action) => {
                const button = row.querySelector(`[data-action="${action}"]`);
                button.hidden = false;
                button.disabled = false;
                button.click();
            }""",
            action,
        )
        expect(page.locator(".message.error")).to_contain_text(
            f"cannot {action} a job that is completed"
        )
    expect(page.get_by_test_id("message")).to_have_count(1)


def test_rejected_rows_and_an_export_with_no_rows(page, server, web_user, tmp_path):
    bad = tmp_path / "survey.csv"
    bad.write_text(
        "id,answered,answer\n"
        "1,2024-03-01T10:00:00Z,yes\n"
        "2,not a date,no\n"
        '3,2024-03-04T10:00:00Z,"maybe, later"\n'
        "4,2024-03-05T10:00:00Z\n"
    )
    sign_in(page, web_user, PASSWORD)
    open_home(page)
    page.fill("#upload-dataset", "survey")
    page.fill("#upload-timestamp", "answered")
    page.select_option("#upload-on-error", "skip")
    page.set_input_files("#file-input", bad)
    panel = page.locator("#upload-panel")
    expect(panel).to_have_attribute("data-state", "done")
    row = job_row(page, panel.get_attribute("data-task-id"))
    expect(row.get_by_test_id("job-status")).to_have_text("completed", timeout=SLOW_MS)
    expect(row.get_by_test_id("job-detail")).to_have_text(
        re.compile(r"^2 of 4 rows imported, 2 rejected · \d+ B in \d+ s$")
    )
    # The timestamp column dates the rows: the span is that of the column's good rows.
    listed = page.locator('#datasets li[data-name="survey"]')
    expect(listed.locator('[data-cell="span"]')).to_have_text(
        f"2024-03-01{DASH}2024-03-04 · 1 import"
    )

    button = row.locator('[data-show="rejects"]')
    expect(button).to_have_text("2 rejected rows")
    button.click()
    dialog = page.locator("#rejects")
    expect(dialog).to_be_visible()
    expect(page.locator("#rejects-summary")).to_have_text("2 rows were rejected.")
    lines = page.locator("#rejects-body tr")
    expect(lines).to_have_count(2)
    expect(lines.nth(0).locator("td").nth(0)).to_have_text("3")
    expect(lines.nth(0).locator("td").nth(1)).to_contain_text("not a date")
    expect(lines.nth(0).locator("td").nth(2)).to_have_text("2,not a date,no")
    expect(lines.nth(1).locator("td").nth(0)).to_have_text("5")
    expect(lines.nth(1).locator("td").nth(1)).to_have_text("expected 3 fields, found 2")
    task_id = row.get_attribute("data-task-id")
    expect(page.locator("#rejects-csv")).to_have_attribute("href", f"/api/tasks/{task_id}/errors/")
    screenshot(page, "rejected-rows.png")
    page.click("#rejects-close")
    expect(dialog).to_be_hidden()

    # An export of a range without rows says so and offers nothing to download.
    page.select_option("#export-dataset", "survey")
    expect(page.locator("#export-from")).to_have_value("2024-03-01")
    page.fill("#export-from", "2020-01-01")
    page.fill("#export-to", "2020-01-31")
    page.click("#export-submit")
    export_row = page.locator('#jobs-body tr[data-kind="export"]').first
    expect(export_row).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    expect(export_row.get_by_test_id("job-detail")).to_have_text(
        "No rows in that range: nothing to download."
    )
    expect(export_row.locator('[data-link="download"]')).to_be_hidden()


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


# What does not fit: the page wider than the screen, a button outside its job's box, a
# button whose text is cut.
LAYOUT_PROBLEMS = """() => {
    const problems = [];
    const width = document.documentElement.scrollWidth;
    if (width > innerWidth) problems.push(`the page is ${width} px wide in ${innerWidth}`);
    const visible = (element) => element.getClientRects().length > 0;
    for (const row of document.querySelectorAll("#jobs-body tr")) {
        const box = row.getBoundingClientRect();
        for (const button of row.querySelectorAll(".button")) {
            if (!visible(button)) continue;
            const own = button.getBoundingClientRect();
            const name = `${button.textContent} of ${row.dataset.label}`;
            if (own.left < box.left - 0.5 || own.right > box.right + 0.5 ||
                own.top < box.top - 0.5 || own.bottom > box.bottom + 0.5) {
                problems.push(`${name} is outside its job's box`);
            }
        }
    }
    for (const button of document.querySelectorAll(".button")) {
        if (visible(button) && button.scrollWidth > button.clientWidth) {
            problems.push(`the text of ${button.textContent.trim()} is cut`);
        }
    }
    return problems;
}"""


def test_the_page_fits_a_phone_and_a_laptop(new_page, server, web_user, big_csv):
    """With jobs in every kind of state (the earlier tests' and a paused and a running one
    made here), at 390 and 1280 px."""
    alice = server.client(web_user)
    paused = alice.start_import(big_csv.path, force="true")["task_id"]
    alice.wait_until_writing(paused)
    assert alice.control(paused, "pause").status == 200
    alice.wait_for_status(paused, "paused")
    running = None
    for viewport, name, full_page in (
        (PHONE, "screenshot-phone.png", False),
        (LAPTOP, "screenshot.png", True),
    ):
        if running is None or alice.job(running)["status"] not in ("queued", "running"):
            running = alice.start_import(big_csv.path, force="true")["task_id"]
        page = new_page(viewport)
        sign_in(page, web_user, PASSWORD)
        open_home(page)
        # The running job's rate and time left, the widest its row gets.
        expect(job_row(page, running).get_by_test_id("job-detail")).to_have_text(
            re.compile(r"rows/s · .+ left$"), timeout=30_000
        )
        expect(job_row(page, paused).get_by_test_id("job-detail")).to_have_text(
            re.compile(r"^Paused: terminated in \d:\d\d unless resumed$")
        )
        kinds = page.locator("#jobs-body tr").evaluate_all(
            "rows => new Set(rows.map(row => row.dataset.status)).size"
        )
        assert kinds >= 4  # completed, terminated, paused, running (and queued, maybe)
        assert page.evaluate(LAYOUT_PROBLEMS) == []
        if viewport is PHONE:
            page.evaluate("document.querySelector('#jobs-card').scrollIntoView()")
        screenshot(page, name, directory=DOCS, full_page=full_page)
    for task_id in (paused, running):
        alice.control(task_id, "terminate")


def record(request, patches: list[int], creations: list[str], deletions: list[str]) -> None:
    if request.method == "PATCH" and "/api/uploads/" in request.url:
        patches.append(int(request.headers["upload-offset"]))
    elif request.method == "POST" and request.url.endswith("/api/uploads/"):
        creations.append(request.url)
    elif request.method == "DELETE" and "/api/uploads/" in request.url:
        deletions.append(request.url)


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
