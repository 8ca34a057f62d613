// Part 4: `__devtool` element inspection, layout diagnosis, overlays and state capture.

const rectOf = (e) => {
  const r = e.getBoundingClientRect();
  return { x: Math.round(r.left), y: Math.round(r.top), width: Math.round(r.width), height: Math.round(r.height) };
};
const px = (v) => parseFloat(v) || 0;

/** @devtool log(message, level = "info", data) — Sends a `custom` log entry to the agent's traffic log. */
def("log", (message, level = "info", data) => {
  emit("custom", { level: String(level), message: cut(message, PREVIEW), data: data === undefined ? undefined : plain(data, 4) });
  return { ok: true };
});

/** @devtool getElementInfo(selector) — Tag, id, classes, text, attributes and box of the first match, plus how many elements match. */
def("getElementInfo", (sel) => {
  const e = el(sel);
  const attrs = {};
  for (const a of [...e.attributes].slice(0, 30)) attrs[a.name] = secretAttr(e, a.name) ? REDACTED : cut(a.value, 200);
  return {
    selector: selectorOf(e),
    tag: e.localName,
    id: e.id || null,
    classes: [...e.classList],
    text: cut(e.innerText || e.textContent),
    textContent: cut(e.textContent),
    attributes: attrs,
    rect: rectOf(e),
    children: e.children.length,
    matches: typeof sel === "string" ? document.querySelectorAll(sel).length : 1,
  };
});

/** @devtool getPosition(selector) — Viewport rect and page (document) coordinates of an element. */
def("getPosition", (sel) => {
  const e = el(sel);
  const r = rectOf(e);
  const g = { top: r.y, right: r.x + r.width, bottom: r.y + r.height, left: r.x, width: r.width, height: r.height };
  // Go field names (rect, viewport, scroll, offsetParent) next to ours.
  return { ...r, page_x: r.x + Math.round(scrollX), page_y: r.y + Math.round(scrollY), right: g.right, bottom: g.bottom, rect: g, viewport: { x: r.x, y: r.y }, scroll: { top: Math.round(scrollY), left: Math.round(scrollX) }, offsetParent: e.offsetParent ? selectorOf(e.offsetParent) : null };
});

function visibility(e) {
  const reasons = [];
  if (!e.isConnected) reasons.push("not in the document");
  for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
    const cs = getComputedStyle(n);
    const who = n === e ? "" : ` (ancestor ${selectorOf(n)})`;
    if (cs.display === "none") reasons.push(`display: none${who}`);
    if (n === e && cs.visibility !== "visible") reasons.push(`visibility: ${cs.visibility}`);
    if (cs.opacity === "0") reasons.push(`opacity: 0${who}`);
  }
  const r = e.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) reasons.push("zero size");
  const cs = getComputedStyle(e);
  const details = { display: cs.display, visibility: cs.visibility, opacity: +cs.opacity, width: Math.round(r.width), height: Math.round(r.height), clipPath: cs.clipPath, hidden: e.hidden };
  return { visible: reasons.length === 0, reasons, reason: reasons[0] || null, details };
}
/** @devtool isVisible(selector) — Whether the element is rendered and visible, with the reasons when not (display, visibility, opacity, zero size). */
def("isVisible", (sel) => visibility(el(sel)));

/** @devtool isInViewport(selector) — Whether the element is (fully or partly) inside the viewport, and the visible ratio. */
def("isInViewport", (sel) => {
  const r = el(sel).getBoundingClientRect();
  const w = Math.max(0, Math.min(r.right, innerWidth) - Math.max(r.left, 0));
  const h = Math.max(0, Math.min(r.bottom, innerHeight) - Math.max(r.top, 0));
  const area = r.width * r.height;
  const ratio = area > 0 ? Math.round(((w * h) / area) * 100) / 100 : 0;
  const position = ratio >= 0.999 ? "visible" : r.bottom <= 0 ? "above" : r.top >= innerHeight ? "below" : r.right <= 0 ? "left" : r.left >= innerWidth ? "right" : r.top < 0 ? "partial-top" : r.bottom > innerHeight ? "partial-bottom" : "partial";
  const out = { in_viewport: ratio > 0, fully: ratio >= 0.999, ratio, inViewport: ratio > 0, intersection: ratio, fullyVisible: ratio >= 0.999, position, bounds: { elementTop: Math.round(r.top), elementBottom: Math.round(r.bottom), viewportTop: 0, viewportBottom: innerHeight } };
  if (position === "above") out.distanceToViewport = Math.round(-r.bottom);
  if (position === "below") out.distanceToViewport = Math.round(r.top - innerHeight);
  return out;
});

