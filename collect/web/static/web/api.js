// Calls to Collect's JSON API with the page's session. Every failure becomes an ApiError
// whose message can be shown to the user as it is.

export class ApiError extends Error {
  constructor(message, status = 0, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0: the server was not reached
    this.body = body;
  }
}

// Django checks this on unsafe requests made with the session cookie (DRF's
// SessionAuthentication); the page's view makes sure the cookie is set.
export function csrfHeaders() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? { "X-CSRFToken": decodeURIComponent(match[1]) } : {};
}

export async function request(method, path, data = undefined) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") Object.assign(headers, csrfHeaders());
  if (data !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: data === undefined ? undefined : JSON.stringify(data),
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ApiError(`the server could not be reached (${error.message}).`);
  }
  const body = await response.json().catch(() => null);
  if (response.ok) return body;
  throw new ApiError(describe(response.status, body), response.status, body);
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, data) => request("POST", path, data),
};

function describe(status, body) {
  if (body && typeof body.detail === "string") return sentence(body.detail);
  if (status === 401 || status === 403) return "you are signed out: sign in again.";
  if (status >= 500) return `the server failed (HTTP ${status}); try again in a moment.`;
  return `the request was refused (HTTP ${status}).`;
}

export function sentence(text) {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}
