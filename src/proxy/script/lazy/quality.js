// Lazy module "quality": performance observers, DOM/memory/listener audits, layout robustness
// and the composite auditPageQuality. The Go observers return a controller with stop(); over
// exec only data travels, so ours observe for `duration` ms and resolve to the results.

const MAXQ = 50;
const gradeQ = (s) => (s >= 90 ? "A" : s >= 80 ? "B" : s >= 70 ? "C" : s >= 60 ? "D" : "F");
const clampMs = (d, def = 3000) => Math.min(30000, Math.max(0, d && typeof d === "object" ? +d.duration || def : d === undefined ? def : +d || 0));
const observeFor = (type, ms, opts = {}) =>
  new Promise((resolve) => {
    const seen = [];
    let po = null;
    try {
      po = new PerformanceObserver((l) => seen.push(...l.getEntries()));
      po.observe({ type, buffered: true, ...opts });
    } catch (_) {
      return resolve(null);
    }
    setTimeout(() => {
      seen.push(...po.takeRecords());
      po.disconnect();
      resolve(seen);
    }, ms);
  });

/** @devtool observeFrameRate(duration = 3000) — Counts animation frames for duration ms (or {duration}): {totalFrames, duration, avgFPS, avgFrameTime, maxFrameTime, minFrameTime, jankFrames, totalDroppedFrames, smoothness, rating, jankEvents}. */
def("observeFrameRate", (d) => {
  const ms = clampMs(d);
  return new Promise((resolve) => {
    const times = [];
    const t0 = performance.now();
    const tick = (t) => {
      times.push(t);
      if (t - t0 < ms) requestAnimationFrame(tick);
      else done();
    };
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      const jank = gaps.map((g, i) => ({ frame: i + 1, frameTime: Math.round(g * 10) / 10 })).filter((j) => j.frameTime > 50);
      const dropped = gaps.reduce((s, g) => s + Math.max(0, Math.round(g / 16.67) - 1), 0);
      const avg = gaps.length ? gaps.reduce((a, b) => a + b, 0) / gaps.length : 0;
      const smooth = gaps.length ? Math.round((gaps.filter((g) => g < 16.67 * 1.2).length / gaps.length) * 1000) / 10 : 0;
      resolve({ totalFrames: times.length, duration: Math.round(performance.now() - t0), avgFPS: avg ? Math.round((1000 / avg) * 10) / 10 : 0, avgFrameTime: Math.round(avg * 100) / 100, maxFrameTime: gaps.length ? Math.round(Math.max(...gaps) * 10) / 10 : 0, minFrameTime: gaps.length ? Math.round(Math.min(...gaps) * 10) / 10 : 0, jankFrames: jank.length, totalDroppedFrames: dropped, smoothness: smooth, rating: smooth >= 90 ? "smooth" : smooth >= 70 ? "moderate-jank" : "janky", jankEvents: cap(jank, MAXQ).items, timestamp: Date.now() });
    };
    requestAnimationFrame(tick);
    setTimeout(done, ms + 1000); // hidden tabs get no frames
  });
});

/** @devtool observeLongAnimationFrames(duration = 3000) — Long animation frames (LoAF, > 50 ms) seen for duration ms, buffered ones included: {supported, frames: [{duration, blockingDuration, startTime, renderStart, styleAndLayoutStart, scripts}], count, totalBlockingDuration}. */
def("observeLongAnimationFrames", async (d) => {
  const list = await observeFor("long-animation-frame", clampMs(d));
  if (!list) return { supported: false, frames: [], count: 0 };
  const frames = list.map((f) => ({ duration: Math.round(f.duration), blockingDuration: Math.round(f.blockingDuration), startTime: Math.round(f.startTime), renderStart: Math.round(f.renderStart), styleAndLayoutStart: Math.round(f.styleAndLayoutStart), firstUIEventTimestamp: Math.round(f.firstUIEventTimestamp), scripts: (f.scripts || []).slice(0, 5).map((s) => ({ invoker: s.invoker, sourceURL: s.sourceURL, duration: Math.round(s.duration) })) }));
  const c = cap(frames, MAXQ);
  return { supported: true, frames: c.items, count: frames.length, omitted: c.omitted, totalBlockingDuration: frames.reduce((s, f) => s + f.blockingDuration, 0) };
});

