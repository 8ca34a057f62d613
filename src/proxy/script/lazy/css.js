// Lazy module "css": CSS evaluation over the page's same-origin style sheets (cross-origin
// sheets cannot be read and are counted as `unreadableSheets`) and computed styles. Shapes
// follow the Go v0.8.0 docs; lists capped with `omitted`.

const MAXC = 50;
const rateC = (s) => (s >= 90 ? "good" : s >= 60 ? "needs-improvement" : "poor");
function sheetRules() {
  const rules = [];
  const media = [];
  const container = [];
  let unreadable = 0;
  const visit = (list) => {
    for (const r of list) {
      if (r.selectorText) rules.push(r);
      else if (r.media && r.cssRules) media.push(r.conditionText || r.media.mediaText), visit(r.cssRules);
      else if (r.containerName !== undefined || (r.cssText || "").startsWith("@container")) container.push(r.conditionText || ""), r.cssRules && visit(r.cssRules);
      else if (r.cssRules) visit(r.cssRules);
    }
  };
  for (const s of document.styleSheets) {
    try {
      if (!isOwn(s.ownerNode)) visit(s.cssRules);
    } catch (_) {
      unreadable++;
    }
  }
  return { rules, media, container, unreadable };
}

/** @devtool detectContentAreas() — Classifies large regions as app UI (components, controls) or content (prose from a CMS/markdown: paragraphs, headings, lists): {areas: [{selector, category, textRatio}], byCategory, summary, recommendations}. */
def("detectContentAreas", () => {
  const areas = [];
  for (const e of document.querySelectorAll("main,article,section,aside,nav,header,footer,[role=main],.content,.prose")) {
    if (isOwn(e)) continue;
    const prose = e.querySelectorAll("p,li,blockquote,h2,h3,h4").length;
    const controls = e.querySelectorAll("button,input,select,textarea,[role=button]").length;
    const category = /nav|header|footer/.test(e.localName) ? "chrome" : prose > controls * 2 && prose >= 3 ? "content" : "app";
    areas.push({ selector: selectorOf(e), tag: e.localName, category, prose, controls });
  }
  const byCategory = {};
  for (const a of areas) byCategory[a.category] = (byCategory[a.category] || 0) + 1;
  const c = cap(areas, MAXC);
  return { areas: c.items, omitted: c.omitted, byCategory, summary: { total: areas.length }, recommendations: byCategory.content ? ["Style content areas with element selectors scoped to a container (e.g. .prose p), not per-element classes"] : [], timestamp: Date.now() };
});

