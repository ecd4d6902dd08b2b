// The page: resumable uploads, the datasets and the export form, and the live list of the
// user's jobs (a table on wide screens, cards on narrow ones: see style.css).

import { api, csrfHeaders, sentence } from "./api.js";
import { DuplicateError, TusError, Upload, discardUpload, unfinishedUploads } from "./tus.js";

const $ = (selector, root = document) => root.querySelector(selector);
const REFRESH_MS = 1000;
const INFO_MESSAGE_MS = 8000;
const SPEED_WINDOW_MS = 5000; // upload speed over the last few seconds, not since the start
const ACTIONS = {
  pause: ["queued", "running"],
  resume: ["paused"],
  terminate: ["queued", "running", "pausing", "paused"],
};
const FINAL = ["completed", "failed", "terminated"];
const numbers = new Intl.NumberFormat();

// Messages: one at a time. A new one replaces the last, so that errors never pile up.

let messageTimer = null;

function say(text, kind = "info") {
  clearTimeout(messageTimer);
  const box = document.createElement("div");
  box.className = `message ${kind}`;
  box.dataset.testid = "message";
  const words = document.createElement("span");
  words.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "message-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => box.remove());
  box.append(words, close);
  $("#messages").replaceChildren(box);
  // Errors stay until dismissed or replaced: the user may be looking elsewhere.
  if (kind !== "error") messageTimer = setTimeout(() => box.remove(), INFO_MESSAGE_MS);
}

// Upload

const card = $("#upload-card");
const panel = $("#upload-panel");
const pauseButton = $("#upload-pause");
const resumeButton = $("#upload-resume");
const cancelButton = $("#upload-cancel");
let upload = null;
let samples = []; // [time, offset] of the last few seconds, for the speed

function chunkSize() {
  // ?chunk=BYTES lets a test make a small file take many chunks.
  const asked = Number(new URLSearchParams(location.search).get("chunk"));
  return asked > 0 ? asked : Number(card.dataset.chunkSize);
}

function setUploadState(state, text) {
  panel.hidden = false;
  panel.dataset.state = state;
  pauseButton.disabled = state !== "uploading";
  resumeButton.disabled = !(state === "paused" || state === "interrupted");
  cancelButton.disabled = !["uploading", "paused", "interrupted"].includes(state);
  $("#upload-duplicate").hidden = state !== "duplicate";
  if (state !== "uploading") $("#upload-speed").textContent = "";
  if (text !== undefined) $("#upload-text").textContent = text;
}

function showUploadProgress(offset, size) {
  const percent = size ? (100 * offset) / size : 100;
  panel.dataset.offset = offset;
  setBar($("#upload-bar"), percent);
  $("#upload-text").textContent =
    `${formatBytes(offset)} of ${formatBytes(size)} · ${percent.toFixed(0)}%`;
  showSpeed(offset, size);
}

function showSpeed(offset, size) {
  const now = performance.now();
  samples.push([now, offset]);
  while (samples.length > 2 && now - samples[0][0] > SPEED_WINDOW_MS) samples.shift();
  const [then, before] = samples[0];
  const speed = now > then ? ((offset - before) * 1000) / (now - then) : 0;
  $("#upload-speed").textContent =
    speed > 0
      ? `${formatBytes(speed)}/s · ${formatDuration((size - offset) / speed)} left`
      : "measuring the speed…";
}

function pickFile(file, { force = false } = {}) {
  if (upload && panel.dataset.state === "uploading") {
    say("An upload is running: pause it or let it finish first.", "error");
    return;
  }
  const metadata = {
    filename: file.name,
    dataset: $("#upload-dataset").value.trim() || "responses",
    timestamp_column: $("#upload-timestamp").value.trim(),
    on_error: $("#upload-on-error").value,
  };
  if (force) metadata.force = "true";
  upload = new Upload(file, {
    endpoint: new URL(card.dataset.endpoint, location.href).href,
    chunkSize: chunkSize(),
    metadata,
    headers: csrfHeaders,
    onProgress: showUploadProgress,
    onResume: (offset, size) => {
      samples = [];
      showUploadProgress(offset, size);
      const percent = size ? Math.floor((100 * offset) / size) : 0;
      say(`Resuming the upload of ${file.name} at ${percent}%.`);
      showUnfinished(); // it is the one under way now, no longer waiting to be picked
    },
  });
  $("#upload-name").textContent = file.name;
  panel.dataset.offset = 0;
  delete panel.dataset.taskId;
  delete panel.dataset.url;
  setBar($("#upload-bar"), 0);
  runUpload();
}

