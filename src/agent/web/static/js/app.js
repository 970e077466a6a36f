// The chat page: threads, streaming replies, stop, branches, settings, sign-in.
// It speaks the standard LangGraph API (see api.js); the only project endpoints it uses are
// /chat/api/settings (personas, settings) and /chat/api/threads/{id}/export (transcript).

import { Api, ApiError } from "./api.js";
import { buildTree, firstSeen, forks, messagesOf, newest, pathTo } from "./branches.js";
import { StreamingMessage, handleCopy, renderMarkdown } from "./render.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "agent.token";
const THEME_KEY = "agent.theme";
const TITLE_LENGTH = 60;
const query = new URLSearchParams(location.search);

const app = {
  api: null,
  generation: 0, // bumped at sign-in/out: answers meant for an earlier session are dropped
  settings: null,
  graph: query.get("graph") || "chatbot",
  threads: [],
  threadId: null,
  tree: new Map(),
  headId: null, // the checkpoint whose messages are shown (a branch head)
  run: null, // the reply being streamed into the page
  failure: null, // the last failed turn: {threadId, error}
  changed: {}, // settings the user chose: sent as the run's context
  metrics: [], // per reply: send, first token, end (performance.now()), tokens, render time
};
window.chatMetrics = app.metrics;

// --- small helpers -------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function contentText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part) => (typeof part === "string" ? part : part?.type === "text" ? part.text || "" : "")).join("");
  }
  return "";
}

export function titleFrom(text) {
  const line = text.split(/\s+/).filter(Boolean).join(" ");
  return line.length <= TITLE_LENGTH ? line : `${line.slice(0, TITLE_LENGTH - 1)}…`;
}

function threadTitle(thread) {
  const title = thread.metadata?.title;
  if (title) return String(title);
  const first = (thread.values?.messages || []).find((m) => m.type === "human");
  return first ? titleFrom(contentText(first.content)) || "Untitled" : "New conversation";
}

function ago(iso) {
  const when = new Date(iso);
  const seconds = Math.max(0, (Date.now() - when.getTime()) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return when.toLocaleDateString();
}

function say(text) {
  $("status").textContent = text;
}

const isReply = (m) => m.type === "ai" && !(m.tool_calls && m.tool_calls.length);
const shown = (m) => (m.type === "human" || m.type === "ai") && (contentText(m.content) || m.type === "human");

// Readable text for the errors a turn can end with (the server's message names the details).
export function describeError(error) {
  if (!error) return "Something went wrong.";
  if (error instanceof ApiError) {
    if (error.status === 409) return "This conversation is busy: a reply is already being written (another tab or client). It is shown here as it streams; send again when it ends.";
    if (error.status === 404) return "This conversation does not exist (deleted, or it belongs to another user).";
    if (error.status === 413) return `Message too large: ${error.detail}`;
    if (error.status === 422) return `The server refused the request: ${error.detail}`;
    if (error.status === 403) return `Not allowed: ${error.detail}`;
    return `The server answered ${error.status}: ${error.detail}`;
  }
  if (error instanceof TypeError) return "The server cannot be reached. Check that it is running, then retry.";
  const kind = error.error || error.name || "";
  const message = error.message || String(error);
  const known = {
    EmptyMessageError: "The message is empty: type something first.",
    UnknownPersonaError: message,
    MissingVariableError: message,
    MessageTooLargeError: message,
    ModelUnreachableError: message,
    ModelConnectionLostError: message,
    TextOnlyModelError: message,
    UnsupportedContentError: message,
  };
  if (known[kind]) return known[kind];
  if (message === "An internal error occurred") return `The server failed (${kind || "internal error"}); its log says why. Retry, or start a new conversation.`;
  return kind ? `${message} (${kind})` : message;
}

// --- theme ---------------------------------------------------------------------------------

function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const label = theme === "light" || theme === "dark" ? theme : "auto";
  $("theme").textContent = `Theme: ${label}`;
  $("theme").setAttribute("aria-label", `Theme: ${label === "auto" ? "automatic" : label}. Change theme`);
}