/** @devtool checkOverlap(selectorA, selectorB) — Whether two elements' boxes overlap, the overlapping area and which is on top at the overlap's centre. */
def("checkOverlap", (a, b) => {
  const ea = el(a);
  const eb = el(b);
  const ra = ea.getBoundingClientRect();
  const rb = eb.getBoundingClientRect();
  const x1 = Math.max(ra.left, rb.left);
  const y1 = Math.max(ra.top, rb.top);
  const x2 = Math.min(ra.right, rb.right);
  const y2 = Math.min(ra.bottom, rb.bottom);
  const dy = rb.top + rb.height / 2 - (ra.top + ra.height / 2);
  const dx = rb.left + rb.width / 2 - (ra.left + ra.width / 2);
  const relative = [Math.abs(dy) < 1 ? "" : dy > 0 ? "below" : "above", Math.abs(dx) < 1 ? "" : dx > 0 ? "right" : "left"].filter(Boolean).join("-") || "same-center";
  if (x2 <= x1 || y2 <= y1) return { overlap: false, overlaps: false, area: 0, relative };
  const top = document.elementFromPoint((x1 + x2) / 2, (y1 + y2) / 2);
  const area = (x2 - x1) * (y2 - y1);
  const pct = (r) => (r.width * r.height > 0 ? Math.round((area / (r.width * r.height)) * 100) : 0);
  return {
    overlap: true,
    overlaps: true,
    intersection: { top: Math.round(y1), left: Math.round(x1), width: Math.round(x2 - x1), height: Math.round(y2 - y1), area: Math.round(area) },
    overlapPercentage: { element1: pct(ra), element2: pct(rb) },
    relative,
    area: Math.round((x2 - x1) * (y2 - y1)),
    rect: { x: Math.round(x1), y: Math.round(y1), width: Math.round(x2 - x1), height: Math.round(y2 - y1) },
    on_top: top ? (ea.contains(top) ? "a" : eb.contains(top) ? "b" : selectorOf(top)) : null,
  };
});

function stacking(e) {
  const cs = getComputedStyle(e);
  const creates =
    (cs.position !== "static" && cs.zIndex !== "auto") ||
    cs.opacity !== "1" ||
    cs.transform !== "none" ||
    cs.filter !== "none" ||
    cs.isolation === "isolate" ||
    cs.position === "fixed" ||
    cs.position === "sticky" ||
    cs.mixBlendMode !== "normal";
  let ctx = null;
  for (let n = e.parentElement; n; n = n.parentElement) {
    const c = getComputedStyle(n);
    if ((c.position !== "static" && c.zIndex !== "auto") || c.opacity !== "1" || c.transform !== "none" || c.position === "fixed") {
      ctx = selectorOf(n);
      break;
    }
  }
  return { z_index: cs.zIndex, creates_context: creates, parent_context: ctx };
}

/** @devtool inspect(selector) — Everything about one element in one answer: info, box model, layout (display/position/flex/grid), visibility, viewport, stacking, overflow. */
def("inspect", (sel) => {
  const e = el(sel);
  const cs = getComputedStyle(e);
  const side = (p) => ({ top: px(cs[`${p}Top`]), right: px(cs[`${p}Right`]), bottom: px(cs[`${p}Bottom`]), left: px(cs[`${p}Left`]) });
  return {
    info: devtool.getElementInfo(e),
    box: {
      margin: side("margin"),
      padding: side("padding"),
      border: { top: px(cs.borderTopWidth), right: px(cs.borderRightWidth), bottom: px(cs.borderBottomWidth), left: px(cs.borderLeftWidth) },
      box_sizing: cs.boxSizing,
    },
    layout: {
      display: cs.display,
      position: cs.position,
      top: cs.top,
      left: cs.left,
      width: cs.width,
      height: cs.height,
      flex: cs.display.includes("flex") ? { direction: cs.flexDirection, wrap: cs.flexWrap, justify: cs.justifyContent, align: cs.alignItems, gap: cs.gap } : null,
      grid: cs.display.includes("grid") ? { columns: cs.gridTemplateColumns, rows: cs.gridTemplateRows, gap: cs.gap } : null,
      font: `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`,
      color: cs.color,
      background: cs.backgroundColor,
    },
    visibility: visibility(e),
    viewport: devtool.isInViewport(e),
    stacking: stacking(e),
    overflow: {
      x: cs.overflowX,
      y: cs.overflowY,
      scroll_width: e.scrollWidth,
      client_width: e.clientWidth,
      scroll_height: e.scrollHeight,
      client_height: e.clientHeight,
      overflowing: e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1,
    },
  };
});

