//! The compatibility suite: `tests/fixtures/go-compat/*.kdl` recreate (in our words, with the
//! same keys and structure) every example of the Go original's `.agnt.kdl` page and of its
//! `examples/.agnt.kdl`. Each must load without error or warning and mean what the original's
//! docs say; the assertions check the parsed model.

use std::{path::Path, time::Duration};

use super::*;
use crate::{
    supervisor::{CommandLine, ReadyCheck},
    urlwatch::{compile_matcher, find_url},
};

/// Loads a fixture as if it were `/proj/.agnt.kdl`, asserting it has no warnings.
fn fixture(name: &str) -> Config {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go-compat");
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let cfg = parse(&text, Path::new("/proj/.agnt.kdl")).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(cfg.warnings.is_empty(), "{name}: {:?}", cfg.warnings);
    cfg
}

fn shell(line: &str) -> CommandLine {
    CommandLine::Shell(line.into())
}

fn proxy<'c>(cfg: &'c Config, name: &str) -> &'c ProxyEntry {
    cfg.proxies.iter().find(|p| p.name == name).unwrap()
}

/// The URL the script's matchers take from `line`.
fn url_of(script: &ScriptConfig, line: &str) -> Option<String> {
    let m: Vec<_> = script
        .url_matchers
        .iter()
        .map(|p| compile_matcher(p).unwrap())
        .collect();
    find_url(line, &m)
}

#[test]
fn every_fixture_loads_without_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go-compat");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        fixture(&name);
        n += 1;
    }
    assert!(n >= 20, "only {n} fixtures");
}

