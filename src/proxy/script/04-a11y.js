// Part 5: accessibility (contrast, tab order, audit) and the interaction/mutation histories.

function parseColor(s) {
  const m = /rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)/.exec(s || "");
  if (!m) return null;
  let a = m[4] === undefined ? 1 : m[4].endsWith("%") ? parseFloat(m[4]) / 100 : parseFloat(m[4]);
  return [+m[1], +m[2], +m[3], a];
}
const blend = (top, under) => {
  const a = top[3];
  return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat(1);
};
function backgroundOf(e) {
  const layers = [];
  for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
    const c = parseColor(getComputedStyle(n).backgroundColor);
    if (c && c[3] > 0) {
      layers.push(c);
      if (c[3] >= 1) break;
    }
  }
  let bg = [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) bg = blend(layers[i], bg);
  return bg;
}
const luminance = (c) => {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const hex = (c) => "#" + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
function contrast(e) {
  const cs = getComputedStyle(e);
  const bg = backgroundOf(e);
  const fg0 = parseColor(cs.color) || [0, 0, 0, 1];
  const fg = fg0[3] < 1 ? blend(fg0, bg) : fg0;
  const l1 = luminance(fg);
  const l2 = luminance(bg);
  const ratio = Math.round(((Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05)) * 100) / 100;
  const size = px(cs.fontSize);
  const large = size >= 24 || (size >= 18.66 && (parseInt(cs.fontWeight, 10) || 400) >= 700);
  return {
    ratio,
    foreground: hex(fg),
    background: hex(bg),
    font_size_px: size,
    large_text: large,
    aa: ratio >= (large ? 3 : 4.5),
    aaa: ratio >= (large ? 4.5 : 7),
    required_aa: large ? 3 : 4.5,
  };
}
/** @devtool getContrast(selector) — WCAG contrast ratio of the element's text against its (blended) background, with AA and AAA verdicts for its text size. */
def("getContrast", (sel) => ({ selector: selectorOf(el(sel)), ...contrast(el(sel)) }));

const FOCUSABLE = "a[href],button,input,select,textarea,iframe,summary,[tabindex],[contenteditable=''],[contenteditable=true]";
/** @devtool getTabOrder() — Keyboard focus order: focusable, enabled, visible elements (positive tabindex first, then document order). */
def("getTabOrder", () => {
  const list = [...document.querySelectorAll(FOCUSABLE)].filter(
    (e) => !isOwn(e) && !e.disabled && e.tabIndex >= 0 && e.type !== "hidden" && visibility(e).visible
  );
  const pos = list.filter((e) => e.tabIndex > 0).sort((a, b) => a.tabIndex - b.tabIndex);
  const order = pos.concat(list.filter((e) => e.tabIndex === 0));
  return {
    count: order.length,
    order: order.slice(0, 200).map((e, i) => ({ index: i + 1, selector: selectorOf(e), tag: e.localName, tabindex: e.tabIndex, name: cut(accessibleName(e)) })),
  };
});

function byIds(ids) {
  return String(ids || "")
    .split(/\s+/)
    .map((id) => {
      const n = id && document.getElementById(id);
      return n ? n.textContent : "";
    })
    .join(" ")
    .trim();
}
function accessibleName(e) {
  const aria = byIds(e.getAttribute("aria-labelledby")) || (e.getAttribute("aria-label") || "").trim();
  if (aria) return aria;
  if (/^(input|select|textarea)$/.test(e.localName)) {
    if (e.type === "submit" || e.type === "button" || e.type === "reset") return (e.value || "").trim() || (e.type === "submit" ? "Submit" : "");
    if (e.type === "image") return (e.alt || "").trim();
    if (e.id) {
      const l = document.querySelector(`label[for="${CSS.escape(e.id)}"]`);
      if (l && l.textContent.trim()) return l.textContent.trim();
    }
    const wrap = e.closest("label");
    if (wrap && wrap.textContent.trim()) return wrap.textContent.trim();
    return (e.title || e.placeholder || "").trim();
  }
  if (e.localName === "img") return (e.getAttribute("alt") || "").trim();
  let text = (e.textContent || "").trim();
  if (!text) text = [...e.querySelectorAll("img[alt]")].map((i) => i.alt).join(" ").trim();
  return text || (e.title || "").trim();
}

const IMPACT = { critical: 10, serious: 5, moderate: 3, minor: 1 };
/** @devtool auditAccessibility({limit}) — Own WCAG checks: image-alt, label, button-name, link-name, color-contrast, heading-order, landmark-main, html-lang, document-title, duplicate-id, tabindex. Findings {selector, rule, impact, message, fix} plus a 0–100 score. */
def("auditAccessibility", (opts = {}) => {
  const limit = opts.limit || 200;
  const findings = [];
  const add = (e, rule, impact, message, fix) => findings.length < limit && findings.push({ selector: e ? selectorOf(e) : "document", rule, impact, message, fix });
  const shown = (e) => visibility(e).visible;
  const root = document.documentElement;
  if (!(root.getAttribute("lang") || "").trim()) add(root, "html-lang", "serious", "<html> has no lang attribute", 'Add lang, e.g. <html lang="en">');
  if (!document.title.trim()) add(null, "document-title", "serious", "The document has no <title>", "Add a descriptive <title> in <head>");
  if (!document.querySelector("main,[role=main]")) add(null, "landmark-main", "moderate", "No <main> landmark", "Wrap the primary content in <main>");
  const els = allElements(10000);
  const ids = new Map();
  for (const e of els) {
    if (e.id) ids.set(e.id, (ids.get(e.id) || 0) + 1);
  }
  for (const [id, n] of ids) if (n > 1) add(document.getElementById(id), "duplicate-id", "minor", `id "${id}" is used ${n} times`, "Make every id unique");
  let lastHeading = 0;
  const contrastSeen = new Set();
  for (const e of els) {
    const tag = e.localName;
    const role = e.getAttribute("role");
    if (e.getAttribute("aria-hidden") === "true") continue;
    if (tag === "img" && !e.hasAttribute("alt") && role !== "presentation" && role !== "none" && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby"))
      add(e, "image-alt", "critical", "Image without alt text", 'Add alt="…" describing the image (alt="" if decorative)');
    if (/^(input|select|textarea)$/.test(tag) && !/^(hidden|submit|button|reset|image)$/.test(e.type) && !accessibleName(e))
      add(e, "label", "critical", `Form control <${tag}${e.type ? ` type=${e.type}` : ""}> has no label`, 'Add <label for="id">, wrap it in <label>, or set aria-label');
    if ((tag === "button" || role === "button" || (tag === "input" && /^(submit|button|reset|image)$/.test(e.type))) && !accessibleName(e) && shown(e))
      add(e, "button-name", "critical", "Button without an accessible name", "Give it visible text or aria-label");
    if (tag === "a" && e.hasAttribute("href") && !accessibleName(e) && shown(e))
      add(e, "link-name", "serious", "Link without an accessible name", "Give it text, aria-label, or an img with alt");
    const h = /^h([1-6])$/.exec(tag);
    if (h && shown(e)) {
      const lvl = +h[1];
      if (lastHeading && lvl > lastHeading + 1)
        add(e, "heading-order", "moderate", `Heading level jumps from h${lastHeading} to h${lvl}`, `Use h${lastHeading + 1} or restructure the outline`);
      lastHeading = lvl;
    }
    if (e.tabIndex > 0 && e.hasAttribute("tabindex"))
      add(e, "tabindex", "serious", `tabindex=${e.getAttribute("tabindex")} changes the natural focus order`, 'Use tabindex="0" and reorder the DOM instead');
    const ownText = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (ownText && !contrastSeen.has(e) && shown(e)) {
      contrastSeen.add(e);
      const c = contrast(e);
      if (!c.aa)
        add(e, "color-contrast", "serious", `Contrast ${c.ratio}:1 (${c.foreground} on ${c.background}) is below ${c.required_aa}:1`, `Darken the text or lighten the background to reach ${c.required_aa}:1`);
    }
  }
  const penalty = findings.reduce((s, f) => s + (IMPACT[f.impact] || 1), 0);
  const counts = {};
  for (const f of findings) counts[f.rule] = (counts[f.rule] || 0) + 1;
  return { score: Math.max(0, 100 - penalty), count: findings.length, by_rule: counts, findings, checked_elements: els.length };
});

const publicCopy = (m) => {
  const { el: _, ...rest } = m;
  return rest;
};
/** @devtool interactions.getHistory(n = 20) — The last n clicks, inputs (never password values), scrolls and submits on this page. */
def("interactions.getHistory", (n = 20) => interactions.slice(-Math.max(1, n)));
/** @devtool interactions.getLastClick() — The most recent click {target, text, position, time}, or null. */
def("interactions.getLastClick", () => {
  for (let i = interactions.length - 1; i >= 0; i--) if (interactions[i].event_type === "click") return interactions[i];
  return null;
});
/** @devtool interactions.getLastClickContext() — The last click with its element now (info, ancestors, visibility) and the interactions and DOM mutations in the 2 s after it. */
def("interactions.getLastClickContext", () => {
  const click = devtool.interactions.getLastClick();
  if (!click) return { click: null, message: "no click recorded on this page yet" };
  let e = null;
  try {
    e = document.querySelector(click.target);
  } catch (_) {}
  const ancestors = [];
  for (let n = e && e.parentElement; n && ancestors.length < 4 && n !== document.body; n = n.parentElement) ancestors.push(selectorOf(n));
  const within = (x) => x.time >= click.time && x.time <= click.time + 2000;
  return {
    click,
    element: e ? devtool.getElementInfo(e) : null,
    still_in_document: !!e,
    visible: e ? visibility(e) : null,
    ancestors,
    following_interactions: interactions.filter((x) => x !== click && within(x)).slice(0, 20),
    following_mutations: mutations.filter(within).slice(0, 20).map(publicCopy),
  };
});
/** @devtool interactions.clear() — Forgets the interaction history. */
def("interactions.clear", () => ({ cleared: interactions.splice(0).length }));
/** @devtool mutations.getHistory(n = 20) — The last n summarised DOM changes {mutation_type, target, added, removed, attribute, count, time}. */
def("mutations.getHistory", (n = 20) => mutations.slice(-Math.max(1, n)).map(publicCopy));
/** @devtool mutations.highlightRecent(ms = 5000) — Outlines the elements changed in the last ms milliseconds (overlays; clearAllOverlays removes them). */
def("mutations.highlightRecent", (ms = 5000) => {
  const since = Date.now() - ms;
  const seen = new Set();
  for (const m of mutations) if (m.time >= since && m.el && m.el.isConnected && !seen.has(m.el)) seen.add(m.el);
  for (const e of seen) box(e, "#3e63dd", "changed");
  return { highlighted: seen.size };
});
/** @devtool mutations.clear() — Forgets the mutation history. */
def("mutations.clear", () => ({ cleared: mutations.splice(0).length }));