/** @devtool observeINP(duration = 3000) — Interaction to Next Paint from Event Timing entries (buffered plus duration ms): {supported, inp, worstINP, totalInteractions, interactions, rating}. */
def("observeINP", async (d) => {
  const list = await observeFor("event", clampMs(d), { durationThreshold: 16 });
  if (!list) return { supported: false };
  const by = new Map();
  for (const e of list) if (e.interactionId) by.set(e.interactionId, Math.max(by.get(e.interactionId) || 0, e.duration));
  const inter = list.filter((e) => e.interactionId).map((e) => ({ type: e.name, duration: Math.round(e.duration), target: e.target ? selectorOf(e.target) : null, startTime: Math.round(e.startTime) }));
  const worst = by.size ? Math.max(...by.values()) : 0;
  return { supported: true, inp: Math.round(worst), worstINP: Math.round(worst), totalInteractions: by.size, interactions: cap(inter, MAXQ).items, rating: worst <= 200 ? "good" : worst <= 500 ? "needs-improvement" : "poor" };
});

/** @devtool observeLCP(duration = 0) — The Largest Contentful Paint so far (buffered; waits duration ms for more): {value, size, element, elementTag, url, loadTime, renderTime, rating}. */
def("observeLCP", async (d) => {
  const list = await observeFor("largest-contentful-paint", clampMs(d, 0));
  if (!list) return { supported: false };
  const e = list[list.length - 1];
  if (!e) return { supported: true, value: null, message: "no LCP entry yet" };
  const v = Math.round(e.renderTime || e.loadTime || e.startTime);
  return { supported: true, value: v, size: e.size, element: e.element ? selectorOf(e.element) : null, elementTag: e.element ? e.element.localName : null, url: e.url || null, loadTime: Math.round(e.loadTime), renderTime: Math.round(e.renderTime), rating: v <= 2500 ? "good" : v <= 4000 ? "needs-improvement" : "poor" };
});

function domComplexity() {
  const all = [...document.getElementsByTagName("*")].filter((e) => !isOwn(e));
  let maxDepth = 0;
  let deepest = null;
  const depthDist = {};
  const tags = {};
  const heavy = [];
  for (const e of all) {
    let d = 0;
    for (let n = e; n.parentElement; n = n.parentElement) d++;
    depthDist[d] = (depthDist[d] || 0) + 1;
    if (d > maxDepth) (maxDepth = d), (deepest = e);
    tags[e.localName] = (tags[e.localName] || 0) + 1;
    if (e.childElementCount > 60) heavy.push({ selector: selectorOf(e), children: e.childElementCount });
  }
  heavy.sort((a, b) => b.children - a.children);
  const maxChildren = all.reduce((m, e) => Math.max(m, e.childElementCount), 0);
  const n = all.length;
  const score = (v, good, bad) => (v <= good ? 100 : v >= bad ? 0 : Math.round(100 - ((v - good) / (bad - good)) * 100));
  const scores = { nodes: score(n, 800, 3000), depth: score(maxDepth, 15, 40), children: score(maxChildren, 60, 300) };
  const overall = Math.round((scores.nodes + scores.depth + scores.children) / 3);
  const recs = [];
  if (n > 1500) recs.push(`DOM has ${n} nodes: target < 1500 (virtualise long lists)`);
  if (maxDepth > 32) recs.push(`Nesting depth ${maxDepth}: flatten wrappers (target < 32)`);
  if (maxChildren > 60) recs.push(`An element has ${maxChildren} children: paginate or virtualise`);
  return { totalNodes: n, maxDepth, maxChildren, deepestElement: deepest ? selectorOf(deepest) : null, largestParent: heavy[0] ? heavy[0].selector : null, heavyParents: cap(heavy, 10).items, topTags: Object.entries(tags).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([tag, count]) => ({ tag, count })), depthDistribution: depthDist, thresholds: { nodes: 1500, depth: 32, children: 60 }, scores, score: overall, rating: overall >= 90 ? "good" : overall >= 50 ? "needs-improvement" : "poor", recommendations: recs, timestamp: Date.now() };
}
/** @devtool auditDOMComplexity() — Node count, depth, widest parents, tag counts, depth distribution, scores against Lighthouse-like thresholds (1500 nodes, depth 32, 60 children). */
def("auditDOMComplexity", domComplexity);

