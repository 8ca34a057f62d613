//! Issue 16, value checks in a real headless Chromium: `getA11yInfo` and `getScreenReaderText`
//! answer what the markup says, and the performance observers report what the fixture
//! provokes (a layout shift, a long task after first paint, a slow click handler, a janky
//! frame, a large text block as LCP) — not just "runs without throwing"; and the framework,
//! prototype, DOM-complexity and listener audits find exactly what a fixture plants.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    browser::{goto, launch_cdp, require_chromium},
    browser_devtool::{devtool_fixture, issue_set, ok, pairs, r},
    proxy::Px,
    support::wait_until,
};

const A11Y: &str = r#"<!doctype html><html lang="en"><head><title>a11y values</title></head><body><main>
<h1>Values</h1>
<button id="save" aria-describedby="hint">Save</button> <span id="hint">Saves the draft</span>
<input id="em" type="email" aria-label="Email" aria-required="true">
<label><input id="cb" type="checkbox"> Remember me</label>
<a id="nohref">no href</a>
<nav id="nv" aria-label="Main"><a href="/">Home</a></nav>
<div aria-hidden="true"><button id="hb" tabindex="-1">hidden</button></div>
<div id="card"><h2>Title</h2><img alt="Photo of a cat" src="/none.png" width="10" height="10"><span aria-hidden="true">decor</span><span style="display:none">gone</span><button aria-label="Close">×</button><p>Body text</p></div>
</main></body></html>"#;

/// Provokes, after load and a rendered frame: a layout shift (a 200 px box inserted above the
/// text), then a 150 ms long task; a click on `#slow` blocks for 150 ms.
const PERF: &str = r#"<!doctype html><html lang="en"><head><title>perf values</title></head><body><main>
<p id="lcp" style="font-size:48px;margin:0">Largest contentful paint</p>
<p>small</p>
<button id="slow" style="width:120px;height:40px">slow</button>
</main>
<script>
const busy = (ms) => { const t = performance.now(); while (performance.now() - t < ms); };
document.getElementById('slow').addEventListener('click', () => { busy(150); document.getElementById('slow').textContent = 'clicked'; });
// Each step after a rendered frame (two rAFs), so the shift moves painted content and the long
// task comes after first contentful paint even on a slow machine.
const afterFrame = (f) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(f, 50)));
addEventListener('load', () => afterFrame(() => {
  const d = document.createElement('div'); d.id = 'shift'; d.style.height = '200px'; document.body.prepend(d);
  afterFrame(() => { busy(150); window.longTaskDone = true; });
}));
</script></body></html>"#;

fn routes(path: &str) -> Option<(Vec<(&'static str, String)>, String)> {
    let html = ("Content-Type", "text/html; charset=utf-8".to_string());
    match path {
        "/a11y-values" => Some((vec![html], A11Y.into())),
        "/perf" => Some((vec![html], PERF.into())),
        _ => None,
    }
}

fn pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), v[*k].clone()))
            .collect(),
    )
}

#[test]
fn chromium_devtool_a11y_info_and_screen_reader_text_values() {
    if !require_chromium() {
        return;
    }
    let up = devtool_fixture(routes);
    let px = Px::start(&up.url(), |c| c.panel = false);
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    goto(&mut cdp, &px, "/a11y-values");
    let keys = [
        "role",
        "name",
        "description",
        "tabIndex",
        "focusable",
        "hiddenFromAT",
    ];
    let info = |sel: &str| pick(&ok(&px, &format!("__devtool.getA11yInfo('{sel}')")), &keys);
    assert_eq!(
        info("#save"),
        json!({"role": "button", "name": "Save", "description": "Saves the draft", "tabIndex": 0, "focusable": true, "hiddenFromAT": false})
    );
    let em = ok(&px, "__devtool.getA11yInfo('#em')");
    assert_eq!(
        (em["role"].as_str(), em["name"].as_str()),
        (Some("textbox"), Some("Email")),
        "{em:#}"
    );
    assert_eq!(
        em["aria"],
        json!({"aria-label": "Email", "aria-required": "true"})
    );
    assert_eq!(
        info("#cb"),
        json!({"role": "checkbox", "name": "Remember me", "description": null, "tabIndex": 0, "focusable": true, "hiddenFromAT": false})
    );
    let a = info("#nohref");
    assert_eq!(
        (a["role"].as_str(), a["focusable"].as_bool()),
        (Some("generic"), Some(false)),
        "{a}"
    );
    assert_eq!(info("#nv")["role"], "navigation");
    assert_eq!(info("#nv")["name"], "Main");
    let h = info("#hb");
    assert_eq!(
        (h["focusable"].as_bool(), h["hiddenFromAT"].as_bool()),
        (Some(false), Some(true)),
        "{h}"
    );
    let sr = ok(&px, "__devtool.getScreenReaderText('#card')");
    assert_eq!(
        sr["text"], "Title, heading level 2 Photo of a cat, img Close, button Body text",
        "{sr:#}"
    );
    assert_eq!(
        ok(&px, "__devtool.getScreenReaderText('#save')")["text"],
        "Save, button"
    );
}