async function runUpload() {
  samples = [[performance.now(), upload.offset]];
  setUploadState("uploading", "Connecting…");
  $("#upload-speed").textContent = "measuring the speed…";
  const current = upload;
  try {
    const result = await current.start();
    if (current !== upload || result.cancelled) return;
    if (result.paused) {
      const size = current.file.size;
      const percent = size ? (100 * current.offset) / size : 0;
      setUploadState("paused", `Paused at ${percent.toFixed(0)}% of ${formatBytes(size)}`);
      return;
    }
    panel.dataset.url = current.url;
    panel.dataset.taskId = result.taskId;
    showUploadProgress(current.file.size, current.file.size);
    setUploadState("done", "Uploaded: the import has started below.");
    refreshJobs();
  } catch (error) {
    if (current !== upload) return;
    if (error instanceof DuplicateError) {
      showDuplicate(error);
      return;
    }
    const resumable = error instanceof TusError && error.retryable;
    setUploadState(resumable ? "interrupted" : "failed", error.message);
    say(
      `The upload of ${current.file.name} failed: ${sentence(error.message)}` +
        (resumable ? " Press Resume to continue." : ""),
      "error",
    );
  } finally {
    if (current.url && current === upload) panel.dataset.url = current.url;
    showUnfinished();
  }
}

// The server has these bytes in this dataset already: say so, link to that job, and offer
// to send them again with `force`.
function showDuplicate(error) {
  panel.dataset.duplicateOf = error.taskId;
  setUploadState("duplicate", "Not imported again.");
  const { dataset } = upload.metadata;
  $("#upload-duplicate-text").textContent =
    `${upload.file.name} was already imported into ${dataset}` +
    ` (${sentence(error.message)}) Importing it again would add every row a second time.`;
  const link = $("#upload-duplicate-job");
  link.href = `#job-${error.taskId}`;
  link.dataset.taskId = error.taskId;
}

async function cancelUpload() {
  const current = upload;
  if (!current) return;
  cancelButton.disabled = true;
  try {
    await current.cancel();
    samples = [];
    setUploadState("cancelled", "Cancelled: what was sent is deleted.");
    say(`The upload of ${current.file.name} is cancelled.`);
  } catch (error) {
    say(`Could not cancel the upload: ${sentence(error.message)}`, "error");
    setUploadState("paused");
  } finally {
    showUnfinished();
  }
}

function showUnfinished() {
  const active = panel.dataset.state === "cancelled" ? null : upload?.url;
  const pending = unfinishedUploads().filter((entry) => entry.url !== active);
  $("#upload-pending").hidden = pending.length === 0;
  $("#upload-pending-list").replaceChildren(...pending.map(unfinishedItem));
}

function unfinishedItem(entry) {
  const item = document.createElement("li");
  item.dataset.url = entry.url;
  const percent = entry.size ? Math.floor((100 * entry.offset) / entry.size) : 0;
  const words = document.createElement("span");
  const into = entry.dataset ? ` into ${entry.dataset}` : "";
  const when = entry.started ? `, started ${formatWhen(new Date(entry.started))}` : "";
  words.textContent =
    `${entry.name}${into}: stopped at ${percent}% of ${formatBytes(entry.size)}${when}` +
    " — pick it again to resume.";
  const discard = document.createElement("button");
  discard.type = "button";
  discard.className = "button small danger";
  discard.textContent = "Discard";
  discard.setAttribute("aria-label", `Discard the unfinished upload of ${entry.name}`);
  discard.addEventListener("click", async () => {
    discard.disabled = true;
    try {
      await discardUpload(entry, csrfHeaders);
      say(`The unfinished upload of ${entry.name} is discarded.`);
    } catch (error) {
      say(`Could not discard the upload: ${sentence(error.message)}`, "error");
    }
    showUnfinished();
  });
  item.append(words, discard);
  return item;
}

