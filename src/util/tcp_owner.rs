//! Who owns a TCP socket on this machine: the uid of the socket with a given local/remote
//! address pair, read from Linux `/proc/net/tcp{,6}`. The proxy uses it to learn which user's
//! process opened a loopback connection (the connecting side's entry: local = the peer's
//! address, remote = ours). Parsing is pure ([`find_uid`]); elsewhere than Linux the answer is
//! `None`.

use std::net::{IpAddr, SocketAddr};

/// The uid owning the socket bound to `local` and connected to `remote`, if the kernel lists
/// it (`None` when `/proc` is unavailable or no entry matches).
pub fn socket_uid(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        find_uid(&text, local, remote)
    })
}

/// The uid column of the line of a `/proc/net/tcp{,6}` text whose addresses are `local` and
/// `remote` (IPv4 addresses also match their IPv4-mapped IPv6 form).
pub fn find_uid(text: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let want: Vec<(String, String)> = forms(local)
        .into_iter()
        .flat_map(|l| forms(remote).into_iter().map(move |r| (l.clone(), r)))
        .collect();
    text.lines().skip(1).find_map(|line| {
        let mut f = line.split_ascii_whitespace();
        let (l, r) = (f.nth(1)?, f.next()?);
        if !want
            .iter()
            .any(|(wl, wr)| wl.eq_ignore_ascii_case(l) && wr.eq_ignore_ascii_case(r))
        {
            return None;
        }
        // st tx:rx tr:when retrnsmt uid
        f.nth(4)?.parse().ok()
    })
}

/// The kernel's text forms of an address: each 32-bit word of the IP in host byte order as
/// 8 hex digits, then `:` and the port as 4 hex digits.
fn forms(addr: SocketAddr) -> Vec<String> {
    let words = |octets: &[u8]| -> String {
        octets
            .chunks(4)
            .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect()
    };
    let port = addr.port();
    match addr.ip() {
        IpAddr::V4(v4) => vec![
            format!("{}:{port:04X}", words(&v4.octets())),
            format!("{}:{port:04X}", words(&v4.to_ipv6_mapped().octets())),
        ],
        IpAddr::V6(v6) => vec![format!("{}:{port:04X}", words(&v6.octets()))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_connecting_side() {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let ours: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let (p, o) = (&forms(peer)[0], &forms(ours)[0]);
        let text = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             \x20  0: {o} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n\
             \x20  1: {o} {p} 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n\
             \x20  2: {p} {o} 01 00000000:00000000 00:00000000 00000000  1001        0 3 1\n"
        );
        assert_eq!(find_uid(&text, peer, ours), Some(1001));
        assert_eq!(find_uid(&text, ours, peer), Some(0));
        assert_eq!(find_uid(&text, peer, peer), None);
        if cfg!(target_endian = "little") {
            assert_eq!(p, "0100007F:9C40");
        }
    }

    #[test]
    fn a_real_connection_is_ours() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().unwrap();
        let uid = rustix::process::getuid().as_raw();
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert_eq!(socket_uid(peer, s.local_addr().unwrap()), Some(uid));
        }
        drop(c);
    }
}
