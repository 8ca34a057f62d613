// agnt browser script, part 1: core. Served by the proxy at /__agnt/agnt.js (same origin as
// the page). The proxy concatenates the parts of this directory in file-name order inside one
// `(() => { "use strict"; ... })();`, so every part shares this scope. Nothing here is loaded
// from another origin, and nothing throws into the page: public functions return data or
// `{error}`.
//
// Documentation of `window.__devtool` lives in doc comments tagged `@devtool name(args) — text` in
// front of each `def(...)`; the proxy parses them for `proxy exec help/describe`.

const T0 = performance.now();
if (window.__agnt && window.__agnt.version) return; // injected twice: run once
const agnt = (window.__agnt = { version: 2 });
// The page-channel key: this proxy instance writes it into the tag it injects (never into the
// cached script itself), so only pages it served can open the channel. A page that loads the
// script itself first finds the key on the injected tag once it is parsed.
const OWN_KEY = (() => {
  try {
    const s = document.currentScript;
    return (s && s.getAttribute("data-agnt-key")) || "";
  } catch (e) {
    return "";
  }
})();
const pageKey = () => {
  if (OWN_KEY) return OWN_KEY;
  try {
    const s = document.querySelector("script[data-agnt-key]");
    return (s && s.getAttribute("data-agnt-key")) || "";
  } catch (e) {
    return "";
  }
};
const devtool = window.__devtool && typeof window.__devtool === "object" ? window.__devtool : {};
try {
  Object.defineProperty(window, "__devtool", { value: devtool, configurable: true, writable: true });
} catch (e) {}

const MAX_TEXT = 100;
const PREVIEW = 2000;
const now = () => Math.round(performance.now());
const errText = (e) => {
  try {
    if (e && e.stack) return `${e.name || "Error"}: ${e.message}\n${e.stack}`;
    return String(e && e.message ? e.message : e);
  } catch (_) {
    return "unprintable error";
  }
};
const cut = (s, n = MAX_TEXT) => {
  s = String(s == null ? "" : s).replace(/\s+/g, " ").trim();
  return s.length > n ? s.slice(0, n) + "…" : s;
};

/** Registers `fn` as `__devtool.<path>`, wrapped so it never throws (also not async). */
function def(path, fn) {
  const wrapped = (...args) => {
    try {
      const r = fn(...args);
      if (r && typeof r.then === "function") return r.catch((e) => ({ error: `${path}: ${errText(e)}` }));
      return r;
    } catch (e) {
      return { error: `${path}: ${errText(e)}` };
    }
  };
  const parts = path.split(".");
  let o = devtool;
  for (const p of parts.slice(0, -1)) o = o[p] || (o[p] = {});
  o[parts[parts.length - 1]] = wrapped;
}

// Our own DOM (panel, overlays) is tagged so capture and audits skip it.
const OWN = "data-agnt";
const isOwn = (n) => {
  for (; n; n = n.parentNode || n.host) if (n.nodeType === 1 && n.hasAttribute && n.hasAttribute(OWN)) return true;
  return false;
};

/** `#id`, or a short tag/class/nth-of-type path, unique enough to find the element again. */
function selectorOf(el) {
  if (!el || el.nodeType !== 1) return "";
  const esc = (s) => (window.CSS && CSS.escape ? CSS.escape(s) : s.replace(/[^\w-]/g, "\\$&"));
  const parts = [];
  for (let n = el, depth = 0; n && n.nodeType === 1 && depth < 5; n = n.parentElement, depth++) {
    if (n.id && document.querySelectorAll(`#${esc(n.id)}`).length === 1) {
      parts.unshift(`#${esc(n.id)}`);
      break;
    }
    let s = n.localName;
    if (n === document.documentElement || n === document.body) {
      parts.unshift(s);
      break;
    }
    const cls = [...n.classList].filter((c) => !c.startsWith("agnt-")).slice(0, 2);
    if (cls.length) s += "." + cls.map(esc).join(".");
    const p = n.parentElement;
    if (p) {
      const same = [...p.children].filter((c) => c.localName === n.localName);
      if (same.length > 1) s += `:nth-of-type(${same.indexOf(n) + 1})`;
    }
    parts.unshift(s);
  }
  return parts.join(" > ");
}

/** The element for a selector or element argument; throws a readable error when none. */
function el(sel) {
  if (sel && sel.nodeType === 1) return sel;
  if (typeof sel !== "string" || !sel) throw new Error("expected a CSS selector string");
  const e = document.querySelector(sel);
  if (!e) throw new Error(`no element matches ${JSON.stringify(sel)}`);
  return e;
}

/** JSON-safe copy: DOM nodes become selectors, cycles and depth are cut. */
function plain(v, depth = 0, seen = new Set()) {
  if (v === undefined) return null;
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
  if (typeof v === "bigint" || typeof v === "symbol") return String(v);
  if (typeof v === "function") return `[function ${v.name || "anonymous"}]`;
  if (v instanceof Error) return { error: errText(v) };
  if (typeof Node !== "undefined" && v instanceof Node)
    return v.nodeType === 1 ? { element: selectorOf(v), tag: v.localName, text: cut(v.textContent) } : `[${v.nodeName}]`;
  if (seen.has(v)) return "[circular]";
  if (depth > 10) return "[too deep]";
  seen.add(v);
  let out;
  if (Array.isArray(v) || (typeof v.length === "number" && typeof v !== "string" && typeof v.item === "function")) {
    out = Array.from(v).slice(0, 1000).map((x) => plain(x, depth + 1, seen));
  } else if (v instanceof Map) {
    out = Object.fromEntries([...v].slice(0, 1000).map(([k, x]) => [String(k), plain(x, depth + 1, seen)]));
  } else if (v instanceof Set) {
    out = [...v].slice(0, 1000).map((x) => plain(x, depth + 1, seen));
  } else if (v instanceof Date) {
    out = v.toISOString();
  } else {
    out = {};
    let n = 0;
    for (const k in v) {
      if (++n > 500) break;
      try {
        out[k] = plain(v[k], depth + 1, seen);
      } catch (e) {
        out[k] = "[unreadable]";
      }
    }
  }
  seen.delete(v);
  return out;
}

const preview = (args) =>
  cut(
    [...args]
      .map((a) => {
        if (typeof a === "string") return a;
        if (a instanceof Error) return `${a.name}: ${a.message}`;
        try {
          return JSON.stringify(plain(a, 6));
        } catch (e) {
          return String(a);
        }
      })
      .join(" "),
    PREVIEW
  );

/** Runs `fn` once, just after the load event (or after 3 s if load never comes). */
function whenLoaded(fn) {
  let done = false;
  const run = () => {
    if (!done) {
      done = true;
      fn();
    }
  };
  if (document.readyState === "complete") setTimeout(run, 0);
  else {
    addEventListener("load", () => setTimeout(run, 0));
    setTimeout(run, 3000);
  }
}

// Per-tab id, kept across navigations in sessionStorage and mirrored into a cookie so the
// proxy can attribute HTTP requests to this tab. Set up when the channel opens (the first
// storage access of a page is slow, and the page's own loading comes first).
let pageId = null;
function initPageId() {
  if (pageId) return;
  try {
    pageId = sessionStorage.getItem("__agnt_page");
  } catch (e) {}
  if (!pageId) {
    pageId = `tab-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      sessionStorage.setItem("__agnt_page", pageId);
    } catch (e) {}
  }
  try {
    document.cookie = `__agnt_page=${pageId}; path=/; SameSite=Lax`;
  } catch (e) {}
  agnt.pageId = pageId;
}