function setupUpload() {
  const input = $("#file-input");
  const zone = $("#dropzone");
  input.addEventListener("change", () => {
    if (input.files.length) pickFile(input.files[0]);
    input.value = ""; // picking the same file again must fire "change" again
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) pickFile(event.dataTransfer.files[0]);
  });
  pauseButton.addEventListener("click", () => upload?.pause());
  resumeButton.addEventListener("click", () => upload && runUpload());
  cancelButton.addEventListener("click", cancelUpload);
  $("#upload-force").addEventListener("click", () => upload && pickFile(upload.file, { force: true }));
  $("#upload-duplicate-job").addEventListener("click", (event) => {
    event.preventDefault();
    showJob(event.currentTarget.dataset.taskId);
  });
  showUnfinished();
}

// Datasets and the export form

let datasets = [];

async function refreshDatasets() {
  const status = $("#datasets-status");
  try {
    const page = await api.get("/api/datasets/");
    datasets = page.results;
    status.textContent =
      page.count > datasets.length ? `The first ${datasets.length} of ${page.count}.` : "";
    status.classList.remove("error");
  } catch (error) {
    status.textContent = `Not up to date: ${error.message}`;
    status.classList.add("error");
  }
  renderDatasets();
}

function renderDatasets() {
  $("#datasets").replaceChildren(...datasets.map(datasetItem));
  $("#datasets-empty").hidden = datasets.length > 0;
  $("#dataset-names").replaceChildren(
    ...datasets.map((dataset) => new Option("", dataset.name)),
  );
  const select = $("#export-dataset");
  const chosen = select.value;
  if (datasets.length) {
    select.replaceChildren(...datasets.map((dataset) => new Option(dataset.name, dataset.name)));
    const keep = datasets.some((dataset) => dataset.name === chosen);
    select.value = keep ? chosen : datasets[0].name;
    if (!keep) useSpan(datasets[0]);
  }
  select.disabled = datasets.length === 0;
  $("#export-submit").disabled = datasets.length === 0;
}

function datasetItem(dataset) {
  const item = document.createElement("li");
  item.dataset.name = dataset.name;
  const head = document.createElement("div");
  head.className = "dataset-head";
  const name = document.createElement("strong");
  name.textContent = dataset.name;
  const rows = document.createElement("span");
  rows.dataset.cell = "rows";
  rows.textContent = `${numbers.format(dataset.rows ?? 0)} rows`;
  head.append(name, rows);
  const span = document.createElement("div");
  span.className = "sub";
  span.dataset.cell = "span";
  const imports = dataset.imports ?? 0;
  span.textContent =
    (dataset.first_day ? `${dataset.first_day} – ${dataset.last_day}` : "no dated rows yet") +
    ` · ${imports} ${imports === 1 ? "import" : "imports"}`;
  const columns = document.createElement("div");
  columns.className = "sub columns-list";
  columns.dataset.cell = "columns";
  const names = dataset.columns || [];
  columns.textContent = `${names.length} columns: ${names.join(", ")}`;
  item.append(head, span, columns);
  return item;
}

function useSpan(dataset) {
  if (!dataset?.first_day) return;
  $("#export-from").value = dataset.first_day;
  $("#export-to").value = dataset.last_day;
}

function setupExport() {
  const form = $("#export-form");
  // Until a dataset is chosen: the last month, a guess.
  $("#export-from").value ||= new Date(Date.now() - 30 * 86400e3).toISOString().slice(0, 10);
  $("#export-to").value ||= new Date().toISOString().slice(0, 10);
  $("#export-dataset").addEventListener("change", (event) => {
    useSpan(datasets.find((dataset) => dataset.name === event.target.value));
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = $("#export-submit");
    submit.disabled = true;
    const dataset = $("#export-dataset").value;
    try {
      await api.post("/api/exports/", {
        dataset,
        from: $("#export-from").value,
        to: $("#export-to").value,
      });
      say(`The export of ${dataset} has started.`);
      refreshJobs();
    } catch (error) {
      say(`The export was refused: ${error.message}`, "error");
    } finally {
      submit.disabled = false;
    }
  });
  refreshDatasets();
}

// Jobs