#[test]
fn chromium_devtool_performance_observer_values() {
    if !require_chromium() {
        return;
    }
    let up = devtool_fixture(routes);
    let px = Px::start(&up.url(), |c| c.panel = false);
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    goto(&mut cdp, &px, "/perf");
    // Wait (polling the page) until the fixture's shift and long task have happened.
    assert!(wait_until(Duration::from_secs(10), || cdp.eval(
        "!!window.longTaskDone && !!document.getElementById('shift')"
    ) == json!(true)));

    let lcp = ok(&px, "__devtool.observeLCP()");
    assert_eq!(
        (
            lcp["supported"].as_bool(),
            lcp["element"].as_str(),
            lcp["elementTag"].as_str()
        ),
        (Some(true), Some("#lcp"), Some("p")),
        "{lcp:#}"
    );
    assert!(lcp["value"].as_u64() > Some(0), "{lcp:#}");

    // Polled: a layout-shift entry is queued when the frame that shows it is presented.
    let mut m = Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            m = ok(&px, "__devtool.capturePerformanceMetrics()");
            m["cls"].as_f64() > Some(0.0)
        }),
        "the planted shift: {m:#}"
    );
    assert!(
        m["navigation"]["load"].as_u64() > Some(0)
            && m["paint"]["first-contentful-paint"].as_u64() > Some(0),
        "{m:#}"
    );

    let tbt = ok(&px, "__devtool.estimateTBT()");
    assert!(tbt["longTasks"].as_u64() >= Some(1), "{tbt:#}");
    assert!(tbt["longest"].as_u64() >= Some(140), "{tbt:#}");
    assert!(tbt["tbt"].as_u64() >= Some(90), "{tbt:#}");

    // The long task's animation frame (polled: the entry is queued when the frame ends).
    let mut loaf = Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            loaf = ok(&px, "__devtool.observeLongAnimationFrames(0)");
            loaf["frames"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["duration"].as_u64() >= Some(140)))
        }),
        "{loaf:#}"
    );
    assert_eq!(loaf["supported"], true, "{loaf:#}");

    // A slow click: INP sees the interaction with its target and duration.
    let b = ok(&px, "__devtool.getPosition('#slow')");
    cdp.click_at(
        b["rect"]["left"].as_f64().unwrap() + 10.0,
        b["rect"]["top"].as_f64().unwrap() + 10.0,
    );
    assert!(wait_until(Duration::from_secs(10), || cdp
        .eval("document.getElementById('slow').textContent")
        == "clicked"));
    let mut inp = Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            inp = ok(&px, "__devtool.observeINP(0)");
            // Polled until the click's own entry is there (entries come after the next paint).
            inp["interactions"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|i| i["type"] == "click" && i["target"] == "#slow")
            })
        }),
        "{inp:#}"
    );
    assert!(inp["inp"].as_u64() >= Some(140), "{inp:#}");
    let rating = match inp["inp"].as_u64().unwrap() {
        0..=200 => "good",
        201..=500 => "needs-improvement",
        _ => "poor",
    };
    assert_eq!(inp["rating"], rating, "{inp:#}");
    assert_eq!(inp["totalInteractions"], 1, "{inp:#}");

    // Frame rate: a 200 ms busy loop during the observation is a janky frame.
    let fr = ok(
        &px,
        "(() => { const p = __devtool.observeFrameRate(1000); setTimeout(() => { const t = performance.now(); while (performance.now() - t < 200); }, 300); return p; })()",
    );
    assert!(fr["totalFrames"].as_u64() >= Some(3), "{fr:#}");
    // rAF timestamps are vsync-aligned frame starts, so the 200 ms block shows as one long
    // gap or as two or three that add up (seen: 183, 133 + 67).
    assert!(fr["maxFrameTime"].as_f64() >= Some(100.0), "{fr:#}");
    let jank: f64 = fr["jankEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["frameTime"].as_f64())
        .sum();
    assert!(jank >= 150.0, "{fr:#}");
}

/// Planted: React, Angular and an old jQuery at once, a 70-child parent, inline handlers.
const FRAMEWORKS: &str = r#"<!doctype html><html lang="en"><head><title>fw</title>
<script>window.jQuery = { fn: { jquery: "3.4.1" } };</script></head><body><main>
<div id="root" data-reactroot><button id="b" onclick="void 0" onmouseover="void 0">b</button></div>
<div id="ng" ng-version="17.0.0"><a id="l" href="/x" onclick="void 0">l</a></div>
<ul id="wide">WIDE</ul>
</main></body></html>"#;

const FRAMEWORKS_CLEAN: &str = r#"<!doctype html><html lang="en"><head><title>fw clean</title></head><body><main>
<div id="app"><button id="b">b</button></div><ul><li>one</li><li>two</li></ul>
</main></body></html>"#;

