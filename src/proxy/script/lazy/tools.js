// Lazy module "tools": the cheap groups named and shaped after the Go agnt v0.8.0 frontend
// docs that a page does not need at load: element inspection details, tree walking,
// stacking/off-screen scans, single-highlight removal, measuring, waiting, `ask` (and its box),
// log shorthands and the interaction/mutation filters. Results keep our own fields where older
// functions had them and add the Go field names next to them. (Loaded on first call of any of
// these; the histories they filter are recorded by the eager capture part from page load on.)

/** @devtool debug(message, data) — log() at level "debug". */
def("debug", (message, data) => devtool.log(message, "debug", data));
/** @devtool info(message, data) — log() at level "info". */
def("info", (message, data) => devtool.log(message, "info", data));
/** @devtool warn(message, data) — log() at level "warn". */
def("warn", (message, data) => devtool.log(message, "warn", data));
/** @devtool error(message, data) — log() at level "error". */
def("error", (message, data) => devtool.log(message, "error", data));

/** @devtool getComputed(selector, properties) — Computed values of the given CSS properties (kebab-case names; all of the usual layout ones when omitted). */
def("getComputed", (sel, props) => {
  const cs = getComputedStyle(el(sel));
  const list = Array.isArray(props) && props.length ? props : ["display", "position", "width", "height", "margin", "padding", "color", "background-color", "font-size", "z-index", "overflow", "opacity"];
  const out = {};
  for (const p of list.slice(0, 100)) out[p] = cs.getPropertyValue(String(p));
  return out;
});

const sides = (cs, p, suffix = "") => ({ top: px(cs[`${p}Top${suffix}`]), right: px(cs[`${p}Right${suffix}`]), bottom: px(cs[`${p}Bottom${suffix}`]), left: px(cs[`${p}Left${suffix}`]) });
/** @devtool getBox(selector) — Box model: margin, border, padding (px per side) and content size. */
def("getBox", (sel) => {
  const e = el(sel);
  const cs = getComputedStyle(e);
  const b = sides(cs, "border", "Width");
  const p = sides(cs, "padding");
  const r = e.getBoundingClientRect();
  return {
    margin: sides(cs, "margin"),
    border: b,
    padding: p,
    content: { width: Math.round(r.width - b.left - b.right - p.left - p.right), height: Math.round(r.height - b.top - b.bottom - p.top - p.bottom) },
    boxSizing: cs.boxSizing,
  };
});

/** @devtool getLayout(selector) — display, position, float/clear and the flexbox or grid container settings. */
def("getLayout", (sel) => {
  const cs = getComputedStyle(el(sel));
  return {
    display: cs.display,
    position: cs.position,
    flexbox: cs.display.includes("flex") ? { direction: cs.flexDirection, wrap: cs.flexWrap, justifyContent: cs.justifyContent, alignItems: cs.alignItems, gap: cs.gap } : null,
    grid: cs.display.includes("grid") ? { columns: cs.gridTemplateColumns, rows: cs.gridTemplateRows, gap: cs.gap } : null,
    float: cs.float,
    clear: cs.clear,
  };
});

/** @devtool getContainer(selector) — CSS containment: contain, containerType, containerName. */
def("getContainer", (sel) => {
  const cs = getComputedStyle(el(sel));
  return { contain: cs.contain || "none", containerType: cs.containerType || "normal", containerName: cs.containerName || "none" };
});

function contextReason(n) {
  const c = getComputedStyle(n);
  if (n === document.documentElement) return "root";
  if (c.position !== "static" && c.zIndex !== "auto") return `z-index with position: ${c.position}`;
  if ((c.position === "fixed" || c.position === "sticky")) return `position: ${c.position}`;
  if (c.zIndex !== "auto" && n.parentElement && /flex|grid/.test(getComputedStyle(n.parentElement).display)) return "z-index on a flex/grid item";
  if (c.opacity !== "1") return `opacity less than 1 (${c.opacity})`;
  if (c.transform !== "none") return "transform";
  if (c.filter !== "none") return "filter";
  if (c.perspective !== "none") return "perspective";
  if (c.isolation === "isolate") return "isolation: isolate";
  if (c.mixBlendMode !== "normal") return "mix-blend-mode";
  if (/transform|opacity|filter|z-index/.test(c.willChange)) return "will-change";
  if (/paint|layout|strict|content/.test(c.contain)) return "contain";
  return null;
}
const parentContext = (e) => {
  for (let n = e.parentElement; n; n = n.parentElement) if (contextReason(n)) return n === document.documentElement ? "html" : selectorOf(n);
  return null;
};
/** @devtool getStacking(selector) — zIndex, whether it creates a stacking context and why, the parent context, isolatesBlending. */
def("getStacking", (sel) => {
  const e = el(sel);
  const cs = getComputedStyle(e);
  const reason = contextReason(e);
  const z = parseInt(cs.zIndex, 10);
  return { zIndex: Number.isNaN(z) ? cs.zIndex : z, createsContext: !!reason, reason, parentContext: parentContext(e), isolatesBlending: cs.isolation === "isolate" };
});