function cycleTheme() {
  const order = ["auto", "light", "dark"];
  const current = localStorage.getItem(THEME_KEY) || "auto";
  const next = order[(order.indexOf(current) + 1) % order.length];
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
}

// --- sign-in -------------------------------------------------------------------------------

function clearSession() {
  app.generation += 1;
  app.run?.controller.abort();
  app.run = null;
  app.settings = null;
  app.threads = [];
  app.threadId = null;
  app.tree = new Map();
  app.headId = null;
  app.failure = null;
  app.changed = {};
  $("thread-list").replaceChildren();
  $("messages").replaceChildren();
  $("notice").hidden = true;
  $("persona").replaceChildren();
  $("persona-vars").replaceChildren();
  $("setting-fields").replaceChildren();
  setBusy(false);
  say("");
}

function askToken(reason) {
  clearSession();
  sessionStorage.removeItem(TOKEN_KEY);
  app.api.token = null;
  $("sign-out").hidden = true;
  $("signin-reason").textContent = reason || "This server needs an access token.";
  $("token").value = "";
  if (!$("signin").open) $("signin").showModal();
  $("token").focus();
}

function signOut() {
  clearSession();
  sessionStorage.removeItem(TOKEN_KEY);
  app.api.token = null;
  $("sign-out").hidden = true;
  history.replaceState(null, "", location.pathname + location.search);
  start();
}

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  clearSession();
  sessionStorage.setItem(TOKEN_KEY, token);
  app.api.token = token;
  $("signin").close();
  $("sign-out").hidden = false;
  await start();
}

// --- settings form -------------------------------------------------------------------------

function personaByName(name) {
  return app.settings?.personas?.find((p) => p.name === name) || null;
}

function renderPersonaPicker(values) {
  const select = $("persona");
  const personas = app.settings?.personas || [];
  const current = app.changed.persona || values?.persona || "";
  select.replaceChildren(
    el("option", { value: "", text: values?.persona ? `${values.persona} (this conversation's)` : "Server default" }),
    ...personas.map((p) => el("option", { value: p.name, text: p.name })),
  );
  select.value = app.changed.persona || "";
  if (!app.changed.persona && values?.persona) select.value = "";
  renderPersonaVars(current, values);
}

function renderPersonaVars(name, values) {
  const persona = personaByName(name) || personaByName("assistant");
  $("persona-description").textContent = persona?.description || "";
  const box = $("persona-vars");
  box.replaceChildren();
  if (!persona) return;
  const threadVars = values?.persona === persona.name ? values?.persona_vars || {} : {};
  for (const [variable, fallback] of Object.entries(persona.variables || {})) {
    const id = `var-${variable}`;
    const input = el("input", {
      id,
      type: "text",
      placeholder: fallback ? `default: ${fallback}` : "required",
      oninput: (e) => {
        const vars = { ...(app.changed.persona_vars || {}) };
        if (e.target.value.trim()) vars[variable] = e.target.value;
        else delete vars[variable];
        if (Object.keys(vars).length) app.changed.persona_vars = vars;
        else delete app.changed.persona_vars;
      },
    });
    input.value = app.changed.persona_vars?.[variable] ?? threadVars[variable] ?? "";
    box.append(el("label", { for: id, text: variable.replaceAll("_", " ") }), input);
  }
}

