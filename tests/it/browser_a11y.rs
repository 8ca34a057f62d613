//! Issue 16, the accessibility audit against an independent oracle: `auditAccessibility` and
//! axe-core (from npm, installed by `.ci/run` into `.tools/axe`, injected through CDP only in
//! this test, never served by the proxy) run on fixture pages with planted problems and on a
//! clean control page, in a real headless Chromium.
//!
//! Our audit must find exactly the planted issues (rule + element) and nothing on the control
//! page; and for every rule it claims to cover ([`RULES`], our id → axe's id) it must find what
//! axe finds — and axe what it finds — except for the differences listed in [`DIFFERENCES`],
//! each with its reason.

use std::{collections::BTreeSet, path::PathBuf};

use serde_json::Value;

use crate::{
    browser::{Cdp, goto, launch_cdp, require_chromium},
    browser_devtool::{devtool_fixture, ok},
    proxy::Px,
};

/// Our rule id → axe-core's rule id (axe-core 4.x).
const RULES: &[(&str, &str)] = &[
    ("image-alt", "image-alt"),
    ("input-image-alt", "input-image-alt"),
    ("role-img-alt", "role-img-alt"),
    ("svg-img-alt", "svg-img-alt"),
    ("label", "label"),
    ("button-name", "button-name"),
    ("link-name", "link-name"),
    ("color-contrast", "color-contrast"),
    ("heading-order", "heading-order"),
    ("empty-heading", "empty-heading"),
    ("landmark-main", "landmark-one-main"),
    ("html-lang", "html-has-lang"),
    ("valid-lang", "html-lang-valid"),
    ("document-title", "document-title"),
    ("duplicate-id", "duplicate-id"),
    ("duplicate-id-aria", "duplicate-id-aria"),
    ("tabindex", "tabindex"),
    ("aria-roles", "aria-roles"),
    ("aria-valid-attr", "aria-valid-attr"),
    ("aria-required-attr", "aria-required-attr"),
    ("aria-hidden-focus", "aria-hidden-focus"),
    ("aria-hidden-body", "aria-hidden-body"),
    ("frame-title", "frame-title"),
    ("autocomplete-valid", "autocomplete-valid"),
    ("target-size", "target-size"),
    ("meta-viewport", "meta-viewport"),
    ("meta-refresh", "meta-refresh"),
    ("listitem", "listitem"),
    ("nested-interactive", "nested-interactive"),
];

/// Where we knowingly differ from axe on these fixtures: (page, our rule, element key, "axe
/// only" or "ours only", reason). The element key is the element's id, or its tag name when
/// it has none. Empty today: running this test against axe-core 4.14 showed three real misses
/// of ours, now fixed (an empty heading has no size but is still announced, so `empty-heading`
/// and `heading-order` count zero-size headings; `landmark-main` ignores a `<main>` inside
/// aria-hidden content; `aria-hidden-focus` and `nested-interactive` are reported on the
/// aria-hidden container and the outer control, the elements axe names).
///
/// Not claimed, so not compared: axe's `region`, `page-has-heading-one`, `valid-lang` on
/// elements other than `<html>` (our `valid-lang` is axe's `html-lang-valid`), the
/// `aria-allowed-*`/`aria-*-name` families and the rules that need layout sampling beyond
/// plain backgrounds (axe's "needs review" contrast over images and gradients).
const DIFFERENCES: &[(&str, &str, &str, &str, &str)] = &[];

/// What our audit must find on [`PLANTED`]: (rule, element key).
const PLANTED_FINDINGS: &[(&str, &str)] = &[
    ("html-lang", "html"),
    ("document-title", "html"),
    ("landmark-main", "html"),
    ("meta-viewport", "meta"),
    ("image-alt", "img1"),
    ("input-image-alt", "ii"),
    ("role-img-alt", "ri"),
    ("svg-img-alt", "si"),
    ("label", "nolabel"),
    ("button-name", "nb"),
    ("link-name", "nl"),
    ("color-contrast", "lowc"),
    ("color-contrast", "largebad"),
    ("empty-heading", "eh"),
    ("heading-order", "hjump"),
    ("duplicate-id", "dup"),
    ("duplicate-id-aria", "duparia"),
    ("tabindex", "ti"),
    ("aria-roles", "badrole"),
    ("aria-valid-attr", "badattr"),
    ("aria-required-attr", "sl"),
    ("aria-hidden-focus", "ahf"),
    ("frame-title", "fr"),
    ("autocomplete-valid", "ac"),
    ("target-size", "t1"),
    ("target-size", "t2"),
    ("listitem", "stray"),
    ("nested-interactive", "outer"),
];

/// What our audit must find on [`PLANTED_DOC`].
const PLANTED_DOC_FINDINGS: &[(&str, &str)] = &[
    ("valid-lang", "html"),
    ("meta-refresh", "meta"),
    ("aria-hidden-body", "body"),
    ("landmark-main", "html"),
];

