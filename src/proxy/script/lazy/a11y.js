// Lazy module "a11y": accessibility tree facts and the accessibility audit. The rules aim at
// the WCAG 2.2 A/AA checks axe-core's default run makes that can be decided from the DOM; rule
// ids follow axe's where they exist (ours: html-lang = axe html-has-lang, landmark-main = axe
// landmark-one-main, tabindex = axe tabindex). Result: the Go shape (score, grade, errors,
// warnings, passes, total, summary) plus `findings` {selector, rule, impact, severity, wcag,
// message, fix}, capped with `omitted`. tests/it/browser_a11y.rs checks every rule against
// axe-core on planted pages (same elements as axe, or a listed difference).

const IMPLICIT_ROLE = { a: "link", button: "button", nav: "navigation", main: "main", header: "banner", footer: "contentinfo", aside: "complementary", form: "form", img: "img", select: "combobox", textarea: "textbox", ul: "list", ol: "list", li: "listitem", table: "table", dialog: "dialog", h1: "heading", h2: "heading", h3: "heading", h4: "heading", h5: "heading", h6: "heading" };
const INPUT_ROLE = { checkbox: "checkbox", radio: "radio", range: "slider", button: "button", submit: "button", reset: "button", image: "button", search: "searchbox" };
const roleOf = (e) => {
  const r = (e.getAttribute("role") || "").trim().split(/\s+/)[0];
  if (r) return r;
  if (e.localName === "input") return INPUT_ROLE[e.type] || "textbox";
  if (e.localName === "a" && !e.hasAttribute("href")) return "generic";
  return IMPLICIT_ROLE[e.localName] || null;
};

/** @devtool getA11yInfo(selector) — Role (explicit or implicit), accessible name, ARIA attributes, tabindex, focusability and whether it is hidden from assistive technology. */
def("getA11yInfo", (sel) => {
  const e = el(sel);
  const aria = {};
  for (const a of e.attributes) if (a.name.startsWith("aria-")) aria[a.name] = cut(a.value, 200);
  const hidden = !!e.closest("[aria-hidden=true]") || !visibility(e).visible;
  return {
    selector: selectorOf(e),
    role: roleOf(e),
    explicitRole: e.getAttribute("role"),
    name: cut(accessibleName(e), 200),
    accessibleName: cut(accessibleName(e), 200),
    description: cut(byIdsText(e.getAttribute("aria-describedby")), 200) || null,
    aria,
    tabIndex: e.tabIndex,
    focusable: e.matches(FOCUSABLE) && !e.disabled && e.tabIndex >= 0,
    hiddenFromAT: hidden,
  };
});
const byIdsText = (ids) =>
  String(ids || "")
    .split(/\s+/)
    .map((id) => (id && document.getElementById(id) ? document.getElementById(id).textContent : ""))
    .join(" ")
    .trim();

const NAMED_BY_CONTENT = new Set(["button", "link", "heading", "checkbox", "radio", "switch", "tab", "menuitem", "option"]);
/** @devtool getScreenReaderText(selector) — The text a screen reader would read for an element and its subtree: names of images and controls, skipping aria-hidden and undisplayed parts. */
def("getScreenReaderText", (sel) => {
  const root = el(sel);
  const out = [];
  const walk = (n) => {
    if (out.length > 2000) return;
    if (n.nodeType === 3) return void (n.textContent.trim() && out.push(n.textContent.trim()));
    if (n.nodeType !== 1 || isOwn(n) || n.getAttribute("aria-hidden") === "true") return;
    const cs = getComputedStyle(n);
    if (cs.display === "none" || cs.visibility === "hidden") return;
    const role = roleOf(n);
    // Named elements and widgets whose name comes from their content are read as "name, role"
    // (headings with their level), the rest as their text.
    if (n.hasAttribute("aria-label") || n.hasAttribute("aria-labelledby") || /^(img|input|select|textarea)$/.test(n.localName) || NAMED_BY_CONTENT.has(role)) {
      const name = accessibleName(n);
      const said = role === "heading" ? `heading level ${+(n.getAttribute("aria-level") || n.localName.slice(1)) || 2}` : role;
      if (name || role) out.push(role && role !== "generic" ? `${name}${name ? ", " : ""}${said}` : name);
      return;
    }
    n.childNodes.forEach(walk);
  };
  walk(root);
  const text = out.join(" ").replace(/\s+/g, " ").trim();
  return { selector: selectorOf(root), role: roleOf(root), name: cut(accessibleName(root), 200), text: cut(text, 5000) };
});