/** @devtool auditCSSArchitecture() — Selector health of same-origin sheets: ID selectors, deep nesting (> 3 combinators), !important, overqualified (tag.class/tag#id) and universal-descendant patterns; naming convention guess (BEM/utility/other). {stats, idSelectors, deepNesting, fragilePatterns, namingConvention, issues, healthScore, rating}. */
def("auditCSSArchitecture", () => {
  const { rules, unreadable } = sheetRules();
  const ids = [];
  const deep = [];
  const fragile = [];
  let important = 0;
  let bem = 0;
  let classes = 0;
  for (const r of rules) {
    for (const sel of r.selectorText.split(",").map((s) => s.trim())) {
      if (/#[\w-]/.test(sel)) ids.push(sel);
      if (sel.split(/\s+|>|\+|~/).filter(Boolean).length > 4) deep.push(sel);
      if (/\b[a-z]+[.#][\w-]/.test(sel) || /\*\s/.test(sel)) fragile.push(sel);
      for (const m of sel.matchAll(/\.([\w-]+)/g)) {
        classes++;
        if (/__|--/.test(m[1])) bem++;
      }
    }
    // Counted in the serialized rule, where shorthands stay whole (the longhand list would
    // count `margin: 0 !important` four times).
    important += (r.style.cssText.match(/!important/g) || []).length;
  }
  const issues = [];
  const add = (type, severity, list, msg, fix) => list.length && issues.push({ type, severity, selector: list[0], count: list.length, message: msg, fix });
  add("id-selectors", "warning", ids, `${ids.length} selectors use IDs (high specificity)`, "Use classes");
  add("deep-nesting", "warning", deep, `${deep.length} selectors nest deeper than 4 levels`, "Flatten selectors; style components by class");
  add("fragile-patterns", "info", fragile, `${fragile.length} overqualified or universal-descendant selectors`, "Drop the tag qualifier / avoid * descendants");
  if (important > 5) issues.push({ type: "important", severity: "warning", selector: null, count: important, message: `${important} !important declarations`, fix: "Fix specificity instead of using !important" });
  const score = Math.max(0, 100 - issues.reduce((s, i) => s + (i.severity === "warning" ? 10 : 3), 0));
  return { stats: { rules: rules.length, unreadableSheets: unreadable, important }, idSelectors: cap(ids, MAXC).items, deepNesting: cap(deep, MAXC).items, fragilePatterns: cap(fragile, MAXC).items, namingConvention: { detected: classes && bem / classes > 0.3 ? "BEM" : classes ? "other" : "none", classSelectors: classes }, issues, healthScore: score, score, rating: rateC(score), timestamp: Date.now() };
});

/** @devtool auditCSSContainment() — Use of contain, content-visibility and container queries, and candidates: long off-screen sections that could use content-visibility: auto (each also an issue). {containment, contentVisibility, containerQueries, candidates, issues, recommendations}. */
def("auditCSSContainment", () => {
  const { container } = sheetRules();
  let contained = 0;
  let cv = 0;
  let containers = 0;
  const candidates = [];
  for (const e of allElements()) {
    const cs = getComputedStyle(e);
    if (cs.contain && cs.contain !== "none") contained++;
    if (cs.contentVisibility && cs.contentVisibility !== "visible") cv++;
    if (cs.containerType && cs.containerType !== "normal") containers++;
    const r = e.getBoundingClientRect();
    if (/^(section|article)$/.test(e.localName) && r.top > innerHeight * 2 && e.getElementsByTagName("*").length > 100 && cs.contentVisibility !== "auto") candidates.push({ selector: selectorOf(e), descendants: e.getElementsByTagName("*").length });
  }
  const c = cap(candidates, MAXC);
  const issues = c.items.map((k) => ({ type: "content-visibility-candidate", severity: "info", selector: k.selector, message: `Off-screen section with ${k.descendants} elements renders at load`, fix: "Add content-visibility: auto and contain-intrinsic-size" }));
  return { containment: { elements: contained }, contentVisibility: { elements: cv }, containerQueries: { containers, rules: container.length }, candidates: c.items, omitted: c.omitted, issues, recommendations: candidates.length ? ["Add content-visibility: auto (with contain-intrinsic-size) to long off-screen sections"] : [], timestamp: Date.now() };
});

/** @devtool auditResponsiveStrategy() — Media queries (breakpoints) vs container queries in same-origin sheets: {strategy, mediaQueries: {count, breakpoints}, containerQueries, issues, recommendations, suggestion}. */
def("auditResponsiveStrategy", () => {
  const { media, container } = sheetRules();
  const bps = [...new Set(media.flatMap((m) => [...m.matchAll(/(\d+(?:\.\d+)?)(px|em|rem)/g)].map((x) => x[1] + x[2])))];
  const strategy = !media.length && !container.length ? "none" : container.length > media.length ? "container-queries-primary" : container.length ? "hybrid" : "media-queries-only";
  const issues = bps.length > 6 ? [{ type: "many-breakpoints", severity: "warning", selector: null, message: `${bps.length} distinct breakpoints`, fix: "Settle on a few shared breakpoints" }] : [];
  return { strategy, mediaQueries: { count: media.length, breakpoints: bps.slice(0, MAXC) }, containerQueries: { count: container.length }, issues, recommendations: issues.map((i) => i.fix), suggestion: strategy === "media-queries-only" ? "Consider container queries for reusable components" : strategy === "none" ? "No responsive rules found in readable sheets" : "Good use of modern CSS responsive features", timestamp: Date.now() };
});

/** @devtool auditCSSConsistency() — Distinct computed colours, font sizes, font families, spacing values and border radii across visible elements; many one-off values mean no shared scale. {colors, fontSizes, fontFamilies, spacing, borderRadius, issues, consistencyScore, rating}. */
def("auditCSSConsistency", () => {
  const sets = { colors: new Map(), fontSizes: new Map(), fontFamilies: new Map(), spacing: new Map(), borderRadius: new Map() };
  const inc = (m, v) => v && m.set(v, (m.get(v) || 0) + 1);
  for (const e of allElements(3000)) {
    const cs = getComputedStyle(e);
    if (cs.display === "none") continue;
    inc(sets.colors, cs.color);
    if (cs.backgroundColor !== "rgba(0, 0, 0, 0)") inc(sets.colors, cs.backgroundColor);
    inc(sets.fontSizes, cs.fontSize);
    inc(sets.fontFamilies, cs.fontFamily);
    for (const p of [cs.marginTop, cs.paddingTop, cs.paddingLeft, cs.gap]) if (p && p !== "0px" && p !== "normal") inc(sets.spacing, p);
    if (cs.borderRadius !== "0px") inc(sets.borderRadius, cs.borderRadius);
  }
  const limits = { colors: 12, fontSizes: 8, fontFamilies: 3, spacing: 12, borderRadius: 4 };
  const out = {};
  const issues = [];
  for (const [k, m] of Object.entries(sets)) {
    const values = [...m].sort((a, b) => b[1] - a[1]);
    out[k] = { unique: values.length, values: values.slice(0, 20).map(([value, count]) => ({ value, count })) };
    if (values.length > limits[k]) issues.push({ type: `too-many-${k}`, severity: "warning", selector: null, message: `${values.length} distinct ${k} (more than ${limits[k]})`, fix: `Use a shared ${k} scale (design tokens)` });
  }
  const score = Math.max(0, 100 - issues.length * 15);
  return { ...out, issues, consistencyScore: score, score, rating: score >= 85 ? "consistent" : score >= 60 ? "moderate" : "inconsistent", recommendations: issues.map((i) => i.fix), timestamp: Date.now() };
});

/** @devtool auditTailwind() — Whether the page uses Tailwind (utility class patterns) and its risks: very long class lists, conflicting utilities on one element (two p-*, two text-color…), arbitrary values. {detected, utilityClasses, issues, score}. */
def("auditTailwind", () => {
  const UTIL = /^(?:[a-z]+:)*-?(?:p|m|px|py|pt|pb|pl|pr|mx|my|mt|mb|ml|mr|w|h|text|bg|flex|grid|gap|rounded|border|font|items|justify|shadow)(?:-[\w./[\]#%-]+)?$/;
  let util = 0;
  const issues = [];
  for (const e of allElements()) {
    const cls = [...e.classList];
    const u = cls.filter((c) => UTIL.test(c));
    util += u.length;
    if (u.length > 25) issues.push({ type: "long-class-list", severity: "info", selector: selectorOf(e), message: `${u.length} utility classes`, fix: "Extract a component or @apply" });
    const groups = {};
    for (const c of u) {
      const m = /^((?:[a-z]+:)*)(p|px|py|m|mx|my|w|h|gap|rounded)-/.exec(c);
      if (m) (groups[m[1] + m[2]] = groups[m[1] + m[2]] || []).push(c);
    }
    for (const [g, list] of Object.entries(groups)) if (list.length > 1) issues.push({ type: "conflicting-utilities", severity: "warning", selector: selectorOf(e), message: `Conflicting ${g}-* utilities: ${list.join(" ")}`, fix: "Keep one; the later in the CSS wins, not the later in the class list" });
    for (const c of u) if (/\[.+\]/.test(c)) issues.push({ type: "arbitrary-value", severity: "info", selector: selectorOf(e), message: `Arbitrary value ${c}`, fix: "Add the value to the theme" });
  }
  const c = cap(issues, MAXC);
  const score = Math.max(0, 100 - issues.filter((i) => i.severity === "warning").length * 10);
  return { detected: util > 20, utilityClasses: util, issues: c.items, issueCount: issues.length, omitted: c.omitted, score, timestamp: Date.now() };
});

/** @devtool auditCSS() — The CSS audits together (architecture, consistency, containment, responsive strategy, Tailwind when detected, content areas) with an overall score and grade. */
def("auditCSS", () => {
  const parts = { architecture: devtool.auditCSSArchitecture(), consistency: devtool.auditCSSConsistency(), containment: devtool.auditCSSContainment(), responsive: devtool.auditResponsiveStrategy(), contentAreas: devtool.detectContentAreas() };
  const tw = devtool.auditTailwind();
  if (tw.detected) parts.tailwind = tw;
  const scores = Object.values(parts).map((p) => p.score).filter((s) => typeof s === "number");
  const overall = scores.length ? Math.round(scores.reduce((a, b) => a + b, 0) / scores.length) : 100;
  const issues = Object.entries(parts).flatMap(([k, p]) => (p.issues || []).map((i) => ({ category: k, ...i })));
  const c = cap(issues, MAXC);
  return { ...parts, issues: c.items, omitted: c.omitted, overallScore: overall, grade: overall >= 90 ? "A" : overall >= 80 ? "B" : overall >= 70 ? "C" : overall >= 60 ? "D" : "F", timestamp: Date.now() };
});
