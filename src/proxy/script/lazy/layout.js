// Lazy module "layout": the layout overlay and the bigger state captures (DOM, styles,
// resource timing). Shapes follow the Go agnt v0.8.0 docs.

/** @devtool showLayout(config) — Outlines the layout structure: flex containers, grid containers, positioned and overflowing elements, each colour-coded and labelled (config.flex/grid/positioned/overflow = false hides a kind; config.limit, default 200). Returns counts; clearAllOverlays removes it. */
def("showLayout", (cfg = {}) => {
  const kinds = { flex: "#3e63dd", grid: "#8e4ec6", positioned: "#f76b15", overflow: "#e5484d" };
  const counts = { flex: 0, grid: 0, positioned: 0, overflow: 0 };
  const limit = cfg.limit || 200;
  let shown = 0;
  let total = 0;
  for (const e of allElements()) {
    const cs = getComputedStyle(e);
    const kind = cs.display.includes("flex") ? "flex" : cs.display.includes("grid") ? "grid" : cs.position !== "static" ? "positioned" : e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0 ? "overflow" : null;
    if (!kind || cfg[kind] === false) continue;
    counts[kind]++;
    total++;
    if (shown++ < limit) box(e, kinds[kind], `${kind} ${e.localName}`);
  }
  return { shown: Math.min(shown, limit), omitted: Math.max(0, total - limit), counts, legend: kinds };
});

const hash = (s) => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
};
/** @devtool captureDOM({maxBytes = 200000}) — HTML snapshot of the page (our own elements removed, password values never included), with a hash for comparing, size, element count and meta; html is cut at maxBytes (truncated: true). */
def("captureDOM", (opts = {}) => {
  const clone = document.documentElement.cloneNode(true);
  for (const n of clone.querySelectorAll(`[${OWN}]`)) n.remove();
  for (const n of clone.querySelectorAll("input[value]")) if (/password|hidden/.test(n.type)) n.setAttribute("value", "[redacted]");
  const html = `<!DOCTYPE html>${clone.outerHTML}`;
  const max = opts.maxBytes || 200000;
  return {
    html: html.length > max ? html.slice(0, max) : html,
    truncated: html.length > max,
    hash: hash(html),
    timestamp: new Date().toISOString(),
    size: html.length,
    elementCount: clone.getElementsByTagName("*").length,
    meta: { title: document.title, url: location.href, charset: document.characterSet },
  };
});

/** @devtool captureStyles(selector) — Inline styles, the main computed styles, and the same-origin CSS rules that match the element ({selector, source, properties}, capped). */
def("captureStyles", (sel) => {
  const e = el(sel);
  const inline = {};
  for (const p of e.style) inline[p] = e.style.getPropertyValue(p);
  const cs = getComputedStyle(e);
  const computed = {};
  for (const p of ["display", "position", "width", "height", "padding", "margin", "color", "background-color", "font-family", "font-size", "font-weight", "line-height", "border", "border-radius", "z-index", "opacity", "overflow", "box-sizing"]) computed[p] = cs.getPropertyValue(p);
  const rules = [];
  let unreadable = 0;
  const visit = (list, source) => {
    for (const r of list) {
      if (r.cssRules && !r.selectorText) visit(r.cssRules, source);
      else if (r.selectorText) {
        let hit = false;
        try {
          hit = e.matches(r.selectorText);
        } catch (_) {}
        if (!hit) continue;
        const props = {};
        for (const p of r.style) props[p] = r.style.getPropertyValue(p);
        rules.push({ selector: r.selectorText, source, properties: props });
      }
    }
  };
  for (const s of document.styleSheets) {
    try {
      if (!isOwn(s.ownerNode)) visit(s.cssRules, s.href ? s.href.split("/").pop() : "<style>");
    } catch (_) {
      unreadable++;
    }
  }
  const c = cap(rules, 50);
  return { selector: selectorOf(e), inline, computed, appliedRules: c.items, omitted: c.omitted, unreadableSheets: unreadable };
});

/** @devtool captureNetwork({limit = 100}) — Resource timing entries (name, type, start, duration, sizes, status, protocol, cached), newest last, capped; plus counts by type. */
def("captureNetwork", (opts = {}) => {
  const list = performance.getEntriesByType("resource").filter((r) => !r.name.includes("/__agnt/"));
  const byType = {};
  for (const r of list) byType[r.initiatorType] = (byType[r.initiatorType] || 0) + 1;
  const c = cap(list.slice().reverse(), opts.limit || 100);
  return {
    entries: c.items.reverse().map((r) => ({
      name: r.name,
      type: r.initiatorType,
      initiatorType: r.initiatorType,
      startTime: Math.round(r.startTime * 10) / 10,
      duration: Math.round(r.duration * 10) / 10,
      transferSize: r.transferSize,
      encodedBodySize: r.encodedBodySize,
      decodedBodySize: r.decodedBodySize,
      responseStatus: r.responseStatus,
      protocol: r.nextHopProtocol,
      cached: r.transferSize === 0 && r.decodedBodySize > 0,
    })),
    count: list.length,
    omitted: c.omitted,
    byType,
  };
});
