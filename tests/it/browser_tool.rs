//! The `browser` tool end to end in process: a real headless Chromium driven over its
//! debugging pipe through the tool table, a real proxy and a real upstream. Skipped only with
//! `AGNT_SKIP_BROWSER=1` when no Chromium is installed.

use std::{
    collections::HashSet,
    net::TcpStream,
    sync::{Arc, Mutex},
    time::Duration,
};

use agnt::{
    host::{Host, HostOptions, StateDir},
    mcp::{Request, Session, Toolbox},
};
use serde_json::{Value, json};

use crate::{
    browser::{decode_png, require_chromium},
    proxy::{Req, Upstream, respond},
    support::wait_until,
};

const PAGE: &str = r#"<!doctype html><html><head><title>shop</title><meta name="viewport" content="width=device-width">
<style>body { margin: 0; font: 16px sans-serif; background: #fff; } HERO</style></head>
<body><div id="hero"></div><h1>Shop</h1>
<button id="buy" onclick="document.getElementById('out').textContent = 'bought'">Buy now</button>
<button id="warn" onclick="alert('careful'); document.getElementById('out').textContent = 'alerted'">Warn me</button>
<button id="ask" onclick="document.getElementById('out').textContent = 'name=' + prompt('Your name?')">Ask me</button>
<p id="out"></p>
<form method="post" action="/search"><input name="q" placeholder="Search"></form>
<script>setTimeout(function boom() { throw new Error('agnt-tool-page-boom'); }, 50);</script>
</body></html>"#;

struct Rig {
    session: Session,
    host: Arc<Host>,
    up: Upstream,
    posts: Arc<Mutex<Vec<String>>>,
    /// The hero's CSS rule, served in the page (tests change it).
    hero: Arc<Mutex<String>>,
    _state: tempfile::TempDir,
}

impl Rig {
    fn start() -> Rig {
        let state = tempfile::tempdir().unwrap();
        let mut opts = HostOptions::standalone(state.path().into());
        opts.state = Some(StateDir::new(state.path().join("state")));
        let host = Arc::new(Host::new(opts));
        let (tx, rx) = crossbeam_channel::unbounded();
        std::mem::forget(rx);
        let session = Session::new(Arc::new(Toolbox::in_process(host.clone())), tx);
        let posts = Arc::new(Mutex::new(Vec::new()));
        let seen = posts.clone();
        let hero = Arc::new(Mutex::new(
            "#hero { height: 120px; background: #2a6; }".to_string(),
        ));
        let css = hero.clone();
        let up = Upstream::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
            let html = [("Content-Type", "text/html; charset=utf-8")];
            match (req.method.as_str(), req.path.as_str()) {
                ("GET", "/") => {
                    let page = PAGE.replace("HERO", &css.lock().unwrap());
                    respond(s, "200 OK", &html, page.as_bytes())
                }
                ("POST", "/search") => {
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&req.body).into_owned());
                    respond(s, "200 OK", &html, b"<!doctype html><p>results</p>")
                }
                _ => respond(s, "404 Not Found", &[("Content-Type", "text/plain")], b"no"),
            }
        }));
        Rig {
            session,
            host,
            up,
            posts,
            hero,
            _state: state,
        }
    }

    /// The structured result of a call; `Err` with the text of a tool error.
    fn try_tool(&self, name: &str, args: Value) -> Result<Value, String> {
        let resp = self.session.handle_sync(Request {
            id: 1.into(),
            method: "tools/call".into(),
            params: json!({"name": name, "arguments": args}),
        });
        let v = resp.outcome.expect("tools/call answered");
        if v["isError"] == true {
            return Err(v["content"][0]["text"].as_str().unwrap_or("").to_string());
        }
        Ok(v["structuredContent"].clone())
    }

    fn tool(&self, name: &str, args: Value) -> Value {
        self.try_tool(name, args.clone())
            .unwrap_or_else(|e| panic!("{name} {args}: {e}"))
    }

    fn entries(&self, kind: &str) -> Vec<Value> {
        self.tool(
            "proxylog",
            json!({"proxy_id": "shop", "types": [kind], "limit": 200}),
        )["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Pids of Chromium's process group (`pgid`) that are alive (not zombies).
fn group(pgid: u32) -> Vec<u32> {
    crate::support::live_group_members(pgid as i32)
        .into_iter()
        .map(|p| p as u32)
        .collect()
}

/// Inodes of the TCP sockets listening on this machine (`/proc/net/tcp`, `tcp6`).
fn listening_inodes() -> HashSet<String> {
    let mut out = HashSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9 && cols[3] == "0A" {
                out.insert(cols[9].to_string());
            }
        }
    }
    out
}

