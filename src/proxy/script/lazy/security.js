// Lazy module "security": security and validation audits, in the Go v0.8.0 result shape
// ({issues: [{type, severity, selector, message, fix}], score, rating, timestamp}); every list
// is capped (MAX_ISSUES) with `omitted`. Response headers cannot be read by a page, so
// auditSecurityHeaders asks the proxy (`/__agnt/headers`), which recorded them.

const MAX_ISSUES = 50;
const WEIGHT = { error: 15, warning: 5, info: 1 };
const rating = (s) => (s >= 90 ? "good" : s >= 60 ? "needs-improvement" : "poor");
const gradeOf = (s) => (s >= 90 ? "A" : s >= 80 ? "B" : s >= 70 ? "C" : s >= 60 ? "D" : "F");
function result(issues, extra = {}) {
  const score = Math.max(0, 100 - issues.reduce((s, i) => s + (WEIGHT[i.severity] || 1), 0));
  const c = cap(issues, MAX_ISSUES);
  return { ...extra, issues: c.items, issueCount: issues.length, omitted: c.omitted, score, rating: rating(score), timestamp: Date.now() };
}
const issue = (type, severity, e, message, fix) => ({ type, severity, selector: e ? selectorOf(e) : "document", message, fix });
const crossOrigin = (u) => {
  try {
    return new URL(u, location.href).origin !== location.origin;
  } catch (_) {
    return false;
  }
};
const pageEls = (sel) => [...document.querySelectorAll(sel)].filter((e) => !isOwn(e));

/** @devtool auditSecurityHeaders() — The document response's security headers as the proxy recorded them (CSP, HSTS on https, X-Frame-Options or frame-ancestors, X-Content-Type-Options, Referrer-Policy, Permissions-Policy, Server/X-Powered-By disclosure): {headers, issues, recommendations, score, rating}. */
def("auditSecurityHeaders", async () => {
  const res = await fetch(`/__agnt/headers?path=${encodeURIComponent(location.pathname + location.search)}`, { credentials: "same-origin" });
  const rec = await res.json();
  if (!rec.found) return { error: "the proxy has no recorded document response for this page (was it loaded through the proxy?)" };
  const h = rec.headers || {};
  const issues = [];
  const csp = h["content-security-policy"] || "";
  if (!csp) issues.push(issue("missing-csp", "error", null, "No Content-Security-Policy header", "Send a CSP, e.g. default-src 'self'; script-src 'self'"));
  else if (/script-src[^;]*'unsafe-inline'/.test(csp) || (!/script-src/.test(csp) && /default-src[^;]*'unsafe-inline'/.test(csp)))
    issues.push(issue("weak-csp", "warning", null, "The CSP allows 'unsafe-inline' scripts", "Use nonces or hashes instead of 'unsafe-inline'"));
  if (location.protocol === "https:" && !h["strict-transport-security"]) issues.push(issue("missing-hsts", "error", null, "No Strict-Transport-Security on an https page", "Send Strict-Transport-Security: max-age=31536000; includeSubDomains"));
  if (!h["x-frame-options"] && !/frame-ancestors/.test(csp)) issues.push(issue("missing-x-frame-options", "warning", null, "No X-Frame-Options or CSP frame-ancestors (clickjacking)", "Send X-Frame-Options: DENY or CSP frame-ancestors 'none'"));
  if ((h["x-content-type-options"] || "").toLowerCase() !== "nosniff") issues.push(issue("missing-x-content-type-options", "warning", null, "No X-Content-Type-Options: nosniff", "Send X-Content-Type-Options: nosniff"));
  if (!h["referrer-policy"]) issues.push(issue("missing-referrer-policy", "info", null, "No Referrer-Policy", "Send Referrer-Policy: strict-origin-when-cross-origin"));
  if (!h["permissions-policy"]) issues.push(issue("missing-permissions-policy", "info", null, "No Permissions-Policy", "Send a Permissions-Policy limiting camera, microphone, geolocation…"));
  for (const k of ["server", "x-powered-by"]) if (h[k] && /\d/.test(h[k])) issues.push(issue("version-disclosure", "info", null, `${k}: ${cut(h[k], 60)} discloses a version`, `Remove the version from ${k}`));
  return result(issues, { headers: h, url: rec.url, exact: rec.exact, recommendations: issues.map((i) => i.fix) });
});

