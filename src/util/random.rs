//! Secrets from the kernel: random bytes read from `/dev/urandom`, as lowercase hex. Used for
//! the HTTP face's bearer token and each proxy's page-channel key and `Via` token. Also the one
//! constant-time comparison of such secrets.

use std::{fs::File, io, io::Read};

/// `bytes` random bytes from `/dev/urandom` as `2 * bytes` lowercase hex digits.
pub fn hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_random_and_the_right_length() {
        let (a, b) = (hex(32).unwrap(), hex(32).unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(same_secret(a.as_bytes(), a.as_bytes()));
        assert!(!same_secret(a.as_bytes(), b.as_bytes()));
        assert!(!same_secret(b"ab", b"abc"));
    }
}