// WAI-ARIA 1.2 roles (non-abstract) and the global/role-specific aria-* attributes.
const ROLES = new Set(
  "alert alertdialog application article banner blockquote button caption cell checkbox code columnheader combobox complementary contentinfo definition deletion dialog directory document emphasis feed figure form generic grid gridcell group heading img insertion link list listbox listitem log main marquee math menu menubar menuitem menuitemcheckbox menuitemradio meter navigation none note option paragraph presentation progressbar radio radiogroup region row rowgroup rowheader scrollbar search searchbox separator slider spinbutton status strong subscript superscript switch tab table tablist tabpanel term textbox time timer toolbar tooltip tree treegrid treeitem doc-abstract doc-acknowledgments doc-afterword doc-appendix doc-backlink doc-biblioentry doc-bibliography doc-biblioref doc-chapter doc-colophon doc-conclusion doc-cover doc-credit doc-credits doc-dedication doc-endnote doc-endnotes doc-epigraph doc-epilogue doc-errata doc-example doc-footnote doc-foreword doc-glossary doc-glossref doc-index doc-introduction doc-noteref doc-notice doc-pagebreak doc-pagelist doc-part doc-preface doc-prologue doc-pullquote doc-qna doc-subtitle doc-tip doc-toc graphics-document graphics-object graphics-symbol".split(" ")
);
const ARIA_ATTRS = new Set(
  "activedescendant atomic autocomplete braillelabel brailleroledescription busy checked colcount colindex colindextext colspan controls current describedby description details disabled dropeffect errormessage expanded flowto grabbed haspopup hidden invalid keyshortcuts label labelledby level live modal multiline multiselectable orientation owns placeholder posinset pressed readonly relevant required roledescription rowcount rowindex rowindextext rowspan selected setsize sort valuemax valuemin valuenow valuetext".split(" ").map((a) => `aria-${a}`)
);
const REQUIRED_ATTRS = { checkbox: ["aria-checked"], combobox: ["aria-expanded"], heading: ["aria-level"], menuitemcheckbox: ["aria-checked"], menuitemradio: ["aria-checked"], radio: ["aria-checked"], scrollbar: ["aria-controls", "aria-valuenow"], slider: ["aria-valuenow"], switch: ["aria-checked"], separator: [] };
const AUTOCOMPLETE = new Set(
  "off on name honorific-prefix given-name additional-name family-name honorific-suffix nickname username new-password current-password one-time-code organization-title organization street-address address-line1 address-line2 address-line3 address-level4 address-level3 address-level2 address-level1 country country-name postal-code cc-name cc-given-name cc-additional-name cc-family-name cc-number cc-exp cc-exp-month cc-exp-year cc-csc cc-type transaction-currency transaction-amount language bday bday-day bday-month bday-year sex url photo tel tel-country-code tel-national tel-area-code tel-local tel-local-prefix tel-local-suffix tel-extension email impp webauthn".split(" ")
);
const autocompleteOk = (v) => {
  const t = v.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (!t.length) return true;
  let i = 0;
  if (t[i] && t[i].startsWith("section-")) i++;
  if (t[i] === "shipping" || t[i] === "billing") i++;
  if (/^(home|work|mobile|fax|pager)$/.test(t[i] || "")) i++;
  if (!AUTOCOMPLETE.has(t[i] || "")) return false;
  i++;
  if (t[i] === "webauthn") i++;
  return i === t.length;
};
const LANG_RE = /^[a-z]{2,3}(-[a-z0-9]{2,8})*$/i;
const WCAG = { "image-alt": "1.1.1", "input-image-alt": "1.1.1", "role-img-alt": "1.1.1", "svg-img-alt": "1.1.1", label: "1.3.1", "button-name": "4.1.2", "link-name": "2.4.4", "color-contrast": "1.4.3", "heading-order": "1.3.1", "html-lang": "3.1.1", "valid-lang": "3.1.2", "document-title": "2.4.2", "duplicate-id": "4.1.1", "duplicate-id-aria": "4.1.2", tabindex: "2.4.3", "aria-roles": "4.1.2", "aria-valid-attr": "4.1.2", "aria-required-attr": "4.1.2", "aria-hidden-focus": "4.1.2", "aria-hidden-body": "4.1.2", "frame-title": "4.1.2", "autocomplete-valid": "1.3.5", "empty-heading": "1.3.1", "target-size": "2.5.8", "meta-viewport": "1.4.4", "meta-refresh": "2.2.1", "landmark-main": "1.3.1", listitem: "1.3.1", "nested-interactive": "4.1.2" };
const IMPACT = { critical: 10, serious: 5, moderate: 3, minor: 1 };
const grade = (s) => (s >= 90 ? "A" : s >= 80 ? "B" : s >= 70 ? "C" : s >= 60 ? "D" : "F");
const PRESENTATIONAL_CHILDREN = "button,[role=button],[role=checkbox],[role=img],[role=menuitemcheckbox],[role=menuitemradio],[role=meter],[role=option],[role=progressbar],[role=radio],[role=scrollbar],[role=separator],[role=slider],[role=switch],[role=tab]";
// Not hidden from screen readers by CSS (zero size and opacity 0 still count).
const forReaders = (e) => !visibility(e).reasons.some((r) => /^(display|visibility|not in)/.test(r));