/** @devtool observeCSPViolations(duration = 3000) — Collects securitypolicyviolation events for `duration` ms (max 60000) and resolves to {violations: [{blockedURI, violatedDirective, originalPolicy, sourceFile, lineNumber, columnNumber, timestamp}], count, omitted}. The Go version returns a controller with stop(); over exec a promise of the collected list is what can be returned. */
def("observeCSPViolations", (duration = 3000) => {
  const list = [];
  const on = (e) =>
    list.push({ blockedURI: e.blockedURI, violatedDirective: e.violatedDirective, effectiveDirective: e.effectiveDirective, originalPolicy: cut(e.originalPolicy, 300), sourceFile: e.sourceFile, lineNumber: e.lineNumber, columnNumber: e.columnNumber, timestamp: Date.now() });
  document.addEventListener("securitypolicyviolation", on);
  return new Promise((resolve) =>
    setTimeout(() => {
      document.removeEventListener("securitypolicyviolation", on);
      const c = cap(list, MAX_ISSUES);
      resolve({ violations: c.items, count: list.length, omitted: c.omitted });
    }, Math.min(60000, Math.max(0, +duration || 0)))
  );
});

const DOM_FIX = {
  "inline-handler": "Attach listeners with addEventListener instead of on* attributes",
  "javascript-url": "Use a button with a listener instead of a javascript: URL",
  "target-blank": 'Add rel="noopener noreferrer"',
  "unsandboxed-iframe": "Add a sandbox attribute to cross-origin iframes",
  "srcdoc-iframe": "Avoid srcdoc with dynamic content, or sandbox it",
};
/** @devtool auditDOMSecurity() — Risky DOM: inline on* handlers, javascript: URLs, target=_blank links without rel=noopener, cross-origin iframes without sandbox, srcdoc iframes. {issues, dangerousElements, summary, score, rating}. */
def("auditDOMSecurity", () => {
  const issues = [];
  const counts = { inlineHandlers: 0, javascriptUrls: 0, targetBlank: 0, iframes: 0 };
  for (const e of allElements()) {
    const handler = [...e.attributes].find((a) => /^on[a-z]+$/.test(a.name));
    if (handler) counts.inlineHandlers++, issues.push(issue("inline-handler", "warning", e, `Inline ${handler.name} handler`, DOM_FIX["inline-handler"]));
    const url = e.getAttribute("href") || e.getAttribute("src") || e.getAttribute("action") || "";
    if (/^\s*javascript:/i.test(url)) counts.javascriptUrls++, issues.push(issue("javascript-url", "error", e, "javascript: URL", DOM_FIX["javascript-url"]));
    if (e.localName === "a" && e.target === "_blank" && crossOrigin(e.href) && !/noopener|noreferrer/.test(e.rel))
      counts.targetBlank++, issues.push(issue("target-blank", "warning", e, 'target="_blank" to another origin without rel="noopener"', DOM_FIX["target-blank"]));
    if (e.localName === "iframe") {
      counts.iframes++;
      if (e.hasAttribute("srcdoc")) issues.push(issue("srcdoc-iframe", "info", e, "iframe with srcdoc runs with this page's origin", DOM_FIX["srcdoc-iframe"]));
      else if (e.src && crossOrigin(e.src) && !e.hasAttribute("sandbox")) issues.push(issue("unsandboxed-iframe", "warning", e, "Cross-origin iframe without sandbox", DOM_FIX["unsandboxed-iframe"]));
    }
  }
  return result(issues, { dangerousElements: counts, summary: { total: issues.length, errors: issues.filter((i) => i.severity === "error").length } });
});

const FRAMEWORKS = [
  ["React", () => !!(window.React || window.__REACT_DEVTOOLS_GLOBAL_HOOK__ && window.__REACT_DEVTOOLS_GLOBAL_HOOK__.renderers && window.__REACT_DEVTOOLS_GLOBAL_HOOK__.renderers.size) || !!document.querySelector("[data-reactroot]") || [...document.querySelectorAll("body > div")].some((d) => Object.keys(d).some((k) => k.startsWith("__reactContainer") || k === "_reactRootContainer")), () => (window.React && window.React.version) || null],
  ["Next.js", () => !!(window.__NEXT_DATA__ || document.getElementById("__next")), () => (window.next && window.next.version) || null],
  ["Vue", () => !!(window.Vue || window.__VUE__ || document.querySelector("[data-v-app]") || [...document.querySelectorAll("*")].slice(0, 2000).some((e) => [...e.attributes].some((a) => a.name.startsWith("data-v-")))), () => (window.Vue && window.Vue.version) || null],
  ["Nuxt", () => !!(window.__NUXT__ || window.$nuxt), () => null],
  ["Angular", () => !!(document.querySelector("[ng-version]") || window.ng), () => (document.querySelector("[ng-version]") || { getAttribute: () => null }).getAttribute("ng-version")],
  ["Svelte", () => !!document.querySelector("[class*='svelte-']"), () => null],
  ["jQuery", () => !!(window.jQuery && window.jQuery.fn), () => (window.jQuery && window.jQuery.fn && window.jQuery.fn.jquery) || null],
  ["Alpine.js", () => !!(window.Alpine || document.querySelector("[x-data]")), () => (window.Alpine && window.Alpine.version) || null],
  ["htmx", () => !!(window.htmx || document.querySelector("[hx-get],[hx-post]")), () => (window.htmx && window.htmx.version) || null],
  ["Preact", () => !!window.preact, () => null],
  ["Lit", () => !!(window.litElementVersions || window.litHtmlVersions), () => null],
];
function detect() {
  const frameworks = [];
  for (const [name, test, version] of FRAMEWORKS) {
    let hit = false;
    try {
      hit = test();
    } catch (_) {}
    if (hit) frameworks.push({ name, version: (() => { try { return version(); } catch (_) { return null; } })() });
  }
  return { frameworks, count: frameworks.length, primary: frameworks.length ? frameworks[0].name : null, timestamp: Date.now() };
}
/** @devtool detectFramework() — Front-end frameworks and libraries on the page (React, Next.js, Vue, Nuxt, Angular, Svelte, jQuery, Alpine.js, htmx, Preact, Lit) with versions where exposed: {frameworks, count, primary}. */
def("detectFramework", detect);