function renderSettingFields() {
  const box = $("setting-fields");
  box.replaceChildren();
  const limits = app.settings?.limits || {};
  for (const field of app.settings?.settings || []) {
    const id = `setting-${field.name}`;
    const limit = limits[field.name] || {};
    const hintId = `${id}-hint`;
    const input = el("input", {
      id,
      type: "number",
      step: field.name === "temperature" ? "0.1" : "1",
      min: limit.min ?? (field.name === "temperature" ? 0 : 1),
      max: limit.max,
      placeholder: field.default === null || field.default === undefined ? "server default" : `default: ${field.default}`,
      "aria-describedby": hintId,
      oninput: (e) => {
        const raw = e.target.value.trim();
        if (raw === "" || Number.isNaN(Number(raw))) delete app.changed[field.name];
        else app.changed[field.name] = field.name === "temperature" ? Number(raw) : Math.round(Number(raw));
      },
    });
    if (app.changed[field.name] !== undefined) input.value = app.changed[field.name];
    const label = { temperature: "Temperature", max_turns: "Turns remembered", max_reply_tokens: "Reply length (tokens)" }[field.name] || field.name;
    box.append(el("label", { for: id, text: label }), input, el("p", { id: hintId, class: "hint", text: field.description }));
  }
}

function runContext() {
  const context = { ...app.changed };
  return Object.keys(context).length ? context : undefined;
}

// --- thread list ---------------------------------------------------------------------------

async function loadThreads() {
  const generation = app.generation;
  const threads = await app.api.searchThreads();
  if (generation !== app.generation) return;
  app.threads = threads;
  renderThreads();
}

function renderThreads() {
  const needle = $("thread-search").value.trim().toLowerCase();
  const items = app.threads
    .filter((t) => !needle || threadTitle(t).toLowerCase().includes(needle))
    .map(threadItem);
  $("thread-list").replaceChildren(...items);
  $("thread-empty").hidden = app.threads.length > 0;
  $("thread-empty").textContent = app.threads.length ? "" : "No conversations yet.";
  if (app.threads.length && !items.length) {
    $("thread-empty").hidden = false;
    $("thread-empty").textContent = "No conversation matches.";
  }
}

function threadItem(thread) {
  const title = threadTitle(thread);
  const persona = thread.values?.persona || "";
  const meta = [persona, ago(thread.updated_at)].filter(Boolean).join(" · ");
  const current = thread.thread_id === app.threadId;
  const item = el("li", { class: "thread", "data-thread-id": thread.thread_id, "aria-current": current ? "true" : "false" });
  const open = el(
    "button",
    { type: "button", class: "thread-open", title: `${title}\nUpdated ${new Date(thread.updated_at).toLocaleString()}`, onclick: () => openThread(thread.thread_id) },
    el("span", { class: "thread-title", text: title }),
    el("span", { class: "thread-meta", text: meta }),
  );
  const actions = el(
    "div",
    { class: "thread-actions" },
    el("button", { type: "button", class: "rename", "aria-label": `Rename “${title}”`, text: "Rename", onclick: () => startRename(item, thread) }),
    el("button", { type: "button", class: "delete", "aria-label": `Delete “${title}”`, text: "Delete", onclick: () => removeThread(thread) }),
  );
  item.append(open, actions);
  return item;
}

function startRename(item, thread) {
  const input = el("input", { type: "text", class: "thread-rename", "aria-label": "New title", maxlength: "200" });
  input.value = threadTitle(thread);
  const finish = async (save) => {
    input.removeEventListener("blur", onBlur);
    const title = input.value.trim();
    if (save && title && title !== threadTitle(thread)) {
      try {
        await app.api.patchThread(thread.thread_id, { title });
        thread.metadata = { ...(thread.metadata || {}), title };
      } catch (error) {
        say(`Rename failed: ${describeError(error)}`);
      }
    }
    renderThreads();
    document.querySelector(`[data-thread-id="${thread.thread_id}"] .rename`)?.focus();
  };
  const onBlur = () => finish(true);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") finish(true);
    if (e.key === "Escape") finish(false);
  });
  input.addEventListener("blur", onBlur);
  item.replaceChildren(input);
  input.focus();
  input.select();
}