function memory() {
  const m = performance.memory;
  if (!m) return { available: false, measureMemoryAvailable: typeof performance.measureUserAgentSpecificMemory === "function", timestamp: Date.now() };
  const used = m.usedJSHeapSize / m.jsHeapSizeLimit;
  return { available: true, jsHeap: { usedMB: Math.round(m.usedJSHeapSize / 1048576 * 10) / 10, totalMB: Math.round(m.totalJSHeapSize / 1048576 * 10) / 10, limitMB: Math.round(m.jsHeapSizeLimit / 1048576), usedPercent: Math.round(used * 1000) / 10 }, pressure: used < 0.5 ? "low" : used < 0.7 ? "moderate" : used < 0.9 ? "high" : "critical", measureMemoryAvailable: typeof performance.measureUserAgentSpecificMemory === "function", timestamp: Date.now() };
}
/** @devtool captureMemoryMetrics() — JS heap (performance.memory, Chromium) used/total/limit and pressure, and whether measureMemoryDetailed can run here. */
def("captureMemoryMetrics", memory);

/** @devtool measureMemoryDetailed() — performance.measureUserAgentSpecificMemory(): {totalBytes, totalMB, breakdown}. Needs a cross-origin-isolated page (COOP same-origin + COEP require-corp); elsewhere {supported: false, reason}. */
def("measureMemoryDetailed", async () => {
  if (typeof performance.measureUserAgentSpecificMemory !== "function") return { supported: false, reason: "performance.measureUserAgentSpecificMemory is not available here", crossOriginIsolated: !!window.crossOriginIsolated };
  if (!window.crossOriginIsolated) return { supported: false, reason: "the page is not cross-origin isolated (needs COOP: same-origin and COEP: require-corp)", crossOriginIsolated: false };
  const r = await performance.measureUserAgentSpecificMemory();
  const c = cap(r.breakdown.filter((b) => b.bytes > 0).sort((a, b) => b.bytes - a.bytes), 20);
  return { supported: true, totalBytes: r.bytes, totalMB: Math.round((r.bytes / 1048576) * 10) / 10, breakdown: c.items.map((b) => ({ bytes: b.bytes, types: b.types, attribution: (b.attribution || []).map((a) => a.url || a.scope) })), omitted: c.omitted, timestamp: Date.now() };
});

function listeners() {
  const inline = [];
  const byType = {};
  for (const e of [document.documentElement, ...document.querySelectorAll("*")]) {
    if (isOwn(e)) continue;
    for (const a of e.attributes) if (/^on[a-z]+$/.test(a.name)) (byType[a.name.slice(2)] = (byType[a.name.slice(2)] || 0) + 1), inline.push({ selector: selectorOf(e), type: a.name.slice(2) });
  }
  for (const k of Object.keys(window)) if (/^on[a-z]+$/.test(k) && typeof window[k] === "function") byType[k.slice(2)] = (byType[k.slice(2)] || 0) + 1;
  const total = inline.length;
  const score = total > 200 ? 40 : total > 50 ? 70 : 100;
  return { note: "pages cannot enumerate addEventListener listeners; this counts on* attributes and window.on* handlers", inlineHandlers: cap(inline, MAXQ).items, totalInline: total, omitted: Math.max(0, total - MAXQ), byType, score, recommendations: total > 50 ? ["Use event delegation instead of one handler per element"] : [], timestamp: Date.now() };
}
/** @devtool auditEventListeners() — Inline on* handlers and window.on* handlers by type (addEventListener listeners are not visible to page scripts), with a score. */
def("auditEventListeners", listeners);