/** @devtool auditFrameworkQuality() — Framework-level risks: several UI frameworks at once, jQuery older than 3.5 (known XSS fixes), Angular/Vue dev globals exposed, very many inline styles. {framework, issues, patterns, recommendations, score, rating}. */
def("auditFrameworkQuality", () => {
  const fw = detect();
  const issues = [];
  const ui = fw.frameworks.filter((f) => /React|Vue|Angular|Svelte|Preact/.test(f.name));
  if (ui.length > 1) issues.push(issue("multiple-frameworks", "warning", null, `Several UI frameworks loaded: ${ui.map((f) => f.name).join(", ")}`, "Ship one UI framework per page"));
  const jq = fw.frameworks.find((f) => f.name === "jQuery");
  if (jq && jq.version && /^(1\.|2\.|3\.[0-4]\.)/.test(jq.version)) issues.push(issue("outdated-jquery", "error", null, `jQuery ${jq.version} has known XSS issues (fixed in 3.5)`, "Upgrade jQuery to 3.5 or later"));
  const inline = pageEls("[style]").length;
  if (inline > 100) issues.push(issue("inline-styles", "info", null, `${inline} elements with inline styles`, "Move styles into classes"));
  return result(issues, { framework: fw, patterns: { inlineStyles: inline }, recommendations: issues.map((i) => i.fix) });
});

/** @devtool auditFormSecurity() — Forms: password fields in GET forms or forms posting over http:, cross-origin form actions, POST forms without a CSRF-looking hidden field, password fields without autocomplete. {forms, issues, summary, score, rating}. */
def("auditFormSecurity", () => {
  const issues = [];
  const forms = pageEls("form").map((f) => {
    const method = (f.getAttribute("method") || "get").toLowerCase();
    const action = f.action || location.href;
    const pw = f.querySelector("input[type=password]");
    if (pw && method === "get") issues.push(issue("password-get", "error", f, "A form with a password field submits with GET (the password lands in the URL)", 'Use method="post"'));
    if (/^http:/.test(action) && location.protocol === "https:") issues.push(issue("insecure-action", "error", f, "The form posts over http:", "Post to an https: URL"));
    else if (pw && /^http:/.test(action) && !/^(localhost|127\.|\[::1\])/.test(new URL(action).hostname)) issues.push(issue("insecure-action", "error", f, "A password form posts over http:", "Serve and post over https"));
    if (crossOrigin(action)) issues.push(issue("cross-origin-action", "warning", f, `The form posts to another origin (${cut(new URL(action).origin, 80)})`, "Post to your own origin or make sure this is intended"));
    if (method === "post" && !f.querySelector("input[type=hidden][name*=csrf i],input[type=hidden][name*=token i],input[type=hidden][name*=xsrf i]"))
      issues.push(issue("missing-csrf-token", "warning", f, "A POST form without a CSRF token field", "Add a CSRF token (or rely on SameSite cookies and say so)"));
    for (const p of f.querySelectorAll("input[type=password]:not([autocomplete])")) issues.push(issue("password-autocomplete", "info", p, "Password field without autocomplete", 'Set autocomplete="current-password" or "new-password"'));
    return { selector: selectorOf(f), method, action: cut(action, 200), hasPassword: !!pw, fields: f.elements.length };
  });
  const c = cap(forms, MAX_ISSUES);
  return result(issues, { forms: c.items, formsOmitted: c.omitted, summary: { forms: forms.length, withPassword: forms.filter((f) => f.hasPassword).length } });
});