async function removeThread(thread) {
  const title = threadTitle(thread);
  if (!confirm(`Delete “${title}” and everything it stored? This cannot be undone.`)) return;
  try {
    await app.api.deleteThread(thread.thread_id);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) {
      say(`Delete failed: ${describeError(error)}`);
      return;
    }
  }
  app.threads = app.threads.filter((t) => t.thread_id !== thread.thread_id);
  if (app.threadId === thread.thread_id) newThread();
  renderThreads();
  say(`Deleted “${title}”.`);
}

// --- one thread ----------------------------------------------------------------------------

function newThread() {
  detachRun();
  app.threadId = null;
  app.tree = new Map();
  app.headId = null;
  app.failure = null;
  delete app.changed.persona;
  delete app.changed.persona_vars;
  history.replaceState(null, "", location.pathname + location.search);
  $("messages").replaceChildren();
  $("notice").hidden = true;
  renderPersonaPicker(null);
  renderThreads();
  closeSidebar();
  $("message").focus();
}

function detachRun() {
  // Leaving a thread while it streams: stop listening, the server run goes on (rejoin later).
  if (app.run && !app.run.stopping) {
    app.run.detached = true;
    app.run.controller.abort();
    app.run = null;
    setBusy(false);
  }
}

async function openThread(threadId, { quiet = false } = {}) {
  if (threadId !== app.threadId) {
    detachRun();
    delete app.changed.persona;
    delete app.changed.persona_vars;
    app.failure = null;
    $("messages").replaceChildren();
    $("notice").hidden = true;
  }
  app.threadId = threadId;
  history.replaceState(null, "", `${location.pathname}${location.search}#thread=${threadId}`);
  renderThreads();
  closeSidebar();
  const busy = await refreshThread();
  if (busy && !app.run) await joinActiveRun(threadId);
  if (!quiet) $("message").focus();
}

// Reload the open thread's checkpoints and show its current branch; true if a run is active.
async function refreshThread({ keepHead = false } = {}) {
  const threadId = app.threadId;
  const generation = app.generation;
  if (!threadId) return false;
  let thread;
  let history;
  try {
    [thread, history] = await Promise.all([app.api.getThread(threadId), app.api.getHistory(threadId)]);
  } catch (error) {
    if (generation !== app.generation || threadId !== app.threadId) return false;
    if (error instanceof ApiError && error.status === 404) {
      app.threads = app.threads.filter((t) => t.thread_id !== threadId);
      newThread();
      say(describeError(error));
      return false;
    }
    throw error;
  }
  if (generation !== app.generation || threadId !== app.threadId) return false;
  app.tree = buildTree(history);
  if (!keepHead || !app.tree.has(app.headId)) app.headId = newest(app.tree)?.id || null;
  renderThread();
  return thread.status === "busy";
}

function headValues() {
  return app.tree.get(app.headId)?.state?.values || {};
}

function renderThread() {
  const values = headValues();
  const path = app.headId ? pathTo(app.tree, app.headId) : [];
  const branchAt = forks(app.tree, path);
  const messages = messagesOf(app.tree.get(app.headId)).filter(shown);
  const list = $("messages");
  list.replaceChildren(...messages.map((m) => messageItem(m, path, branchAt.get(m.id))));
  const last = messages[messages.length - 1];
  if (last && last.type === "human" && !app.run) {
    const failure = app.failure?.threadId === app.threadId ? app.failure.error : null;
    const item = list.lastElementChild;
    const text = failure ? describeError(failure) : "This message got no reply (the turn failed or was stopped before any text).";
    item.append(errorBox(text, () => retryTurn(last, path)));
  }
  renderNotice(values);
  renderPersonaPicker(values);
  list.scrollTop = list.scrollHeight;
}

function renderNotice(values) {
  const archived = Number(values.archived || 0);
  $("notice").hidden = !app.threadId;
  $("notice-text").textContent =
    archived > 0
      ? `${archived} earlier message${archived === 1 ? " is" : "s are"} outside the model's window (kept in the transcript).`
      : "";
}

