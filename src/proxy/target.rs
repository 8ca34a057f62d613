//! The dev server a proxy forwards to (`Target`): parsed once from `target_url` at start, with
//! `localhost` resolved to 127.0.0.1 so the loop never resolves names, and the origins whose
//! `Location`s are rewritten to the proxy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use crate::{Error, Result};

/// Where the proxy forwards to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Resolved address (IPv4 `127.0.0.1` for `localhost`).
    pub addr: SocketAddr,
    /// `Host` header value sent upstream.
    pub host_header: String,
    /// Host name without port (for cookie `Domain=`).
    pub host: String,
    /// Origins (`http://host:port`) whose `Location`s we rewrite to the proxy.
    pub origins: Vec<String>,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid target_url {url:?}: {why} (expected http://host:port)"
            ))
        };
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(bad("https targets are not supported yet"));
        } else if url.contains("://") {
            return Err(bad("unsupported scheme"));
        } else {
            url
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
        let mut origins = vec![format!("http://{authority}")];
        if port == 80 {
            origins.push(format!("http://{authority}:80"));
        }
        if host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" {
            origins.push(format!("http://localhost:{port}"));
            origins.push(format!("http://127.0.0.1:{port}"));
        }
        origins.sort();
        origins.dedup();
        Ok(Target {
            addr,
            host_header: authority.to_string(),
            host,
            origins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parsing() {
        let t = Target::parse("http://localhost:3000/app").unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(t.host_header, "localhost:3000");
        assert!(t.origins.contains(&"http://127.0.0.1:3000".to_string()));
        assert_eq!(Target::parse("127.0.0.1:8080").unwrap().addr.port(), 8080);
        assert!(Target::parse("https://x").is_err());
        assert!(Target::parse("http://").is_err());
        assert!(Target::parse("http://a b:1").is_err());
        assert!(Target::parse("http://localhost:99999").is_err());
    }
}
