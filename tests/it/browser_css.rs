//! Issue 16, the lazy `css` module in a real headless Chromium: each CSS audit finds exactly
//! the problems planted in a fixture page (type, element or first selector, count) and nothing
//! on a clean control page.

use serde_json::Value;

use crate::{
    browser::{goto, launch_cdp, require_chromium},
    browser_devtool::{devtool_fixture, issue_set, ok, pairs},
    proxy::Px,
};

/// Planted: an ID selector, a 5-level selector, an overqualified selector, six `!important`s,
/// seven breakpoints, fourteen text colours, a long off-screen section, Tailwind-style class
/// lists with a conflict, an arbitrary value and a very long list; a prose article next to an
/// app-like form.
fn planted() -> String {
    let colours: String = (0..14)
        .map(|i| format!(".c{i}{{color:rgb({},{},0)}}", 10 + i * 5, 20 + i * 3))
        .collect();
    let spans: String = (0..14)
        .map(|i| format!("<span class=\"c{i}\">c{i}</span>"))
        .collect();
    let breakpoints: String = (1..=7)
        .map(|i| {
            format!(
                "@media (min-width: {}px) {{ .bp{i} {{ color: #111 }} }}",
                i * 100
            )
        })
        .collect();
    let long_section: String = (0..120).map(|i| format!("<i>{i}</i>")).collect();
    let many: String = (1..=26).map(|i| format!("mt-{i} ")).collect();
    format!(
        r#"<!doctype html><html lang="en"><head><title>css planted</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ color: #111; background: #fff; font: 16px/1.5 sans-serif }}
#hero {{ color: #222 }}
.a .b .c .d .e {{ color: #333 }}
div.card {{ padding: 4px }}
.i1 {{ color: #111 !important; margin: 0 !important; padding: 0 !important }}
.i2 {{ color: #111 !important; margin: 0 !important; padding: 0 !important }}
{colours}
{breakpoints}
</style></head><body>
<nav id="nav"><a href="/">Home</a></nav>
<main id="app"><form><input aria-label="q"><button>Go</button><select aria-label="s"><option>x</option></select></form></main>
<article id="post"><h2>Post</h2><p>One.</p><p>Two.</p><p>Three.</p></article>
<div id="hero" class="card">{spans}</div>
<div id="tw" class="p-2 p-4 text-sm">conflict</div>
<div id="arb" class="w-[13px] h-4">arbitrary</div>
<div id="many" class="{many}">many</div>
<div style="height:3000px"></div>
<section id="long">{long_section}</section>
</body></html>"#
    )
}

const CLEAN: &str = r#"<!doctype html><html lang="en"><head><title>css clean</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { color: #111; background: #fff; font: 16px/1.5 sans-serif }
.card { padding: 8px; border-radius: 4px }
.title { font-size: 24px }
@media (min-width: 600px) { .card { padding: 16px } }
</style></head><body><main>
<h1 class="title">Clean</h1>
<div class="card"><button>Save</button> <input aria-label="Name"></div>
</main></body></html>"#;

fn routes(path: &str) -> Option<(Vec<(&'static str, String)>, String)> {
    let html = ("Content-Type", "text/html; charset=utf-8".to_string());
    match path {
        "/css" => Some((vec![html], planted())),
        "/css-clean" => Some((vec![html], CLEAN.into())),
        _ => None,
    }
}

/// (type, selector or "", count) of every issue.
fn counted(v: &Value) -> Vec<(String, String, u64)> {
    let mut out: Vec<(String, String, u64)> = v["issues"]
        .as_array()
        .unwrap_or_else(|| panic!("no issues in {v:#}"))
        .iter()
        .map(|i| {
            (
                i["type"].as_str().unwrap().to_string(),
                i["selector"].as_str().unwrap_or("").to_string(),
                i["count"].as_u64().unwrap_or(1),
            )
        })
        .collect();
    out.sort();
    out
}

fn areas(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["selector"].as_str().unwrap().to_string(),
                a["category"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn chromium_devtool_css_audits_find_planted_issues() {
    if !require_chromium() {
        return;
    }
    let up = devtool_fixture(routes);
    let px = Px::start(&up.url(), |c| c.panel = false);
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    goto(&mut cdp, &px, "/css");

    let d = ok(&px, "__devtool.detectContentAreas()");
    assert_eq!(
        areas(&d),
        pairs(&[
            ("#app", "app"),
            ("#long", "app"),
            ("#nav", "chrome"),
            ("#post", "content")
        ]),
        "{d:#}"
    );
    assert_eq!(d["recommendations"].as_array().unwrap().len(), 1, "{d:#}");

    let a = ok(&px, "__devtool.auditCSSArchitecture()");
    let want = |v: &[(&str, &str, u64)]| {
        let mut v: Vec<(String, String, u64)> = v
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        counted(&a),
        want(&[
            ("id-selectors", "#hero", 1),
            ("deep-nesting", ".a .b .c .d .e", 1),
            ("fragile-patterns", "div.card", 1),
            ("important", "", 6),
        ]),
        "{a:#}"
    );
    let c = ok(&px, "__devtool.auditCSSContainment()");
    assert_eq!(
        issue_set(&c),
        pairs(&[("content-visibility-candidate", "#long")]),
        "{c:#}"
    );
    let r = ok(&px, "__devtool.auditResponsiveStrategy()");
    assert_eq!(issue_set(&r), pairs(&[("many-breakpoints", "")]), "{r:#}");
    assert_eq!(r["mediaQueries"]["count"], 7);
    let k = ok(&px, "__devtool.auditCSSConsistency()");
    assert_eq!(issue_set(&k), pairs(&[("too-many-colors", "")]), "{k:#}");
    let t = ok(&px, "__devtool.auditTailwind()");
    assert_eq!(
        issue_set(&t),
        pairs(&[
            ("arbitrary-value", "#arb"),
            ("conflicting-utilities", "#tw"),
            ("long-class-list", "#many"),
        ]),
        "{t:#}"
    );
    assert_eq!(t["detected"], true, "{t:#}");
    let all = ok(&px, "__devtool.auditCSS()");
    let mut cats: Vec<(String, String)> = all["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["category"].as_str().unwrap().to_string(),
                i["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    cats.sort();
    assert_eq!(
        cats,
        pairs(&[
            ("architecture", "deep-nesting"),
            ("architecture", "fragile-patterns"),
            ("architecture", "id-selectors"),
            ("architecture", "important"),
            ("consistency", "too-many-colors"),
            ("containment", "content-visibility-candidate"),
            ("responsive", "many-breakpoints"),
            ("tailwind", "arbitrary-value"),
            ("tailwind", "conflicting-utilities"),
            ("tailwind", "long-class-list"),
        ]),
        "{all:#}"
    );
    assert!(all["overallScore"].as_u64() < Some(100), "{all:#}");

    goto(&mut cdp, &px, "/css-clean");
    let d = ok(&px, "__devtool.detectContentAreas()");
    assert_eq!(areas(&d), pairs(&[("body > main", "app")]), "{d:#}");
    assert_eq!(d["recommendations"], serde_json::json!([]));
    for f in [
        "auditCSSArchitecture",
        "auditCSSContainment",
        "auditResponsiveStrategy",
        "auditCSSConsistency",
        "auditTailwind",
        "auditCSS",
    ] {
        let v = ok(&px, &format!("__devtool.{f}()"));
        assert_eq!(issue_set(&v), vec![], "{f} on the clean page: {v:#}");
    }
    let r = ok(&px, "__devtool.auditResponsiveStrategy()");
    assert_eq!(r["strategy"], "media-queries-only");
    assert_eq!(ok(&px, "__devtool.auditTailwind()")["detected"], false);
}