/** @devtool getTransform(selector) — The 2D transform matrix and its decomposition (translate, rotate in degrees, scale, skew), transformOrigin. */
def("getTransform", (sel) => {
  const cs = getComputedStyle(el(sel));
  if (cs.transform === "none") return { hasTransform: false, matrix: null, decomposed: null, transformOrigin: cs.transformOrigin };
  const m = new DOMMatrix(cs.transform);
  const r2 = (v) => Math.round(v * 1000) / 1000;
  const sx = Math.hypot(m.a, m.b);
  const sy = (m.a * m.d - m.b * m.c) / (sx || 1);
  const skew = Math.atan2(m.a * m.c + m.b * m.d, sx * sx);
  return {
    hasTransform: true,
    matrix: [m.a, m.b, m.c, m.d, m.e, m.f].map(r2),
    is3d: !m.is2D,
    decomposed: { translate: { x: r2(m.e), y: r2(m.f) }, rotate: r2((Math.atan2(m.b, m.a) * 180) / Math.PI), scale: { x: r2(sx), y: r2(sy) }, skew: { x: r2((skew * 180) / Math.PI), y: 0 } },
    transformOrigin: cs.transformOrigin,
  };
});

/** @devtool getOverflow(selector) — overflow-x/y, scroll and client sizes, whether it is scrollable and overflowing either way, and the scroll position. */
def("getOverflow", (sel) => {
  const e = el(sel);
  const cs = getComputedStyle(e);
  const h = e.scrollWidth > e.clientWidth + 1;
  const v = e.scrollHeight > e.clientHeight + 1;
  return {
    overflowX: cs.overflowX,
    overflowY: cs.overflowY,
    scrollWidth: e.scrollWidth,
    scrollHeight: e.scrollHeight,
    clientWidth: e.clientWidth,
    clientHeight: e.clientHeight,
    hasOverflow: h || v,
    horizontal: h,
    vertical: v,
    scrollable: (h && /auto|scroll/.test(cs.overflowX)) || (v && /auto|scroll/.test(cs.overflowY)),
    scrollTop: Math.round(e.scrollTop),
    scrollLeft: Math.round(e.scrollLeft),
  };
});

/** @devtool walkChildren(selector, depth = 3, filter) — The element's subtree to `depth` levels as {element, children, childCount}; with a `filter` selector only matching descendants are listed (flat, `matches`). Capped at 500 nodes. */
def("walkChildren", (sel, depth = 3, filter) => {
  const root = el(sel);
  let budget = 500;
  let total = 0;
  const walk = (e, d) => {
    total++;
    const kids = [...e.children].filter((c) => !isOwn(c));
    const node = { element: brief(e), childCount: kids.length };
    if (d > 0) node.children = kids.filter(() => --budget >= 0).map((c) => walk(c, d - 1));
    return node;
  };
  if (filter) {
    const all = [...root.querySelectorAll(String(filter))].filter((m) => !isOwn(m));
    const within = all.filter((m) => {
      let d = 0;
      for (let n = m; n && n !== root; n = n.parentElement) d++;
      return d <= depth;
    });
    const c = cap(within, 500);
    return { element: brief(root), filter, matches: c.items.map((m) => ({ selector: selectorOf(m), ...brief(m) })), count: within.length, omitted: c.omitted };
  }
  const tree = walk(root, Math.max(0, Math.min(depth, 20)));
  return { ...tree, totalDescendants: total - 1, truncated: budget < 0 };
});

/** @devtool walkParents(selector) — The ancestors from the parent up to <html>: [{tag, id, classes, selector, depth}]. */
def("walkParents", (sel) => {
  const out = [];
  for (let n = el(sel).parentElement, d = 1; n; n = n.parentElement, d++) out.push({ ...brief(n), selector: selectorOf(n), depth: d });
  return out;
});

