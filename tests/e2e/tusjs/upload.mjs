// Uploads a file to Collect with tus-js-client as a Node program would: starts the upload,
// aborts it part way, then resumes it with a new Upload given only the upload's URL.
//
// Usage: COLLECT_URL=http://127.0.0.1:8000 COLLECT_TOKEN=KEY node upload.mjs FILE
// On success prints one JSON line: {"url", "taskId", "resumedFrom"}; exits non-zero on error.
// Run by tests/e2e/test_tus.py.

import { createReadStream } from 'node:fs'
import { basename } from 'node:path'
import process from 'node:process'

import { Upload } from 'tus-js-client'

const CHUNK_SIZE = 256 * 1024
const ABORT_AFTER = 1 / 3 // of the file, accepted by the server

function options(path) {
  const base = process.env.COLLECT_URL
  const token = process.env.COLLECT_TOKEN
  if (!base || !token) throw new Error('set COLLECT_URL and COLLECT_TOKEN')
  return {
    endpoint: new URL('/api/uploads/', base).href,
    chunkSize: CHUNK_SIZE,
    metadata: { filename: basename(path), dataset: 'tus-js-client' },
    headers: { Authorization: `Token ${token}` },
    retryDelays: null, // an error must show, not be retried away
    storeFingerprintForResuming: false, // resuming is done by URL, explicitly
  }
}

/** Upload until a third of the file is accepted, then abort; resolves with the upload URL. */
function uploadPartly(path) {
  return new Promise((resolve, reject) => {
    const file = createReadStream(path)
    const upload = new Upload(file, {
      ...options(path),
      onChunkComplete(_chunkSize, accepted, total) {
        if (accepted >= total * ABORT_AFTER) {
          upload.abort().then(() => {
            file.destroy()
            resolve({ url: upload.url, accepted })
          }, reject)
        }
      },
      onSuccess: () => reject(new Error('the upload finished before it could be aborted')),
      onError: reject,
    })
    upload.start()
  })
}

/** Resume the upload at `url` with a new Upload; resolves with what the server said. */
function resume(path, url) {
  return new Promise((resolve, reject) => {
    let resumedFrom = null
    let taskId = null
    const upload = new Upload(createReadStream(path), {
      ...options(path),
      uploadUrl: url,
      onAfterResponse(req, res) {
        const method = req.getMethod()
        if (method === 'HEAD' && resumedFrom === null) {
          resumedFrom = Number.parseInt(res.getHeader('Upload-Offset'), 10)
        } else if (method === 'PATCH' && res.getHeader('Collect-Task-Id')) {
          taskId = res.getHeader('Collect-Task-Id')
        }
      },
      onSuccess: () => resolve({ url: upload.url, taskId, resumedFrom }),
      onError: reject,
    })
    upload.start()
  })
}

async function main() {
  const path = process.argv[2]
  if (!path) throw new Error('usage: node upload.mjs FILE')
  const first = await uploadPartly(path)
  const resumed = await resume(path, first.url)
  if (resumed.url !== first.url) throw new Error(`resumed at ${resumed.url}, not ${first.url}`)
  if (resumed.resumedFrom !== first.accepted) {
    throw new Error(`the server offered ${resumed.resumedFrom}, not ${first.accepted} as accepted`)
  }
  console.log(JSON.stringify(resumed))
}

main().catch((error) => {
  console.error(error instanceof Error ? error.stack : error)
  process.exitCode = 1
})