const cap = (list, n) => ({ items: list.slice(0, n), omitted: Math.max(0, list.length - n) });
const brief = (e) => ({ tag: e.localName, id: e.id || "", classes: [...e.classList].filter((c) => !c.startsWith("agnt-")) });
const allElements = (limit = 5000) => [...document.body.querySelectorAll("*")].filter((e) => !isOwn(e)).slice(0, limit);

/** @devtool findOverflows(limit = 50) — Elements whose content overflows their box, and elements sticking out past the viewport's right edge (the usual cause of horizontal scrolling). */
def("findOverflows", (limit = 50) => {
  const out = [];
  const vw = document.documentElement.clientWidth;
  for (const e of allElements()) {
    if (out.length >= limit) break;
    const cs = getComputedStyle(e);
    if (cs.display === "none" || cs.display === "inline") continue;
    const r = e.getBoundingClientRect();
    if (e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0 && cs.overflowX === "visible")
      out.push({ selector: selectorOf(e), kind: "content-x", scroll_width: e.scrollWidth, client_width: e.clientWidth });
    else if (e.scrollHeight > e.clientHeight + 1 && e.clientHeight > 0 && cs.overflowY === "visible" && cs.height !== "auto" && e.style.height)
      out.push({ selector: selectorOf(e), kind: "content-y", scroll_height: e.scrollHeight, client_height: e.clientHeight });
    else if (r.right > vw + 1 && r.width > 0) out.push({ selector: selectorOf(e), kind: "past-viewport", right: Math.round(r.right), viewport_width: vw });
  }
  return { count: out.length, overflows: out };
});

/** @devtool diagnoseLayout() — Page-level layout check: horizontal scroll, overflowing elements, off-screen elements, zero-size visible elements, fixed/sticky elements, stacking contexts. */
def("diagnoseLayout", () => {
  const d = document.documentElement;
  const offscreen = [];
  const fixed = [];
  let contexts = 0;
  for (const e of allElements()) {
    const cs = getComputedStyle(e);
    if (cs.display === "none") continue;
    const r = e.getBoundingClientRect();
    if ((r.right < 0 || r.bottom + scrollY < 0 || r.left > d.scrollWidth) && r.width > 0 && offscreen.length < 20) offscreen.push(selectorOf(e));
    if ((cs.position === "fixed" || cs.position === "sticky") && fixed.length < 20) fixed.push({ selector: selectorOf(e), position: cs.position, z_index: cs.zIndex });
    if (cs.position !== "static" && cs.zIndex !== "auto") contexts++;
  }
  const ov = devtool.findOverflows(20);
  return {
    viewport: { width: innerWidth, height: innerHeight },
    document: { width: d.scrollWidth, height: d.scrollHeight },
    horizontal_scroll: d.scrollWidth > d.clientWidth,
    overflows: ov.overflows,
    offscreen,
    fixed_or_sticky: fixed,
    positioned_z_index_count: contexts,
    // Go names: offscreenElements, summary, healthy.
    offscreenElements: offscreen,
    summary: { overflowCount: ov.count, offscreenCount: offscreen.length, totalIssues: ov.count + offscreen.length },
    healthy: ov.count + offscreen.length === 0 && d.scrollWidth <= d.clientWidth,
  };
});