/** @devtool findAncestor(selector, condition) — The nearest ancestor matching a CSS selector `condition` (or a function): {found, element, selector, depth}. */
def("findAncestor", (sel, cond) => {
  const test = typeof cond === "function" ? cond : (n) => n.matches(String(cond));
  for (let n = el(sel).parentElement, d = 1; n; n = n.parentElement, d++)
    if (test(n)) {
      const attrs = {};
      for (const a of [...n.attributes].slice(0, 20)) attrs[a.name] = cut(a.value, 100);
      return { found: true, element: { ...brief(n), attributes: attrs }, selector: selectorOf(n), depth: d };
    }
  return { found: false, element: null, depth: null };
});

/** @devtool findStackingContexts(limit = 100) — Elements that create a stacking context: {selector, element, zIndex, reason, parentContext}; {contexts, count, omitted}. */
def("findStackingContexts", (limit = 100) => {
  const out = [];
  for (const e of allElements()) {
    const reason = contextReason(e);
    if (!reason) continue;
    const z = parseInt(getComputedStyle(e).zIndex, 10);
    out.push({ selector: selectorOf(e), element: brief(e), zIndex: Number.isNaN(z) ? "auto" : z, reason, parentContext: parentContext(e) || "html" });
  }
  const c = cap(out, limit);
  return { contexts: c.items, count: out.length, omitted: c.omitted };
});

/** @devtool findOffscreen(limit = 100) — Rendered elements entirely outside the document's scrollable area or left/above the viewport: {selector, element, position, distance, bounds}. */
def("findOffscreen", (limit = 100) => {
  const out = [];
  const d = document.documentElement;
  const W = Math.max(d.scrollWidth, innerWidth);
  const H = Math.max(d.scrollHeight, innerHeight);
  for (const e of allElements()) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const top = r.top + scrollY;
    const left = r.left + scrollX;
    let pos = null;
    let dist = 0;
    if (left + r.width <= 0) [pos, dist] = ["left", Math.round(left)];
    else if (top + r.height <= 0) [pos, dist] = ["above", Math.round(top)];
    else if (left >= W) [pos, dist] = ["right", Math.round(left - W)];
    else if (top >= H) [pos, dist] = ["below", Math.round(top - H)];
    if (!pos) continue;
    if (e.parentElement && out.some((o) => o.el === e.parentElement)) continue; // report the outermost
    out.push({ el: e, selector: selectorOf(e), element: brief(e), position: pos, distance: dist, bounds: { top: Math.round(r.top), right: Math.round(r.right), bottom: Math.round(r.bottom), left: Math.round(r.left) } });
  }
  const c = cap(out.map(({ el: _, ...o }) => o), limit);
  return { elements: c.items, count: out.length, omitted: c.omitted };
});

/** @devtool removeHighlight(highlightId) — Removes one highlight made by highlight() ({removed, highlightId}). */
def("removeHighlight", (id) => {
  const boxes = highlights.get(id);
  if (!boxes) return { removed: false, error: "Highlight not found" };
  boxes.forEach((b) => b.remove());
  highlights.delete(id);
  return { removed: true, highlightId: id };
});

/** @devtool measureBetween(selector1, selector2) — Distance between two elements' centres (x, y, diagonal), the empty gap between their edges, the direction of the second from the first. */
def("measureBetween", (a, b) => {
  const r1 = el(a).getBoundingClientRect();
  const r2 = el(b).getBoundingClientRect();
  const c1 = { x: r1.left + r1.width / 2, y: r1.top + r1.height / 2 };
  const c2 = { x: r2.left + r2.width / 2, y: r2.top + r2.height / 2 };
  const dx = c2.x - c1.x;
  const dy = c2.y - c1.y;
  const v = Math.abs(dy) < 1 ? "" : dy > 0 ? "below" : "above";
  const h = Math.abs(dx) < 1 ? "" : dx > 0 ? "right" : "left";
  const bounds = (r) => ({ top: Math.round(r.top), left: Math.round(r.left), width: Math.round(r.width), height: Math.round(r.height) });
  return {
    distance: { x: Math.round(Math.abs(dx)), y: Math.round(Math.abs(dy)), diagonal: Math.round(Math.hypot(dx, dy)) },
    direction: v && h ? `${v}-${h}` : v || h || "overlapping",
    gap: { horizontal: Math.round(Math.max(0, r2.left - r1.right, r1.left - r2.right)), vertical: Math.round(Math.max(0, r2.top - r1.bottom, r1.top - r2.bottom)) },
    element1: { center: { x: Math.round(c1.x), y: Math.round(c1.y) }, bounds: bounds(r1) },
    element2: { center: { x: Math.round(c2.x), y: Math.round(c2.y) }, bounds: bounds(r2) },
  };
});