const ROW_HTML = `
  <td class="job">
    <strong data-cell="kind"></strong> <span data-cell="dataset"></span>
    <span class="sub" data-cell="file"></span>
    <time class="sub" data-cell="created"></time>
  </td>
  <td class="state"><span class="badge" data-testid="job-status"></span></td>
  <td class="progress">
    <div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100">
      <div class="bar-fill"></div>
    </div>
    <span class="percent" data-cell="percent"></span>
    <span class="detail" data-cell="detail" data-testid="job-detail"></span>
  </td>
  <td class="rows num">
    <span data-cell="rows"></span>
    <span class="sub" data-cell="rejected"></span>
  </td>
  <td class="actions"><div class="actions-box">
    <button type="button" class="button small" data-action="pause">Pause</button>
    <button type="button" class="button small" data-action="resume">Resume</button>
    <button type="button" class="button small danger" data-action="terminate">Terminate</button>
    <a class="button small primary" data-link="download" download>Download CSV</a>
    <button type="button" class="button small" data-show="rejects">Rejected rows</button>
  </div></td>`;

let refreshTimer = null;
let refreshCount = 0;
const lastStatus = new Map(); // task id → status, to notice a job that just ended
let jobsListed = false; // the first listing is not news: the datasets were loaded with the page

async function refreshJobs() {
  clearTimeout(refreshTimer);
  const mine = ++refreshCount; // an older answer arriving late must not undo a newer one
  const status = $("#jobs-status");
  try {
    if (!document.hidden) {
      const page = await api.get("/api/tasks/");
      if (mine !== refreshCount) return;
      renderJobs(page.results);
      status.textContent =
        page.count > page.results.length
          ? `The newest ${page.results.length} of ${page.count} jobs.`
          : "";
      status.classList.remove("error");
    }
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      location.reload(); // the session ended: the page sends the user to sign in
      return;
    }
    status.textContent = `Not up to date: ${error.message}`;
    status.classList.add("error");
  }
  if (mine === refreshCount) refreshTimer = setTimeout(refreshJobs, REFRESH_MS);
}

function renderJobs(jobs) {
  const body = $("#jobs-body");
  const rows = new Map([...body.rows].map((row) => [row.dataset.taskId, row]));
  let datasetsChanged = false;
  jobs.forEach((job, index) => {
    const row = rows.get(job.task_id) || newRow(job);
    rows.delete(job.task_id);
    fillRow(row, job);
    // Rows are moved, never rebuilt, so that a focused button keeps its focus.
    if (body.rows[index] !== row) body.insertBefore(row, body.rows[index] || null);
    const before = lastStatus.get(job.task_id);
    // A small import can start and end between two refreshes: first seen already ended.
    const ended = FINAL.includes(job.status) && before !== job.status;
    if (job.kind === "import" && ended && (before || jobsListed)) datasetsChanged = true;
    lastStatus.set(job.task_id, job.status);
  });
  for (const gone of rows.values()) gone.remove();
  jobsListed = true;
  $("#jobs-empty").hidden = jobs.length > 0;
  if (datasetsChanged) refreshDatasets(); // an import's rows count once it completes
}

function newRow(job) {
  const row = document.createElement("tr");
  row.id = `job-${job.task_id}`;
  row.dataset.taskId = job.task_id;
  row.innerHTML = ROW_HTML;
  return row;
}

