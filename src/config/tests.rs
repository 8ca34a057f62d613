//! Unit tests of `.agnt.kdl` parsing: every key, the errors with their `file:line:col`, and
//! the walk up to the config file.

use super::*;
use crate::supervisor::{CommandLine, ReadyCheck};

fn check(text: &str) -> Result<Config> {
    parse(text, Path::new("/proj/.agnt.kdl"))
}

#[test]
fn full_schema_v1() {
    let cfg = check(
        r#"
scripts {
dev {
    run "npm run dev"
    autostart true
    env { PORT "3000"; NODE_ENV "development"; }
    cwd "web"
    url-matchers "Local:\\s+(\\S+)"
    ready "ready in"
    ready-timeout 90
}
api {
    command "cargo" "run"
    args "--" "--port" "8080"
    ready-port 8080
}
}
proxies {
app { target "http://localhost:3000"; port 12345; autostart true; max-log-size 500; response-timeout "5m"; body-min-bytes 10; stream-idle-timeout 3600; }
web { script "dev"; redact false; redact-names "pin"; verify-tls true; }
}
redact-names "otp" "x_ref"
hooks {
on-response { toast true; }
}
"#,
    )
    .unwrap();
    assert_eq!(cfg.root, Path::new("/proj"));
    let dev = cfg.script("dev").unwrap();
    assert_eq!(dev.command, CommandLine::Shell("npm run dev".into()));
    assert!(dev.autostart);
    assert_eq!(dev.env.get("PORT").map(String::as_str), Some("3000"));
    assert_eq!(dev.cwd.as_deref(), Some(Path::new("/proj/web")));
    assert_eq!(dev.url_matchers.len(), 1);
    assert!(matches!(&dev.ready, Some(ReadyCheck::Log(re)) if re.is_match("ready in 300ms")));
    assert_eq!(dev.ready_timeout, Duration::from_secs(90));
    let api = cfg.script("api").unwrap();
    assert_eq!(
        api.command,
        CommandLine::Argv(vec![
            "cargo".into(),
            "run".into(),
            "--".into(),
            "--port".into(),
            "8080".into()
        ])
    );
    assert!(!api.autostart);
    assert!(matches!(api.ready, Some(ReadyCheck::Port(8080))));
    assert_eq!(
        cfg.proxies[0],
        ProxyEntry {
            name: "app".into(),
            target: Some("http://localhost:3000".into()),
            script: None,
            port: Some(12345),
            autostart: true,
            max_log_size: Some(500),
            allowed_hosts: Vec::new(),
            allow_lan: false,
            redact: true,
            redact_names: vec!["otp".into(), "x_ref".into()],
            deadlines: ProxyDeadlines {
                response_timeout: Some(Duration::from_secs(300)),
                body_min_bytes: Some(10),
                stream_idle_timeout: Some(Duration::from_secs(3600)),
                ..ProxyDeadlines::default()
            },
            url_pattern: None,
            fallback_port: None,
            bind: None,
            websocket: None,
            wait_for: Vec::new(),
            verify_tls: None,
        }
    );
    assert_eq!(cfg.proxies[1].script.as_deref(), Some("dev"));
    assert!(!cfg.proxies[1].redact);
    assert_eq!(cfg.proxies[1].redact_names, ["pin", "otp", "x_ref"]);
    assert_eq!(cfg.proxies[1].verify_tls, Some(true));
}

#[test]
fn kdl_v2_and_props() {
    let cfg = check("scripts {\n  dev autostart=#true {\n    run \"make dev\"\n  }\n}\n").unwrap();
    assert!(cfg.scripts[0].autostart);
}

