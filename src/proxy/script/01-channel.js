// Part 2: the channel. Events are queued and sent in batches (`{type:"batch", events}`) over
// the WebSocket at /__agnt/ws; the socket reconnects with exponential back-off (0.5 s … 30 s)
// for as long as the page lives. The proxy sends `execute` (run agent code), `config` and
// `screenshot_saved`.

const OUTBOX_MAX = 500;
const BATCH = 50;
let ws = null;
let attempts = 0;
let outbox = [];
let flushTimer = 0;
let dropped = 0;
const handlers = {};
const config = { panel: false, console: ["error", "warn"] };

function rawSend(msg) {
  if (!ws || ws.readyState !== 1) return false;
  try {
    msg.page_id = pageId;
    if (!msg.url) msg.url = location.href;
    ws.send(JSON.stringify(msg));
    return true;
  } catch (e) {
    return false;
  }
}

/** Queues one event for the next batch. */
function emit(type, data) {
  if (outbox.length >= OUTBOX_MAX) {
    outbox.shift();
    dropped++;
  }
  outbox.push({ type, data, url: location.href, ts: Date.now() });
  if (!flushTimer) flushTimer = setTimeout(flush, type === "error" ? 50 : 250);
}
agnt.send = emit;

function flush() {
  flushTimer = 0;
  while (outbox.length && ws && ws.readyState === 1) {
    const events = outbox.slice(0, BATCH);
    if (!rawSend({ type: "batch", events, dropped })) break;
    outbox.splice(0, events.length);
    dropped = 0;
  }
}

function connect() {
  initPageId();
  try {
    ws = new WebSocket(`${location.protocol === "https:" ? "wss://" : "ws://"}${location.host}/__agnt/ws?key=${encodeURIComponent(pageKey())}`);
  } catch (e) {
    ws = null;
    return retry();
  }
  ws.onopen = () => {
    attempts = 0;
    let frame = false;
    try {
      frame = window.top !== window;
    } catch (e) {
      frame = true;
    }
    rawSend({ type: "hello", data: { title: document.title, user_agent: navigator.userAgent, version: agnt.version, frame } });
    flush();
  };
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    const h = msg && handlers[msg.type];
    if (h) {
      try {
        h(msg);
      } catch (e) {}
    }
  };
  ws.onclose = () => {
    ws = null;
    retry();
  };
  ws.onerror = () => {};
}

function retry() {
  attempts++;
  const delay = Math.min(30000, 500 * 2 ** Math.min(attempts - 1, 6)) * (0.75 + Math.random() / 2);
  setTimeout(connect, delay);
}

handlers.config = (msg) => {
  if (typeof msg.panel === "boolean") config.panel = msg.panel;
  configureRedaction(msg);
  if (Array.isArray(msg.console)) config.console = msg.console.map(String);
  if (typeof onConfig === "function") onConfig();
};

// Agent code: indirect eval (global scope, expressions give their value). A page whose CSP
// forbids eval still accepts plain `__devtool.name(json args)` calls, parsed without eval.
const CALL_RE = /^\s*(?:window\.)?__devtool\.([\w.]+)\(([\s\S]*)\)\s*;?\s*$/;
function callWithoutEval(code) {
  const m = CALL_RE.exec(code);
  if (!m) return null;
  let args = null;
  // JSON arguments; simple 'single-quoted' strings are accepted too.
  for (const text of [m[2], m[2].replace(/'([^'"\\]*)'/g, '"$1"')]) {
    try {
      args = JSON.parse(`[${text}]`);
      break;
    } catch (e) {}
  }
  if (!args) return null;
  let f = devtool;
  for (const p of m[1].split(".")) f = f && f[p];
  if (typeof f !== "function") return null;
  return () => f(...args);
}

const cspBlocked = (e) => e instanceof EvalError || /content security policy|unsafe-eval/i.test(String(e && e.message));

handlers.execute = async (msg) => {
  const t0 = performance.now();
  let success = true;
  let result = null;
  let error = null;
  try {
    let v;
    try {
      v = (0, eval)(String(msg.code));
    } catch (e) {
      if (!cspBlocked(e)) throw e;
      const call = callWithoutEval(String(msg.code));
      if (!call)
        throw new Error(
          "the page's Content-Security-Policy blocks eval (no 'unsafe-eval'): only plain calls like " +
            "__devtool.inspect(\"#id\") with JSON arguments can run on this page"
        );
      v = call();
    }
    if (v && typeof v.then === "function") v = await v;
    result = plain(v);
  } catch (e) {
    success = false;
    error = errText(e);
  }
  rawSend({ type: "response", id: msg.id, success, result, error, duration_ms: Math.round(performance.now() - t0) });
};

addEventListener("pagehide", flush);