// Overlays live in one shadow root so the page's CSS cannot touch them.
let overlayRoot = null;
function overlayLayer() {
  if (overlayRoot && overlayRoot.host.isConnected) return overlayRoot;
  const host = document.createElement("agnt-overlays");
  host.setAttribute(OWN, "");
  host.style.cssText = "position:absolute;left:0;top:0;width:0;height:0;z-index:2147483646;pointer-events:none";
  overlayRoot = host.attachShadow({ mode: "open" });
  document.documentElement.appendChild(host);
  return overlayRoot;
}
function box(e, color, label) {
  const r = e.getBoundingClientRect();
  const b = document.createElement("div");
  b.style.cssText = `position:absolute;left:${r.left + scrollX}px;top:${r.top + scrollY}px;width:${r.width}px;height:${r.height}px;outline:2px solid ${color};background:${color}22;pointer-events:none;box-sizing:border-box`;
  if (label) {
    const t = document.createElement("span");
    t.textContent = label;
    t.style.cssText = `position:absolute;left:0;top:-18px;font:11px/16px monospace;background:${color};color:#fff;padding:0 4px;white-space:nowrap`;
    b.appendChild(t);
  }
  overlayLayer().appendChild(b);
  return b;
}
// Overlays with ids, so one can be removed (removeHighlight, lazy module "tools").
const highlights = new Map();
let highlightSeq = 0;
const trackHighlight = (boxes) => {
  const id = `hl-${++highlightSeq}`;
  highlights.set(id, boxes);
  return id;
};
/** @devtool highlight(selector, {color, border, label, duration = 3000}) — Outlines every match on the page (overlay); removed after `duration` ms (0 = until removeHighlight(highlightId) or clearAllOverlays). `duration_ms` is accepted too. */
def("highlight", (sel, opts = {}) => {
  const list = typeof sel === "string" ? [...document.querySelectorAll(sel)] : [el(sel)];
  if (!list.length) throw new Error(`no element matches ${JSON.stringify(sel)}`);
  const boxes = list.slice(0, 100).map((e) => box(e, opts.color || "#e5484d", opts.label || selectorOf(e)));
  if (opts.border) boxes.forEach((b) => (b.style.outline = String(opts.border)));
  // Go's default duration is 3000 ms (its docs); the older `duration_ms` option still works.
  const ms = opts.duration !== undefined ? +opts.duration : opts.duration_ms !== undefined ? +opts.duration_ms : 3000;
  if (ms > 0) setTimeout(() => boxes.forEach((b) => b.remove()), ms);
  const r = list[0].getBoundingClientRect();
  return { highlighted: boxes.length, omitted: Math.max(0, list.length - 100), highlightId: trackHighlight(boxes), selector: typeof sel === "string" ? sel : selectorOf(list[0]), bounds: { top: Math.round(r.top), left: Math.round(r.left), width: Math.round(r.width), height: Math.round(r.height) } };
});
/** @devtool clearAllOverlays() — Removes every highlight overlay. */
def("clearAllOverlays", () => {
  const n = overlayRoot ? overlayRoot.childElementCount : 0;
  if (overlayRoot) overlayRoot.replaceChildren();
  return { removed: n, cleared: n, message: `Cleared ${n} overlays` };
});

/** @devtool captureState() — URL, title, viewport, scroll, localStorage/sessionStorage keys and values (values under secret-named keys redacted, others cut to 200 chars) and cookie names (no values). */
def("captureState", () => {
  const keys = (get) => {
    try {
      return Object.keys(get()).filter((k) => k !== "__agnt_page");
    } catch (e) {
      return { error: "storage not accessible" };
    }
  };
  const values = (get) => {
    try {
      const s = get();
      const out = {};
      for (const k of Object.keys(s).filter((k) => k !== "__agnt_page").slice(0, 100)) out[k] = secretName(k) ? REDACTED : cut(s.getItem(k), 200);
      return out;
    } catch (e) {
      return { error: "storage not accessible" };
    }
  };
  return {
    url: location.href,
    title: document.title,
    ready_state: document.readyState,
    viewport: { width: innerWidth, height: innerHeight },
    scroll: { x: Math.round(scrollX), y: Math.round(scrollY) },
    local_storage_keys: keys(() => localStorage),
    session_storage_keys: keys(() => sessionStorage),
    local_storage: values(() => localStorage),
    session_storage: values(() => sessionStorage),
    cookie_names: (() => {
      try {
        return document.cookie
          .split(";")
          .map((c) => c.split("=")[0].trim())
          .filter((c) => c && c !== "__agnt_page");
      } catch (e) {
        return { error: "cookies not accessible" };
      }
    })(),
    focused: document.activeElement && document.activeElement !== document.body ? selectorOf(document.activeElement) : null,
  };
});

/** @devtool isConnected() — Whether the page's channel to the proxy is open. */
def("isConnected", () => !!(ws && ws.readyState === 1));

/** @devtool captureConsole(levels) — Which console levels are reported (default ["error","warn"]; add "log", "info", "debug"). Returns the active list. */
def("captureConsole", (levels) => {
  if (Array.isArray(levels)) config.console = levels.map(String);
  return { levels: config.console };
});
