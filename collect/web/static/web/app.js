// The page: resumable uploads, the export form, and the live table of the user's jobs.

import { api, csrfHeaders, sentence } from "./api.js";
import { TusError, Upload, unfinishedUploads } from "./tus.js";

const $ = (selector, root = document) => root.querySelector(selector);
const REFRESH_MS = 1000;
const INFO_MESSAGE_MS = 8000;
const ACTIONS = {
  pause: ["queued", "running"],
  resume: ["paused"],
  terminate: ["queued", "running", "pausing", "paused"],
};
const numbers = new Intl.NumberFormat();

// Messages

function say(text, kind = "info") {
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
  const list = $("#messages");
  list.prepend(box);
  while (list.children.length > 5) list.lastElementChild.remove();
  // Errors stay until dismissed: the user may be looking elsewhere when one arrives.
  if (kind !== "error") setTimeout(() => box.remove(), INFO_MESSAGE_MS);
}

// Upload

const card = $("#upload-card");
const panel = $("#upload-panel");
const pauseButton = $("#upload-pause");
const resumeButton = $("#upload-resume");
let upload = null;

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
  if (text !== undefined) $("#upload-text").textContent = text;
}

function showUploadProgress(offset, size) {
  const percent = size ? (100 * offset) / size : 100;
  panel.dataset.offset = offset;
  setBar($("#upload-bar"), percent);
  $("#upload-text").textContent =
    `${formatBytes(offset)} of ${formatBytes(size)} · ${percent.toFixed(0)}%`;
}

function pickFile(file) {
  if (upload && panel.dataset.state === "uploading") {
    say("An upload is running: pause it or let it finish first.", "error");
    return;
  }
  upload = new Upload(file, {
    endpoint: new URL(card.dataset.endpoint, location.href).href,
    chunkSize: chunkSize(),
    metadata: {
      filename: file.name,
      dataset: $("#upload-dataset").value.trim() || "responses",
      on_error: $("#upload-on-error").value,
    },
    headers: csrfHeaders,
    onProgress: showUploadProgress,
    onResume: (offset, size) => {
      showUploadProgress(offset, size);
      const percent = size ? Math.floor((100 * offset) / size) : 0;
      say(`Resuming the upload of ${file.name} at ${percent}%.`);
    },
  });
  $("#upload-name").textContent = file.name;
  panel.dataset.offset = 0;
  delete panel.dataset.taskId;
  setBar($("#upload-bar"), 0);
  runUpload();
}

async function runUpload() {
  setUploadState("uploading", "Connecting…");
  try {
    const result = await upload.start();
    if (result.paused) {
      const percent = upload.file.size ? (100 * upload.offset) / upload.file.size : 0;
      setUploadState("paused", `Paused at ${percent.toFixed(0)}%`);
      return;
    }
    panel.dataset.url = upload.url;
    panel.dataset.taskId = result.taskId;
    showUploadProgress(upload.file.size, upload.file.size);
    setUploadState("done", "Uploaded: the import has started below.");
    refreshJobs();
  } catch (error) {
    const resumable = error instanceof TusError && error.retryable;
    setUploadState(resumable ? "interrupted" : "failed", error.message);
    say(
      `The upload of ${upload.file.name} failed: ${sentence(error.message)}` +
        (resumable ? " Press Resume to continue." : ""),
      "error",
    );
  } finally {
    if (upload.url) panel.dataset.url = upload.url;
    showUnfinished();
  }
}

function showUnfinished() {
  const pending = unfinishedUploads().filter((entry) => entry.url !== upload?.url);
  const note = $("#upload-pending");
  note.hidden = pending.length === 0;
  note.textContent = pending
    .map((entry) => {
      const percent = entry.size ? Math.floor((100 * entry.offset) / entry.size) : 0;
      return `${entry.name} stopped at ${percent}%: pick it again to resume.`;
    })
    .join(" ");
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
  showUnfinished();
}

// Export

function setupExport() {
  const form = $("#export-form");
  const today = new Date().toISOString().slice(0, 10);
  const monthAgo = new Date(Date.now() - 30 * 86400e3).toISOString().slice(0, 10);
  $("#export-from").value ||= monthAgo;
  $("#export-to").value ||= today;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = $("#export-submit");
    submit.disabled = true;
    const dataset = $("#export-dataset").value.trim();
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
}

// Jobs