async function tbt() {
  const list = (await observeFor("longtask", 0)) || [];
  const fcp = (performance.getEntriesByName("first-contentful-paint")[0] || {}).startTime || 0;
  const tasks = list.filter((t) => t.startTime >= fcp);
  const total = tasks.reduce((s, t) => s + Math.max(0, t.duration - 50), 0);
  return { tbt: Math.round(total), longTasks: tasks.length, longest: tasks.length ? Math.round(Math.max(...tasks.map((t) => t.duration))) : 0, fcp: Math.round(fcp), rating: total <= 200 ? "good" : total <= 600 ? "needs-improvement" : "poor", score: total <= 200 ? 100 : total <= 600 ? 70 : 30, timestamp: Date.now() };
}
/** @devtool estimateTBT() — Total Blocking Time estimate: the sum over long tasks after First Contentful Paint of their time beyond 50 ms (buffered longtask entries). */
def("estimateTBT", tbt);

// Layout shifts are not in the performance timeline buffer (getEntriesByType returns none);
// a buffered observer delivers them.
async function perfMetrics() {
  const nav = performance.getEntriesByType("navigation")[0] || {};
  const paint = {};
  for (const p of performance.getEntriesByType("paint")) paint[p.name] = Math.round(p.startTime);
  const res = performance.getEntriesByType("resource");
  let cls = 0;
  for (const s of (await observeFor("layout-shift", 0)) || []) if (!s.hadRecentInput) cls += s.value;
  return { navigation: { ttfb: Math.round(nav.responseStart || 0), domContentLoaded: Math.round(nav.domContentLoadedEventEnd || 0), load: Math.round(nav.loadEventEnd || 0), transferSize: nav.transferSize || 0 }, paint, cls: Math.round(cls * 1000) / 1000, resources: { count: res.length, transferBytes: res.reduce((s, r) => s + (r.transferSize || 0), 0) }, timestamp: Date.now() };
}
/** @devtool capturePerformanceMetrics() — Navigation timing (TTFB, DOMContentLoaded, load), paint timings, CLS so far, resource count and bytes. */
def("capturePerformanceMetrics", perfMetrics);

