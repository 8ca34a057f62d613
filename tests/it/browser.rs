//! A real headless Chromium loads a page through the proxy; the page's script throws, and the
//! error (with its stack) must reach the traffic log over the injected script's WebSocket.
//!
//! The `__devtool` end-to-end test drives Chromium over the DevTools protocol (a small CDP
//! client over `tungstenite` below): fixture pages with planted accessibility issues, clicks,
//! DOM changes, a password field, screenshots, a strict CSP and a page replacing `onerror`.
//!
//! Not skipped when Chromium is missing: the test fails with a clear message, unless
//! `AGNT_SKIP_BROWSER=1` is set.

use std::{
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use serde_json::Value;

use crate::{
    proxy::{Px, Req, Upstream, respond},
    support::wait_until,
};

/// Kills Chromium's whole process group when dropped (also when the test fails).
pub(crate) struct Browser {
    child: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn chromium() -> Option<&'static str> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

#[allow(clippy::disallowed_methods)] // a test helper: the browser is not a supervised dev process
pub(crate) fn launch(url: &str, profile: &Path) -> Browser {
    use std::os::unix::process::CommandExt;
    let bin = chromium().expect("checked");
    let child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromium");
    Browser { child }
}

#[test]
fn chromium_page_error_reaches_the_traffic_log() {
    if chromium().is_none() {
        if std::env::var("AGNT_SKIP_BROWSER").as_deref() == Ok("1") {
            return;
        }
        panic!(
            "chromium not found at /usr/bin/chromium: install it (apt-get install chromium) or set AGNT_SKIP_BROWSER=1"
        );
    }
    let up = Upstream::start(Arc::new(|req: &Req, s: &mut TcpStream| {
        match req.path.as_str() {
        "/" => respond(
            s,
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", "script-src 'self'")],
            b"<!doctype html><html><head><title>agnt browser test</title></head><body><p>hi</p><script src=\"/app.js\"></script></body></html>",
        ),
        "/app.js" => respond(
            s,
            "200 OK",
            &[("Content-Type", "application/javascript")],
            b"function explode() {\n  throw new Error('agnt-browser-test-boom');\n}\nsetTimeout(explode, 50);\n",
        ),
        _ => respond(s, "404 Not Found", &[("Content-Type", "text/plain")], b"no"),
    }
    }));
    let px = Px::start(&up.url(), |_| {});
    let profile = tempfile::tempdir().unwrap();
    let _browser = launch(&format!("{}/", px.p.url()), profile.path());
    let found = wait_until(Duration::from_secs(60), || {
        px.query(|q| q.types = vec!["error".into()])["entries"]
            .as_array()
            .is_some_and(|a| {
                a.iter().any(|e| {
                    e["data"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("agnt-browser-test-boom"))
                })
            })
    });
    assert!(
        found,
        "no error entry from the browser; log: {:#}",
        px.query(|_| {})
    );
    let v = px.query(|q| q.types = vec!["error".into()]);
    let e = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["message"].as_str().unwrap_or("").contains("boom"))
        .unwrap();
    let stack = e["data"]["stack"].as_str().unwrap();
    assert!(
        stack.contains("explode") && stack.contains("app.js:2"),
        "stack: {stack}"
    );
    assert!(e["page_id"].as_str().is_some_and(|p| p.starts_with("tab-")));
    // The document was injected (despite the CSP: the script is same-origin) and the page
    // session ties the request and the error together.
    let html = px.query(|q| q.url_pattern = Some("/".into()));
    assert!(
        html["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["injected"] == true)
    );
    let pages = px.p.pages_list();
    assert!(
        pages["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["error_count"].as_u64() >= Some(1)),
        "{pages:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// A small Chrome DevTools Protocol client.

pub(crate) struct Cdp {
    ws: tungstenite::WebSocket<TcpStream>,
    next: u64,
    /// The attached page's session (flat mode); `None` = the browser itself.
    session: Option<String>,
}

impl Cdp {
    pub(crate) fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next += 1;
        let id = self.next;
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if let Some(sid) = &self.session {
            msg["sessionId"] = serde_json::json!(sid);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .expect("cdp send");
        loop {
            let m = self.ws.read().expect("cdp read (30 s timeout)");
            let tungstenite::Message::Text(t) = m else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("cdp json");
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates an expression in the page (CDP, not the proxy) and returns its value.
    pub(crate) fn eval(&mut self, expr: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        r["result"]["value"].clone()
    }

    pub(crate) fn click_at(&mut self, x: f64, y: f64) {
        for t in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                serde_json::json!({"type": t, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }
}

/// Chromium with a DevTools port, killed (whole process group) when dropped.
#[allow(clippy::disallowed_methods)] // a test helper: the browser is not a supervised dev process
pub(crate) fn launch_cdp(profile: &Path) -> (Browser, Cdp) {
    use std::{
        io::{BufRead, BufReader},
        os::unix::process::CommandExt,
    };
    let bin = chromium().expect("checked");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1000,700",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().unwrap();
    let browser = Browser { child };
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(i) = line.find("ws://") {
                let _ = tx.try_send(line[i..].trim().to_string());
            }
            line.clear();
        }
    });
    let url: String = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("chromium printed no DevTools URL");
    let port: u16 = url["ws://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let _ = port;
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (ws, _) = tungstenite::client(url.as_str(), stream).expect("cdp handshake");
    let mut cdp = Cdp {
        ws,
        next: 0,
        session: None,
    };
    let t = cdp.call(
        "Target.createTarget",
        serde_json::json!({"url": "about:blank"}),
    );
    let a = cdp.call(
        "Target.attachToTarget",
        serde_json::json!({"targetId": t["targetId"], "flatten": true}),
    );
    cdp.session = Some(a["sessionId"].as_str().expect("sessionId").to_string());
    (browser, cdp)
}

/// Decodes an 8-bit RGB/RGBA PNG: (width, height, pixels as RGB triples), with the decoder the
/// snapshot tool uses.
pub(crate) fn decode_png(data: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    let img = agnt::host::browser::png::decode(data).expect("a PNG agnt can decode");
    (img.width, img.height, img.pixels)
}

const A11Y_PAGE: &str = r#"<!doctype html><html lang="en"><head><title>a11y</title></head><body><main>
<h1>Form</h1>
<input id="nolabel1" type="text">
<input id="nolabel2" type="email">
<label for="ok">Fine</label><input id="ok">
<p id="faint" style="color:#c8c8c8;background:#ffffff">hard to read</p>
<p>readable</p>
<div id="wide" style="width:3000px;height:5px"></div>
</main></body></html>"#;

/// One of each other rule (and no lang, title or main).
const A11Y_ALL_PAGE: &str = r#"<!doctype html><html><head></head><body>
<h1>Top</h1><h3 id="deep">Skipped a level</h3>
<img id="noalt" src="/dot.png"><img src="/dot.png" alt="">
<button id="empty"></button><a id="nolink" href="/x"></a>
<span id="dup">a</span><span id="dup">b</span>
<div id="tab" tabindex="2">focus me first</div>
</body></html>"#;

const CLEAN_PAGE: &str = r#"<!doctype html><html lang="en"><head><title>clean</title></head><body><main>
<h1>Clean</h1><h2>Section</h2>
<label for="name">Name</label><input id="name">
<label>Email <input type="email"></label>
<button id="go">Go</button> <a href="/x">A link</a>
<img src="/dot.png" alt="a dot"> <p style="color:#222">dark text</p>
</main></body></html>"#;

const APP_PAGE: &str = r#"<!doctype html><html lang="en"><head><title>app</title></head><body><main>
<h1>Shop</h1>
<button id="buy" style="position:absolute;left:40px;top:120px;width:160px;height:40px">Buy now</button>
<ul id="list"></ul>
<label for="pw">Password</label><input id="pw" type="password" style="position:absolute;left:40px;top:200px">
<div id="box" style="position:absolute;left:300px;top:100px;width:200px;height:100px;background:linear-gradient(90deg,#e5484d,#3e63dd)"><span style="color:#fff;font:bold 20px sans-serif">agnt shot</span></div>
</main><script src="/app.js"></script></body></html>"#;

const APP_JS: &str = "window.onerror = function () { return true; };\n\
document.getElementById('buy').addEventListener('click', function () {\n\
  var li = document.createElement('li'); li.textContent = 'bought'; document.getElementById('list').appendChild(li);\n\
});\n\
function laterBoom() { throw new Error('agnt-onerror-override-boom'); }\n\
setTimeout(laterBoom, 50);\n";

fn fixture() -> Upstream {
    Upstream::start(Arc::new(|req: &Req, s: &mut TcpStream| {
        let html = [("Content-Type", "text/html; charset=utf-8")];
        match req.path.as_str() {
            "/a11y" => respond(s, "200 OK", &html, A11Y_PAGE.as_bytes()),
            "/clean" => respond(s, "200 OK", &html, CLEAN_PAGE.as_bytes()),
            "/a11y-all" => respond(s, "200 OK", &html, A11Y_ALL_PAGE.as_bytes()),
            "/app" => respond(
                s,
                "200 OK",
                &[
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Security-Policy", "script-src 'self'"),
                ],
                APP_PAGE.as_bytes(),
            ),
            "/app.js" => respond(
                s,
                "200 OK",
                &[("Content-Type", "application/javascript")],
                APP_JS.as_bytes(),
            ),
            // A 1x1 PNG.
            "/dot.png" => respond(
                s,
                "200 OK",
                &[("Content-Type", "image/png")],
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82",
            ),
            _ => respond(s, "404 Not Found", &[("Content-Type", "text/plain")], b"no"),
        }
    }))
}

pub(crate) fn require_chromium() -> bool {
    if chromium().is_some() {
        return true;
    }
    if std::env::var("AGNT_SKIP_BROWSER").as_deref() == Ok("1") {
        return false;
    }
    panic!(
        "chromium not found at /usr/bin/chromium: install it (apt-get install chromium) or set AGNT_SKIP_BROWSER=1"
    );
}

/// Navigates and waits until the injected script of that page answers `exec`.
pub(crate) fn goto(cdp: &mut Cdp, px: &Px, path: &str) {
    cdp.call(
        "Page.navigate",
        serde_json::json!({"url": format!("{}{path}", px.p.url())}),
    );
    let ok = wait_until(Duration::from_secs(30), || {
        px.p.exec("__devtool.captureState()", Duration::from_secs(2))
            .ok()
            .and_then(|o| o.result)
            .is_some_and(|r| r["url"].as_str().is_some_and(|u| u.ends_with(path)))
    });
    assert!(
        ok,
        "the page {path} never connected; log: {:#}",
        px.query(|_| {})
    );
}

pub(crate) fn exec(px: &Px, code: &str) -> agnt::proxy::ExecOutcome {
    px.p.exec(code, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("exec {code}: {e}"))
}

pub(crate) fn entries(px: &Px, kind: &str) -> Vec<serde_json::Value> {
    px.query(|q| {
        q.types = vec![kind.into()];
        q.limit = Some(1000);
    })["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn chromium_devtool_api_end_to_end() {
    if !require_chromium() {
        return;
    }
    let up = fixture();
    let shots = tempfile::tempdir().unwrap();
    let shot_dir = shots.path().to_path_buf();
    let px = Px::start(&up.url(), move |c| c.screenshot_dir = Some(shot_dir));
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());

    // Every documented function exists in the page, and every function is documented.
    goto(&mut cdp, &px, "/clean");
    let names = exec(
        &px,
        "(() => { const out = []; const walk = (o, p) => { for (const k of Object.keys(o)) { \
         if (typeof o[k] === 'function') out.push(p + k); else if (o[k] && typeof o[k] === 'object') walk(o[k], p + k + '.'); } }; \
         walk(__devtool, ''); return out.sort(); })()",
    );
    let mut documented: Vec<String> = agnt::proxy::script::DOCS
        .iter()
        .map(|d| d.name.clone())
        .collect();
    documented.sort();
    assert_eq!(names.result.unwrap(), serde_json::json!(documented));

    // exec: a value, a throw.
    let v = exec(&px, "1 + 2");
    assert!(v.success && v.result == Some(serde_json::json!(3)), "{v:?}");
    let v = exec(&px, "(() => { throw new TypeError('agnt-exec-throw') })()");
    assert!(!v.success, "{v:?}");
    assert!(
        v.error.as_deref().unwrap_or("").contains("agnt-exec-throw"),
        "{v:?}"
    );
    // Errors in API calls come back as {error}, never as throws.
    let v = exec(&px, "__devtool.inspect('#does-not-exist')");
    assert!(v.success, "{v:?}");
    assert!(
        v.result.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("no element matches")
    );

    // Clean fixture: no findings.
    let clean = exec(&px, "__devtool.auditAccessibility()").result.unwrap();
    assert_eq!(clean["count"], 0, "clean page findings: {clean:#}");
    assert_eq!(clean["score"], 100);
    let c = exec(&px, "__devtool.getContrast('h1')").result.unwrap();
    assert!(
        c["ratio"].as_f64().unwrap() > 15.0 && c["aaa"] == true,
        "{c}"
    );
    // Layout and element helpers on the clean page.
    let r = |code: &str| exec(&px, code).result.unwrap();
    assert_eq!(r("__devtool.highlight('h1, #go')")["highlighted"], 2);
    assert_eq!(r("__devtool.clearAllOverlays()")["removed"], 2);
    let tab = r("__devtool.getTabOrder()");
    let order: Vec<&str> = tab["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["selector"].as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 4, "{tab:#}");
    assert_eq!((order[0], order[2]), ("#name", "#go"), "{tab:#}");
    assert_eq!(r("__devtool.isVisible('#go')")["visible"], true);
    assert_eq!(r("__devtool.isInViewport('#go')")["in_viewport"], true);
    assert_eq!(r("__devtool.checkOverlap('h1', '#go')")["overlap"], false);
    assert!(r("__devtool.getPosition('#go')")["width"].as_u64() > Some(0));
    assert_eq!(r("__devtool.findOverflows()")["count"], 0);
    assert_eq!(r("__devtool.diagnoseLayout()")["horizontal_scroll"], false);
    let st = r(
        "localStorage.setItem('agnt-k', 'plain-v'); localStorage.setItem('access_token', 'secret-v'); __devtool.captureState()",
    );
    assert!(st["local_storage_keys"].to_string().contains("agnt-k"));
    assert_eq!(st["local_storage"]["agnt-k"], "plain-v", "{st}");
    assert_eq!(st["local_storage"]["access_token"], "[redacted]", "{st}");
    assert!(!st.to_string().contains("secret-v"));

    // Every other rule, exactly once each.
    goto(&mut cdp, &px, "/a11y-all");
    let a = r("__devtool.auditAccessibility()");
    let mut got: Vec<(String, String)> = a["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["selector"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("button-name", "#empty"),
        ("document-title", "document"),
        ("duplicate-id", "body > span:nth-of-type(1)"),
        ("heading-order", "#deep"),
        ("html-lang", "html"),
        ("image-alt", "#noalt"),
        ("landmark-main", "document"),
        ("link-name", "#nolink"),
        ("tabindex", "#tab"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    want.sort();
    assert_eq!(got, want, "{a:#}");

    // Planted issues: two unlabeled inputs, one low-contrast paragraph, nothing else.
    goto(&mut cdp, &px, "/a11y");
    let a = exec(&px, "__devtool.auditAccessibility()").result.unwrap();
    let mut got: Vec<(String, String)> = a["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(f["fix"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
            assert!(f["impact"].as_str().is_some(), "{f}");
            (
                f["rule"].as_str().unwrap().to_string(),
                f["selector"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = [
        ("color-contrast", "#faint"),
        ("label", "#nolabel1"),
        ("label", "#nolabel2"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want, "{a:#}");
    assert!(a["score"].as_u64().unwrap() < 100);
    let c = exec(&px, "__devtool.getContrast('#faint')").result.unwrap();
    assert!(
        c["aa"] == false && c["ratio"].as_f64().unwrap() < 4.5,
        "{c}"
    );
    let ov = exec(&px, "__devtool.findOverflows()").result.unwrap();
    assert!(
        ov["overflows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["selector"] == "#wide" && o["kind"] == "past-viewport"),
        "{ov:#}"
    );
    let d = exec(&px, "__devtool.diagnoseLayout()").result.unwrap();
    assert_eq!(d["horizontal_scroll"], true, "{d:#}");

    // The app page: strict CSP, its own window.onerror that swallows errors.
    goto(&mut cdp, &px, "/app");
    let boom = wait_until(Duration::from_secs(20), || {
        entries(&px, "error").iter().any(|e| {
            e["data"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("agnt-onerror-override-boom"))
                && e["data"]["stack"]
                    .as_str()
                    .is_some_and(|s| s.contains("laterBoom"))
        })
    });
    assert!(
        boom,
        "error not captured: {:#}",
        entries(&px, "error").len()
    );
    // Under CSP, free-form code cannot be evaluated (a clear error), plain calls still work.
    let v = exec(&px, "document.title");
    assert!(!v.success, "{v:?}");
    assert!(
        v.error
            .as_deref()
            .unwrap_or("")
            .contains("Content-Security-Policy blocks eval"),
        "{v:?}"
    );

    // A real click on the button.
    let r = cdp.eval("JSON.stringify(document.getElementById('buy').getBoundingClientRect())");
    let r: serde_json::Value = serde_json::from_str(r.as_str().unwrap()).unwrap();
    let (x, y) = (
        r["x"].as_f64().unwrap() + r["width"].as_f64().unwrap() / 2.0,
        r["y"].as_f64().unwrap() + r["height"].as_f64().unwrap() / 2.0,
    );
    cdp.click_at(x, y);
    let clicked = wait_until(Duration::from_secs(20), || {
        entries(&px, "interaction")
            .iter()
            .any(|e| e["data"]["event_type"] == "click" && e["data"]["target"] == "#buy")
    });
    assert!(
        clicked,
        "no click entry: {:#}",
        serde_json::json!(entries(&px, "interaction"))
    );
    let mutated = wait_until(Duration::from_secs(20), || {
        entries(&px, "mutation")
            .iter()
            .any(|e| e["data"]["target"] == "#list" && e["data"]["mutation_type"] == "added")
    });
    assert!(
        mutated,
        "no mutation entry: {:#}",
        serde_json::json!(entries(&px, "mutation"))
    );
    let ctx = exec(&px, "__devtool.interactions.getLastClickContext()")
        .result
        .unwrap();
    assert_eq!(ctx["click"]["target"], "#buy", "{ctx:#}");
    assert_eq!(ctx["element"]["id"], "buy", "{ctx:#}");
    assert!(ctx["click"]["text"].as_str().unwrap().contains("Buy now"));
    let hist = exec(&px, "__devtool.mutations.getHistory(5)")
        .result
        .unwrap();
    assert!(hist.to_string().contains("#list"), "{hist}");
    let hl = exec(&px, "__devtool.mutations.highlightRecent(60000)")
        .result
        .unwrap();
    assert!(hl["highlighted"].as_u64() >= Some(1), "{hl}");
    exec(&px, "__devtool.clearAllOverlays()");

    // A password typed in: its value never reaches any entry.
    cdp.eval("document.getElementById('pw').focus()");
    cdp.call(
        "Input.insertText",
        serde_json::json!({"text": "hunter2-very-secret"}),
    );
    let typed = wait_until(Duration::from_secs(20), || {
        entries(&px, "interaction")
            .iter()
            .any(|e| e["data"]["target"] == "#pw" && e["data"]["event_type"] == "input")
    });
    assert!(typed, "no input entry for the password field");
    // Clicking into it (a click entry) must not carry the value either.
    let r = cdp.eval("JSON.stringify(document.getElementById('pw').getBoundingClientRect())");
    let r: serde_json::Value = serde_json::from_str(r.as_str().unwrap()).unwrap();
    cdp.click_at(
        r["x"].as_f64().unwrap() + 5.0,
        r["y"].as_f64().unwrap() + 5.0,
    );
    assert!(wait_until(Duration::from_secs(20), || {
        entries(&px, "interaction")
            .iter()
            .any(|e| e["data"]["target"] == "#pw" && e["data"]["event_type"] == "click")
    }));
    let info = exec(&px, "__devtool.inspect('#pw')").result.unwrap();
    assert!(!info.to_string().contains("hunter2"), "{info}");

    // Element screenshot: a PNG of the element's size, not blank.
    let shot = exec(&px, "__devtool.screenshot('agnt-box', '#box')")
        .result
        .unwrap();
    let file = shot["file_path"]
        .as_str()
        .unwrap_or_else(|| panic!("{shot:#}"));
    assert!(file.starts_with(shots.path().to_str().unwrap()), "{file}");
    let (w, h, px_data) = decode_png(&std::fs::read(file).unwrap());
    assert_eq!((w, h), (200, 100));
    let mean: f64 = px_data
        .iter()
        .map(|p| f64::from(p[0]) + f64::from(p[2]))
        .sum::<f64>()
        / px_data.len() as f64;
    let var: f64 = px_data
        .iter()
        .map(|p| (f64::from(p[0]) + f64::from(p[2]) - mean).powi(2))
        .sum::<f64>()
        / px_data.len() as f64;
    assert!(var > 10.0, "screenshot looks blank (variance {var})");
    let logged = entries(&px, "screenshot");
    assert!(
        logged.iter().any(|e| e["data"]["file_path"] == file
            && e["data"]["width"] == 200
            && e["data"]["selector"] == "#box"),
        "{logged:#?}"
    );
    // Whole viewport.
    let page = exec(&px, "__devtool.screenshot('agnt-page')")
        .result
        .unwrap();
    let (w, h, _) = decode_png(&std::fs::read(page["file_path"].as_str().unwrap()).unwrap());
    assert_eq!(
        (w, h),
        (
            page["width"].as_u64().unwrap() as u32,
            page["height"].as_u64().unwrap() as u32
        )
    );
    assert!(w > 500 && h > 300, "{w}x{h}");

    // Nothing anywhere holds the password (the compact query and every full entry).
    let all = px.query(|q| q.limit = Some(10_000));
    let mut text = all.to_string();
    for e in all["entries"].as_array().unwrap() {
        if let Some(full) = px.p.log_get(e["id"].as_str().unwrap()) {
            text.push_str(&full.to_string());
        }
    }
    assert!(
        !text.contains("hunter2"),
        "the password leaked into the log"
    );
}

const TWICE_PAGE: &str = r#"<!doctype html><html lang="en"><head><title>twice</title>
<script src="/__agnt/agnt.js?again"></script></head><body><main><h1>Twice</h1>
<button id="buy" style="position:absolute;left:40px;top:120px;width:160px;height:40px">Buy</button>
<iframe src="/frame" style="position:absolute;left:400px;top:300px;width:200px;height:100px"></iframe>
</main><script src="/twice.js"></script></body></html>"#;

fn panel_fixture() -> Upstream {
    Upstream::start(Arc::new(|req: &Req, s: &mut TcpStream| {
        match req.path.as_str() {
            "/twice" => respond(
                s,
                "200 OK",
                &[("Content-Type", "text/html; charset=utf-8")],
                TWICE_PAGE.as_bytes(),
            ),
            "/frame" => respond(
                s,
                "200 OK",
                &[("Content-Type", "text/html; charset=utf-8")],
                b"<!doctype html><html><head><title>frame</title></head><body><p>in a frame</p></body></html>",
            ),
            "/bare" => respond(
                s,
                "200 OK",
                &[("Content-Type", "text/html; charset=utf-8")],
                b"<!doctype html><html lang=en><head><title>bare</title><script src=\"/strip.js\"></script></head>\
<body><main><h1 id=\"t\">Bare</h1><input id=\"q\"><div style=\"height:3000px\"></div></main><script src=\"/bare.js\"></script></body></html>",
            ),
            // Runs before the agnt script (it sits earlier in <head>): takes APIs away.
            "/strip.js" => respond(
                s,
                "200 OK",
                &[("Content-Type", "application/javascript")],
                b"delete window.PerformanceObserver; delete window.MutationObserver; delete window.CSS;\n\
Object.defineProperty(window, 'sessionStorage', { get() { throw new Error('no storage here'); } });\n",
            ),
            "/bare.js" => respond(
                s,
                "200 OK",
                &[("Content-Type", "application/javascript")],
                b"console.warn('agnt-warn', {a: 1});\nconsole.log('agnt-log-not-captured');\n\
fetch('/missing-api').then(function () { throw new Error('agnt-after-fetch'); });\n\
var x = new XMLHttpRequest(); x.open('POST', '/missing-xhr'); x.send('{}');\n",
            ),
            "/twice.js" => respond(
                s,
                "200 OK",
                &[("Content-Type", "application/javascript")],
                b"setTimeout(function twiceBoom() { throw new Error('agnt-twice-boom'); }, 20);\n",
            ),
            _ => respond(s, "404 Not Found", &[("Content-Type", "text/plain")], b"no"),
        }
    }))
}

#[test]
fn chromium_user_panel_and_double_injection() {
    if !require_chromium() {
        return;
    }
    let up = panel_fixture();
    let px = Px::start(&up.url(), |_| {});
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    goto(&mut cdp, &px, "/twice");

    // Loaded twice (the page includes the script itself), it runs once: one error entry.
    assert!(wait_until(Duration::from_secs(20), || {
        entries(&px, "error").iter().any(|e| {
            e["data"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("agnt-twice-boom"))
        })
    }));
    exec(&px, "__devtool.log('agnt-marker', 'info', {n: 1})");
    assert!(wait_until(Duration::from_secs(20), || {
        entries(&px, "custom")
            .iter()
            .any(|e| e["data"]["message"] == "agnt-marker" && e["data"]["data"]["n"] == 1)
    }));
    let booms = entries(&px, "error")
        .iter()
        .filter(|e| {
            e["data"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("agnt-twice-boom"))
        })
        .count();
    assert_eq!(booms, 1);

    // The frame has its own copy and channel; exec still goes to the top-level page, and the
    // frame shows no panel.
    assert!(wait_until(Duration::from_secs(20), || {
        px.p.status().ws_clients >= 2
    }));
    for _ in 0..3 {
        assert_eq!(
            exec(&px, "location.pathname").result,
            Some(serde_json::json!("/twice"))
        );
    }
    assert_eq!(
        exec(
            &px,
            "document.querySelector('iframe').contentDocument.querySelector('agnt-panel') === null && !!document.querySelector('iframe').contentWindow.__devtool"
        )
        .result,
        Some(serde_json::json!(true))
    );

    // The panel: open it, pick the button with a real click, write, send.
    let has_panel = wait_until(Duration::from_secs(20), || {
        cdp.eval("!!document.querySelector('agnt-panel')") == true
    });
    assert!(has_panel, "no panel");
    cdp.eval(
        "(() => { const r = document.querySelector('agnt-panel').shadowRoot; r.getElementById('fab').click(); \
         r.getElementById('msg').value = 'the buy button is misaligned'; r.getElementById('pick').click(); return true })()",
    );
    let r = cdp.eval("JSON.stringify(document.getElementById('buy').getBoundingClientRect())");
    let r: serde_json::Value = serde_json::from_str(r.as_str().unwrap()).unwrap();
    cdp.click_at(
        r["x"].as_f64().unwrap() + 10.0,
        r["y"].as_f64().unwrap() + 10.0,
    );
    let picked = wait_until(Duration::from_secs(10), || {
        cdp.eval(
            "document.querySelector('agnt-panel').shadowRoot.getElementById('status').textContent",
        )
        .as_str()
        .is_some_and(|s| s.contains("#buy"))
    });
    assert!(picked, "the element picker did not pick #buy");
    cdp.eval("document.querySelector('agnt-panel').shadowRoot.getElementById('send').click()");
    let sent = wait_until(Duration::from_secs(20), || {
        entries(&px, "panel_message").iter().any(|e| {
            e["data"]["message"] == "the buy button is misaligned"
                && e["data"]["attachments"][0]["selector"] == "#buy"
        })
    });
    assert!(sent, "no panel_message: {:#}", px.query(|_| {}));

    // Alt+Shift+A hides it.
    for t in ["keyDown", "keyUp"] {
        cdp.call(
            "Input.dispatchKeyEvent",
            serde_json::json!({"type": t, "modifiers": 9, "code": "KeyA", "key": "A", "windowsVirtualKeyCode": 65}),
        );
    }
    assert_eq!(
        cdp.eval("document.querySelector('agnt-panel').style.display"),
        "none"
    );

    // A proxy with the panel disabled shows none.
    let px2 = Px::start(&up.url(), |c| c.panel = false);
    goto(&mut cdp, &px2, "/twice");
    assert_eq!(
        exec(&px2, "document.querySelector('agnt-panel') === null").result,
        Some(serde_json::json!(true))
    );
    let v = exec(&px2, "__devtool.indicator.toggle()").result.unwrap();
    assert!(v["error"].as_str().is_some_and(|e| e.contains("disabled")));
}

/// Page-load cost of the injected script (BENCHMARKS.md, "Browser script"): median
/// `loadEventEnd` of 20 interleaved loads of one fixture (a) straight from the upstream, (b)
/// through the proxy with the script's URL blocked by Chromium, (c) through the proxy with the
/// script. Also prints the script size raw and gzip. The browser cache is on (the injected tag's
/// URL is versioned and cached as immutable); `AGNT_BENCH_COLD=1` turns it off. Run:
/// `cargo test --test it browser::bench_script_load_cost -- --ignored --nocapture`
#[test]
#[ignore = "benchmark; run explicitly"]
fn bench_script_load_cost() {
    use std::io::Write;
    if !require_chromium() {
        return;
    }
    let js = agnt::proxy::AGNT_JS.as_bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(js).unwrap();
    let gz = gz.finish().unwrap();
    eprintln!(
        "script: {} bytes raw, {} bytes gzip ({:.1} KiB)",
        js.len(),
        gz.len(),
        gz.len() as f64 / 1024.0
    );
    let body: String = (0..200)
        .map(|i| {
            format!("<div class=\"row r{i}\"><span>item {i}</span><a href=\"/x{i}\">link</a></div>")
        })
        .collect();
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><title>bench</title></head><body><main><h1>Bench</h1>{body}</main></body></html>"
    );
    let page: &'static str = Box::leak(page.into_boxed_str());
    let up = Upstream::start(Arc::new(move |_req: &Req, s: &mut TcpStream| {
        respond(
            s,
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8")],
            page.as_bytes(),
        )
    }));
    let px = Px::start(&up.url(), |c| c.panel = false);
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    cdp.call("Network.enable", serde_json::json!({}));
    cdp.call(
        "Network.setCacheDisabled",
        serde_json::json!({"cacheDisabled": std::env::var("AGNT_BENCH_COLD").is_ok()}),
    );
    let load = |cdp: &mut Cdp, url: &str, block: bool| -> f64 {
        let urls: Vec<&str> = if block {
            vec!["*/__agnt/agnt.js*"]
        } else {
            vec![]
        };
        cdp.call(
            "Network.setBlockedURLs",
            serde_json::json!({ "urls": urls }),
        );
        cdp.call("Page.navigate", serde_json::json!({ "url": url }));
        let mut t = 0.0;
        assert!(wait_until(Duration::from_secs(30), || {
            let v = cdp.eval(
                "(() => { const n = performance.getEntriesByType('navigation')[0]; \
                 return document.readyState === 'complete' && n && n.loadEventEnd > 0 && n.name === location.href ? n.loadEventEnd : 0 })()",
            );
            t = v.as_f64().unwrap_or(0.0);
            t > 0.0
        }));
        t
    };
    let (direct, proxied) = (format!("{}/", up.url()), format!("{}/", px.p.url()));
    // Warm-up.
    for _ in 0..3 {
        load(&mut cdp, &direct, false);
        load(&mut cdp, &proxied, true);
        load(&mut cdp, &proxied, false);
    }
    let n: usize = std::env::var("AGNT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .max(2);
    let (mut a, mut b, mut c, mut init) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        a.push(load(&mut cdp, &direct, false));
        b.push(load(&mut cdp, &proxied, true));
        c.push(load(&mut cdp, &proxied, false));
        init.push(
            cdp.eval("window.__agnt ? __agnt.init_ms : -1")
                .as_f64()
                .unwrap_or(-1.0),
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
    };
    let (ma, mb, mc) = (median(&mut a), median(&mut b), median(&mut c));
    eprintln!(
        "synchronous setup (__agnt.init_ms) median of {n}: {:.2} ms",
        median(&mut init)
    );
    eprintln!(
        "loadEventEnd median of {n} (ms): direct {ma:.1}, proxy + script blocked {mb:.1}, proxy + script {mc:.1}; script adds {:.1} ms",
        mc - mb
    );
}

/// The channel's `batch` and `screenshot` messages, malformed ones included, without a browser.
#[test]
fn batch_and_screenshot_messages_over_the_channel() {
    let up = Upstream::start(Arc::new(|_req: &Req, s: &mut TcpStream| {
        respond(s, "404 Not Found", &[("Content-Type", "text/plain")], b"no")
    }));
    let shots = tempfile::tempdir().unwrap();
    let dir = shots.path().to_path_buf();
    let px = Px::start(&up.url(), move |c| {
        c.screenshot_dir = Some(dir);
        c.panel = false;
    });
    let mut ws = px.page_ws();
    let cfg: serde_json::Value =
        serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(cfg["panel"], false);
    let send = |ws: &mut tungstenite::WebSocket<_>, v: serde_json::Value| {
        ws.send(tungstenite::Message::text(v.to_string())).unwrap()
    };
    send(
        &mut ws,
        serde_json::json!({"type": "batch", "page_id": "tab-b", "url": "http://a/", "events": [
            {"type": "interaction", "data": {"event_type": "click", "target": "#x"}},
            {"type": "mutation", "data": {"mutation_type": "added", "target": "#list"}},
            {"type": "console", "data": {"level": "warn", "message": "careful"}},
            {"type": "response", "data": {}},
            "not an object",
            {"data": {"no": "type"}},
        ]}),
    );
    assert!(wait_until(Duration::from_secs(5), || {
        px.query(|_| {})["count"].as_u64() == Some(4)
    }));
    let all = px.query(|_| {});
    let kinds: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["interaction", "mutation", "custom", "custom"]);
    assert_eq!(all["entries"][2]["data"]["event_type"], "console");
    assert_eq!(all["entries"][0]["page_id"], "tab-b");
    // Screenshots: bad ones are refused with an error the page sees, a good one is written.
    let png = b"\x89PNG\r\n\x1a\nrest-of-png";
    let b64 = agnt::util::base64::base64(png);
    for (data_url, ok) in [
        ("data:image/png;base64,@@@".to_string(), false),
        ("data:image/jpeg;base64,AAAA".to_string(), false),
        (
            format!(
                "data:image/png;base64,{}",
                agnt::util::base64::base64(b"GIF89a")
            ),
            false,
        ),
        (format!("data:image/png;base64,{b64}"), true),
    ] {
        send(
            &mut ws,
            serde_json::json!({"type": "screenshot", "req": "r1", "data": {"name": "../../etc/x y", "width": 3, "height": 2, "data_url": data_url}}),
        );
        let ack: serde_json::Value =
            serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
        assert_eq!(
            (ack["type"].as_str(), ack["req"].as_str()),
            (Some("screenshot_saved"), Some("r1"))
        );
        if ok {
            let path = std::path::PathBuf::from(ack["file_path"].as_str().unwrap());
            assert_eq!(path.parent(), Some(shots.path()));
            assert!(!path.file_name().unwrap().to_str().unwrap().contains(".."));
            assert_eq!(std::fs::read(&path).unwrap(), png);
        } else {
            assert!(ack["error"].as_str().is_some(), "{ack}");
        }
    }
    let s = px.query(|q| q.types = vec!["screenshot".into()]);
    assert_eq!(s["count"], 1);
    assert_eq!(s["entries"][0]["data"]["bytes"], png.len());
    // A batch without events is malformed: the channel closes and the error is counted.
    send(&mut ws, serde_json::json!({"type": "batch"}));
    assert!(wait_until(Duration::from_secs(5), || {
        px.p.status().ws_errors >= 1
    }));
}

#[test]
#[ignore = "profiling aid"]
fn profile_script_parts() {
    let up = Upstream::start(Arc::new(|_req: &Req, s: &mut TcpStream| {
        respond(
            s,
            "200 OK",
            &[("Content-Type", "text/html")],
            b"<!doctype html><title>p</title><p>x</p>",
        )
    }));
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    cdp.call(
        "Page.navigate",
        serde_json::json!({"url": format!("{}/", up.url())}),
    );
    assert!(wait_until(Duration::from_secs(20), || cdp
        .eval("document.readyState")
        == "complete"));
    let mut src = String::from("window.__t=[performance.now()];(() => {\n\"use strict\";\n");
    for (_, p) in agnt::proxy::script::PARTS.iter() {
        src.push_str(p);
        src.push_str("\n__t.push(performance.now());\n");
    }
    src.push_str("})();");
    for _ in 0..5 {
        cdp.eval("delete window.__agnt; 0");
        let v = cdp.eval(&format!(
            "{src}; JSON.stringify(__t.map((t, i) => i ? +(t - __t[i-1]).toFixed(2) : 0))"
        ));
        eprintln!("{v}");
    }
}

/// The `proxy` MCP tool: `exec` help/describe come from the script's docs, and a result over
/// the budget is cut with a note while the whole of it lands in a file (real page in Chromium).
#[test]
fn mcp_exec_help_describe_and_result_budget() {
    use serde_json::json;
    let env = crate::daemon::Env::new();
    let mut m = crate::daemon::McpChild::spawn(&env, &["--standalone"]);
    m.rpc.initialize(&env.project);
    let h = m.rpc.ok("proxy", json!({"action": "exec", "help": true}));
    let names: Vec<&str> = h["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"auditAccessibility")
            && names.contains(&"interactions.getLastClickContext")
    );
    let d = m
        .rpc
        .ok("proxy", json!({"action": "exec", "describe": "inspect"}));
    assert_eq!(d["name"], "inspect");
    assert!(d["description"].as_str().unwrap().contains("stacking"));
    let e = m
        .rpc
        .err("proxy", json!({"action": "exec", "describe": "nosuchfn"}));
    assert!(e.contains("getContrast") && e.contains("screenshot"), "{e}");

    if !require_chromium() {
        return;
    }
    let up = Upstream::start(Arc::new(|_req: &Req, s: &mut TcpStream| {
        respond(
            s,
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8")],
            b"<!doctype html><html lang=en><head><title>big</title></head><body><p>x</p></body></html>",
        )
    }));
    let st = m.rpc.ok(
        "proxy",
        json!({"action": "start", "id": "big", "target_url": up.url(), "port": 0}),
    );
    let url = st["url"].as_str().unwrap().to_string();
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    cdp.call("Page.navigate", json!({"url": format!("{url}/")}));
    let mut out = Value::Null;
    assert!(wait_until(Duration::from_secs(30), || {
        let r = m.rpc.call(
            "proxy",
            json!({"action": "exec", "id": "big", "code": "'y'.repeat(40000)", "timeout": 2}),
        );
        out = r["structuredContent"].clone();
        r["isError"] == false
    }));
    assert_eq!(out["result_truncated"], true, "{out}");
    assert_eq!(out["result_bytes"], 40002);
    assert!(out["result"].as_str().unwrap().len() <= 16 * 1024);
    let file = out["result_file"].as_str().unwrap();
    assert!(file.starts_with(env.state.to_str().unwrap()), "{file}");
    let full: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(full.as_str().unwrap().len(), 40000);
    // A small result passes untouched.
    let small = m.rpc.ok(
        "proxy",
        json!({"action": "exec", "id": "big", "code": "6 * 7"}),
    );
    assert_eq!(small["result"], 42);
    assert!(small.get("result_file").is_none());
}

/// Missing browser APIs (taken away before our script runs) break nothing; console warnings,
/// failed fetches, async rejections and load timing are reported.
#[test]
fn chromium_missing_apis_console_fetch_and_timing() {
    if !require_chromium() {
        return;
    }
    let up = panel_fixture();
    let px = Px::start(&up.url(), |_| {});
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    goto(&mut cdp, &px, "/bare");
    let v = exec(&px, "__devtool.auditAccessibility()").result.unwrap();
    // Without window.CSS the label lookup fails inside the audit: an {error}, not a throw.
    assert!(
        v.get("findings").is_some() || v.get("error").is_some(),
        "{v}"
    );
    let v = exec(&px, "__devtool.inspect('#t')").result.unwrap();
    assert_eq!(v["info"]["tag"], "h1", "{v}");
    let has =
        |kind: &str, f: &dyn Fn(&Value) -> bool| entries(&px, kind).iter().any(|e| f(&e["data"]));
    assert!(
        wait_until(Duration::from_secs(20), || {
            has("custom", &|d| {
                d["event_type"] == "console"
                    && d["level"] == "warn"
                    && d["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("agnt-warn") && m.contains("\"a\":1"))
            })
        }),
        "{:#}",
        px.query(|_| {})
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            has("error", &|d| {
                d["error_type"] == "fetch"
                    && d["status"] == 404
                    && d["method"] == "GET"
                    && d["request_url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with("/missing-api"))
            })
        }),
        "{:#}",
        px.query(|_| {})
    );
    assert!(wait_until(Duration::from_secs(20), || {
        has("error", &|d| {
            d["error_type"] == "unhandledrejection"
                && d["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("agnt-after-fetch"))
        })
    }));
    assert!(wait_until(Duration::from_secs(20), || {
        has("performance", &|d| {
            d["metric"] == "load" && d["load_time_ms"].as_f64().is_some()
        })
    }));
    assert!(
        !px.query(|_| {})
            .to_string()
            .contains("agnt-log-not-captured")
    );
    assert!(wait_until(Duration::from_secs(20), || {
        has("error", &|d| {
            d["error_type"] == "xhr" && d["status"] == 404 && d["method"] == "POST"
        })
    }));
    cdp.eval("scrollTo(0, 500)");
    assert!(wait_until(Duration::from_secs(20), || {
        has("interaction", &|d| {
            d["event_type"] == "scroll" && d["position"]["y"] == 500
        })
    }));
    // Opt in to console.log.
    exec(&px, "__devtool.captureConsole(['error', 'warn', 'log'])");
    exec(&px, "console.log('agnt-log-now-captured')");
    assert!(wait_until(Duration::from_secs(20), || {
        has("custom", &|d| {
            d["level"] == "log" && d["message"] == "agnt-log-now-captured"
        })
    }));
}
