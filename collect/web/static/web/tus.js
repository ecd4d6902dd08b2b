// A small client of the tus 1.0.0 resumable upload protocol (core, creation and
// termination), built on fetch: https://tus.io/protocols/resumable-upload
//
// One Upload sends one File in chunks of PATCH requests. pause() aborts the request in
// flight; start() again asks the server (HEAD) where the upload stands and goes on from
// there; cancel() also deletes the server's copy (DELETE). The upload's URL is kept in
// localStorage under the file's name, size and date, so that picking the same file after a
// reload continues it instead of starting over.

const TUS_VERSION = "1.0.0";
const STORE_PREFIX = "collect.tus:";

export class TusError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "TusError";
    this.status = status; // 0: the server was not reached
  }

  // Worth trying again later (after signing in again, say): the bytes sent so far are
  // still on the server.
  get retryable() {
    return [0, 401, 403].includes(this.status) || this.status >= 500;
  }
}

// The server already has these bytes in this dataset (imported, or importing): taskId is
// that job. Sending them again with the metadata key `force` imports them anyway.
export class DuplicateError extends TusError {
  constructor(message, taskId) {
    super(message, 409);
    this.name = "DuplicateError";
    this.taskId = taskId;
  }
}

// The same file sent to another dataset is another upload.
export function fingerprint(file, dataset = "") {
  return `${STORE_PREFIX}${dataset}:${file.name}:${file.size}:${file.lastModified}`;
}

// Uploads this browser started and did not finish:
// [{key, name, size, offset, url, dataset, started}], the oldest first.
export function unfinishedUploads() {
  return Object.keys(localStorage)
    .filter((key) => key.startsWith(STORE_PREFIX))
    .map((key) => ({ ...JSON.parse(localStorage.getItem(key)), key }))
    .sort((a, b) => (a.started || 0) - (b.started || 0));
}

// Deletes an unfinished upload on the server (tus termination) and forgets it here. An
// upload the server no longer has (404, 410) is as good as deleted.
export async function discardUpload(entry, headers = () => ({})) {
  await terminate(entry.url, headers);
  localStorage.removeItem(entry.key);
}

async function terminate(url, headers) {
  for (let attempt = 0; ; attempt += 1) {
    let response;
    try {
      response = await fetch(url, {
        method: "DELETE",
        headers: { "Tus-Resumable": TUS_VERSION, ...headers() },
        credentials: "same-origin",
      });
    } catch (error) {
      throw new TusError(`the server could not be reached (${error.message})`);
    }
    if ([204, 404, 410].includes(response.status)) return;
    // 423: the chunk whose request was just aborted is still being written; it ends soon.
    if (response.status !== 423 || attempt >= 20) {
      throw await failure(response, "deleting the upload");
    }
    await sleep(250);
  }
}

export class Upload {
  constructor(file, options) {
    this.file = file;
    this.endpoint = options.endpoint;
    this.chunkSize = options.chunkSize || 8 * 1024 * 1024;
    this.metadata = options.metadata || {};
    this.key = fingerprint(file, this.metadata.dataset);
    this.headers = options.headers || (() => ({})); // called per request: a token can change
    this.onProgress = options.onProgress || (() => {});
    this.onResume = options.onResume || (() => {});
    this.url = null;
    this.offset = 0;
    this.taskId = null;
    this.paused = false;
    this.cancelled = false;
    this.controller = null;
  }

