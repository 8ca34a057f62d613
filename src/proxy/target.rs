//! The dev server a proxy forwards to (`Target`): parsed once from `target_url` at start, with
//! `localhost` resolved to 127.0.0.1 so the loop never resolves names, the TLS connector of an
//! `https://` target (verification per `crate::tls`'s rule unless `verify_tls` says), and the
//! origins (`http(s)://`, and `ws(s)://` for bodies) whose URLs are rewritten to the proxy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use crate::{Error, Result, tls::Connector};

/// Where the proxy forwards to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Resolved address (IPv4 `127.0.0.1` for `localhost`).
    pub addr: SocketAddr,
    /// `Host` header value sent upstream.
    pub host_header: String,
    /// Host name without port (for cookie `Domain=`).
    pub host: String,
    /// Origins (`http://host:port`, `https://…` for a TLS target) whose `Location`s we rewrite
    /// to the proxy.
    pub origins: Vec<String>,
    /// `Some` for an `https://` target: how to open TLS to it.
    pub tls: Option<Connector>,
}

impl Target {
    /// Parses `url` (`http://` or `https://`; no scheme means `http://`). `verify_tls` is the
    /// caller's explicit choice for an `https://` target (`None`: the default rule).
    pub(crate) fn parse(url: &str, verify_tls: Option<bool>) -> Result<Target> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid target_url {url:?}: {why} (expected http://host:port or https://host:port)"
            ))
        };
        let (rest, https) = if let Some(r) = strip_scheme(url, "http://") {
            (r, false)
        } else if let Some(r) = strip_scheme(url, "https://") {
            (r, true)
        } else if url.contains("://") {
            return Err(bad("unsupported scheme"));
        } else {
            (url, false)
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty()
            || authority.contains('@')
            || authority
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(bad("missing or bad host"));
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let (h, p) = h.split_once(']').ok_or_else(|| bad("bad IPv6 literal"))?;
            (h.to_string(), p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port: u16 = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None if https => 443,
            None => 80,
        };
        let addr = if host.eq_ignore_ascii_case("localhost") {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            SocketAddr::new(ip, port)
        } else {
            let addrs: Vec<SocketAddr> = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| Error::invalid(format!("cannot resolve target host {host:?}: {e}")))?
                .collect();
            *addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .ok_or_else(|| bad("host resolves to nothing"))?
        };
        let scheme = if https { "https" } else { "http" };
        let mut authorities = vec![authority.to_string()];
        if port == if https { 443 } else { 80 } {
            authorities.push(format!("{authority}:{port}"));
        }
        if host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" {
            authorities.push(format!("localhost:{port}"));
            authorities.push(format!("127.0.0.1:{port}"));
        }
        let mut origins: Vec<String> = authorities
            .iter()
            .map(|a| format!("{scheme}://{a}"))
            .collect();
        origins.sort();
        origins.dedup();
        let tls = if https {
            let verify = crate::tls::should_verify(&host, verify_tls);
            Some(Connector::new(&host, verify)?)
        } else {
            None
        };
        Ok(Target {
            addr,
            host_header: authority.to_string(),
            host,
            origins,
            tls,
        })
    }
}

/// `url` without `scheme` (matched without regard to case).
fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &url[scheme.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parsing() {
        let p = |u: &str| Target::parse(u, None);
        let t = p("http://localhost:3000/app").unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(t.host_header, "localhost:3000");
        assert!(t.origins.contains(&"http://127.0.0.1:3000".to_string()));
        assert!(t.tls.is_none());
        assert_eq!(p("127.0.0.1:8080").unwrap().addr.port(), 8080);
        assert!(p("ftp://x").is_err());
        assert!(p("http://").is_err());
        assert!(p("https://").is_err());
        assert!(p("http://a b:1").is_err());
        assert!(p("http://localhost:99999").is_err());
    }

    #[test]
    fn https_targets() {
        let t = Target::parse("HTTPS://localhost:5173/", None).unwrap();
        assert_eq!(t.addr, "127.0.0.1:5173".parse().unwrap());
        assert_eq!(t.host_header, "localhost:5173");
        assert!(
            !t.tls.as_ref().unwrap().verifies(),
            "loopback: not verified by default"
        );
        assert!(t.origins.contains(&"https://127.0.0.1:5173".to_string()));
        assert!(!t.origins.iter().any(|o| o.starts_with("http:")));
        let t = Target::parse("https://127.0.0.1", Some(true)).unwrap();
        assert_eq!(t.addr.port(), 443);
        assert!(t.tls.unwrap().verifies());
        assert!(t.origins.contains(&"https://127.0.0.1:443".to_string()));
    }
}
