//! Runs one agnt proxy in front of a URL and prints the traffic log as it grows.
//!
//! `cargo run --release --example proxy -- http://localhost:3000 [PORT] [--quiet] [--no-redact]`
//! (PORT 0 = any free port; default = the stable hash port). `--quiet` prints nothing but the
//! listen URL (used by the benchmarks); `--no-redact` logs raw traffic (secrets included).

#![allow(clippy::print_stdout)]

use std::time::Duration;

use agnt::proxy::{LogQuery, ProxyConfig, ProxyManager};

fn main() {
    let _ = env_logger::try_init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quiet = args.iter().any(|a| a == "--quiet");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let Some(target) = pos.first() else {
        eprintln!("usage: proxy TARGET_URL [PORT] [--quiet]");
        std::process::exit(2);
    };
    let mut cfg = ProxyConfig::new("example", target.as_str(), ".");
    cfg.redact = !args.iter().any(|a| a == "--no-redact");
    if let Some(p) = pos.get(1) {
        cfg.port = Some(p.parse().expect("PORT must be a number"));
    }
    let mgr = ProxyManager::new();
    let proxy = match mgr.start(cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("proxy {} -> {}", proxy.url(), target);
    let mut cursor = 0;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if quiet {
            continue;
        }
        let q = LogQuery {
            since_seq: Some(cursor),
            limit: Some(1000),
            ..Default::default()
        };
        let Ok(v) = proxy.log_query(&q) else { continue };
        for e in v["entries"].as_array().into_iter().flatten() {
            cursor = cursor.max(e["seq"].as_u64().unwrap_or(0));
            println!("{}", e);
        }
    }
}