/** @devtool auditExternalResources() — Scripts, stylesheets and iframes from other origins: missing Subresource Integrity on cross-origin scripts/styles, http: resources on https pages, unsandboxed cross-origin iframes. {scripts, stylesheets, iframes, issues, summary, score, rating}. */
def("auditExternalResources", () => {
  const issues = [];
  const list = (sel, attr) => pageEls(sel).filter((e) => e.getAttribute(attr) && crossOrigin(e[attr]));
  const scripts = list("script[src]", "src");
  const styles = list("link[rel~=stylesheet][href]", "href");
  const frames = list("iframe[src]", "src");
  for (const e of scripts.concat(styles)) {
    const u = e.src || e.href;
    if (!e.integrity) issues.push(issue("missing-sri", e.localName === "script" ? "error" : "warning", e, `Cross-origin ${e.localName === "script" ? "script" : "stylesheet"} without integrity: ${cut(u, 120)}`, 'Add integrity="sha384-…" and crossorigin="anonymous"'));
    if (/^http:/.test(u) && location.protocol === "https:") issues.push(issue("mixed-content", "error", e, `Loaded over http: ${cut(u, 120)}`, "Load it over https"));
  }
  for (const e of frames) if (!e.hasAttribute("sandbox")) issues.push(issue("unsandboxed-iframe", "warning", e, `Cross-origin iframe without sandbox: ${cut(e.src, 120)}`, "Add a sandbox attribute"));
  const row = (e) => ({ selector: selectorOf(e), url: cut(e.src || e.href, 200), integrity: !!e.integrity, origin: new URL(e.src || e.href, location.href).origin });
  return result(issues, { scripts: cap(scripts, 50).items.map(row), stylesheets: cap(styles, 50).items.map(row), iframes: cap(frames, 50).items.map(row), summary: { scripts: scripts.length, stylesheets: styles.length, iframes: frames.length, origins: [...new Set(scripts.concat(styles, frames).map((e) => row(e).origin))].slice(0, 50) } });
});

/** @devtool auditPrototypePollution() — Whether Object.prototype or Array.prototype carry unexpected enumerable properties (signs of prototype pollution), and whether a JSON "__proto__" key reaches Object.prototype through Object.assign: {vulnerable, tests, issues, recommendations}. */
def("auditPrototypePollution", () => {
  const tests = [];
  const issues = [];
  for (const [name, proto] of [["Object.prototype", Object.prototype], ["Array.prototype", Array.prototype]]) {
    const keys = [];
    for (const k in proto) keys.push(k);
    tests.push({ name: `${name} enumerable properties`, passed: keys.length === 0, keys: keys.slice(0, 20) });
    if (keys.length) issues.push(issue("polluted-prototype", "error", null, `${name} has enumerable properties: ${keys.slice(0, 10).join(", ")}`, "Find the merge/extend code that copies __proto__ keys; freeze prototypes in tests"));
  }
  const probe = `__agnt_probe_${Math.random().toString(36).slice(2)}`;
  try {
    Object.assign({}, JSON.parse(`{"__proto__": {"${probe}": 1}}`));
  } catch (_) {}
  const leaked = {}[probe] === 1;
  if (leaked) delete Object.prototype[probe];
  tests.push({ name: "Object.assign with a JSON __proto__ key", passed: !leaked });
  if (leaked) issues.push(issue("assign-pollution", "error", null, "Object.assign copies a JSON __proto__ key into Object.prototype", "Patch the environment; do not merge untrusted objects"));
  const c = cap(issues, MAX_ISSUES);
  return { vulnerable: issues.length > 0, tests, issues: c.items, omitted: c.omitted, recommendations: issues.map((i) => i.fix), timestamp: Date.now() };
});

/** @devtool auditSecurity() — All security audits together: {headers, domSecurity, framework, forms, resources, prototype, summary, issues, criticalIssues, overallScore, grade}. */
def("auditSecurity", async () => {
  const parts = {
    headers: await devtool.auditSecurityHeaders(),
    domSecurity: devtool.auditDOMSecurity(),
    framework: devtool.auditFrameworkQuality(),
    forms: devtool.auditFormSecurity(),
    resources: devtool.auditExternalResources(),
    prototype: devtool.auditPrototypePollution(),
  };
  const all = [];
  const scores = [];
  for (const [k, v] of Object.entries(parts)) {
    for (const i of (v && v.issues) || []) all.push({ category: k, ...i });
    if (v && typeof v.score === "number") scores.push(v.score);
    else if (k === "prototype" && v) scores.push(v.vulnerable ? 0 : 100);
  }
  const overall = scores.length ? Math.round(scores.reduce((a, b) => a + b, 0) / scores.length) : 0;
  const c = cap(all, MAX_ISSUES);
  const crit = all.filter((i) => i.severity === "error");
  return { ...parts, summary: { total: all.length, errors: crit.length, warnings: all.filter((i) => i.severity === "warning").length }, issues: c.items, omitted: c.omitted, criticalIssues: cap(crit, MAX_ISSUES).items, overallScore: overall, grade: gradeOf(overall), timestamp: Date.now() };
});