function fillRow(row, job) {
  const cell = (name) => $(`[data-cell="${name}"]`, row);
  const { progress } = job;
  const range = job.export_range;
  const name = range ? `${range.from} – ${range.to}` : job.filename || "";
  const final = FINAL.includes(job.status);
  row.dataset.status = job.status;
  row.dataset.kind = job.kind;
  row.dataset.rowsDone = progress.rows_done;
  row.dataset.label = `${job.kind} of ${name || job.dataset}`;
  cell("kind").textContent = job.kind === "import" ? "Import" : "Export";
  cell("dataset").textContent = job.kind === "import" ? `into ${job.dataset}` : `of ${job.dataset}`;
  cell("file").textContent = name;
  cell("file").hidden = !name;
  cell("created").dateTime = job.created_at;
  cell("created").textContent = formatWhen(new Date(job.created_at));
  cell("created").title = new Date(job.created_at).toLocaleString();
  const badge = $(".badge", row);
  badge.textContent = job.status;
  badge.className = `badge badge-${job.status}`;
  setBar($(".bar", row), progress.percent);
  $(".bar", row).setAttribute("aria-label", `Progress of the ${row.dataset.label}`);
  cell("percent").textContent = final ? "" : `${progress.percent.toFixed(1)}%`;
  fillDetail(cell("detail"), job);
  // Rows a terminated or failed job wrote are gone: the detail says how many.
  const rolledBack = job.status === "terminated" || job.status === "failed";
  cell("rows").textContent = rolledBack ? "" : numbers.format(progress.rows_done);
  cell("rejected").textContent = progress.rows_rejected
    ? `${numbers.format(progress.rows_rejected)} rejected`
    : "";
  for (const [action, states] of Object.entries(ACTIONS)) {
    const button = $(`[data-action="${action}"]`, row);
    button.disabled = !states.includes(job.status);
    // A job that has ended has nothing left to control: its buttons make room for others.
    button.hidden = final;
    button.setAttribute("aria-label", `${button.textContent} the ${row.dataset.label}`);
  }
  const download = $('[data-link="download"]', row);
  download.hidden = !job.download_url || exportedNothing(job);
  if (job.download_url) download.href = job.download_url;
  download.setAttribute("aria-label", `Download the CSV of the ${row.dataset.label}`);
  const rejects = $('[data-show="rejects"]', row);
  rejects.hidden = !(progress.rows_rejected > 0 && job.errors_url);
  rejects.textContent = `${numbers.format(progress.rows_rejected)} rejected rows`;
  rejects.setAttribute("aria-label", `Show the rejected rows of the ${row.dataset.label}`);
}

// What the state means for this job, in words: the rate and ETA only while it runs.
function fillDetail(detail, job) {
  const { progress } = job;
  const rolledBack = job.rows_rolled_back ?? progress.rows_done;
  const reason = job.termination_reason ? ` (${job.termination_reason})` : "";
  delete detail.dataset.expires;
  detail.classList.toggle("bad", job.status === "failed");
  switch (job.status) {
    case "queued":
      // The server's reason reads "all 2 workers are busy; it is next in line".
      detail.textContent = job.queued_reason ? capitalized(job.queued_reason) : "Waiting";
      break;
    case "running":
      detail.textContent = progress.rows_per_s
        ? `${formatRate(progress.rows_per_s)} · ${formatDuration(progress.eta_s)} left`
        : "Starting";
      break;
    case "pausing":
      detail.textContent = "Pausing after the current batch";
      break;
    case "paused":
      if (job.pause_expires_at) {
        detail.dataset.expires = job.pause_expires_at;
        showCountdown(detail);
      } else {
        detail.textContent = "Paused";
      }
      break;
    case "terminating":
      detail.textContent = "Rolling back";
      break;
    case "terminated":
      detail.textContent = `${numbers.format(rolledBack)} rows rolled back${reason}`;
      break;
    case "failed":
      detail.textContent =
        `${numbers.format(rolledBack)} rows rolled back · ${job.error || "the job failed"}`;
      break;
    case "completed":
      detail.textContent = summary(job);
      break;
    default:
      detail.textContent = "";
  }
}

function summary(job) {
  const s = job.summary;
  if (job.kind === "export") {
    if (exportedNothing(job)) return "No rows in that range: nothing to download.";
    const rows = s?.rows_exported ?? job.progress.rows_done;
    const size = s ? ` · ${formatBytes(s.bytes)} in ${formatDuration(s.seconds)}` : "";
    return `${numbers.format(rows)} rows exported${size}`;
  }
  if (!s) return `${numbers.format(job.progress.rows_done)} rows imported`;
  const rejected = s.rows_rejected ? `, ${numbers.format(s.rows_rejected)} rejected` : "";
  return (
    `${numbers.format(s.rows_imported)} of ${numbers.format(s.rows_read)} rows imported` +
    `${rejected} · ${formatBytes(s.bytes)} in ${formatDuration(s.seconds)}`
  );
}