function messageItem(message, path, branch) {
  const user = message.type === "human";
  const text = contentText(message.content);
  const body = el("div", { class: "body" });
  if (user) body.textContent = text;
  else body.innerHTML = renderMarkdown(text);
  const item = el("li", { class: `msg ${user ? "user" : "assistant"}`, "data-message-id": message.id || "" });
  item.append(el("span", { class: "role visually-hidden", text: user ? "You:" : "Assistant:" }), body);
  const tools = el("div", { class: "tools" });
  const meta = message.response_metadata || {};
  if (meta.interrupted) tools.append(el("span", { class: "badge", text: "stopped" }));
  if (meta.cut) tools.append(el("span", { class: "badge", text: `cut at ${meta.reply_tokens ?? "the"} tokens` }));
  if (branch) tools.append(branchSwitcher(branch));
  const seen = message.id ? firstSeen(path, message.id) : null;
  if (seen?.parent && !app.run) {
    if (user) tools.append(el("button", { type: "button", class: "edit", text: "Edit", "aria-label": "Edit this message and send it again", onclick: () => startEdit(item, message, seen.parent) }));
    else if (isReply(message)) tools.append(el("button", { type: "button", class: "regenerate", text: "Regenerate", "aria-label": "Write this reply again", onclick: () => regenerate(message, seen.parent) }));
  }
  if (!user) tools.append(el("button", { type: "button", class: "copy-reply", text: "Copy", "aria-label": "Copy this reply", onclick: (e) => copyText(text, e.target) }));
  if (tools.childElementCount) item.append(tools);
  return item;
}

function copyText(text, button) {
  const done = () => {
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 1500);
  };
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, () => {});
}

function branchSwitcher(branch) {
  const { index, options } = branch;
  const go = (to) => {
    app.headId = options[to].leaf.id;
    renderThread();
    document.querySelector(`[data-message-id="${options[to].message.id}"] .branch button`)?.focus();
  };
  return el(
    "span",
    { class: "branch", role: "group", "aria-label": "Versions" },
    el("button", { type: "button", "aria-label": "Previous version", disabled: index === 0, onclick: () => go(index - 1), text: "‹" }),
    el("span", { class: "branch-label", text: `${index + 1} / ${options.length}` }),
    el("button", { type: "button", "aria-label": "Next version", disabled: index === options.length - 1, onclick: () => go(index + 1), text: "›" }),
  );
}

function errorBox(text, retry) {
  const box = el("div", { class: "error", role: "alert" }, el("span", { class: "error-text", text }));
  if (retry) box.append(el("button", { type: "button", class: "retry", text: "Retry", onclick: retry }));
  return box;
}

function startEdit(item, message, parent) {
  const area = el("textarea", { "aria-label": "Edited message" });
  area.value = contentText(message.content);
  const box = el(
    "div",
    { class: "edit-box" },
    area,
    el(
      "div",
      { class: "tools" },
      el("button", { type: "button", class: "primary", text: "Send edited", onclick: () => send(area.value, { from: parent, keep: message }) }),
      el("button", { type: "button", text: "Cancel", onclick: () => renderThread() }),
    ),
  );
  item.replaceChildren(box);
  area.addEventListener("keydown", (e) => {
    if (e.key === "Escape") renderThread();
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send(area.value, { from: parent, keep: message });
    }
  });
  area.focus();
}

function retryTurn(message, path) {
  const seen = message.id ? firstSeen(path, message.id) : null;
  send(contentText(message.content), { from: seen?.parent || null, keep: message });
}

function regenerate(message, parent) {
  startRun({ input: null, from: parent, keep: message, text: null });
}

