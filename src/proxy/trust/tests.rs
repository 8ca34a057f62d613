//! Unit tests of the proxy's trust checks.

use super::*;

fn trust(allowed: &[&str], bind: &str, lan: bool) -> Trust {
    let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    Trust::new(&allowed, lan, SocketAddr::new(bind.parse().unwrap(), 8080)).unwrap()
}

fn hs(pairs: &[(&str, &str)]) -> Vec<Header> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn hosts() {
    let t = trust(
        &["myapp.test", ".dev.example", "tunnel.example:443"],
        "127.0.0.1",
        false,
    );
    for ok in [
        "localhost",
        "localhost:8080",
        "LOCALHOST:1",
        "127.0.0.1",
        "127.0.0.1:8080",
        "[::1]",
        "[::1]:8080",
        "app.localhost:8080",
        "myapp.test",
        "MyApp.test:3000",
        "dev.example",
        "a.dev.example:1",
        "tunnel.example:443",
    ] {
        assert!(t.host_ok(Some(ok)), "{ok}");
    }
    assert!(t.host_ok(None));
    for bad in [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
        "127.0.0.2",
        "192.168.1.5:8080",
        "tunnel.example:80",
        "myapp.test.evil",
        "",
        "[::1",
        "a b",
    ] {
        assert!(!t.host_ok(Some(bad)), "{bad}");
    }
    let lan = trust(&[], "0.0.0.0", true);
    assert!(lan.host_ok(Some("192.168.1.5:8080")));
    assert!(!lan.host_ok(Some("evil.example:8080")));
    let one = trust(&[], "192.168.1.5", true);
    assert!(one.host_ok(Some("192.168.1.5:8080")));
}

#[test]
fn requests_and_loops() {
    let t = trust(&[], "127.0.0.1", false);
    assert!(t.check_request(&hs(&[("Host", "localhost:8080")])).is_ok());
    let e = t
        .check_request(&hs(&[("Host", "evil.example")]))
        .unwrap_err();
    assert_eq!(e.0, 403);
    assert!(
        e.2.contains("evil.example") && e.2.contains("allowed-hosts"),
        "{}",
        e.2
    );
    let mut h = hs(&[("Host", "localhost"), ("Via", "1.1 other")]);
    t.add_via(&mut h);
    assert!(
        http::header_str(&h, "via")
            .unwrap()
            .starts_with("1.1 other, 1.1 agnt-"),
        "{h:?}"
    );
    assert_eq!(t.check_request(&h).unwrap_err().0, 508);
    let other = trust(&[], "127.0.0.1", false);
    assert!(
        other.check_request(&h).is_ok(),
        "another proxy's Via is not a loop"
    );
}

#[test]
fn channel_needs_origin_and_key() {
    let t = trust(&["myapp.test"], "127.0.0.1", false);
    let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let key = format!("/__agnt/ws?key={}", t.key);
    let ok = |target: &str, origin: Option<&str>| {
        let mut h = hs(&[("Host", "localhost:8080")]);
        if let Some(o) = origin {
            h.push(("Origin".into(), o.as_bytes().to_vec()));
        }
        t.channel_ok(target, &h, peer, None)
    };
    assert!(ok(&key, Some("http://localhost:8080")).is_ok());
    assert!(ok(&key, Some("http://127.0.0.1:8080")).is_ok());
    assert!(ok(&key, Some("http://[::1]:8080")).is_ok());
    assert!(ok(&key, Some("https://myapp.test")).is_ok());
    assert!(ok(&key, Some("http://myapp.test:5173")).is_ok());
    assert!(ok(&key, None).is_err());
    assert!(ok(&key, Some("null")).is_err());
    assert!(ok(&key, Some("http://localhost:3000")).is_err());
    assert!(ok(&key, Some("http://evil.example:8080")).is_err());
    assert!(ok(&key, Some("http://localhost:8080/x")).is_err());
    assert!(ok("/__agnt/ws", Some("http://localhost:8080")).is_err());
    assert!(ok("/__agnt/ws?key=00", Some("http://localhost:8080")).is_err());
    assert!(std::str::from_utf8(&t.script_tag).unwrap().contains(&t.key));
}

#[test]
#[cfg(target_os = "linux")]
fn an_ipv4_mapped_loopback_peer_is_checked_like_127_0_0_1() {
    // On a `::` listener a local page connects from ::ffff:127.0.0.1. Its owner must still be
    // looked up: here no such socket exists, so the owner is unknown and the channel refused.
    let t = trust(&[], "::", true);
    let target = format!("/__agnt/ws?key={}", t.key);
    let mut h = hs(&[("Host", "localhost:8080")]);
    h.push(("Origin".into(), b"http://localhost:8080".to_vec()));
    for peer in ["[::ffff:127.0.0.1]:1", "127.0.0.1:1"] {
        let peer: SocketAddr = peer.parse().unwrap();
        let local: SocketAddr = "[::ffff:127.0.0.1]:8080".parse().unwrap();
        let e = t
            .channel_ok(&target, &h, peer, Some(local))
            .expect_err("an unknown owner is refused");
        assert!(e.contains("owner is unknown"), "{peer}: {e}");
    }
}

#[test]
fn start_checks() {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let any: IpAddr = "0.0.0.0".parse().unwrap();
    assert_eq!(check_start(lo, false, 1000).unwrap(), None);
    let e = check_start(any, false, 1000).unwrap_err().to_string();
    assert!(e.contains("allow_lan"), "{e}");
    assert!(
        check_start(any, true, 1000)
            .unwrap()
            .unwrap()
            .contains("every network")
    );
    assert!(check_start(lo, false, MAX_LOG_SIZE).is_ok());
    let e = check_start(lo, false, MAX_LOG_SIZE + 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("100000"), "{e}");
    let l: SocketAddr = "127.0.0.1:9000".parse().unwrap();
    assert!(refuse_self_target("127.0.0.1:9000".parse().unwrap(), l).is_err());
    assert!(refuse_self_target("127.0.0.1:9001".parse().unwrap(), l).is_ok());
    let any_l: SocketAddr = "0.0.0.0:9000".parse().unwrap();
    assert!(refuse_self_target("127.0.0.1:9000".parse().unwrap(), any_l).is_err());
}

#[test]
fn budgets() {
    let mut b = PageBudget::new();
    let t0 = Instant::now();
    for _ in 0..SCREENSHOTS_PER_MINUTE {
        b.admit(true, 100, t0).unwrap();
    }
    assert!(b.admit(true, 100, t0).is_err());
    assert!(
        b.admit(false, 100, t0).is_ok(),
        "events have their own budget"
    );
    assert!(b.admit(false, MAX_EVENT_MESSAGE + 1, t0).is_err());
    assert!(b.admit(true, 100, t0 + Duration::from_secs(61)).is_ok());
}