/// Planted: no lang, no title, no <main>, a zoom-blocking viewport, and one element per
/// element-level rule (each with an id, so both tools name the same element).
const PLANTED: &str = r##"<!doctype html><html><head>
<meta name="viewport" content="width=device-width, initial-scale=1, maximum-scale=1">
<style>body{font:16px/1.5 sans-serif;color:#111;background:#fff} .box{display:inline-block;width:40px;height:40px}</style>
</head><body>
<h1 id="h1">Planted</h1>
<img id="img1" src="/none.png" width="40" height="40">
<input id="ii" type="image" src="/none.png" width="40" height="40">
<div id="ri" role="img" class="box"></div>
<svg id="si" role="img" width="40" height="40"><rect width="40" height="40" fill="#333"></rect></svg>
<input id="nolabel" type="text">
<button id="nb" class="box"></button>
<a id="nl" href="/x" class="box"></a>
<p id="lowc" style="color:#999">low contrast text</p>
<p id="largeok" style="font-size:24px;color:#767676">large text at 4.5:1 passes</p>
<p id="largebad" style="font-size:24px;color:#aaa">large text at 2.3:1 fails</p>
<h2 id="eh"></h2>
<h2 id="h2">Section</h2>
<h4 id="hjump">Jumps a level</h4>
<span id="dup">one</span><span id="dup">two</span>
<span id="duparia">first</span><span id="duparia">second</span>
<label>Named <input id="byaria" aria-labelledby="duparia"></label>
<a id="ti" href="/t" tabindex="3">positive tabindex</a>
<div id="badrole" role="bogus">bad role</div>
<div id="badattr" aria-labeledby="h1">misspelt attribute</div>
<div id="sl" role="slider" tabindex="0" aria-label="Volume">slider</div>
<div id="ahf" aria-hidden="true"><button id="hiddenbtn">hidden but focusable</button></div>
<iframe id="fr" src="about:blank" width="60" height="30"></iframe>
<label>Email <input id="ac" autocomplete="emial"></label>
<p><button id="t1" style="width:14px;height:14px;padding:0;border:0;font-size:8px">a</button><button id="t2" style="width:14px;height:14px;padding:0;border:0;font-size:8px">b</button></p>
<div><li id="stray">stray item</li></div>
<div id="outer" role="button" tabindex="0">outer <a href="/inner">inner link</a></div>
</body></html>"##;

/// Planted, the document-level rules that exclude the first page's: an invalid lang, a timed
/// refresh (5 minutes, so it never fires during the test), an aria-hidden body.
const PLANTED_DOC: &str = r##"<!doctype html><html lang="english"><head><title>doc level</title>
<meta http-equiv="refresh" content="300; url=/clean">
</head><body aria-hidden="true"><main><h1>Doc</h1><p>Text.</p></main></body></html>"##;

/// The control page: the same kinds of content, done right.
const CLEAN: &str = r##"<!doctype html><html lang="en"><head><title>clean a11y</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 sans-serif;color:#111;background:#fff}</style>
</head><body><header><p>Site</p></header><nav aria-label="Main"><a href="/a">Home</a></nav><main>
<h1>Clean</h1>
<img src="/none.png" width="40" height="40" alt="Logo">
<input type="image" src="/none.png" width="40" height="40" alt="Search">
<div role="img" aria-label="Chart" style="display:inline-block;width:40px;height:40px"></div>
<svg role="img" width="40" height="40"><title>Square</title><rect width="40" height="40" fill="#333"></rect></svg>
<label for="name">Name</label> <input id="name" type="text" autocomplete="name">
<label>Email <input type="email" autocomplete="section-a shipping email"></label>
<button>Save</button> <a href="/more">More</a>
<p style="color:#767676">grey text at 4.5:1</p>
<p style="font-size:24px;color:#949494">large grey text at 3:1</p>
<h2>Section</h2><h3>Sub</h3>
<span id="one">one</span><input aria-labelledby="one">
<div role="slider" tabindex="0" aria-label="Volume" aria-valuenow="3" aria-valuemin="0" aria-valuemax="10">3</div>
<div aria-hidden="true"><button tabindex="-1">hidden, not focusable</button></div>
<iframe title="Embedded" src="about:blank" width="60" height="30"></iframe>
<ul><li>item</li></ul>
<div role="button" tabindex="0">plain button</div>
</main><footer><p>Footer</p></footer></body></html>"##;

fn routes(path: &str) -> Option<(Vec<(&'static str, String)>, String)> {
    let html = ("Content-Type", "text/html; charset=utf-8".to_string());
    match path {
        "/a11y" => Some((vec![html], PLANTED.into())),
        "/a11y-doc" => Some((vec![html], PLANTED_DOC.into())),
        "/a11y-clean" => Some((vec![html], CLEAN.into())),
        _ => None,
    }
}

fn axe_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/axe/node_modules/axe-core/axe.min.js")
}

/// The key of the element a selector names: its id, or its tag ("document" → html).
const KEY: &str = "const key = (sel) => { if (sel === 'document') return 'html'; \
    const e = document.querySelector(sel); return e ? (e.id || e.localName) : 'missing:' + sel; };";

/// Our findings as (rule, element key).
fn ours(px: &Px) -> BTreeSet<(String, String)> {
    let v = ok(
        px,
        &format!(
            "(async () => {{ {KEY} const a = await __devtool.auditAccessibility(); \
             return a.findings.map((f) => [f.rule, key(f.selector)]); }})()"
        ),
    );
    pairs(&v)
}

/// axe's findings for the mapped rules only (`runOnly`, which also turns on the rules axe 4
/// ships disabled: `target-size`, `duplicate-id`), as (axe rule, element key). Violations, plus
/// the "needs review" nodes of the rules axe marks `reviewOnFail` (`duplicate-id-aria`: axe
/// cannot tell whether the assistive technology picks the right element, so a failure is
/// reported for review rather than as a violation).
fn axe(cdp: &mut Cdp, src: &str) -> BTreeSet<(String, String)> {
    if cdp.eval("typeof axe") != "object" {
        cdp.eval(src);
    }
    let rules: Vec<&str> = RULES.iter().map(|r| r.1).collect();
    let v = cdp.eval(&format!(
        "(async () => {{ {KEY} const r = await axe.run(document, {{ runOnly: {{ type: 'rule', values: {rules:?} }}, resultTypes: ['violations', 'incomplete'] }}); \
         const out = []; \
         for (const v of r.violations.concat(r.incomplete.filter((i) => i.id === 'duplicate-id-aria'))) for (const n of v.nodes) out.push([v.id, key(n.target[0])]); \
         return out; }})()"
    ));
    pairs(&v)
}

fn pairs(v: &Value) -> BTreeSet<(String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v:#}"))
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn chromium_accessibility_audit_against_axe_core() {
    if !require_chromium() {
        return;
    }
    let path = axe_path();
    let Ok(src) = std::fs::read_to_string(&path) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but axe-core is not installed at {} (.ci/run installs it)",
            path.display()
        );
        eprintln!(
            "SKIPPED chromium_accessibility_audit_against_axe_core: axe-core not installed; run \
             `npm install --no-audit --no-fund --prefix .tools/axe axe-core@4`"
        );
        return;
    };
    let up = devtool_fixture(routes);
    let px = Px::start(&up.url(), |c| c.panel = false);
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    let mut differences_seen = BTreeSet::new();
    for (page, planted) in [
        ("/a11y", PLANTED_FINDINGS),
        ("/a11y-doc", PLANTED_DOC_FINDINGS),
        ("/a11y-clean", &[]),
    ] {
        goto(&mut cdp, &px, page);
        let o = ours(&px);
        let a = axe(&mut cdp, &src);
        // Exactly the planted issues (nothing on the control page).
        let want: BTreeSet<(String, String)> = planted
            .iter()
            .map(|(r, k)| (r.to_string(), k.to_string()))
            .collect();
        assert_eq!(o, want, "our audit on {page} (axe: {a:?})");
        // Rule by rule, the same elements as axe, apart from the listed differences.
        let ours_as_axe: BTreeSet<(String, String)> = o
            .iter()
            .map(|(r, k)| {
                let axe_id = RULES.iter().find(|m| m.0 == r).map_or("unmapped", |m| m.1);
                (axe_id.to_string(), k.clone())
            })
            .collect();
        let listed = |rule: &str, key: &str, who: &str| {
            DIFFERENCES
                .iter()
                .find(|d| d.0 == page && d.1 == rule && d.2 == key && d.3 == who)
        };
        let mut unexplained = vec![];
        for (rule, key) in a.difference(&ours_as_axe) {
            let ours_id = RULES.iter().find(|m| m.1 == rule).unwrap().0;
            match listed(ours_id, key, "axe only") {
                Some(d) => drop(differences_seen.insert(d)),
                None => unexplained.push(format!("axe finds {rule} on {key}, we do not")),
            }
        }
        for (rule, key) in ours_as_axe.difference(&a) {
            let ours_id = RULES
                .iter()
                .find(|m| m.1 == rule)
                .map_or(rule.as_str(), |m| m.0);
            match listed(ours_id, key, "ours only") {
                Some(d) => drop(differences_seen.insert(d)),
                None => unexplained.push(format!("we find {ours_id} on {key}, axe does not")),
            }
        }
        assert!(
            unexplained.is_empty(),
            "{page}: {unexplained:#?}\nours: {o:?}\naxe: {a:?}"
        );
    }
    // Every listed difference still happens (the list cannot go stale).
    let stale: Vec<_> = DIFFERENCES
        .iter()
        .filter(|d| !differences_seen.contains(d))
        .collect();
    assert!(
        stale.is_empty(),
        "differences that no longer occur: {stale:#?}"
    );
}