#[test]
fn skeleton_and_project() {
    let cfg = fixture("skeleton.kdl");
    assert!(cfg.scripts.is_empty() && cfg.proxies.is_empty());
    assert_eq!(cfg.project, ProjectConfig::default());
    assert_eq!(cfg.project.port_conflict, PortConflict::Prompt);
    assert_eq!(cfg.hooks, HooksConfig::default());
    assert_eq!(cfg.toast, ToastConfig::default());
    assert_eq!(cfg.alerts, AlertsConfig::default());

    let cfg = fixture("project.kdl");
    assert_eq!(
        cfg.project,
        ProjectConfig {
            name: Some("inventory-service".into()),
            kind: Some("go".into()),
            port_conflict: PortConflict::Prompt,
        }
    );
    for (text, want) in [
        ("auto-kill", PortConflict::AutoKill),
        ("skip", PortConflict::Skip),
        ("fail", PortConflict::Fail),
    ] {
        let kdl = format!("project {{ port-conflict \"{text}\"; }}");
        let cfg = parse(&kdl, Path::new("/p/.agnt.kdl")).unwrap();
        assert_eq!(cfg.project.port_conflict, want);
    }
    let err = parse(
        "project {\n  port-conflict \"ask\"\n}",
        Path::new("/p/.agnt.kdl"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("/p/.agnt.kdl:2:3:") && err.contains("auto-kill"),
        "{err}"
    );
}

#[test]
fn scripts_and_command_forms() {
    let cfg = fixture("scripts.kdl");
    let web = cfg.script("web").unwrap();
    assert_eq!(web.command, shell("pnpm dev"));
    assert!(web.autostart);
    assert_eq!(web.ports, [5173]);
    assert_eq!(web.cwd.as_deref(), Some(Path::new("/proj/apps/site")));
    assert_eq!(
        url_of(web, "  Local:   http://localhost:5173/").as_deref(),
        Some("http://localhost:5173")
    );
    assert!(!web.probe_port);
    // A line the url-matchers match (colours and all) marks it ready.
    let Some(ReadyCheck::Log(ready)) = &web.ready else {
        panic!("{:?}", web.ready)
    };
    assert!(ready.is_match("  Local:   http://localhost:5173/"));
    assert!(!ready.is_match("  Local:   (pending)"));

    let cfg = fixture("command-forms.kdl");
    assert_eq!(cfg.script("dev").unwrap().command, shell("yarn dev"));
    assert_eq!(
        cfg.script("server").unwrap().command,
        CommandLine::Argv(vec![
            "node".into(),
            "main.js".into(),
            "--port".into(),
            "4100".into()
        ])
    );
    let win = cfg.script("win").unwrap();
    assert_eq!(win.shell.as_deref(), Some("C:\\Tools\\Git\\bin\\bash.exe"));
    assert_eq!(
        win.command,
        CommandLine::Argv(vec![
            "C:\\Tools\\Git\\bin\\bash.exe".into(),
            "-c".into(),
            "yarn dev".into()
        ])
    );
    let pwsh = cfg.script("pwsh").unwrap();
    assert_eq!(pwsh.shell_args, ["-NoProfile", "-Command"]);
    assert_eq!(
        pwsh.command,
        CommandLine::Argv(vec![
            "pwsh".into(),
            "-NoProfile".into(),
            "-Command".into(),
            "Get-ChildItem".into()
        ])
    );
    let vars = cfg.script("vars").unwrap();
    assert_eq!(vars.env.get("PORT").map(String::as_str), Some("8100"));
    assert_eq!(vars.env.get("LOG_LEVEL").map(String::as_str), Some("debug"));
}

#[test]
fn readiness_health_and_restart() {
    let cfg = fixture("readiness.kdl");
    let backend = cfg.script("backend").unwrap();
    assert_eq!(backend.ports, [5100]);
    assert_eq!(
        url_of(backend, "      Now listening on http://localhost:5100").as_deref(),
        Some("http://localhost:5100")
    );
    let indexer = cfg.script("indexer").unwrap();
    assert!(indexer.probe_port);
    assert!(matches!(indexer.ready, Some(ReadyCheck::Port(8200))));

    let cfg = fixture("health.kdl");
    let api = cfg.script("api").unwrap();
    assert!(api.auto_restart);
    let error = regex::Regex::new(api.error_pattern.as_deref().unwrap()).unwrap();
    assert!(error.is_match("Traceback (most recent call last):"));
    let healthy = regex::Regex::new(api.healthy_pattern.as_deref().unwrap()).unwrap();
    assert!(healthy.is_match("Watching for file changes with StatReloader"));

    for (kdl, wants) in [
        (
            "scripts {\n w {\n run \"x\"\n probe-port true\n }\n}",
            "probe-port needs `ports N`",
        ),
        (
            "scripts {\n w {\n run \"x\"\n ports 1\n url-matchers \"{url}\"\n probe-port true\n }\n}",
            "exclude each other",
        ),
        (
            "scripts { w { run \"x\"; error-pattern \"(\"; } }",
            "error-pattern: invalid regex",
        ),
    ] {
        let err = parse(kdl, Path::new("/p/.agnt.kdl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(wants), "{kdl}: {err}");
    }
}

#[test]
fn depends_on_forms_and_timeouts() {
    let cfg = fixture("depends-on.kdl");
    let client = cfg.script("client").unwrap();
    assert_eq!(
        client.depends_on,
        [Dependency {
            script: "server".into(),
            timeout: DEFAULT_DEPENDENCY_TIMEOUT
        }]
    );
    assert_eq!(DEFAULT_DEPENDENCY_TIMEOUT, Duration::from_secs(120));
    assert!(cfg.script("server").unwrap().depends_on.is_empty());

    let cfg = fixture("depends-on-timeouts.kdl");
    let dep = |script: &str, secs| Dependency {
        script: script.into(),
        timeout: Duration::from_secs(secs),
    };
    assert_eq!(
        cfg.script("client").unwrap().depends_on,
        [dep("server", 45), dep("cache", 45)]
    );
    assert_eq!(
        cfg.script("admin").unwrap().depends_on,
        [dep("server", 20), dep("jobs", 120)]
    );
    // A dependency that is not defined is a warning (the dependent starts anyway).
    let cfg = parse(
        "scripts { a { run \"x\"; depends-on \"ghost\"; } }",
        Path::new("/p/.agnt.kdl"),
    )
    .unwrap();
    assert!(cfg.warnings[0].contains("\"ghost\""), "{:?}", cfg.warnings);
}

#[test]
fn proxies_linked_explicit_and_filtered() {
    let cfg = fixture("proxy-linked.kdl");
    let site = proxy(&cfg, "site");
    assert_eq!(site.script.as_deref(), Some("dev"));
    assert_eq!(site.fallback_port, Some(5173));
    assert!(!site.autostart && site.target.is_none());

    let cfg = fixture("proxy-explicit.kdl");
    let p = proxy(&cfg, "payments");
    assert_eq!(p.target.as_deref(), Some("http://localhost:8300"));
    assert!(p.autostart);

    let cfg = fixture("proxy-url-pattern.kdl");
    let p = proxy(&cfg, "desktop-app");
    let re = regex::Regex::new(p.url_pattern.as_deref().unwrap()).unwrap();
    assert!(re.is_match("http://localhost:34115"));
    assert!(!re.is_match("http://localhost:5173"));

    let cfg = fixture("proxy-keys.kdl");
    let all = proxy(&cfg, "everything");
    assert_eq!(all.target.as_deref(), Some("http://localhost:9100"));
    assert_eq!(all.bind.as_deref(), Some("127.0.0.1"));
    assert_eq!(all.websocket, Some(true));
    assert_eq!(all.max_log_size, Some(2500));
    assert_eq!(all.verify_tls, Some(false));
    assert!(all.autostart);
    let legacy = proxy(&cfg, "legacy");
    assert_eq!(legacy.target.as_deref(), Some("http://127.0.0.1:9200"));
    assert_eq!(legacy.verify_tls, None);
    assert!(!legacy.autostart);
    // `port` alone is the upstream's port (host defaults to localhost), not the listen port.
    let short = proxy(&cfg, "short");
    assert_eq!(short.target.as_deref(), Some("http://localhost:9300"));
    assert_eq!(short.port, None);
    let remote = proxy(&cfg, "remote");
    assert_eq!(remote.target.as_deref(), Some("http://10.1.2.3:9400"));
}

#[test]
fn hooks_toast_alerts_ai() {
    assert_eq!(
        fixture("hooks.kdl").hooks,
        HooksConfig {
            on_response_toast: true,
            on_response_indicator: true,
            on_response_sound: false
        }
    );
    assert_eq!(
        fixture("toast.kdl").toast,
        ToastConfig {
            duration: Duration::from_millis(6500),
            position: "top-left".into(),
            max_visible: 5
        }
    );
    let alerts = fixture("alerts.kdl").alerts;
    assert_eq!(
        alerts,
        AlertsConfig {
            enabled: true,
            patterns: vec![AlertPattern {
                id: "queue-down".into(),
                pattern: "AMQP connection refused".into(),
                severity: "warning".into()
            }],
            disable: vec!["connection-refused".into()],
            batch_window: Duration::from_secs(5),
            dedupe_window: Duration::from_secs(90),
        }
    );
    let ai = fixture("ai.kdl");
    assert!(ai.scripts.is_empty() && ai.proxies.is_empty());
}

#[test]
fn complete_examples() {
    let cfg = fixture("example-vite.kdl");
    let dev = cfg.script("dev").unwrap();
    assert!(dev.autostart);
    let banner = "  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m5173\x1b[22m/\x1b[39m";
    assert_eq!(
        url_of(dev, banner).as_deref(),
        Some("http://localhost:5173")
    );
    assert_eq!(
        url_of(dev, "  ➜  Network: http://0.0.0.0:5173/").as_deref(),
        Some("http://127.0.0.1:5173")
    );
    assert_eq!(proxy(&cfg, "app").script.as_deref(), Some("dev"));
    assert!(cfg.hooks.on_response_toast && cfg.hooks.on_response_indicator);

    let cfg = fixture("example-fullstack.kdl");
    let front = cfg.script("frontend").unwrap();
    assert_eq!(front.cwd.as_deref(), Some(Path::new("/proj/web")));
    assert_eq!(front.depends_on[0].script, "backend");
    assert_eq!(front.ports, [5173]);
    assert_eq!(cfg.script("backend").unwrap().ports, [4000]);
    assert_eq!(
        url_of(
            cfg.script("backend").unwrap(),
            "Listening on http://127.0.0.1:4000"
        )
        .as_deref(),
        Some("http://127.0.0.1:4000")
    );
    let app = proxy(&cfg, "app");
    assert_eq!(
        (app.script.as_deref(), app.fallback_port),
        (Some("frontend"), Some(5173))
    );

    let cfg = fixture("example-dotnet.kdl");
    assert!(cfg.script("worker").unwrap().probe_port);
    assert!(matches!(
        cfg.script("worker").unwrap().ready,
        Some(ReadyCheck::Port(8080))
    ));
    assert_eq!(cfg.script("api").unwrap().ports, [5000]);
    assert_eq!(proxy(&cfg, "app").fallback_port, Some(5000));
}

#[test]
fn the_examples_file_and_its_framework_snippets() {
    let cfg = fixture("examples-file.kdl");
    let names: Vec<_> = cfg.scripts.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["static", "dev", "api", "css"]);
    assert!(cfg.scripts.iter().all(|s| s.autostart));
    let dev = cfg.script("dev").unwrap();
    assert_eq!(
        dev.command,
        CommandLine::Argv(vec!["npm".into(), "run".into(), "dev".into()])
    );
    assert_eq!(
        dev.env.get("NODE_ENV").map(String::as_str),
        Some("development")
    );
    assert_eq!(
        url_of(dev, "  Local:   http://localhost:3000/").as_deref(),
        Some("http://localhost:3000")
    );
    assert_eq!(
        cfg.script("api").unwrap().cwd.as_deref(),
        Some(Path::new("/proj/./backend"))
    );
    let frontend = proxy(&cfg, "frontend");
    assert_eq!(frontend.script.as_deref(), Some("dev"));
    assert_eq!(frontend.wait_for, ["api"]);
    assert_eq!(proxy(&cfg, "api").max_log_size, Some(2000));
    assert_eq!(
        proxy(&cfg, "backend").target.as_deref(),
        Some("http://localhost:4000")
    );
    assert_eq!(
        proxy(&cfg, "external").target.as_deref(),
        Some("http://192.168.1.100:3000")
    );
    assert!(!cfg.hooks.on_response_sound);
    assert_eq!(cfg.toast, ToastConfig::default());

    let cfg = fixture("frameworks.kdl");
    for (script, line, url) in [
        (
            "wails",
            "Using DevServer URL: http://localhost:34115",
            "http://localhost:34115",
        ),
        (
            "astro",
            "┃ Local    http://localhost:4321/",
            "http://localhost:4321",
        ),
        (
            "jekyll",
            "    Server address: http://127.0.0.1:4000/",
            "http://127.0.0.1:4000",
        ),
        (
            "hugo",
            "Web Server is available at http://localhost:1313/ (bind address 127.0.0.1)",
            "http://localhost:1313",
        ),
        (
            "vite",
            "  ➜  Local:   http://localhost:5173/",
            "http://localhost:5173",
        ),
    ] {
        let s = cfg.script(script).unwrap();
        assert_eq!(url_of(s, line).as_deref(), Some(url), "{script}");
    }
    assert_eq!(cfg.proxies.len(), 5);
}

#[test]
fn unknown_keys_warn_with_their_position_and_never_fail() {
    let text = "scripts {\n  dev {\n    run \"x\"\n    colour \"blue\"\n  }\n}\nproxies {\n  p {\n    url \"http://localhost:1\"\n    flavour 3\n  }\n}\nextras {\n}\n";
    let cfg = parse(text, Path::new("/p/.agnt.kdl")).unwrap();
    assert_eq!(cfg.warnings.len(), 3, "{:?}", cfg.warnings);
    assert!(
        cfg.warnings[0].starts_with("/p/.agnt.kdl:4:5: unknown key \"colour\" in script \"dev\""),
        "{:?}",
        cfg.warnings
    );
    assert!(
        cfg.warnings[1].starts_with("/p/.agnt.kdl:10:5: unknown key \"flavour\""),
        "{:?}",
        cfg.warnings
    );
    assert!(
        cfg.warnings[2].starts_with("/p/.agnt.kdl:13:1: unknown key \"extras\""),
        "{:?}",
        cfg.warnings
    );
}
