// Part 3: capture. Errors and rejections (addEventListener, so a page that replaces
// `window.onerror` does not blind us), console.error/warn (log/info when configured), failed
// fetch/XHR, load timing and web vitals, clicks/inputs/scrolls, DOM mutations. Browser-side
// histories are bounded (interactions 500, mutations 200).

const INTERACTIONS_MAX = 500;
const MUTATIONS_MAX = 200;
const interactions = [];
const mutations = [];
const push = (arr, max, v) => {
  if (arr.length >= max) arr.shift();
  arr.push(v);
};

addEventListener(
  "error",
  (ev) => {
    const t = ev.target;
    if (t && t !== window && t.nodeType === 1) {
      if (isOwn(t)) return;
      const src = t.src || t.href || "";
      emit("error", { message: `failed to load ${t.localName}: ${src}`, source: src, error_type: "resource", target: selectorOf(t) });
      return;
    }
    emit("error", {
      message: String(ev.message || (ev.error && ev.error.message) || "error"),
      source: ev.filename || "",
      lineno: ev.lineno || 0,
      colno: ev.colno || 0,
      stack: (ev.error && ev.error.stack) || "",
      error_type: (ev.error && ev.error.name) || "Error",
    });
  },
  true
);
addEventListener("unhandledrejection", (ev) => {
  const r = ev.reason;
  emit("error", {
    message: `Unhandled rejection: ${cut((r && r.message) || preview([r]), PREVIEW)}`,
    stack: (r && r.stack) || "",
    error_type: "unhandledrejection",
  });
});

for (const level of ["error", "warn", "log", "info", "debug"]) {
  const orig = console[level];
  if (typeof orig !== "function") continue;
  console[level] = function (...args) {
    if (config.console.includes(level)) {
      try {
        emit("console", { level, message: preview(args), stack: level === "error" ? cut(new Error().stack, PREVIEW) : undefined });
      } catch (e) {}
    }
    return orig.apply(this, args);
  };
}

// Failed requests (status >= 400 or network error); our own routes are skipped.
const ownUrl = (u) => String(u).includes("/__agnt/");
const netFail = (kind, method, url, status, t0, err) =>
  emit("error", {
    message: `${method} ${cut(url, 300)} ${err ? `failed: ${err}` : `→ ${status}`}`,
    error_type: kind,
    method,
    request_url: cut(url, 1000),
    status,
    duration_ms: now() - t0,
  });
if (typeof window.fetch === "function") {
  const origFetch = window.fetch;
  window.fetch = function (input, init) {
    const t0 = now();
    let method = "GET";
    let url = "";
    try {
      url = typeof input === "string" ? input : input && input.url ? input.url : String(input);
      method = String((init && init.method) || (input && input.method) || "GET").toUpperCase();
    } catch (e) {}
    const p = origFetch.apply(this, arguments);
    if (ownUrl(url)) return p;
    return p.then(
      (res) => {
        if (res && res.status >= 400) netFail("fetch", method, url, res.status, t0);
        return res;
      },
      (err) => {
        netFail("fetch", method, url, 0, t0, cut(err && err.message, 200));
        throw err;
      }
    );
  };
}
if (window.XMLHttpRequest && XMLHttpRequest.prototype) {
  const open = XMLHttpRequest.prototype.open;
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    try {
      this.__agnt = { method: String(method).toUpperCase(), url: String(url) };
    } catch (e) {}
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    const info = this.__agnt;
    if (info && !ownUrl(info.url)) {
      const t0 = now();
      this.addEventListener("loadend", () => {
        if (this.status >= 400) netFail("xhr", info.method, info.url, this.status, t0);
        else if (this.status === 0) netFail("xhr", info.method, info.url, 0, t0, "network error or aborted");
      });
    }
    return send.apply(this, arguments);
  };
}

// Timing: navigation + paint at load, then LCP/CLS/long tasks.
const vitals = { lcp_ms: null, cls: 0, long_tasks: 0, long_task_ms: 0 };
function reportTiming() {
  const nav = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
  const d = { title: document.title, metric: "load" };
  if (nav) {
    d.load_time_ms = Math.round(nav.loadEventEnd || nav.duration);
    d.dom_content_loaded_ms = Math.round(nav.domContentLoadedEventEnd);
    d.dom_interactive_ms = Math.round(nav.domInteractive);
    d.ttfb_ms = Math.round(nav.responseStart);
    d.transfer_size = nav.transferSize;
  }
  for (const p of performance.getEntriesByType ? performance.getEntriesByType("paint") : []) {
    if (p.name === "first-paint") d.first_paint_ms = Math.round(p.startTime);
    if (p.name === "first-contentful-paint") d.first_contentful_paint_ms = Math.round(p.startTime);
  }
  d.resource_count = performance.getEntriesByType ? performance.getEntriesByType("resource").length : 0;
  d.viewport = { width: innerWidth, height: innerHeight };
  emit("performance", d);
}
let vitalsSent = false;
function reportVitals() {
  if (vitalsSent) return;
  vitalsSent = true;
  emit("performance", { metric: "vitals", ...vitals, cls: Math.round(vitals.cls * 1000) / 1000 });
  flush();
}
const observe = (type, cb) => {
  try {
    new PerformanceObserver((list) => list.getEntries().forEach(cb)).observe({ type, buffered: true });
  } catch (e) {}
};
// Observers start after load (buffered: true still delivers earlier entries), to keep the
// script's cost during page load small.
function observeVitals() {
  observe("largest-contentful-paint", (e) => (vitals.lcp_ms = Math.round(e.startTime)));
  observe("layout-shift", (e) => {
    if (!e.hadRecentInput) vitals.cls += e.value;
  });
  observe("longtask", (e) => {
    vitals.long_tasks++;
    vitals.long_task_ms += Math.round(e.duration);
    if (vitals.long_tasks <= 10) emit("performance", { metric: "longtask", duration_ms: Math.round(e.duration), start_ms: Math.round(e.startTime) });
  });
}
if (document.readyState === "complete") setTimeout(reportTiming, 0);
else addEventListener("load", () => setTimeout(reportTiming, 100));
addEventListener("load", () => setTimeout(reportVitals, 5000));
addEventListener("pagehide", reportVitals);