const ROW_HTML = `
  <td><span data-cell="kind"></span><time class="sub" data-cell="created"></time></td>
  <td data-cell="dataset"></td>
  <td class="file">
    <span data-cell="file"></span>
    <a class="button small primary" data-link="download" download>Download CSV</a>
    <span class="sub note" data-cell="note"></span>
  </td>
  <td><span class="badge" data-testid="job-status"></span></td>
  <td class="col-progress">
    <div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100">
      <div class="bar-fill"></div>
    </div>
    <span class="percent" data-cell="percent"></span>
  </td>
  <td class="num" data-cell="rows"></td>
  <td class="num"><span data-cell="rejected"></span><a data-link="errors"
      title="The rejected rows, as CSV"></a></td>
  <td class="num" data-cell="rate"></td>
  <td class="num" data-cell="eta"></td>
  <td class="actions">
    <button type="button" class="button small" data-action="pause">Pause</button>
    <button type="button" class="button small" data-action="resume">Resume</button>
    <button type="button" class="button small danger" data-action="terminate">Terminate</button>
  </td>`;

let refreshTimer = null;
let refreshCount = 0;

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
  jobs.forEach((job, index) => {
    const row = rows.get(job.task_id) || newRow(job);
    rows.delete(job.task_id);
    fillRow(row, job);
    // Rows are moved, never rebuilt, so that a focused button keeps its focus.
    if (body.rows[index] !== row) body.insertBefore(row, body.rows[index] || null);
  });
  for (const gone of rows.values()) gone.remove();
  $("#jobs-empty").hidden = jobs.length > 0;
}

function newRow(job) {
  const row = document.createElement("tr");
  row.dataset.taskId = job.task_id;
  row.innerHTML = ROW_HTML;
  return row;
}

function fillRow(row, job) {
  const cell = (name) => $(`[data-cell="${name}"]`, row);
  const { progress } = job;
  const range = job.export_range;
  let name = job.filename || (job.kind === "export" ? "" : "upload");
  if (range) name = `${range.from} – ${range.to}`;
  row.dataset.status = job.status;
  row.dataset.kind = job.kind;
  row.dataset.rowsDone = progress.rows_done;
  row.dataset.label = `${job.kind} of ${name || job.dataset}`;
  cell("kind").textContent = job.kind === "import" ? "Import" : "Export";
  cell("created").dateTime = job.created_at;
  cell("created").textContent = formatWhen(job.created_at);
  cell("created").title = new Date(job.created_at).toLocaleString();
  cell("dataset").textContent = job.dataset;
  cell("file").textContent = name || (job.download_url ? "" : "—");
  cell("file").classList.toggle("range", Boolean(range));
  cell("note").textContent = jobNote(job);
  const badge = $(".badge", row);
  badge.textContent = job.status;
  badge.className = `badge badge-${job.status}`;
  setBar($(".bar", row), progress.percent);
  $(".bar", row).setAttribute("aria-label", `Progress of the ${row.dataset.label}`);
  cell("percent").textContent = `${progress.percent.toFixed(1)}%`;
  cell("rows").textContent = numbers.format(progress.rows_done);
  const errors = $('[data-link="errors"]', row);
  const rejected = progress.rows_rejected > 0 && job.errors_url;
  cell("rejected").textContent = rejected ? "" : numbers.format(progress.rows_rejected);
  errors.hidden = !rejected;
  errors.textContent = numbers.format(progress.rows_rejected);
  if (rejected) errors.href = job.errors_url;
  cell("rate").textContent = progress.rows_per_s ? formatRate(progress.rows_per_s) : "—";
  cell("eta").textContent = job.status === "running" ? formatDuration(progress.eta_s) : "—";
  for (const [action, states] of Object.entries(ACTIONS)) {
    const button = $(`[data-action="${action}"]`, row);
    button.disabled = !states.includes(job.status);
    button.setAttribute("aria-label", `${button.textContent} the ${row.dataset.label}`);
  }
  const download = $('[data-link="download"]', row);
  download.hidden = !job.download_url;
  if (job.download_url) download.href = job.download_url;
}

function jobNote(job) {
  if (job.error) return job.error;
  if (job.status === "terminated" && job.termination_reason) {
    return `Terminated: ${job.termination_reason}`;
  }
  return "";
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

function setupJobs() {
  $("#jobs-body").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) control(button.closest("tr"), button.dataset.action);
  });
  document.addEventListener("visibilitychange", () => document.hidden || refreshJobs());
  refreshJobs();
}

// Formatting

function setBar(bar, percent) {
  const value = Math.max(0, Math.min(100, percent || 0));
  bar.setAttribute("aria-valuenow", value.toFixed(1));
  $(".bar-fill", bar).style.width = `${value}%`;
}

// The time alone for today's jobs, the date for older ones.
function formatWhen(iso) {
  const when = new Date(iso);
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
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function formatRate(rowsPerSecond) {
  return `${numbers.format(Math.round(rowsPerSecond))}/s`;
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${s} s`;
}

setupUpload();
setupExport();
setupJobs();
document.body.dataset.ready = "true"; // for tests: the handlers are in place