/// Socket inodes the process holds open.
fn socket_inodes(pid: u32) -> HashSet<String> {
    let mut out = HashSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                let t = t.to_string_lossy().into_owned();
                if let Some(i) = t.strip_prefix("socket:[") {
                    out.insert(i.trim_end_matches(']').to_string());
                }
            }
        }
    }
    out
}

#[test]
fn browser_tool_drives_a_page_with_no_human() {
    if !require_chromium() {
        return;
    }
    let rig = Rig::start();
    rig.tool(
        "proxy",
        json!({"action": "start", "id": "shop", "target_url": rig.up.url(), "port": 0}),
    );
    let st = rig.tool("browser", json!({"action": "start", "proxy_id": "shop"}));
    assert_eq!(st["id"], "shop", "{st}");
    assert_eq!(st["debugging"], "pipe (no TCP port)", "{st}");
    assert_eq!(st["page"]["title"], "shop", "{st}");
    let pid = st["pid"].as_u64().unwrap() as u32;
    assert!(!group(pid).is_empty(), "chromium is not running: {st}");

    // Chromium carries the supervisor's marker, so a crashed host's successor kills it by
    // marker (orphans::kill_orphans → descendants::kill_instance).
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let marker = environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"AGNT_PROCESS="))
        .map(|m| String::from_utf8_lossy(m).into_owned());
    assert!(
        marker
            .as_deref()
            .is_some_and(|m| m.ends_with("/browser:shop")),
        "chromium's marker: {marker:?}"
    );

    // No process of the browser listens on TCP: the debugging channel is the pipe.
    let listening = listening_inodes();
    for p in group(pid) {
        let open: Vec<_> = socket_inodes(p).intersection(&listening).cloned().collect();
        assert!(open.is_empty(), "chromium pid {p} listens on TCP: {open:?}");
    }

    // The page's own error reaches the proxy's log with no page opened by the test.
    let boom = wait_until(Duration::from_secs(30), || {
        rig.entries("error").iter().any(|e| {
            e["data"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("agnt-tool-page-boom"))
        })
    });
    assert!(boom, "no error entry: {:?}", rig.entries("error"));

    // Click by visible text: the answer says what was hit; the page logs the interaction.
    let c = rig.tool(
        "browser",
        json!({"action": "click", "proxy_id": "shop", "text": "Buy now"}),
    );
    assert_eq!(c["hit"]["tag"], "button", "{c}");
    assert_eq!(c["hit"]["selector"], "#buy", "{c}");
    assert_eq!(c["matched"], 1, "{c}");
    let clicked = wait_until(Duration::from_secs(20), || {
        rig.entries("interaction")
            .iter()
            .any(|e| e["data"]["event_type"] == "click" && e["data"]["target"] == "#buy")
    });
    assert!(clicked, "no click entry: {:?}", rig.entries("interaction"));
    let out = rig.tool(
        "proxy",
        json!({"action": "exec", "id": "shop", "code": "document.getElementById('out').textContent"}),
    );
    assert_eq!(out["result"], "bought", "{out}");

    // A missing element is an error that says so.
    let e = rig
        .try_tool(
            "browser",
            json!({"action": "click", "proxy_id": "shop", "text": "No such button"}),
        )
        .unwrap_err();
    assert!(e.contains("no visible element"), "{e}");

    // A viewport screenshot: a PNG file of the viewport's size with real pixels.
    let shot = rig.tool(
        "browser",
        json!({"action": "screenshot", "proxy_id": "shop"}),
    );
    assert_eq!(
        (shot["width"].as_u64(), shot["height"].as_u64()),
        (Some(1280), Some(800)),
        "{shot}"
    );
    assert!(
        shot.get("data").is_none(),
        "no base64 unless inline: {shot}"
    );
    let png = std::fs::read(shot["path"].as_str().unwrap()).unwrap();
    let (w, h, px) = decode_png(&png);
    assert_eq!((w, h), (1280, 800));
    let distinct: HashSet<[u8; 3]> = px.iter().copied().collect();
    assert!(distinct.len() > 2, "blank screenshot: {distinct:?}");
    assert!(
        px.contains(&[0x22, 0xaa, 0x66]),
        "the green hero is not in the screenshot"
    );

    // Resize: the page itself sees the new viewport.
    let r = rig.tool(
        "browser",
        json!({"action": "resize", "proxy_id": "shop", "preset": "mobile"}),
    );
    assert_eq!(r["page"]["innerWidth"], 390, "{r}");
    let iw = rig.tool(
        "proxy",
        json!({"action": "exec", "id": "shop", "code": "innerWidth"}),
    );
    assert_eq!(iw["result"], 390, "{iw}");

    // An alert does not block the next click, and leaves a console entry.
    let cursor = rig.tool("browser", json!({"action": "console", "proxy_id": "shop"}))["cursor"]
        .as_u64()
        .unwrap();
    rig.tool(
        "browser",
        json!({"action": "click", "proxy_id": "shop", "text": "Warn me"}),
    );
    let c = rig.tool(
        "browser",
        json!({"action": "click", "proxy_id": "shop", "selector": "#buy"}),
    );
    assert_eq!(c["hit"]["text"], "Buy now", "{c}");
    let log = rig.tool(
        "browser",
        json!({"action": "console", "proxy_id": "shop", "since": cursor}),
    );
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["level"] == "dialog"
                && e["text"].as_str().unwrap().contains("careful")
                && e["text"].as_str().unwrap().contains("dismissed")),
        "{log}"
    );

    // A prompt answered as the agent asked, then the default again (dismissed: null).
    rig.tool(
        "browser",
        json!({"action": "dialog", "proxy_id": "shop", "accept": true, "text": "Ada"}),
    );
    for want in ["name=Ada", "name=null"] {
        rig.tool(
            "browser",
            json!({"action": "click", "proxy_id": "shop", "text": "Ask me"}),
        );
        let out = rig.tool(
            "proxy",
            json!({"action": "exec", "id": "shop", "code": "document.getElementById('out').textContent"}),
        );
        assert_eq!(out["result"], want, "{out}");
    }

    // fill + Enter submits the form: the upstream sees the POST.
    rig.tool(
        "browser",
        json!({"action": "fill", "proxy_id": "shop", "selector": "input[name=q]", "value": "red shoes"}),
    );
    rig.tool(
        "browser",
        json!({"action": "press", "proxy_id": "shop", "key": "Enter"}),
    );
    let posted = wait_until(Duration::from_secs(20), || {
        rig.posts.lock().unwrap().iter().any(|b| b == "q=red+shoes")
    });
    assert!(posted, "no POST: {:?}", rig.posts.lock().unwrap());
    let w = rig.tool(
        "browser",
        json!({"action": "wait_for", "proxy_id": "shop", "text": "results", "timeout": 20}),
    );
    assert_eq!(w["met"], true, "{w}");
    let back = rig.tool("browser", json!({"action": "back", "proxy_id": "shop"}));
    assert_eq!(back["page"]["title"], "shop", "{back}");

    // list and status; stop leaves no Chromium process.
    let list = rig.tool("browser", json!({"action": "list", "global": true}));
    assert_eq!(list["count"], 1, "{list}");
    let stop = rig.tool("browser", json!({"action": "stop", "id": "shop"}));
    assert_eq!(stop["success"], true, "{stop}");
    assert!(
        group(pid).is_empty(),
        "chromium left behind: {:?}",
        group(pid)
    );
    let e = rig
        .try_tool("browser", json!({"action": "status", "proxy_id": "shop"}))
        .unwrap_err();
    assert!(e.contains("no browser runs on proxy"), "{e}");
    drop(rig.host);
}

