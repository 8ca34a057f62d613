//! A real headless Chromium loads a page through the proxy; the page's script throws, and the
//! error (with its stack) must reach the traffic log over the injected script's WebSocket.
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

use crate::{
    proxy::{Px, Req, Upstream, respond},
    support::wait_until,
};

/// Kills Chromium's whole process group when dropped (also when the test fails).
struct Browser {
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

fn chromium() -> Option<&'static str> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

#[allow(clippy::disallowed_methods)] // a test helper: the browser is not a supervised dev process
fn launch(url: &str, profile: &Path) -> Browser {
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