  // Sends what is left. Resolves {paused: true} after pause(), else {taskId} once the
  // server has every byte (and has started the import); rejects with a TusError.
  async start() {
    this.paused = false;
    this.controller = new AbortController();
    try {
      // After a pause the server's copy may have expired: then it starts over.
      if (this.url === null || !(await this.#locate({ mayBeGone: true }))) await this.#open();
      while (this.offset < this.file.size) {
        if (this.cancelled) return { cancelled: true };
        if (this.paused) return { paused: true };
        await this.#sendChunk();
      }
      this.#forget();
      return { taskId: this.taskId };
    } catch (error) {
      if (this.cancelled) return { cancelled: true };
      if (this.paused && error.name === "AbortError") return { paused: true };
      if (error instanceof TusError && !error.retryable) this.#forget();
      throw error;
    } finally {
      this.controller = null;
    }
  }

  pause() {
    this.paused = true;
    this.controller?.abort();
  }

  // Stops the transfer and deletes what the server received: nothing is left to resume.
  async cancel() {
    this.cancelled = true;
    this.pause();
    if (this.url) await terminate(this.url, this.headers);
    this.#forget();
  }

  // Continue a stored upload of the same file if the server still has it, else create one.
  async #open() {
    const stored = JSON.parse(localStorage.getItem(this.key) || "null");
    if (stored) {
      this.url = stored.url;
      if (await this.#locate({ mayBeGone: true })) {
        this.onResume(this.offset, this.file.size);
        return;
      }
      this.#forget();
    }
    const response = await this.#fetch("POST", this.endpoint, {
      "Upload-Length": String(this.file.size),
      "Upload-Metadata": encodeMetadata(this.metadata),
    });
    if (response.status !== 201) throw await failure(response, "creating the upload");
    this.url = new URL(response.headers.get("Location"), this.endpoint).href;
    this.#takeState(response);
    this.#remember();
  }

  // HEAD: where the server's copy ends. False if it is gone and mayBeGone.
  async #locate({ mayBeGone = false } = {}) {
    const response = await this.#fetch("HEAD", this.url);
    const gone = response.status === 404 || response.status === 410;
    if (gone && mayBeGone) return false;
    if (response.status !== 200) throw await failure(response, "asking where the upload stands");
    if (Number(response.headers.get("Upload-Length")) !== this.file.size) {
      if (mayBeGone) return false; // a stale entry for another file
      throw new TusError("the server's upload has another length than the file", 409);
    }
    if (response.headers.get("Collect-Error")) {
      throw new TusError(response.headers.get("Collect-Error"), 400);
    }
    this.#takeState(response);
    return true;
  }

  async #sendChunk() {
    const end = Math.min(this.offset + this.chunkSize, this.file.size);
    const response = await this.#fetch(
      "PATCH",
      this.url,
      {
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": String(this.offset),
      },
      this.file.slice(this.offset, end),
    );
    if (response.status === 409) {
      const body = await response.clone().json().catch(() => null);
      if (body?.task_id) throw new DuplicateError(body.detail || "already imported", body.task_id);
    }
    if (response.status === 409 || response.status === 423) {
      // Our offset is stale (a chunk arrived whose answer we lost), or another request is
      // still writing: the server's offset is the truth.
      if (response.status === 423) await sleep(250);
      await this.#locate();
      return;
    }
    if (response.status !== 204) throw await failure(response, "sending a chunk");
    this.#takeState(response);
    this.#remember();
    this.onProgress(this.offset, this.file.size);
  }

  #takeState(response) {
    this.offset = Number(response.headers.get("Upload-Offset") || 0);
    this.taskId = response.headers.get("Collect-Task-Id") || this.taskId;
  }

  #remember() {
    const { name, size } = this.file;
    const before = JSON.parse(localStorage.getItem(this.key) || "null");
    const started = before?.url === this.url ? before.started : Date.now();
    const { dataset } = this.metadata;
    const entry = { url: this.url, name, size, offset: this.offset, dataset, started };
    localStorage.setItem(this.key, JSON.stringify(entry));
  }

  #forget() {
    localStorage.removeItem(this.key);
  }

  async #fetch(method, url, headers = {}, body = undefined) {
    const init = {
      method,
      body,
      headers: { "Tus-Resumable": TUS_VERSION, ...this.headers(), ...headers },
      signal: this.controller.signal,
      credentials: "same-origin",
    };
    try {
      return await fetch(url, init);
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new TusError(`the server could not be reached (${error.message})`);
    }
  }
}

// Upload-Metadata: comma-separated "key base64(UTF-8 value)" pairs.
function encodeMetadata(metadata) {
  return Object.entries(metadata)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) => `${key} ${base64(String(value))}`)
    .join(",");
}

function base64(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

async function failure(response, doing) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (a HEAD has no body): the status says it
  }
  if (response.status === 409 && body?.task_id) {
    return new DuplicateError(body.detail || "already imported", body.task_id);
  }
  const detail = body?.detail || "";
  return new TusError(detail || `${doing} failed (HTTP ${response.status})`, response.status);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