#[test]
fn browser_start_with_a_url_starts_a_proxy_and_closes_with_it() {
    if !require_chromium() {
        return;
    }
    let rig = Rig::start();
    let url = format!("{}/", rig.up.url());
    let st = rig.tool(
        "browser",
        json!({"action": "open", "url": url, "profile": "persistent"}),
    );
    let profile = st["profile"].as_str().unwrap().to_string();
    assert!(profile.starts_with("persistent: "), "{st}");
    let proxy = st["proxy_id"].as_str().unwrap().to_string();
    assert!(
        st["url"].as_str().unwrap() != url,
        "the page must load through a proxy: {st}"
    );
    assert_eq!(st["page"]["title"], "shop", "{st}");
    let pid = st["pid"].as_u64().unwrap() as u32;
    let again = rig.tool("browser", json!({"action": "start", "proxy_id": proxy}));
    assert_eq!(again["pid"], st["pid"], "one browser per proxy: {again}");
    let stop = rig.tool("proxy", json!({"action": "stop", "id": proxy}));
    assert!(
        stop["message"].as_str().unwrap().contains("browser"),
        "{stop}"
    );
    assert!(
        group(pid).is_empty(),
        "chromium outlived its proxy: {:?}",
        group(pid)
    );
    let list = rig.tool("browser", json!({"action": "list", "global": true}));
    assert_eq!(list["count"], 0, "{list}");
    let dir = std::path::Path::new(&profile["persistent: ".len()..]);
    assert!(
        dir.join("Default").is_dir(),
        "the persistent profile is kept: {dir:?}"
    );
    // A dev server that is down: the browser starts and shows the proxy's answer.
    let up = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let st = rig.tool(
        "browser",
        json!({"action": "start", "url": format!("{up}/")}),
    );
    assert_eq!(st["page"]["title"], "502 Bad Gateway", "{st}");
    rig.tool("browser", json!({"action": "stop", "id": st["id"]}));
}

