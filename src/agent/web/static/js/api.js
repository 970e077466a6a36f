// The standard LangGraph server API, as the page uses it: JSON requests and SSE streams over
// fetch (EventSource cannot send an Authorization header). Every request carries the signed-in
// user's bearer token; a 401 anywhere signs the page out.

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

function detailOf(body, status) {
  if (body && typeof body === "object") {
    const detail = body.detail ?? body.message ?? body.error;
    if (typeof detail === "string") return detail;
    if (detail !== undefined) return JSON.stringify(detail);
  }
  if (typeof body === "string" && body.trim()) return body.trim().slice(0, 300);
  return `HTTP ${status}`;
}

async function readBody(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

// Split an SSE byte stream into {event, data, id} records (data parsed as JSON when it is JSON).
export async function* sseEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const record = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const parsed = parseRecord(record);
        if (parsed) yield parsed;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function parseRecord(record) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of record.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (!data.length) return null;
  const text = data.join("\n");
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the raw text
  }
  return { event, data: parsed, id };
}

export class Api {
  constructor({ token, onUnauthorized }) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  async fetch(method, path, { json, signal, headers } = {}) {
    const init = { method, signal, cache: "no-store", headers: this.headers(headers) };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      const body = await readBody(response);
      this.onUnauthorized?.(detailOf(body, 401));
      throw new ApiError(401, detailOf(body, 401), body);
    }
    if (!response.ok) {
      const body = await readBody(response);
      throw new ApiError(response.status, detailOf(body, response.status), body);
    }
    return response;
  }

  async request(method, path, json) {
    const response = await this.fetch(method, path, { json });
    return response.status === 204 ? null : readBody(response);
  }

  async *stream(method, path, { json, signal, lastEventId } = {}) {
    const headers = { Accept: "text/event-stream" };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    const response = await this.fetch(method, path, { json, signal, headers });
    yield* sseEvents(response.body);
  }

  // --- the LangGraph endpoints the page uses ------------------------------------------------
  searchThreads(limit = 100) {
    return this.request("POST", "/threads/search", {
      limit,
      sort_by: "updated_at",
      sort_order: "desc",
      select: ["thread_id", "created_at", "updated_at", "metadata", "status", "values"],
    });
  }
  createThread(metadata) {
    return this.request("POST", "/threads", { metadata });
  }
  getThread(threadId) {
    return this.request("GET", `/threads/${threadId}`);
  }
  patchThread(threadId, metadata) {
    return this.request("PATCH", `/threads/${threadId}`, { metadata });
  }
  deleteThread(threadId) {
    return this.request("DELETE", `/threads/${threadId}`);
  }
  getState(threadId) {
    return this.request("GET", `/threads/${threadId}/state`);
  }
  getHistory(threadId, limit = 200) {
    return this.request("POST", `/threads/${threadId}/history`, { limit });
  }
  updateState(threadId, values, asNode) {
    return this.request("POST", `/threads/${threadId}/state`, { values, as_node: asNode });
  }
  activeRuns(threadId) {
    return Promise.all(
      ["running", "pending"].map((status) =>
        this.request("GET", `/threads/${threadId}/runs?status=${status}&limit=10`),
      ),
    ).then(([running, pending]) => [...running, ...pending]);
  }
  cancelRun(threadId, runId) {
    return this.request(
      "POST",
      `/threads/${threadId}/runs/${runId}/cancel?wait=true&action=interrupt`,
    );
  }
  streamRun(threadId, payload, signal) {
    return this.stream("POST", `/threads/${threadId}/runs/stream`, { json: payload, signal });
  }
  joinRun(threadId, runId, signal) {
    // "-": replay the run's events from its start (the run was created resumable), then live.
    // Not "-1": the replicas' runtime (langgraph-runtime-pg) replays nothing for it (web.py).
    return this.stream("GET", `/threads/${threadId}/runs/${runId}/stream`, {
      signal,
      lastEventId: "-",
    });
  }
  keepStopped(threadId, runId, shown) {
    return this.request("POST", `/chat/api/threads/${threadId}/runs/${runId}/keep`, { shown });
  }
  pageSettings() {
    return this.request("GET", "/chat/api/settings");
  }
  async exportThread(threadId, format) {
    const response = await this.fetch("GET", `/chat/api/threads/${threadId}/export?format=${format}`);
    return response.blob();
  }
}