/** @devtool auditAccessibility({limit = 200}) — Own WCAG 2.2 A/AA checks (no CDN): image-alt, input-image-alt, role-img-alt, svg-img-alt, label, button-name, link-name, color-contrast (large text 3:1), heading-order, empty-heading, landmark-main, html-lang, valid-lang, document-title, duplicate-id, duplicate-id-aria, tabindex, aria-roles, aria-valid-attr, aria-required-attr, aria-hidden-focus, aria-hidden-body, frame-title, autocomplete-valid, target-size, meta-viewport, meta-refresh, listitem, nested-interactive. Go shape {score, grade, errors, warnings, passes, total, summary} plus findings {selector, rule, impact, severity, wcag, message, fix}, capped (omitted). */
def("auditAccessibility", (opts = {}) => {
  const limit = opts.limit || 200;
  const all = [];
  const add = (e, rule, impact, message, fix) => all.push({ selector: e ? selectorOf(e) : "document", rule, type: rule, impact, severity: impact === "critical" || impact === "serious" ? "error" : "warning", wcag: WCAG[rule] || null, message, fix });
  const shown = (e) => visibility(e).visible;
  const rendered = (e) => visibility(e).reasons.every((r) => r === "zero size");
  const root = document.documentElement;
  const checked = { images: 0, forms: 0, links: 0, headings: 0, contrast: 0, aria: 0 };
  const lang = (root.getAttribute("lang") || "").trim();
  if (!lang) add(root, "html-lang", "serious", "<html> has no lang attribute", 'Add lang, e.g. <html lang="en">');
  else if (!LANG_RE.test(lang)) add(root, "valid-lang", "serious", `lang="${cut(lang, 30)}" is not a valid language tag`, 'Use a BCP 47 tag such as "en" or "pt-BR"');
  if (!document.title.trim()) add(null, "document-title", "serious", "The document has no <title>", "Add a descriptive <title> in <head>");
  if (![...document.querySelectorAll("main,[role=main]")].some((m) => !m.closest("[aria-hidden=true]"))) add(null, "landmark-main", "moderate", "No <main> landmark", "Wrap the primary content in <main>");
  if (document.body && document.body.getAttribute("aria-hidden") === "true") add(document.body, "aria-hidden-body", "critical", "<body> is aria-hidden", "Remove aria-hidden from <body>");
  const vp = document.querySelector('meta[name="viewport"]');
  if (vp) {
    const c = vp.content.toLowerCase();
    const max = /maximum-scale\s*=\s*([\d.]+)/.exec(c);
    if (/user-scalable\s*=\s*(no|0)/.test(c) || (max && +max[1] < 2)) add(vp, "meta-viewport", "critical", "The viewport meta tag prevents zooming", "Remove user-scalable=no and maximum-scale below 2");
  }
  const refresh = document.querySelector('meta[http-equiv="refresh" i]');
  if (refresh && /^\s*\d+\s*[;,]?\s*\S/.test(refresh.content) && parseInt(refresh.content, 10) > 0)
    add(refresh, "meta-refresh", "critical", "The page refreshes or redirects itself on a timer", "Remove the timed refresh; let the user control it");
  const els = allElements(10000);
  const ids = new Map();
  for (const e of els) if (e.id) ids.set(e.id, (ids.get(e.id) || 0) + 1);
  const referenced = new Set();
  for (const e of els)
    for (const a of ["aria-labelledby", "aria-describedby", "aria-controls", "aria-owns", "aria-activedescendant", "aria-errormessage", "aria-details", "aria-flowto"])
      for (const id of (e.getAttribute(a) || "").split(/\s+/)) if (id) referenced.add(id);
  for (const e of document.querySelectorAll("label[for]")) referenced.add(e.htmlFor);
  for (const [id, n] of ids) {
    if (n < 2) continue;
    if (referenced.has(id)) add(document.getElementById(id), "duplicate-id-aria", "critical", `id "${id}" is used ${n} times and referenced by ARIA or a label`, "Make every id unique");
    else add(document.getElementById(id), "duplicate-id", "minor", `id "${id}" is used ${n} times`, "Make every id unique");
  }
  let lastHeading = 0;
  const hiddenFocus = new Set();
  for (const e of els) {
    const tag = e.localName;
    const role = e.getAttribute("role");
    const hiddenTree = e.closest("[aria-hidden=true]");
    if (hiddenTree) {
      // Reported on the aria-hidden element (as axe does), once however many it contains.
      if (e.matches(FOCUSABLE) && !e.disabled && e.tabIndex >= 0 && shown(e) && !hiddenFocus.has(hiddenTree)) {
        hiddenFocus.add(hiddenTree);
        add(hiddenTree, "aria-hidden-focus", "serious", `aria-hidden content contains a focusable element (${selectorOf(e)})`, 'Add tabindex="-1" to it or remove aria-hidden');
      }
      continue;
    }
    for (const a of e.attributes) {
      if (!a.name.startsWith("aria-")) continue;
      checked.aria++;
      if (!ARIA_ATTRS.has(a.name)) add(e, "aria-valid-attr", "critical", `${a.name} is not an ARIA attribute`, "Fix the spelling or remove it");
    }
    if (role !== null) {
      checked.aria++;
      const first = role.trim().split(/\s+/)[0];
      if (role.trim() && !ROLES.has(first)) add(e, "aria-roles", "critical", `role="${cut(role, 40)}" is not a valid ARIA role`, "Use a WAI-ARIA role or remove the attribute");
      else if (REQUIRED_ATTRS[first] && !(tag === "input" && /checkbox|radio|range/.test(e.type)) && !(first === "heading" && /^h[1-6]$/.test(tag))) {
        const miss = REQUIRED_ATTRS[first].filter((a) => !e.hasAttribute(a));
        if (miss.length) add(e, "aria-required-attr", "critical", `role=${first} needs ${miss.join(", ")}`, `Add ${miss.join(", ")}`);
      }
    }
    if (tag === "img") {
      checked.images++;
      if (!e.hasAttribute("alt") && role !== "presentation" && role !== "none" && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby"))
        add(e, "image-alt", "critical", "Image without alt text", 'Add alt="…" describing the image (alt="" if decorative)');
    } else if (role === "img" && tag !== "svg" && !accessibleName(e)) add(e, "role-img-alt", "serious", 'role="img" without an accessible name', "Add aria-label or aria-labelledby");
    if (tag === "svg" && role === "img" && !accessibleName(e) && !(e.querySelector("title") || {}).textContent)
      add(e, "svg-img-alt", "serious", '<svg role="img"> without an accessible name', "Add a <title> child or aria-label");
    if (tag === "input" && e.type === "image" && !accessibleName(e)) add(e, "input-image-alt", "critical", "Image button without alt text", "Add alt describing the action");
    if (/^(input|select|textarea)$/.test(tag) && !/^(hidden|submit|button|reset|image)$/.test(e.type)) {
      checked.forms++;
      if (!accessibleName(e)) add(e, "label", "critical", `Form control <${tag}${e.type ? ` type=${e.type}` : ""}> has no label`, 'Add <label for="id">, wrap it in <label>, or set aria-label');
      const ac = e.getAttribute("autocomplete");
      if (ac && !autocompleteOk(ac)) add(e, "autocomplete-valid", "serious", `autocomplete="${cut(ac, 40)}" is not a valid token list`, 'Use a token from the HTML spec, e.g. "email" or "street-address"');
    }
    if ((tag === "button" || role === "button" || (tag === "input" && /^(submit|button|reset)$/.test(e.type))) && !accessibleName(e) && rendered(e))
      add(e, "button-name", "critical", "Button without an accessible name", "Give it visible text or aria-label");
    if (tag === "a" && e.hasAttribute("href")) {
      checked.links++;
      if (!accessibleName(e) && rendered(e)) add(e, "link-name", "serious", "Link without an accessible name", "Give it text, aria-label, or an img with alt");
    }
    if ((tag === "iframe" || tag === "frame") && !accessibleName(e) && !(e.title || "").trim()) add(e, "frame-title", "serious", "Frame without a title", 'Add title="…" describing the frame');
    const h = /^h([1-6])$/.exec(tag);
    // Headings count unless hidden from screen readers (an empty heading has no size but is
    // still announced; axe counts it too).
    if (h && forReaders(e)) {
      checked.headings++;
      const lvl = +h[1];
      if (lastHeading && lvl > lastHeading + 1) add(e, "heading-order", "moderate", `Heading level jumps from h${lastHeading} to h${lvl}`, `Use h${lastHeading + 1} or restructure the outline`);
      lastHeading = lvl;
      if (!accessibleName(e)) add(e, "empty-heading", "minor", "Heading without text", "Give the heading text or remove it");
    }
    if (tag === "li" && e.parentElement && !/^(ul|ol|menu)$/.test(e.parentElement.localName) && !/^(list|listbox|menu)$/.test(e.parentElement.getAttribute("role") || "") && !role)
      add(e, "listitem", "serious", "<li> outside a <ul>, <ol> or <menu>", "Put list items inside a list element");
    // Controls whose children are presentational must not contain focusable elements (reported
    // on the outer control, as axe does).
    if (e.matches(PRESENTATIONAL_CHILDREN)) {
      const inner = [...e.querySelectorAll(FOCUSABLE)].find((c) => !c.disabled && c.tabIndex >= 0);
      if (inner) add(e, "nested-interactive", "serious", `Interactive ${selectorOf(inner)} is nested inside this control`, "Move the inner control out of the outer one");
    }
    if (e.tabIndex > 0 && e.hasAttribute("tabindex")) add(e, "tabindex", "serious", `tabindex=${e.getAttribute("tabindex")} changes the natural focus order`, 'Use tabindex="0" and reorder the DOM instead');
    const ownText = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (ownText && shown(e) && !(tag === "option" || e.closest("select"))) {
      checked.contrast++;
      const c = contrast(e);
      if (!c.aa && !e.disabled && !e.closest("[disabled]") && bgIsPlain(e))
        add(e, "color-contrast", "serious", `Contrast ${c.ratio}:1 (${c.foreground} on ${c.background}) is below ${c.required_aa}:1`, `Darken the text or lighten the background to reach ${c.required_aa}:1`);
    }
    if (e.matches("button,input[type=button],input[type=submit],input[type=reset],[role=button],a[href]:not(p a,li a,td a)") && shown(e) && undersized(e))
      add(e, "target-size", "serious", "Target smaller than 24×24 px with too little spacing", "Make the target at least 24×24 px or leave 24 px around it");
  }
  const findings = all.slice(0, limit);
  const penalty = all.reduce((s, f) => s + (IMPACT[f.impact] || 1), 0);
  const counts = {};
  for (const f of all) counts[f.rule] = (counts[f.rule] || 0) + 1;
  const score = Math.max(0, 100 - penalty);
  const total = Object.values(checked).reduce((a, b) => a + b, 0) + 4;
  const issuesIn = (rules) => all.filter((f) => rules.includes(f.rule)).length;
  return {
    score,
    grade: grade(score),
    count: all.length,
    omitted: all.length - findings.length,
    by_rule: counts,
    findings,
    errors: findings.filter((f) => f.severity === "error"),
    warnings: findings.filter((f) => f.severity === "warning"),
    passes: Math.max(0, total - all.length),
    total,
    summary: {
      images: { checked: checked.images, issues: issuesIn(["image-alt", "role-img-alt", "svg-img-alt", "input-image-alt"]) },
      forms: { checked: checked.forms, issues: issuesIn(["label", "autocomplete-valid"]) },
      links: { checked: checked.links, issues: issuesIn(["link-name"]) },
      headings: { checked: checked.headings, issues: issuesIn(["heading-order", "empty-heading"]) },
      contrast: { checked: checked.contrast, issues: issuesIn(["color-contrast"]) },
      aria: { checked: checked.aria, issues: issuesIn(["aria-roles", "aria-valid-attr", "aria-required-attr", "aria-hidden-focus", "aria-hidden-body", "duplicate-id-aria"]) },
    },
    checked_elements: els.length,
  };
});

// Contrast is only decided over plain colour backgrounds (like axe, which reports images and
// gradients as "needs review", not as violations).
function bgIsPlain(e) {
  for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
    const cs = getComputedStyle(n);
    if (cs.backgroundImage !== "none") return false;
    const c = parseColor(cs.backgroundColor);
    if (c && c[3] >= 1) return true;
  }
  return true;
}

// WCAG 2.5.8: under 24×24 px, unless a 24 px circle on its centre touches no other target.
function undersized(e) {
  const r = e.getBoundingClientRect();
  if (r.width >= 24 && r.height >= 24) return false;
  const cx = r.left + r.width / 2;
  const cy = r.top + r.height / 2;
  for (const o of document.querySelectorAll("button,input,select,textarea,a[href],[role=button]")) {
    if (o === e || isOwn(o) || o.contains(e) || e.contains(o)) continue;
    const q = o.getBoundingClientRect();
    if (!q.width || !q.height) continue;
    const dx = Math.max(q.left - cx, 0, cx - q.right);
    const dy = Math.max(q.top - cy, 0, cy - q.bottom);
    if (Math.hypot(dx, dy) < 12) return true;
    const small = q.width < 24 || q.height < 24;
    if (small && Math.hypot(q.left + q.width / 2 - cx, q.top + q.height / 2 - cy) < 24) return true;
  }
  return false;
}