fn fw_routes(path: &str) -> Option<(Vec<(&'static str, String)>, String)> {
    let html = ("Content-Type", "text/html; charset=utf-8".to_string());
    let wide: String = (0..70).map(|i| format!("<li>{i}</li>")).collect();
    match path {
        "/fw" => Some((vec![html], FRAMEWORKS.replace("WIDE", &wide))),
        "/fw-clean" => Some((vec![html], FRAMEWORKS_CLEAN.into())),
        "/csp" => Some((
            vec![html, ("Content-Security-Policy", "img-src 'none'".into())],
            "<!doctype html><html lang=\"en\"><head><title>csp</title></head><body><main><p>csp</p></main></body></html>".into(),
        )),
        _ => None,
    }
}

/// Framework detection, framework quality, prototype pollution, DOM complexity and inline
/// listeners: exactly what is planted, nothing on the clean page.
#[test]
fn chromium_devtool_framework_dom_and_listener_audits() {
    if !require_chromium() {
        return;
    }
    let up = devtool_fixture(fw_routes);
    let px = Px::start(&up.url(), |c| c.panel = false);
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    goto(&mut cdp, &px, "/fw");
    let names = |v: &Value| -> Vec<(String, Value)> {
        v["frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["version"].clone(),
                )
            })
            .collect()
    };
    let d = ok(&px, "__devtool.detectFramework()");
    assert_eq!(
        names(&d),
        [
            ("React".to_string(), Value::Null),
            ("Angular".to_string(), json!("17.0.0")),
            ("jQuery".to_string(), json!("3.4.1")),
        ],
        "{d:#}"
    );
    let q = ok(&px, "__devtool.auditFrameworkQuality()");
    assert_eq!(
        issue_set(&q),
        pairs(&[
            ("multiple-frameworks", "document"),
            ("outdated-jquery", "document")
        ]),
        "{q:#}"
    );
    let dom = ok(&px, "__devtool.auditDOMComplexity()");
    assert_eq!(
        (
            dom["maxChildren"].as_u64(),
            dom["largestParent"].as_str(),
            dom["recommendations"].as_array().map(Vec::len)
        ),
        (Some(70), Some("#wide"), Some(1)),
        "{dom:#}"
    );
    let l = ok(&px, "__devtool.auditEventListeners()");
    let mut inline: Vec<(String, String)> = l["inlineHandlers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["selector"].as_str().unwrap().to_string(),
                h["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    inline.sort();
    assert_eq!(
        inline,
        pairs(&[("#b", "click"), ("#b", "mouseover"), ("#l", "click")]),
        "{l:#}"
    );
    assert_eq!(l["totalInline"], 3);
    // Pollution planted last (Array.prototype, so our own for-in copies stay clean).
    r(&px, "Array.prototype.polluted = 1");
    let p = ok(&px, "__devtool.auditPrototypePollution()");
    assert_eq!(
        issue_set(&p),
        pairs(&[("polluted-prototype", "document")]),
        "{p:#}"
    );
    assert_eq!(p["vulnerable"], true);

    goto(&mut cdp, &px, "/fw-clean");
    assert_eq!(ok(&px, "__devtool.detectFramework()")["count"], 0);
    for f in ["auditFrameworkQuality", "auditPrototypePollution"] {
        let v = ok(&px, &format!("__devtool.{f}()"));
        assert_eq!(issue_set(&v), vec![], "{f} on the clean page: {v:#}");
    }
    let dom = ok(&px, "__devtool.auditDOMComplexity()");
    assert_eq!(dom["recommendations"], json!([]), "{dom:#}");
    assert_eq!(dom["score"], 100, "{dom:#}");
    assert_eq!(ok(&px, "__devtool.auditEventListeners()")["totalInline"], 0);
}

/// observeCSPViolations reports a violation provoked during its window, with the directive
/// and the blocked URL, and nothing when none happens.
#[test]
fn chromium_devtool_csp_violations_are_observed() {
    if !require_chromium() {
        return;
    }
    let up = devtool_fixture(fw_routes);
    let px = Px::start(&up.url(), |c| c.panel = false);
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    goto(&mut cdp, &px, "/csp");
    let none = ok(&px, "__devtool.observeCSPViolations(200)");
    assert_eq!(none["count"], 0, "{none:#}");
    // The module is loaded now, so the listener is in place before the image is added.
    let v = ok(
        &px,
        "(() => { const p = __devtool.observeCSPViolations(3000); const i = new Image(); i.src = '/blocked.png'; document.body.append(i); return p; })()",
    );
    assert_eq!(v["count"], 1, "{v:#}");
    let e = &v["violations"][0];
    assert_eq!(e["effectiveDirective"], "img-src", "{v:#}");
    assert!(
        e["blockedURI"]
            .as_str()
            .is_some_and(|u| u.ends_with("/blocked.png")),
        "{v:#}"
    );
}
