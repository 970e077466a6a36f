// Markdown for replies, cheap per streamed token.
//
// A streamed reply is split at the last blank line outside a code fence: the blocks before it
// are complete, rendered once and never touched again ("frozen"); only the unfinished tail is
// re-rendered, at most once per animation frame however many tokens arrived. Code is
// highlighted once its block is frozen (and in the final render), never per token. When the
// reply ends it is rendered once more as a whole, so constructs that span blocks (loose lists,
// reference links) come out exactly as in a page load. Raw HTML in Markdown is shown as text
// (markdown-it's html: false) and markdown-it refuses javascript: and similar links.

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function highlighted(code, lang) {
  const hljs = globalThis.hljs;
  if (!hljs) return escapeHtml(code);
  try {
    if (lang && hljs.getLanguage(lang)) return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  } catch {
    // fall through to plain text
  }
  return escapeHtml(code);
}

function makeMarkdown(highlight) {
  const factory = globalThis.markdownit;
  if (!factory) return null;
  const md = factory({ html: false, linkify: true, breaks: false });
  md.renderer.rules.fence = (tokens, idx) => {
    const token = tokens[idx];
    const lang = (token.info || "").trim().split(/\s+/)[0];
    const code = token.content;
    const body = highlight ? highlighted(code, lang) : escapeHtml(code);
    const label = lang ? escapeHtml(lang) : "code";
    const cls = lang ? ` class="hljs language-${escapeHtml(lang)}"` : ' class="hljs"';
    return (
      `<div class="code"><div class="code-bar"><span>${label}</span>` +
      `<button type="button" class="copy" aria-label="Copy ${label} to the clipboard">Copy</button></div>` +
      `<pre><code${cls}>${body}</code></pre></div>\n`
    );
  };
  const linkOpen = md.renderer.rules.link_open || ((tokens, idx, options, env, self) => self.renderToken(tokens, idx, options));
  md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    tokens[idx].attrSet("target", "_blank");
    tokens[idx].attrSet("rel", "noopener noreferrer");
    return linkOpen(tokens, idx, options, env, self);
  };
  return md;
}

let full = null;
let plain = null;

function renderers() {
  if (!full) {
    full = makeMarkdown(true);
    plain = makeMarkdown(false);
  }
  return { full, plain };
}

// Markdown to HTML, highlighted; plain escaped text if the library did not load.
export function renderMarkdown(text) {
  const { full: md } = renderers();
  return md ? md.render(text) : `<p>${escapeHtml(text)}</p>`;
}

function renderTail(text) {
  const { plain: md } = renderers();
  return md ? md.render(text) : `<p>${escapeHtml(text)}</p>`;
}

// Scans a growing text line by line, remembering where the last complete block ended.
export class BlockScanner {
  constructor() {
    this.scanned = 0; // text before this offset has been scanned
    this.inFence = null; // the fence marker of an open code block, if any
    this.safe = 0; // offset just after the last blank line outside a fence
  }

  feed(text) {
    let start = this.scanned;
    for (;;) {
      const newline = text.indexOf("\n", start);
      if (newline === -1) break;
      const line = text.slice(start, newline);
      const fence = FENCE.exec(line);
      if (this.inFence) {
        if (fence && fence[1][0] === this.inFence[0] && fence[1].length >= this.inFence.length && !line.slice(fence[0].length).trim()) {
          this.inFence = null;
        }
      } else if (fence) {
        this.inFence = fence[1];
      } else if (!line.trim()) {
        this.safe = newline + 1;
      }
      start = newline + 1;
    }
    this.scanned = start;
    return this.safe;
  }
}

const frame = (callback) =>
  document.hidden ? setTimeout(callback, 50) : requestAnimationFrame(callback);

// Renders one streaming reply into `element`; `append` is cheap, work happens once per frame.
export class StreamingMessage {
  constructor(element) {
    this.element = element;
    this.text = "";
    this.frozenUpTo = 0;
    this.scanner = new BlockScanner();
    this.frozen = document.createElement("div");
    this.frozen.className = "frozen";
    this.tail = document.createElement("div");
    this.tail.className = "tail";
    element.replaceChildren(this.frozen, this.tail);
    this.scheduled = false;
    this.renders = 0;
    this.renderMs = 0;
  }

  append(piece) {
    if (!piece) return;
    this.text += piece;
    if (!this.scheduled) {
      this.scheduled = true;
      frame(() => this.flush());
    }
  }

  flush() {
    this.scheduled = false;
    if (this.done) return;
    const started = performance.now();
    const safe = this.scanner.feed(this.text);
    if (safe > this.frozenUpTo) {
      this.frozen.insertAdjacentHTML("beforeend", renderMarkdown(this.text.slice(this.frozenUpTo, safe)));
      this.frozenUpTo = safe;
    }
    this.tail.innerHTML = renderTail(this.text.slice(this.frozenUpTo));
    this.renders += 1;
    this.renderMs += performance.now() - started;
  }

  // The reply is complete: render it once as a whole.
  finish() {
    this.done = true;
    const started = performance.now();
    this.element.innerHTML = renderMarkdown(this.text);
    this.renderMs += performance.now() - started;
  }
}

// Copy buttons on code blocks (one listener for the whole message list).
export function handleCopy(event) {
  const button = event.target.closest("button.copy");
  if (!button) return false;
  const code = button.closest(".code")?.querySelector("pre code");
  if (!code) return true;
  const text = code.textContent.replace(/\n$/, "");
  const done = () => {
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
  } else {
    fallbackCopy(text, done);
  }
  return true;
}

function fallbackCopy(text, done) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  try {
    document.execCommand("copy");
    done();
  } finally {
    area.remove();
  }
}