function exportedNothing(job) {
  if (job.kind !== "export" || job.status !== "completed") return false;
  return (job.summary?.rows_exported ?? job.progress.rows_done) === 0;
}

// A paused job's countdown moves every second, between the table's refreshes too.
function showCountdown(detail) {
  const left = Math.max(0, (Date.parse(detail.dataset.expires) - Date.now()) / 1000);
  detail.textContent = `Paused: terminated in ${formatClock(left)} unless resumed`;
}

function tickCountdowns() {
  for (const detail of document.querySelectorAll("[data-expires]")) showCountdown(detail);
}

function showJob(taskId) {
  const row = document.getElementById(`job-${taskId}`);
  if (!row) {
    say("That job is not among the newest ones listed below.", "error");
    return;
  }
  row.scrollIntoView({ behavior: "smooth", block: "center" });
  row.classList.remove("flash");
  void row.offsetWidth; // restart the animation
  row.classList.add("flash");
}

async function control(row, action) {
  if (action === "terminate" && !confirm("Terminate this job? Every row it wrote is deleted.")) {
    return;
  }
  try {
    const job = await api.post(`/api/tasks/${row.dataset.taskId}/${action}/`);
    fillRow(row, job);
  } catch (error) {
    say(`Could not ${action} the ${row.dataset.label}: ${error.message}`, "error");
  } finally {
    refreshJobs();
  }
}

// Rejected rows: the first hundred from the JSON endpoint, in a dialog; all as CSV.

async function showRejects(row) {
  const dialog = $("#rejects");
  const taskId = row.dataset.taskId;
  dialog.dataset.taskId = taskId;
  $("#rejects-title").textContent = `Rejected rows of the ${row.dataset.label}`;
  $("#rejects-summary").textContent = "Loading…";
  $("#rejects-body").replaceChildren();
  $("#rejects-csv").href = `/api/tasks/${taskId}/errors/`;
  if (!dialog.open) dialog.showModal();
  try {
    const page = await api.get(`/api/tasks/${taskId}/rejected-rows/`);
    if (dialog.dataset.taskId !== taskId) return;
    $("#rejects-body").replaceChildren(...page.results.map(rejectRow));
    const shown = page.results.length;
    $("#rejects-summary").textContent =
      page.count > shown
        ? `The first ${numbers.format(shown)} of ${numbers.format(page.count)}; the CSV has all of them.`
        : `${numbers.format(page.count)} ${page.count === 1 ? "row was" : "rows were"} rejected.`;
  } catch (error) {
    $("#rejects-summary").textContent = `Could not load them: ${error.message}`;
  }
}

function rejectRow(reject) {
  const tr = document.createElement("tr");
  for (const [value, className] of [
    [numbers.format(reject.line), "num"],
    [reject.reason, "reason"],
    [reject.content, "content"],
  ]) {
    const td = document.createElement("td");
    td.className = className;
    td.textContent = value;
    tr.append(td);
  }
  return tr;
}

function setupJobs() {
  $("#jobs-body").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) control(button.closest("tr"), button.dataset.action);
    if (event.target.closest('button[data-show="rejects"]')) showRejects(event.target.closest("tr"));
  });
  $("#rejects-close").addEventListener("click", () => $("#rejects").close());
  document.addEventListener("visibilitychange", () => document.hidden || refreshJobs());
  setInterval(tickCountdowns, 1000);
  refreshJobs();
}

// Formatting

function setBar(bar, percent) {
  const value = Math.max(0, Math.min(100, percent || 0));
  bar.setAttribute("aria-valuenow", value.toFixed(1));
  $(".bar-fill", bar).style.width = `${value}%`;
}

// The time alone for today, the date for earlier days.
function formatWhen(when) {
  const today = when.toDateString() === new Date().toDateString();
  return today ? when.toLocaleTimeString() : when.toLocaleDateString();
}

function formatBytes(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function formatRate(rowsPerSecond) {
  return `${numbers.format(Math.round(rowsPerSecond))} rows/s`;
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${s} s`;
}

function capitalized(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// 4:07, as a countdown reads.
function formatClock(seconds) {
  const total = Math.ceil(seconds);
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}

setupUpload();
setupExport();
setupJobs();
document.body.dataset.ready = "true"; // for tests: the handlers are in place
