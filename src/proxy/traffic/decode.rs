//! Captured bodies are stored decoded: the first bytes of a `gzip`, `deflate` or `br` stream
//! (as `exchange` captured them, already de-chunked) are decoded here, before redaction, and
//! cut to [`BODY_CAPTURE`] decoded bytes — so a compressed secret is redacted like a plain one.
//! A cut stream yields the prefix it holds; an encoding we cannot decode, or a stream that
//! yields nothing, is not stored at all (a note says why). Pure; never panics.

use std::io::Read;

use super::BODY_CAPTURE;
use crate::proxy::{
    http::{self, Header},
    inject::Encoding,
};

/// Replaces `body` (a captured, possibly content-encoded prefix) by its decoded prefix.
pub(crate) fn decode_capture(headers: &[Header], body: &mut Vec<u8>, truncated: &mut bool) {
    let Some(ce) = http::header(headers, "content-encoding") else {
        return;
    };
    if body.is_empty() {
        return;
    }
    let enc = Encoding::parse(Some(ce));
    let (out, failed) = match enc {
        None => {
            let ce = String::from_utf8_lossy(ce);
            *body =
                format!("[body not stored: content-encoding {ce:?} is not decoded]").into_bytes();
            *truncated = true;
            return;
        }
        Some(Encoding::Identity) => return,
        Some(Encoding::Gzip) => read_prefix(flate2::read::MultiGzDecoder::new(&body[..])),
        Some(Encoding::Deflate) => {
            // `deflate` is zlib-wrapped by the standard, raw in practice as often as not.
            let zlib = body.len() >= 2
                && body[0] & 0x0f == 8
                && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
            if zlib {
                read_prefix(flate2::read::ZlibDecoder::new(&body[..]))
            } else {
                read_prefix(flate2::read::DeflateDecoder::new(&body[..]))
            }
        }
        Some(Encoding::Brotli) => read_prefix(brotli::Decompressor::new(&body[..], 4096)),
    };
    if out.is_empty() && failed {
        let ce = String::from_utf8_lossy(ce);
        *body = format!("[body not stored: corrupt {ce} stream]").into_bytes();
        *truncated = true;
        return;
    }
    let mut out = out;
    if out.len() > BODY_CAPTURE {
        out.truncate(BODY_CAPTURE);
        *truncated = true;
    } else if failed {
        // The capture ended mid-stream (cut at 10 KiB, or corrupt after this point).
        *truncated = true;
    }
    *body = out;
}

/// Up to `BODY_CAPTURE + 1` decoded bytes, and whether the stream ended in an error.
fn read_prefix(r: impl Read) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(BODY_CAPTURE + 1);
    let failed = r
        .take(BODY_CAPTURE as u64 + 1)
        .read_to_end(&mut out)
        .is_err();
    (out, failed)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn br(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).unwrap();
        drop(w);
        out
    }

    fn check(ce: &str, mut body: Vec<u8>, trunc: bool) -> (Vec<u8>, bool) {
        let headers = vec![("Content-Encoding".to_string(), ce.as_bytes().to_vec())];
        let mut t = trunc;
        decode_capture(&headers, &mut body, &mut t);
        (body, t)
    }

    #[test]
    fn decodes_gzip_deflate_and_br() {
        let data = br#"{"password":"hunter2"}"#;
        assert_eq!(check("gzip", gz(data), false), (data.to_vec(), false));
        assert_eq!(check("br", br(data), false), (data.to_vec(), false));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        assert_eq!(
            check("deflate", z.finish().unwrap(), false),
            (data.to_vec(), false)
        );
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        d.write_all(data).unwrap();
        assert_eq!(
            check("deflate", d.finish().unwrap(), false),
            (data.to_vec(), false)
        );
    }

    #[test]
    fn a_cut_stream_gives_its_prefix_and_a_big_one_is_cut_to_10_kib() {
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut enc = gz(&big);
        enc.truncate(BODY_CAPTURE);
        let (out, t) = check("gzip", enc, true);
        assert!(t && !out.is_empty() && out.len() <= BODY_CAPTURE);
        assert_eq!(out, big[..out.len()]);
        let (out, t) = check("gzip", gz(&vec![b'a'; 50_000]), false);
        assert_eq!((out.len(), t), (BODY_CAPTURE, true));
    }

    #[test]
    fn garbage_and_unknown_encodings_are_not_stored() {
        let (out, t) = check("gzip", b"not gzip at all".to_vec(), false);
        assert!(
            t && out.starts_with(b"[body not stored: corrupt gzip"),
            "{out:?}"
        );
        let (out, t) = check("zstd", b"\x28\xb5\x2f\xfdxx".to_vec(), false);
        assert!(t && out.starts_with(b"[body not stored: content-encoding"));
        assert_eq!(
            check("identity", b"x".to_vec(), false),
            (b"x".to_vec(), false)
        );
    }
}