// --- talking -------------------------------------------------------------------------------

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").hidden = !busy;
  $("send").hidden = busy;
  for (const button of document.querySelectorAll(".msg .edit, .msg .regenerate, .msg .retry")) button.disabled = busy;
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function send(text, { from = null, keep = null } = {}) {
  if (app.run) {
    say("A reply is being written: wait for it to end, or press Stop.");
    return;
  }
  if (!text || !text.trim()) {
    say("The message is empty: type something first.");
    $("message").focus();
    return;
  }
  const message = { type: "human", content: text };
  const most = app.settings?.limits?.message_bytes?.max;
  const size = new TextEncoder().encode(JSON.stringify(message)).length;
  if (most && size > most) {
    say(`Message too large: ${size} bytes; this server takes at most ${most} bytes per message. Shorten it or split it across turns.`);
    return;
  }
  await startRun({ input: { messages: [message] }, from, keep, text });
}

// Show the messages up to (not including) `keep`, the message being replaced by a new run.
function truncateBefore(keep) {
  if (!keep) return;
  const items = [...$("messages").children];
  const at = items.findIndex((li) => li.dataset.messageId === keep.id);
  if (at !== -1) for (const li of items.slice(at)) li.remove();
}

async function startRun({ input, from, keep, text }) {
  const sentAt = performance.now();
  const generation = app.generation;
  app.failure = null;
  if (!app.threadId) {
    try {
      const thread = await app.api.createThread({ title: titleFrom(text || "") });
      if (generation !== app.generation) return;
      app.threadId = thread.thread_id;
      app.threads.unshift(thread);
      history.replaceState(null, "", `${location.pathname}${location.search}#thread=${thread.thread_id}`);
      renderThreads();
    } catch (error) {
      say(describeError(error));
      return;
    }
  }
  const threadId = app.threadId;
  truncateBefore(keep);
  for (const old of document.querySelectorAll(".msg .error")) old.remove();
  const list = $("messages");
  let userItem = null;
  if (text !== null) {
    userItem = el("li", { class: "msg user" }, el("span", { class: "role visually-hidden", text: "You:" }), el("div", { class: "body", text }));
    list.append(userItem);
  }
  const payload = {
    assistant_id: app.graph,
    input,
    stream_mode: ["messages-tuple"],
    stream_resumable: true,
    on_disconnect: "continue",
    multitask_strategy: "reject",
  };
  const context = runContext();
  if (context) payload.context = context;
  if (from) payload.checkpoint_id = from.id;
  if (text !== null && keep === null) $("message").value = "";
  const run = beginReply(threadId, sentAt);
  try {
    await consume(run, app.api.streamRun(threadId, payload, run.controller.signal));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      // The token was refused (the sign-in dialog is up) and nothing was stored: keep the
      // text for after signing in again.
      if (text !== null && !$("message").value) $("message").value = text;
      return;
    }
    if (run.detached || generation !== app.generation) return;
    if (run.stopping) return settle(run); // Stop aborted the stream on purpose
    if (error instanceof ApiError && error.status === 409) {
      // Busy: nothing was stored. Give the text back and show the run that is going on.
      run.item.remove();
      userItem?.remove();
      if (text !== null && !$("message").value) $("message").value = text;
      endReply(run);
      await joinActiveRun(threadId, describeError(error));
      return;
    }
    run.error = error;
    (userItem || run.item).append(errorBox(describeError(error), () => retrySame({ input, from, keep, text, userItem, run })));
    run.item.remove();
    endReply(run);
    return;
  }
  await settle(run);
}

function retrySame({ input, from, keep, text, userItem }) {
  userItem?.remove();
  startRun({ input, from, keep, text });
}

function beginReply(threadId, sentAt) {
  const body = el("div", { class: "body", "aria-busy": "true" });
  const item = el("li", { class: "msg assistant streaming" }, el("span", { class: "role visually-hidden", text: "Assistant:" }), body);
  $("messages").append(item);
  const run = {
    threadId,
    runId: null,
    controller: new AbortController(),
    renderer: new StreamingMessage(body),
    item,
    body,
    partial: "",
    tokens: 0,
    sentAt,
    firstTokenAt: null,
    error: null,
    stopping: false,
    detached: false,
  };
  run.gotRunId = new Promise((resolve) => (run.resolveRunId = resolve));
  app.run = run;
  setBusy(true);
  say("Writing a reply…");
  return run;
}