#[test]
fn spec_carries_env_cwd_ready() {
    let cfg =
        check("scripts { a { run \"x\"; env { K \"v\"; }; cwd \"sub\"; ready-port 9; } }").unwrap();
    let spec = cfg.scripts[0].to_spec("a", Path::new("/proj"));
    assert_eq!(spec.env.get("K").map(String::as_str), Some("v"));
    assert_eq!(spec.cwd.as_deref(), Some(Path::new("/proj/sub")));
    assert!(matches!(spec.ready, Some(ReadyCheck::Port(9))));
}

#[test]
fn syntax_error_names_line_and_column() {
    let err = check("scripts {\n  dev {\n    run \"npm\n").unwrap_err();
    let Error::Config { line, column, .. } = &err else {
        panic!("{err}")
    };
    assert!(*line >= 2, "{err}");
    assert!(*column >= 1);
    assert!(err.to_string().starts_with("/proj/.agnt.kdl:"), "{err}");
}

#[test]
fn semantic_errors_name_the_node() {
    let err = check("scripts {\n  dev {\n    autostart 7\n    run \"x\"\n  }\n}\n").unwrap_err();
    assert!(
        err.to_string()
            .contains(":3:5: autostart expects true or false"),
        "{err}"
    );
    let err = check("scripts {\n  dev { autostart true; }\n}\n").unwrap_err();
    assert!(
        err.to_string().contains(":2:3: script \"dev\" needs run"),
        "{err}"
    );
    let err = check("scripts { a { run \"x\"; command \"y\"; } }").unwrap_err();
    assert!(err.to_string().contains("both run and command"), "{err}");
    let err = check("scripts { a { run \"x\"; ready \"(\"; } }").unwrap_err();
    assert!(err.to_string().contains("invalid ready regex"), "{err}");
    let err = check("scripts { a { run \"x\"; ready-port 70000; } }").unwrap_err();
    assert!(
        err.to_string()
            .contains("ready-port expects an integer in 1..=65535"),
        "{err}"
    );
    let err = check("proxies { p { host \"h\"; } }").unwrap_err();
    assert!(err.to_string().contains("needs target"), "{err}");
    let err = check("proxies { p { script \"nope\"; } }").unwrap_err();
    assert!(err.to_string().contains("not defined"), "{err}");
    let err = check("proxies { p { target \"https://h\"; verify-tls \"yes\"; } }").unwrap_err();
    assert!(err.to_string().contains("verify-tls"), "{err}");
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "{",
        "}",
        "scripts",
        "scripts {",
        "\u{0}\u{feff}",
        "scripts { a { env { } } }",
        "proxies { x }",
    ] {
        let _ = check(text);
    }
}

#[test]
fn alerts_and_channel_blocks() {
    let c = check(
        r#"alerts { enabled true; batch-window 3
             patterns {
               db { pattern "ECONNREFUSED"; severity "warning"; }
               boom { pattern "^BOOM"; }
             }
             disable "go-panic" "node-uncaught"; }
           channel { events "panel" "crash"; rate 3; }"#,
    )
    .unwrap();
    assert!(c.alerts.enabled);
    assert_eq!(c.alerts.patterns.len(), 2);
    assert_eq!(c.alerts.patterns[0].severity, "warning");
    assert_eq!(c.alerts.patterns[1].severity, "error");
    assert_eq!(c.alerts.disable, ["go-panic", "node-uncaught"]);
    assert_eq!(
        c.channel.events.as_deref(),
        Some(&["panel".to_string(), "crash".to_string()][..])
    );
    assert_eq!(c.channel.rate, Some(3));
    let e = check(r#"alerts { patterns { x { pattern "("; } } }"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid regex"), "{e}");
    let e = check(r#"channel { events "nope"; }"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("valid: panel, crash, incident"), "{e}");
    assert_eq!(check("").unwrap().alerts, AlertsConfig::default());
}

#[test]
fn find_walks_up() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    assert_eq!(find(&deep), None);
    std::fs::write(dir.path().join("a").join(FILE_NAME), "").unwrap();
    assert_eq!(find(&deep), Some(dir.path().join("a").join(FILE_NAME)));
}
