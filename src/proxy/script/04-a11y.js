// Part 5: accessibility (contrast, tab order; the audit is the lazy module lazy/a11y.js) and the
// interaction/mutation histories.

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