// Layout robustness: text that will break when content grows, and elements that will break on
// small screens. Each issue {type, severity, selector, message, fix}.
const robust = (issues, extra) => {
  const c = cap(issues, MAXQ);
  const summary = { total: issues.length, errors: issues.filter((i) => i.severity === "error").length, warnings: issues.filter((i) => i.severity === "warning").length };
  return { ...extra, issues: c.items, issueCount: issues.length, omitted: c.omitted, summary, score: Math.max(0, 100 - summary.errors * 10 - summary.warnings * 5), timestamp: Date.now() };
};
const hasOwnText = (e) => [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
function textFragility() {
  const issues = [];
  for (const e of allElements()) {
    if (!hasOwnText(e) || !visibility(e).visible) continue;
    const cs = getComputedStyle(e);
    const clipsX = e.scrollWidth > e.clientWidth + 1 && cs.overflowX !== "visible";
    const clipsY = e.scrollHeight > e.clientHeight + 1 && cs.overflowY !== "visible";
    if ((clipsX || clipsY) && cs.textOverflow !== "ellipsis" && !cs.webkitLineClamp.match(/^\d/))
      issues.push({ type: "text-clipped", severity: "error", selector: selectorOf(e), message: "Text is cut off by overflow without an ellipsis", fix: "Let the box grow, wrap the text, or add text-overflow: ellipsis with a title" });
    else if (clipsX && cs.textOverflow === "ellipsis") issues.push({ type: "text-truncated", severity: "warning", selector: selectorOf(e), message: "Text is truncated with an ellipsis", fix: "Make sure the full text is reachable (title or tooltip)" });
    if (cs.whiteSpace === "nowrap" && e.style.width && e.scrollWidth > e.clientWidth + 1 && cs.overflowX === "visible")
      issues.push({ type: "text-overflows", severity: "warning", selector: selectorOf(e), message: "Unwrapped text sticks out of a fixed-width box", fix: "Allow wrapping or drop the fixed width" });
  }
  return robust(issues, {});
}
/** @devtool checkTextFragility() — Text that breaks when content grows: clipped without ellipsis (error), truncated with ellipsis (warning), nowrap text sticking out of fixed-width boxes. {issues, summary, score}. */
def("checkTextFragility", textFragility);

function responsiveRisk() {
  const issues = [];
  const vw = document.documentElement.clientWidth;
  const vp = document.querySelector('meta[name="viewport"]');
  if (!vp) issues.push({ type: "missing-viewport", severity: "error", selector: "document", message: "No <meta name=viewport>: phones render the page zoomed out", fix: '<meta name="viewport" content="width=device-width, initial-scale=1">' });
  for (const e of allElements()) {
    if (!visibility(e).visible) continue;
    const cs = getComputedStyle(e);
    const w = px(cs.width);
    const minW = px(cs.minWidth);
    if ((e.style.width && /px$/.test(e.style.width) && w > 600) || minW > 600)
      issues.push({ type: "fixed-width", severity: w > vw || minW > vw ? "error" : "warning", selector: selectorOf(e), message: `Fixed width ${Math.round(Math.max(w, minW))}px does not fit a 375px phone screen`, fix: "Use max-width: 100% or relative units" });
  }
  return robust(issues, { viewportWidth: vw });
}
/** @devtool checkResponsiveRisk() — Things that break on small screens: no viewport meta, inline fixed widths or min-widths over 600 px (error when wider than the current viewport). {issues, summary, score}. */
def("checkResponsiveRisk", responsiveRisk);

/** @devtool auditPageQuality() — Everything above scored together: {scores: {dom, tbt, memory, eventListeners, text, responsive, cls}, overallScore, grade, criticalIssues, recommendations, details}. */
def("auditPageQuality", async () => {
  const dom = domComplexity();
  const t = await tbt();
  const mem = memory();
  const lis = listeners();
  const text = textFragility();
  const resp = responsiveRisk();
  const perf = await perfMetrics();
  const scores = { dom: dom.score, tbt: t.score, memory: mem.available ? { low: 100, moderate: 80, high: 50, critical: 20 }[mem.pressure] : 100, eventListeners: lis.score, text: text.score, responsive: resp.score, cls: perf.cls <= 0.1 ? 100 : perf.cls <= 0.25 ? 60 : 20 };
  const overall = Math.round(Object.values(scores).reduce((a, b) => a + b, 0) / Object.keys(scores).length);
  const critical = [];
  if (dom.totalNodes > 3000) critical.push({ category: "dom", message: `Excessive DOM nodes: ${dom.totalNodes}` });
  if (t.tbt > 600) critical.push({ category: "performance", message: `High Total Blocking Time: ${t.tbt}ms` });
  for (const i of text.issues.concat(resp.issues)) if (i.severity === "error") critical.push({ category: i.type === "text-clipped" ? "text" : "responsive", message: `${i.message} (${i.selector})`, selector: i.selector });
  const recs = [];
  for (const r of dom.recommendations) recs.push({ priority: 2, category: "dom", issue: r, fix: r });
  if (t.tbt > 200) recs.push({ priority: 1, category: "performance", issue: `TBT is ${t.tbt}ms`, fix: "Break up long tasks" });
  for (const i of text.issues.concat(resp.issues)) recs.push({ priority: i.severity === "error" ? 1 : 3, category: "layout", issue: i.message, selector: i.selector, fix: i.fix });
  recs.sort((a, b) => a.priority - b.priority);
  const c = cap(critical, MAXQ);
  const r = cap(recs, MAXQ);
  return { scores, overallScore: overall, grade: gradeQ(overall), criticalIssues: c.items, criticalOmitted: c.omitted, recommendations: r.items, recommendationsOmitted: r.omitted, details: { dom, memory: mem, tbt: t, eventListeners: { totalInline: lis.totalInline, byType: lis.byType }, performance: perf, textFragility: { summary: text.summary, issueCount: text.issueCount }, responsiveRisk: { summary: resp.summary, issueCount: resp.issueCount } }, timestamp: Date.now() };
});