#[test]
fn browser_start_without_chromium_names_the_install_command() {
    let rig = Rig::start();
    rig.tool(
        "proxy",
        json!({"action": "start", "id": "shop", "target_url": rig.up.url(), "port": 0}),
    );
    let e = rig
        .try_tool(
            "browser",
            json!({"action": "start", "proxy_id": "shop", "binary_path": "/nonexistent/chromium"}),
        )
        .unwrap_err();
    assert!(
        e.contains("binary_path /nonexistent/chromium is not a file"),
        "{e}"
    );
    let e = agnt::host::browser::find_binary(None);
    if let Err(e) = e {
        assert!(e.contains("apt-get install chromium"), "{e}");
    }
}

#[test]
fn snapshot_compare_reports_the_changed_region_only() {
    if !require_chromium() {
        return;
    }
    let rig = Rig::start();
    rig.tool(
        "proxy",
        json!({"action": "start", "id": "shop", "target_url": rig.up.url(), "port": 0}),
    );
    rig.tool("browser", json!({"action": "start", "proxy_id": "shop"}));
    let base = rig.tool(
        "snapshot",
        json!({"action": "baseline", "name": "home", "pages": ["/"], "proxy_id": "shop"}),
    );
    assert_eq!(base["pages"][0]["width"], 1280, "{base}");
    // Unchanged: nothing differs.
    let same = rig.tool(
        "snapshot",
        json!({"action": "compare", "baseline": "home", "proxy_id": "shop"}),
    );
    assert_eq!(same["pass"], true, "{same}");
    assert_eq!(same["pages"][0]["changed_fraction"], 0.0, "{same}");
    // The upstream's CSS changes the hero's colour: only the hero's box differs.
    *rig.hero.lock().unwrap() = "#hero { height: 120px; background: #c33; }".to_string();
    let cmp = rig.tool(
        "snapshot",
        json!({"action": "compare", "baseline": "home", "proxy_id": "shop", "diff_threshold": 0.01}),
    );
    let page = &cmp["pages"][0];
    assert_eq!(cmp["pass"], false, "{cmp}");
    let fraction = page["changed_fraction"].as_f64().unwrap();
    assert!(fraction > 0.01, "{cmp}");
    let regions = page["regions"].as_array().unwrap();
    assert_eq!(
        regions,
        &vec![json!({"x": 0, "y": 0, "width": 1280, "height": 120})],
        "one region, the hero: {cmp}"
    );
    let diff = std::fs::read(page["diff_path"].as_str().unwrap()).unwrap();
    let (w, h, px) = decode_png(&diff);
    assert_eq!((w, h), (1280, 800));
    assert_eq!(
        px[10 * 1280 + 10],
        [255, 0, 0],
        "changes are red in the diff image"
    );
    // list, get, delete.
    let list = rig.tool("snapshot", json!({"action": "list"}));
    assert_eq!(list["snapshots"][0]["name"], "home", "{list}");
    let got = rig.tool("snapshot", json!({"action": "get", "name": "home"}));
    assert_eq!(got["pages"][0]["page"], "/", "{got}");
    rig.tool("snapshot", json!({"action": "delete", "name": "home"}));
    let e = rig
        .try_tool("snapshot", json!({"action": "get", "name": "home"}))
        .unwrap_err();
    assert!(e.contains("no snapshot \"home\""), "{e}");
}

/// The issue's acceptance flow through the official Python MCP SDK against a private daemon
/// (`tests/py/browser_e2e.py`).
#[test]
fn python_sdk_agent_drives_the_page_itself() {
    if !require_chromium() {
        return;
    }
    if std::env::var_os("AGNT_SKIP_PY").is_some() {
        eprintln!("AGNT_SKIP_PY set: skipping the Python MCP SDK browser e2e");
        return;
    }
    let env = crate::daemon::Env::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/browser_e2e.py");
    #[allow(clippy::disallowed_methods)] // the test's own child, not a supervised process
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(crate::support::bin())
        .env("AGNT_SOCKET", &env.socket)
        .env("AGNT_STATE_DIR", &env.state)
        .env_remove("AGNT_PROJECT_PATH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser_e2e.py failed:\n{stdout}\n{stderr}"
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
}