/** @devtool waitForElement(selector, timeout = 5000) — Resolves when an element matches (MutationObserver, no polling): {found, element, selector, waited}, or {found: false, timeout: true, waited, message}. */
def("waitForElement", (sel, timeout = 5000) => {
  const t0 = performance.now();
  const hit = (e) => ({ found: true, element: brief(e), selector: selectorOf(e), waited: Math.round(performance.now() - t0) });
  document.querySelector(String(sel)); // throws on a bad selector, before any promise
  return new Promise((resolve) => {
    const first = document.querySelector(sel);
    if (first) return resolve(hit(first));
    let timer = 0;
    const mo = new MutationObserver(() => {
      const e = document.querySelector(sel);
      if (!e) return;
      mo.disconnect();
      clearTimeout(timer);
      resolve(hit(e));
    });
    mo.observe(document.documentElement, { childList: true, subtree: true, attributes: true });
    timer = setTimeout(() => {
      mo.disconnect();
      resolve({ found: false, timeout: true, waited: Math.round(performance.now() - t0), message: `Element not found within ${timeout}ms` });
    }, Math.max(0, +timeout || 0));
  });
});

// `ask`: a question in the user's panel. A person may take minutes, so the call returns a
// pending id at once; the answer arrives as a `panel_message` entry with `ask_id` (the Go
// original returns a promise of the answer; holding an exec open for minutes is what the
// issue rules out, so this follows the issue, not the Go signature's promise).
const asks = new Map();
let askSeq = 0;
/** @devtool ask(question, options, config) — Shows a question with answer buttons (and a free-text box) in the user's panel; returns {pending: true, id} at once. The answer arrives in the traffic log as a panel_message entry {ask_id, answer, index, cancelled} (or timeout after config.timeout ms, default 300000). */
def("ask", (question, options = [], cfg = {}) => {
  if (window.top !== window) throw new Error("ask works in the top-level page only");
  const id = `ask-${Date.now().toString(36)}-${++askSeq}`;
  const q = { id, question: cut(question, 1000), options: (Array.isArray(options) ? options : []).slice(0, 10).map((o) => cut(o, 200)), allowCancel: cfg.allowCancel !== false };
  asks.set(id, q);
  const timeout = cfg.timeout > 0 ? cfg.timeout : 300000;
  q.timer = setTimeout(() => answerAsk(id, { answer: null, index: null, timeout: true }), timeout);
  if (typeof showAsk === "function") showAsk(q);
  return { pending: true, id, message: "the answer arrives as a panel_message entry with this ask_id" };
});
function answerAsk(id, ans) {
  const q = asks.get(id);
  if (!q) return;
  asks.delete(id);
  clearTimeout(q.timer);
  emit("panel_message", { ask_id: id, question: q.question, message: ans.answer == null ? "" : cut(ans.answer, 10000), cancelled: !!ans.cancelled, ...ans });
  flush();
  if (typeof hideAsk === "function") hideAsk(id);
}

agnt.pendingAsks = () => asks.size;

// The Go interaction/mutation sets, over the same histories.
const sinceOf = (t) => (t == null ? 0 : t > 1e12 ? t : Date.now() - t);
const matchesSel = (target, sel) => {
  try {
    const e = document.querySelector(target);
    return !!e && (e.matches(sel) || !!e.closest(sel));
  } catch (_) {
    return target === sel;
  }
};
/** @devtool interactions.getByType(type, n = 50) — Interactions of one event_type (click, input, scroll, submit…), newest last. */
def("interactions.getByType", (type, n = 50) => interactions.filter((x) => x.event_type === type).slice(-Math.max(1, n)));
/** @devtool interactions.getClicksOn(selector) — Clicks whose target is (or is inside) elements matching selector. */
def("interactions.getClicksOn", (sel) => interactions.filter((x) => x.event_type === "click" && matchesSel(x.target, sel)));
/** @devtool interactions.getBySelector(selector) — Interactions of any type on elements matching selector. */
def("interactions.getBySelector", (sel) => interactions.filter((x) => matchesSel(x.target, sel)));
/** @devtool interactions.getSince(time) — Interactions since an epoch-ms time (or within the last `time` ms when small). */
def("interactions.getSince", (t) => interactions.filter((x) => x.time >= sinceOf(t)));
/** @devtool interactions.getMouseTrail(ms = 60000) — Click positions within the last ms (the script records clicks, not mouse moves). */
def("interactions.getMouseTrail", (ms = 60000) =>
  interactions.filter((x) => x.event_type === "click" && x.time >= Date.now() - ms).map((x) => ({ ...(x.position || {}), time: x.time, target: x.target }))
);
/** @devtool interactions.highlight(n = 5) — Outlines the targets of the last n clicks/inputs still in the page. */
def("interactions.highlight", (n = 5) => {
  let k = 0;
  for (const x of interactions.slice(-n)) {
    try {
      const e = document.querySelector(x.target);
      if (e) box(e, "#f76b15", x.event_type), k++;
    } catch (_) {}
  }
  return { highlighted: k };
});