// Interactions.
function interaction(ev) {
  push(interactions, INTERACTIONS_MAX, ev);
  emit("interaction", ev);
}
// Typed values: the secret-field rule, plus (as before it) any name/id merely containing
// pass/secret/token/cvv/cvc/card — hiding a typed value costs the agent little.
const sensitive = (t) => secretField(t) || (redactNames && /pass|secret|token|cvv|cvc|card/i.test(`${t.name || ""} ${t.id || ""}`));
addEventListener(
  "click",
  (e) => {
    const t = e.target;
    if (!t || t.nodeType !== 1 || isOwn(t)) return;
    interaction({
      event_type: "click",
      target: selectorOf(t),
      tag: t.localName,
      // Form fields: their label-ish text, never their value (passwords, card numbers…).
      text: cut((/^(input|textarea|select)$/.test(t.localName) ? "" : t.innerText) || t.getAttribute("aria-label") || t.getAttribute("placeholder") || ""),
      position: { x: Math.round(e.clientX), y: Math.round(e.clientY) },
      time: Date.now(),
    });
  },
  true
);
const inputTimers = new WeakMap();
addEventListener(
  "input",
  (e) => {
    const t = e.target;
    if (!t || t.nodeType !== 1 || isOwn(t)) return;
    clearTimeout(inputTimers.get(t));
    inputTimers.set(
      t,
      setTimeout(() => {
        const ev = { event_type: "input", target: selectorOf(t), tag: t.localName, input_type: t.type || "", time: Date.now() };
        // Never a password's value, nor its length.
        if (!sensitive(t)) {
          if (t.type === "checkbox" || t.type === "radio") ev.checked = !!t.checked;
          else if ("value" in t) ev.value = cut(t.value);
        } else ev.redacted = true;
        interaction(ev);
      }, 300)
    );
  },
  true
);
let scrollTimer = 0;
addEventListener(
  "scroll",
  () => {
    clearTimeout(scrollTimer);
    scrollTimer = setTimeout(() => interaction({ event_type: "scroll", position: { x: Math.round(scrollX), y: Math.round(scrollY) }, time: Date.now() }), 150);
  },
  { passive: true, capture: true }
);
addEventListener(
  "submit",
  (e) => e.target && !isOwn(e.target) && interaction({ event_type: "submit", target: selectorOf(e.target), time: Date.now() }),
  true
);

// Mutations: summarised per flush (every 500 ms), at most 20 entries per flush.
let pendingMut = [];
let mutTimer = 0;
let mutSentWindow = 0;
let mutWindowStart = 0;
const nodeName = (n) => (n.nodeType === 1 ? selectorOf(n) : n.nodeType === 3 ? "#text" : n.nodeName);
function flushMutations() {
  mutTimer = 0;
  const groups = new Map();
  for (const r of pendingMut) {
    if (isOwn(r.target)) continue;
    const added = [...r.addedNodes].filter((n) => !(n.nodeType === 3 && !n.textContent.trim()) && !isOwn(n));
    const removed = [...r.removedNodes].filter((n) => !(n.nodeType === 3 && !n.textContent.trim()) && !isOwn(n));
    let type = r.type === "attributes" ? "attribute" : added.length ? "added" : removed.length ? "removed" : null;
    if (r.type === "characterData") type = "text";
    if (!type) continue;
    const target = r.target.nodeType === 1 ? r.target : r.target.parentElement;
    const key = `${type}|${r.attributeName || ""}|${selectorOf(target)}`;
    let g = groups.get(key);
    if (!g) {
      g = { mutation_type: type, target: selectorOf(target), time: Date.now(), count: 0 };
      if (r.attributeName) g.attribute = r.attributeName;
      groups.set(key, g);
      g.el = target;
    }
    g.count++;
    if (added.length) g.added = (g.added || []).concat(added.slice(0, 5).map(nodeName)).slice(0, 10);
    if (removed.length) g.removed = (g.removed || []).concat(removed.slice(0, 5).map(nodeName)).slice(0, 10);
  }
  pendingMut = [];
  const t = Date.now();
  if (t - mutWindowStart > 1000) {
    mutWindowStart = t;
    mutSentWindow = 0;
  }
  for (const g of groups.values()) {
    const elRef = g.el;
    delete g.el;
    push(mutations, MUTATIONS_MAX, Object.assign({ el: elRef }, g));
    if (mutSentWindow++ < 20) emit("mutation", g);
  }
}
// Observed from the load event on: the parser's own insertions are not changes worth
// reporting, and observing them slows parsing down measurably.
function observeMutations() {
  try {
    new MutationObserver((records) => {
      if (pendingMut.length < 2000) pendingMut.push(...records);
      if (!mutTimer) mutTimer = setTimeout(flushMutations, 500);
    }).observe(document.documentElement, { childList: true, subtree: true, attributes: true, characterData: true });
  } catch (e) {}
}
let observing = false;
function afterLoad() {
  if (observing) return;
  observing = true;
  observeMutations();
  observeVitals();
}
whenLoaded(afterLoad);