async function consume(run, events) {
  const list = $("messages");
  for await (const { event, data } of events) {
    if (event === "metadata" && data?.run_id) {
      run.runId = data.run_id;
      run.resolveRunId(data.run_id);
    } else if (event === "messages" || event.startsWith("messages|")) {
      const [chunk, meta] = Array.isArray(data) ? data : [null, null];
      if (!chunk || meta?.langgraph_node !== "call_model") continue;
      if (!String(chunk.type || "").startsWith("AIMessageChunk") && chunk.type !== "ai") continue;
      const piece = contentText(chunk.content);
      if (!piece) continue;
      if (run.firstTokenAt === null) {
        requestAnimationFrame(() => (run.firstPaintAt = performance.now()));
        run.firstTokenAt = performance.now();
      }
      run.tokens += 1;
      run.partial += piece;
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      run.renderer.append(piece);
      if (atBottom) requestAnimationFrame(() => (list.scrollTop = list.scrollHeight));
    } else if (event === "error") {
      run.error = data;
    } else if (event === "end") {
      break;
    }
  }
}

function endReply(run) {
  if (app.run === run) app.run = null;
  run.body.removeAttribute("aria-busy");
  run.item.classList.remove("streaming");
  setBusy(false);
}

// After the stream: record timings, then show the thread as the server saved it.
async function settle(run) {
  if (run.detached) return;
  run.renderer.finish();
  const endAt = performance.now();
  app.metrics.push({
    sentAt: run.sentAt,
    firstTokenAt: run.firstTokenAt,
    firstPaintAt: run.firstPaintAt ?? null,
    endAt,
    tokens: run.tokens,
    renders: run.renderer.renders,
    renderMs: run.renderer.renderMs,
    stopped: run.stopping,
  });
  if (run.error && !run.stopping) app.failure = { threadId: run.threadId, error: run.error };
  if (run.stopping) await run.stopped;
  endReply(run);
  say(run.error && !run.stopping ? describeError(run.error) : run.stopping ? "Stopped." : "Reply finished.");
  if (run.threadId === app.threadId) await refreshThread();
  await loadThreads().catch(() => {});
  document.body.dataset.replies = String(Number(document.body.dataset.replies || 0) + 1);
}

async function joinActiveRun(threadId, notice = "A reply is being written: showing it live.") {
  let runs;
  try {
    runs = await app.api.activeRuns(threadId);
  } catch {
    return;
  }
  const active = runs[0];
  if (!active || threadId !== app.threadId || app.run) return;
  const run = beginReply(threadId, performance.now());
  run.runId = active.run_id;
  run.resolveRunId(active.run_id);
  say(notice);
  try {
    await consume(run, app.api.joinRun(threadId, active.run_id, run.controller.signal));
  } catch (error) {
    if (run.detached) return;
    if (!run.stopping) run.error = error;
  }
  await settle(run);
}

// Stop: cancel the server run, then keep what was shown as an interrupted reply.
async function stop() {
  const run = app.run;
  if (!run || run.stopping) return;
  run.stopping = true;
  $("stop").disabled = true;
  say("Stopping…");
  run.stopped = (async () => {
    try {
      const runId = run.runId || (await run.gotRunId);
      await app.api.cancelRun(run.threadId, runId);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) say(`Stop failed: ${describeError(error)}`);
    }
    run.controller.abort();
    try {
      await keepPartial(run);
    } catch (error) {
      say(`The stopped reply could not be kept: ${describeError(error)}`);
    }
    $("stop").disabled = false;
  })();
}