const byMutType = (kind, t) => mutations.filter((m) => m.mutation_type === kind && m.time >= sinceOf(t)).map(publicCopy);
/** @devtool mutations.getAdded(since) — Summarised added-node mutations since a time (epoch ms, or the last `since` ms). */
def("mutations.getAdded", (t) => byMutType("added", t));
/** @devtool mutations.getRemoved(since) — Summarised removed-node mutations since a time. */
def("mutations.getRemoved", (t) => byMutType("removed", t));
/** @devtool mutations.getModified(since) — Attribute and text changes since a time. */
def("mutations.getModified", (t) => mutations.filter((m) => m.mutation_type !== "added" && m.mutation_type !== "removed" && m.time >= sinceOf(t)).map(publicCopy));
/** @devtool mutations.getBySelector(selector) — Mutations whose target is (or is inside) elements matching selector. */
def("mutations.getBySelector", (sel) => mutations.filter((m) => (m.el && m.el.isConnected ? m.el.matches(sel) || !!m.el.closest(sel) : matchesSel(m.target, sel))).map(publicCopy));
/** @devtool mutations.getRateStats() — Mutation groups recorded in the last 1 s, 10 s and 60 s and in total. */
def("mutations.getRateStats", () => {
  const t = Date.now();
  const within = (ms) => mutations.filter((m) => m.time >= t - ms).length;
  return { last_1s: within(1000), last_10s: within(10000), last_60s: within(60000), total: mutations.length };
});

// The ask box: its own shadow root next to the panel (page CSS cannot reach it). Questions
// stack; each has its option buttons, a free-text answer and (unless allowCancel is false)
// Cancel.
let askRoot = null;
function showAsk(q) {
  if (!askRoot || !askRoot.host.isConnected) {
    const host = document.createElement("agnt-ask");
    host.setAttribute(OWN, "");
    host.style.cssText = "all:initial;position:fixed;right:16px;bottom:64px;z-index:2147483647";
    askRoot = host.attachShadow({ mode: "open" });
    askRoot.innerHTML = `<style>:host{font:13px/1.4 system-ui,sans-serif;color:#111}.q{width:300px;background:#fff;border:2px solid #3e63dd;border-radius:8px;box-shadow:0 4px 16px #0003;padding:10px;margin-top:8px}
button{font:inherit;cursor:pointer;border:1px solid #888;border-radius:6px;background:#fff;padding:4px 8px;margin:4px 4px 0 0}input{width:100%;box-sizing:border-box;font:inherit;margin-top:6px}</style>`;
    document.documentElement.appendChild(host);
  }
  const d = document.createElement("div");
  d.className = "q";
  d.dataset.ask = q.id;
  d.setAttribute("role", "dialog");
  d.setAttribute("aria-label", "Question from the agent");
  const p = document.createElement("p");
  p.textContent = q.question;
  p.style.margin = "0 0 4px";
  d.appendChild(p);
  const btn = (label, fn) => {
    const b = document.createElement("button");
    b.textContent = label;
    b.onclick = fn;
    d.appendChild(b);
    return b;
  };
  q.options.forEach((o, i) => (btn(o, () => answerAsk(q.id, { answer: o, index: i, cancelled: false })).dataset.option = String(i)));
  const input = document.createElement("input");
  input.placeholder = "Type an answer…";
  input.setAttribute("aria-label", "Answer");
  input.className = "answer";
  d.appendChild(input);
  const send = () => input.value.trim() && answerAsk(q.id, { answer: input.value.trim(), index: null, cancelled: false });
  input.onkeydown = (e) => e.key === "Enter" && send();
  btn("Send", send).className = "send";
  if (q.allowCancel) btn("Cancel", () => answerAsk(q.id, { answer: null, index: null, cancelled: true })).className = "cancel";
  askRoot.appendChild(d);
}
function hideAsk(id) {
  const d = askRoot && askRoot.querySelector(`[data-ask="${id}"]`);
  if (d) d.remove();
}
