//! Secrets never reach the agent (issue 10): one test per kind of secret, each through a real
//! proxy started by the `proxy` tool and read back through the `proxylog` (`query`, `get`,
//! `summary`, `stats`) and `currentpage` tools of an in-process MCP session. Each asserts the
//! secret's bytes appear nowhere in those answers (the whole JSON, text rendering included),
//! that the marker is there, that two requests with the same secret show the same hash, and
//! that a proxy started with `redact: false` shows the secret. Plus false positives, and a
//! real Chromium page (password field, `api_key` field, a token in `localStorage`).

use std::{
    io::Write,
    net::TcpStream,
    sync::{Arc, Mutex},
    time::Duration,
};

use agnt::{
    host::{Host, HostOptions},
    mcp::{Request, Session, Toolbox},
};
use serde_json::{Value, json};

use crate::proxy::{Client, Handler, Req, Upstream, respond, respond_chunked};

/// A host with its tools served in process, one upstream and one proxy (`p`) in front of it.
struct Rig {
    session: Session,
    _up: Upstream,
    addr: std::net::SocketAddr,
    _state: tempfile::TempDir,
}

impl Rig {
    fn start(redact: bool, handler: Handler) -> Rig {
        let state = tempfile::tempdir().unwrap();
        let host = Arc::new(Host::new(HostOptions::standalone(state.path().into())));
        let (tx, rx) = crossbeam_channel::unbounded();
        std::mem::forget(rx);
        let session = Session::new(Arc::new(Toolbox::in_process(host)), tx);
        let up = Upstream::start(handler);
        let mut rig = Rig {
            session,
            _up: up,
            addr: "127.0.0.1:1".parse().unwrap(),
            _state: state,
        };
        let st = rig.tool(
            "proxy",
            // The requests below say `Host: p` (and a Referer on http://p): an allowed host.
            json!({"action": "start", "id": "p", "target_url": rig._up.url(), "port": 0, "redact": redact, "allowed_hosts": ["p"]}),
        );
        assert_eq!(st["structuredContent"]["redact"], redact, "{st}");
        rig.addr = st["structuredContent"]["listen_addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let status = rig.tool("proxy", json!({"action": "status", "id": "p"}));
        assert_eq!(status["structuredContent"]["redact"], redact, "{status}");
        rig
    }

    /// The whole `tools/call` result (structured content and text), asserting success.
    fn tool(&self, name: &str, args: Value) -> Value {
        let resp = self.session.handle_sync(Request {
            id: 1.into(),
            method: "tools/call".into(),
            params: json!({"name": name, "arguments": args}),
        });
        let v = resp.outcome.expect("tools/call answered");
        assert_eq!(v["isError"], false, "{name} {v}");
        v
    }

    fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    fn log(&self, args: Value) -> Value {
        let mut a = json!({"proxy_id": "p"});
        a.as_object_mut()
            .unwrap()
            .extend(args.as_object().unwrap().clone());
        self.tool("proxylog", a)
    }

    fn http_ids(&self) -> Vec<String> {
        self.log(json!({"action": "query", "types": ["http"], "limit": 1000}))["structuredContent"]
            ["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Every answer an agent could get about this proxy's traffic, as one string.
    fn answers(&self) -> String {
        let mut all = Vec::new();
        let query = self.log(json!({"action": "query", "limit": 1000}));
        for e in query["structuredContent"]["entries"].as_array().unwrap() {
            all.push(self.log(json!({"action": "get", "entry_id": e["id"]})));
        }
        for answer in [
            &query,
            &self.log(json!({"action": "summary", "detail": ["errors", "http", "performance", "interactions", "mutations", "other"]})),
            &self.log(json!({"action": "stats"})),
        ] {
            assert!(answer["structuredContent"]["redact"].is_boolean(), "{answer}");
            all.push(answer.clone());
        }
        let pages = self.tool("currentpage", json!({"proxy_id": "p"}));
        for s in pages["structuredContent"]["sessions"].as_array().unwrap() {
            all.push(self.tool(
                "currentpage",
                json!({"proxy_id": "p", "action": "get", "session_id": s["id"]}),
            ));
            all.push(self.tool(
                "currentpage",
                json!({"proxy_id": "p", "action": "summary", "session_id": s["id"], "detail": ["interactions", "mutations", "errors", "resources"]}),
            ));
        }
        all.push(pages);
        all.iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The redaction markers in one entry's `get` answer.
    fn markers(&self, id: &str) -> Vec<String> {
        let text =
            self.log(json!({"action": "get", "entry_id": id}))["structuredContent"].to_string();
        let mut out: Vec<String> = text
            .match_indices("[redacted sha256:")
            .map(|(i, _)| text[i..i + text[i..].find(']').unwrap() + 1].to_string())
            .collect();
        out.sort();
        out
    }
}

/// The acceptance check for one kind: `exchange` runs one request through the proxy.
fn check(secrets: &[&str], handler: Handler, exchange: impl Fn(&mut Client)) {
    let rig = Rig::start(true, handler.clone());
    exchange(&mut rig.client());
    exchange(&mut rig.client());
    let ids = rig.http_ids();
    assert!(ids.len() >= 2, "{ids:?}");
    let all = rig.answers();
    for s in secrets {
        assert!(!all.contains(s), "secret {s:?} leaked:\n{all}");
    }
    assert!(all.contains("[redacted sha256:"), "no marker:\n{all}");
    let (first, second) = (rig.markers(&ids[0]), rig.markers(&ids[1]));
    assert!(
        !first.is_empty() && first == second,
        "{first:?} vs {second:?}"
    );
    assert!(all.contains("\"redact\":true"));

    let raw = Rig::start(false, handler);
    exchange(&mut raw.client());
    let all = raw.answers();
    for s in secrets {
        assert!(all.contains(s), "redact false must keep {s:?}:\n{all}");
    }
    assert!(!all.contains("[redacted sha256:") && all.contains("\"redact\":false"));
}

fn ok_json() -> Handler {
    Arc::new(|_req: &Req, s: &mut TcpStream| {
        respond(
            s,
            "200 OK",
            &[("Content-Type", "application/json")],
            b"{\"ok\":true}",
        )
    })
}

fn answer(status: &'static str, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> Handler {
    Arc::new(move |_req: &Req, s: &mut TcpStream| {
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        respond(s, status, &h, &body)
    })
}

fn send(c: &mut Client, raw: &str) {
    c.send(raw.as_bytes());
    c.read_response("GET").expect("response");
}

#[test]
fn request_header() {
    check(&["k3y-REQHDR-9f2", "b34rer-REQHDR-77"], ok_json(), |c| {
        send(
            c,
            "GET /api/me HTTP/1.1\r\nHost: p\r\nX-Api-Key: k3y-REQHDR-9f2\r\nAuthorization: Bearer b34rer-REQHDR-77\r\n\r\n",
        );
    });
}

#[test]
fn response_header() {
    let h = answer(
        "200 OK",
        vec![("X-Auth-Token", "t0k-RESPHDR-31".into())],
        b"{}".to_vec(),
    );
    check(&["t0k-RESPHDR-31"], h, |c| {
        send(c, "GET /login HTTP/1.1\r\nHost: p\r\n\r\n")
    });
}

#[test]
fn cookie_and_set_cookie() {
    let h = answer(
        "200 OK",
        vec![("Set-Cookie", "sid=s3t-COOKIE-42; Path=/; HttpOnly".into())],
        b"{}".to_vec(),
    );
    check(&["s3t-COOKIE-42", "c00k-COOKIE-17"], h, |c| {
        send(
            c,
            "GET /a HTTP/1.1\r\nHost: p\r\nCookie: theme=dark; sid=c00k-COOKIE-17\r\n\r\n",
        );
    });
    // Names and attributes stay readable.
    let rig = Rig::start(
        true,
        answer(
            "200 OK",
            vec![("Set-Cookie", "sid=v; Path=/; HttpOnly".into())],
            vec![],
        ),
    );
    send(
        &mut rig.client(),
        "GET / HTTP/1.1\r\nHost: p\r\nCookie: sid=x1\r\n\r\n",
    );
    let all = rig.answers();
    assert!(
        all.contains("sid=[redacted sha256:") && all.contains("; Path=/; HttpOnly"),
        "{all}"
    );
}

#[test]
fn query_string_and_page_session_url() {
    let html = answer(
        "200 OK",
        vec![("Content-Type", "text/html".into())],
        b"<html><head></head><body>hi</body></html>".to_vec(),
    );
    check(&["qs-TOKEN-5150"], html, |c| {
        send(
            c,
            "GET /page?access_token=qs-TOKEN-5150&page=2 HTTP/1.1\r\nHost: p\r\nAccept: text/html\r\n\r\n",
        );
    });
}

#[test]
fn referer() {
    check(&["ref-SECRET-808"], ok_json(), |c| {
        send(
            c,
            "GET /app.js HTTP/1.1\r\nHost: p\r\nReferer: http://p/dash?token=ref-SECRET-808\r\n\r\n",
        );
    });
}

#[test]
fn location() {
    let h = answer(
        "302 Found",
        vec![(
            "Location",
            "/callback?code=loc-CODE-4242&state=st-STATE-99".into(),
        )],
        vec![],
    );
    check(&["loc-CODE-4242", "st-STATE-99"], h, |c| {
        send(c, "GET /oauth HTTP/1.1\r\nHost: p\r\n\r\n")
    });
}

fn post(c: &mut Client, path: &str, ct: &str, body: &str) {
    send(
        c,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: p\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
}

#[test]
fn form_body() {
    check(&["pw-FORM-6161"], ok_json(), |c| {
        post(
            c,
            "/login",
            "application/x-www-form-urlencoded",
            "user=bob&password=pw-FORM-6161&remember=1",
        );
    });
}

#[test]
fn multipart_text_part() {
    let body = "--b0und\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n--b0und\r\nContent-Disposition: form-data; name=\"apiKey\"\r\n\r\nmp-APIKEY-7070\r\n--b0und--\r\n";
    check(&["mp-APIKEY-7070"], ok_json(), |c| {
        post(c, "/upload", "multipart/form-data; boundary=b0und", body);
    });
}

#[test]
fn nested_json_object_and_array() {
    let resp = br#"{"data":{"items":[{"id":1,"card":{"number":"4111-JSONOBJ-1111","exp":"12/30"}}]},"session":{"tokens":["arr-JSONARR-1","arr-JSONARR-2"]}}"#;
    let h = answer(
        "200 OK",
        vec![("Content-Type", "application/json".into())],
        resp.to_vec(),
    );
    check(&["JSONOBJ", "JSONARR", "12/30"], h, |c| {
        post(
            c,
            "/api/pay",
            "application/json",
            r#"{"user":{"profile":{"name":"bob","credentials":{"password":"req-JSONOBJ-2"}}}}"#,
        );
    });
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
    w.write_all(data).unwrap();
    drop(w);
    out
}

#[test]
fn gzip_json_response() {
    let body = gzip(br#"{"data":{"access_token":"gz-ACCESS-3030","expires_in":3600}}"#);
    let h = answer(
        "200 OK",
        vec![
            ("Content-Type", "application/json".into()),
            ("Content-Encoding", "gzip".into()),
        ],
        body,
    );
    check(&["gz-ACCESS-3030"], h, |c| {
        send(c, "GET /token HTTP/1.1\r\nHost: p\r\n\r\n")
    });
}

#[test]
fn br_json_response() {
    let body = brotli(br#"{"user":{"name":"bob","refresh_token":"br-REFRESH-4040"}}"#);
    let h: Handler = Arc::new(move |_req: &Req, s: &mut TcpStream| {
        respond_chunked(
            s,
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", "br"),
            ],
            &body,
        )
    });
    check(&["br-REFRESH-4040"], h, |c| {
        send(c, "GET /me HTTP/1.1\r\nHost: p\r\n\r\n")
    });
}

#[test]
fn chunked_request_body_splitting_the_secret() {
    check(&["chunk-SPLIT-secret-5555"], ok_json(), |c| {
        c.send(b"POST /api/login HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        // The secret straddles two chunks, each sent in its own write.
        for part in [
            r#"{"user":"bob","password":"chunk-SPL"#,
            r#"IT-secret-5555"}"#,
        ] {
            c.send(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
            c.s.flush().unwrap();
        }
        c.send(b"0\r\n\r\n");
        c.read_response("POST").expect("response");
    });
}

#[test]
fn false_positives_stay_visible() {
    let resp = br#"{"statusCode":"fp-SC-1","discard":"fp-DISCARD-2","passport":"fp-PASSPORT-3","tokenizer_version":"fp-TOKV-4","error":{"code":"fp-ERRCODE-5","message":"bad"}}"#;
    let rig = Rig::start(
        true,
        answer(
            "400 Bad Request",
            vec![("Content-Type", "application/json".into())],
            resp.to_vec(),
        ),
    );
    send(
        &mut rig.client(),
        "GET /x?statusCode=fp-Q-6&discard=fp-Q-7&passport=fp-Q-8&tokenizer_version=fp-Q-9 HTTP/1.1\r\nHost: p\r\n\r\n",
    );
    let all = rig.answers();
    for v in [
        "fp-SC-1",
        "fp-DISCARD-2",
        "fp-PASSPORT-3",
        "fp-TOKV-4",
        "fp-ERRCODE-5",
        "fp-Q-6",
        "fp-Q-7",
        "fp-Q-8",
        "fp-Q-9",
    ] {
        assert!(all.contains(v), "{v} was redacted:\n{all}");
    }
    assert!(!all.contains("[redacted sha256:"), "{all}");
}

/// A real headless Chromium: a password field, an `api_key` field and a token in
/// `localStorage`; the user types into both fields, the page posts them as JSON and as a
/// query string, and the agent runs `captureState` and `getElementInfo`: nothing of the three
/// appears in any entry or page session.
#[test]
fn chromium_page_secrets_stay_out_of_every_entry() {
    use crate::browser::{goto, launch_cdp, require_chromium};
    if !require_chromium() {
        return;
    }
    const PW: &str = "Pw-BROWSER-8c1e";
    const KEY: &str = "Key-BROWSER-27ad";
    const TOK: &str = "Tok-BROWSER-f00d";
    // The secrets are never in the page's source: the user types two, the app stores the third
    // at run time (here: CDP plays both parts).
    let page = "<!doctype html><html><head><title>login</title></head><body><form id=f>\
         <input type=password id=pw name=pw><input id=api_key name=api_key>\
         <button id=go type=button>go</button></form><script>\
         localStorage.setItem('theme', 'dark');\
         document.getElementById('go').onclick = () => {\
           const pw = document.getElementById('pw').value, k = document.getElementById('api_key').value;\
           fetch('/api/login', {method: 'POST', body: JSON.stringify({password: pw, api_key: k, token: localStorage.getItem('token')})});\
           fetch('/api/check?api_key=' + encodeURIComponent(k) + '&x=1');\
           console.error('login failed for /api/check?token=' + localStorage.getItem('token'));\
         };</script></body></html>";
    let seen = Arc::new(Mutex::new(0usize));
    let seen2 = seen.clone();
    let up = Upstream::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path.starts_with("/api/") {
            *seen2.lock().unwrap() += 1;
            return respond(
                s,
                "200 OK",
                &[("Content-Type", "application/json")],
                b"{\"ok\":true}",
            );
        }
        respond(
            s,
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8")],
            page.as_bytes(),
        )
    }));
    let px = crate::proxy::Px::start(&up.url(), |_| {});
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    goto(&mut cdp, &px, "/login");
    cdp.eval(&format!(
        "localStorage.setItem('token', '{TOK}'); document.getElementById('api_key').setAttribute('data-secret-hint', '{KEY}')"
    ));
    cdp.eval("document.getElementById('pw').focus()");
    cdp.call("Input.insertText", json!({"text": PW}));
    cdp.eval("document.getElementById('api_key').focus()");
    cdp.call("Input.insertText", json!({"text": KEY}));
    cdp.eval("document.getElementById('go').click()");
    assert!(crate::support::wait_until(
        Duration::from_secs(20),
        || *seen.lock().unwrap() >= 2
    ));
    let state =
        px.p.exec("__devtool.captureState()", Duration::from_secs(20))
            .unwrap();
    let state = state.result.unwrap();
    assert_eq!(state["local_storage"]["token"], "[redacted]", "{state}");
    assert_eq!(state["local_storage"]["theme"], "dark", "{state}");
    let info =
        px.p.exec(
            "__devtool.getElementInfo('#api_key')",
            Duration::from_secs(20),
        )
        .unwrap();
    assert_eq!(
        info.result.unwrap()["attributes"]["data-secret-hint"],
        "[redacted]"
    );
    // Wait for the typed inputs and the console error to arrive (batched every 250 ms).
    let ok = crate::support::wait_until(Duration::from_secs(20), || {
        let q = px.query(|q| q.limit = Some(1000)).to_string();
        q.matches("\"event_type\":\"input\"").count() >= 2 && q.contains("login failed")
    });
    let mut all = vec![px.query(|q| q.limit = Some(1000))];
    for e in all[0]["entries"].clone().as_array().unwrap() {
        all.push(px.p.log_get(e["id"].as_str().unwrap()).unwrap());
    }
    all.push(
        px.p.log_summary(
            &Default::default(),
            &[
                "errors".into(),
                "http".into(),
                "interactions".into(),
                "other".into(),
            ],
            100,
        )
        .unwrap(),
    );
    let pages = px.p.pages_list();
    for s in pages["sessions"].as_array().unwrap() {
        all.push(px.p.page_get(s["id"].as_str().unwrap()).unwrap());
    }
    all.push(pages);
    let all = all
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(ok, "inputs or console error missing:\n{all}");
    for s in [PW, KEY, TOK] {
        assert!(!all.contains(s), "{s} leaked:\n{all}");
    }
    assert!(
        all.contains("[redacted sha256:") && all.contains("/api/check?api_key=[redacted"),
        "{all}"
    );
}