async function keepPartial(run) {
  if (!run.partial || !run.runId) return;
  if (app.settings?.graph) {
    // This project's server: it saves the run's own streamed text, cut where the page stopped.
    await app.api.keepStopped(run.threadId, run.runId, run.partial.length);
    return;
  }
  // Another LangGraph server: write what was shown, as Chatbot.stop() does in process.
  const state = await app.api.getState(run.threadId);
  const messages = state?.values?.messages || [];
  const last = messages[messages.length - 1];
  if (!last || last.type !== "human") return; // the reply was saved before the stop took effect
  await app.api.updateState(
    run.threadId,
    { messages: [{ type: "ai", content: run.partial, response_metadata: { interrupted: true } }] },
    "call_model",
  );
}

// --- start-up ------------------------------------------------------------------------------

async function loadSettings() {
  try {
    app.settings = await app.api.pageSettings();
    if (!query.get("graph") && app.settings?.graph) app.graph = app.settings.graph;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    app.settings = { personas: [], settings: [] }; // another LangGraph server: no extras
  }
  renderPersonaPicker(null);
  renderSettingFields();
}

async function start() {
  const generation = app.generation;
  try {
    await loadSettings();
    if (generation !== app.generation) return;
    await loadThreads();
    if (generation !== app.generation) return;
    const wanted = /thread=([0-9a-f-]{36})/.exec(location.hash)?.[1];
    if (wanted) await openThread(wanted, { quiet: true });
    else renderPersonaPicker(null);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // the sign-in dialog is up
    say(describeError(error));
  }
}

function closeSidebar() {
  $("sidebar").classList.remove("open");
  $("threads-toggle").setAttribute("aria-expanded", "false");
}

function wire() {
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    send($("message").value);
  });
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send($("message").value);
    } else if (e.key === "Escape" && app.run) {
      stop();
    }
  });
  $("stop").addEventListener("click", stop);
  $("new-thread").addEventListener("click", newThread);
  $("thread-search").addEventListener("input", renderThreads);
  $("theme").addEventListener("click", cycleTheme);
  $("sign-out").addEventListener("click", signOut);
  $("signin-form").addEventListener("submit", signIn);
  $("signin").addEventListener("cancel", (e) => e.preventDefault()); // no access without a token
  $("persona").addEventListener("change", (e) => {
    if (e.target.value) app.changed.persona = e.target.value;
    else delete app.changed.persona;
    delete app.changed.persona_vars;
    renderPersonaVars(app.changed.persona || headValues().persona || "", headValues());
  });
  $("messages").addEventListener("click", (e) => handleCopy(e));
  $("export-md").addEventListener("click", () => exportThread("markdown"));
  $("export-json").addEventListener("click", () => exportThread("json"));
  $("threads-toggle").addEventListener("click", () => {
    const open = $("sidebar").classList.toggle("open");
    $("threads-toggle").setAttribute("aria-expanded", String(open));
    if (open) $("new-thread").focus();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && $("sidebar").classList.contains("open")) {
      closeSidebar();
      $("threads-toggle").focus();
    }
  });
  window.addEventListener("hashchange", () => {
    const wanted = /thread=([0-9a-f-]{36})/.exec(location.hash)?.[1];
    if (wanted && wanted !== app.threadId) openThread(wanted);
  });
}

async function exportThread(format) {
  if (!app.threadId) return;
  try {
    const blob = await app.api.exportThread(app.threadId, format);
    const link = el("a", { href: URL.createObjectURL(blob), download: `conversation-${app.threadId}.${format === "json" ? "json" : "md"}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    say(`Export failed: ${describeError(error)}`);
  }
}

applyTheme(localStorage.getItem(THEME_KEY) || "auto");
app.api = new Api({ token: sessionStorage.getItem(TOKEN_KEY), onUnauthorized: (detail) => askToken(app.api.token ? `Your token was refused: ${detail}` : "This server needs an access token.") });
$("sign-out").hidden = !app.api.token;
wire();
start();
