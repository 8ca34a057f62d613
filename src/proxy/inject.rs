//! Pure HTML injection: decode a response body (`gzip`, `deflate`, `br`), insert the agnt
//! `<script>` tag at the best position, and hand back identity-encoded bytes — or `None`, in
//! which case the caller sends the original bytes unchanged (unknown encoding, corrupt stream,
//! already injected, too large once decoded). `prepare_body` is the one path a buffered body
//! takes: decode, rewrite target URLs (`rewrite`), inject into HTML.

use std::{io::Read, sync::LazyLock};

use super::rewrite::Rewriter;

/// The tag we insert without a page key: `<script src="/__agnt/agnt.js?v=VERSION"
/// data-agnt></script>` (the version makes the script cacheable; see `script::VERSION`). A
/// proxy inserts [`script_tag`] with its page-channel key instead.
pub static SCRIPT_TAG: LazyLock<Vec<u8>> = LazyLock::new(|| script_tag(None));

/// How every tag we insert starts (what [`already_injected`] looks for).
static TAG_START: LazyLock<Vec<u8>> = LazyLock::new(|| {
    format!(
        "<script src=\"/__agnt/agnt.js?v={}\" data-agnt",
        *super::script::VERSION
    )
    .into_bytes()
});

/// The tag, carrying `key` (hex) as `data-agnt-key` when given: the script reads it from its own
/// tag, so only pages this proxy instance served know it.
pub fn script_tag(key: Option<&str>) -> Vec<u8> {
    let mut tag = TAG_START.clone();
    if let Some(k) = key {
        tag.extend_from_slice(format!(" data-agnt-key=\"{k}\"").as_bytes());
    }
    tag.extend_from_slice(b"></script>");
    tag
}
/// Largest decoded body we inject into (a decompression bomb stops here).
pub const MAX_DECODED: usize = 32 * 1024 * 1024;

/// A `Content-Encoding` we can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
}

impl Encoding {
    /// Maps a `Content-Encoding` value; `None` for anything we cannot decode (incl. stacked codings).
    pub fn parse(value: Option<&[u8]>) -> Option<Encoding> {
        let Some(v) = value else {
            return Some(Encoding::Identity);
        };
        let v = String::from_utf8_lossy(v).trim().to_ascii_lowercase();
        match v.as_str() {
            "" | "identity" => Some(Encoding::Identity),
            "gzip" | "x-gzip" => Some(Encoding::Gzip),
            "deflate" => Some(Encoding::Deflate),
            "br" => Some(Encoding::Brotli),
            _ => None,
        }
    }
}

fn read_capped(mut r: impl Read) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_DECODED as u64 + 1)
        .read_to_end(&mut out)
        .ok()?;
    (n <= MAX_DECODED).then_some(out)
}

/// Decodes `body`; `None` if it is corrupt or too large.
pub fn decode(enc: Encoding, body: &[u8]) -> Option<Vec<u8>> {
    match enc {
        Encoding::Identity => Some(body.to_vec()),
        Encoding::Gzip => {
            let mut d = flate2::read::MultiGzDecoder::new(body);
            let out = read_capped(&mut d)?;
            Some(out)
        }
        Encoding::Deflate => read_capped(flate2::read::ZlibDecoder::new(body))
            .or_else(|| read_capped(flate2::read::DeflateDecoder::new(body))),
        Encoding::Brotli => read_capped(brotli::Decompressor::new(body, 16 * 1024)),
    }
}

fn starts_with_ci(hay: &[u8], at: usize, needle: &[u8]) -> bool {
    hay.get(at..at + needle.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(needle))
}

/// Position of tag `<name` (or `</name` with `close`) whose name ends there (so `<head` does not
/// match `<header>`); returns the index of `<`.
fn find_tag(html: &[u8], name: &[u8], close: bool) -> Option<usize> {
    let prefix_len = if close { 2 } else { 1 };
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &html[i..]) {
        let at = i + off;
        let ok_prefix = if close {
            html.get(at + 1) == Some(&b'/')
        } else {
            true
        };
        if ok_prefix && starts_with_ci(html, at + prefix_len, name) {
            match html.get(at + prefix_len + name.len()) {
                Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') | None => {
                    return Some(at);
                }
                _ => {}
            }
        }
        i = at + 1;
    }
    None
}

/// Index just after the `>` that closes the tag starting at `at` (quotes respected).
fn after_tag(html: &[u8], at: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (k, &b) in html[at..].iter().enumerate() {
        match (quote, b) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(at + k + 1),
            _ => {}
        }
    }
    None
}

/// Where the tag goes: before `</head>`, else after `<head…>`, `<body…>`, `<html…>`, else 0.
pub fn insert_position(html: &[u8]) -> usize {
    if let Some(at) = find_tag(html, b"head", true) {
        return at;
    }
    for name in [&b"head"[..], b"body", b"html"] {
        if let Some(end) = find_tag(html, name, false).and_then(|at| after_tag(html, at)) {
            return end;
        }
    }
    0
}

/// Whether the page already carries our tag.
pub fn already_injected(html: &[u8]) -> bool {
    memchr::memmem::find(html, &TAG_START).is_some()
}

/// Inserts [`SCRIPT_TAG`] into decoded HTML; `None` if it is already there.
pub fn inject_html(html: &[u8]) -> Option<Vec<u8>> {
    inject_html_with(html, &SCRIPT_TAG)
}

/// Inserts `tag` (from [`script_tag`]) into decoded HTML; `None` if a tag is already there.
pub fn inject_html_with(html: &[u8], tag: &[u8]) -> Option<Vec<u8>> {
    if already_injected(html) {
        return None;
    }
    let pos = insert_position(html);
    let mut out = Vec::with_capacity(html.len() + tag.len());
    out.extend_from_slice(&html[..pos]);
    out.extend_from_slice(tag);
    out.extend_from_slice(&html[pos..]);
    Some(out)
}

/// Decodes `body` per its `Content-Encoding` and injects [`SCRIPT_TAG`]; the result is
/// identity-encoded. `None` = send the original bytes unchanged.
pub fn inject_body(content_encoding: Option<&[u8]>, body: &[u8]) -> Option<Vec<u8>> {
    inject_body_with(content_encoding, body, &SCRIPT_TAG)
}

/// [`inject_body`] with a proxy's own `tag`.
pub fn inject_body_with(
    content_encoding: Option<&[u8]>,
    body: &[u8],
    tag: &[u8],
) -> Option<Vec<u8>> {
    let enc = Encoding::parse(content_encoding)?;
    let html = decode(enc, body)?;
    inject_html_with(&html, tag)
}

/// Whether a `Content-Type` value is HTML.
pub fn is_html(content_type: Option<&[u8]>) -> bool {
    content_type.is_some_and(|v| v.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

/// Whether a `Content-Type` value is CSS or JavaScript (the bodies whose URLs on an `https://`
/// target are rewritten besides HTML).
pub fn is_css_or_js(content_type: Option<&[u8]>) -> bool {
    let Some(v) = content_type else { return false };
    let essence = v
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    [
        &b"text/css"[..],
        b"text/javascript",
        b"application/javascript",
        b"application/x-javascript",
        b"application/ecmascript",
        b"text/ecmascript",
    ]
    .iter()
    .any(|t| essence.eq_ignore_ascii_case(t))
}

/// A buffered body made ready to send: identity-encoded, `injected` when the tag went in.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Prepared {
    pub body: Vec<u8>,
    pub injected: bool,
}

/// Decodes a buffered body per its `Content-Encoding`, rewrites URLs on the target to the proxy
/// (`rewrite`), and inserts `tag` (an HTML page; `None` for CSS/JS). `None` = nothing changed
/// (or the body cannot be decoded): send the original bytes with their original encoding.
pub(crate) fn prepare_body(
    content_encoding: Option<&[u8]>,
    body: &[u8],
    tag: Option<&[u8]>,
    rewrite: Option<&Rewriter>,
) -> Option<Prepared> {
    let enc = Encoding::parse(content_encoding)?;
    let decoded = match enc {
        Encoding::Identity => std::borrow::Cow::Borrowed(body),
        _ => std::borrow::Cow::Owned(decode(enc, body)?),
    };
    let rewritten = rewrite.and_then(|r| r.apply(&decoded));
    let text = rewritten.as_deref().unwrap_or(&decoded);
    if let Some(body) = tag.and_then(|t| inject_html_with(text, t)) {
        return Some(Prepared {
            body,
            injected: true,
        });
    }
    rewritten.map(|body| Prepared {
        body,
        injected: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn inj(s: &str) -> String {
        String::from_utf8(inject_html(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn positions() {
        let t = std::str::from_utf8(&SCRIPT_TAG).unwrap();
        assert_eq!(
            inj("<html><HEAD><title>x</title></HEAD><body></body></html>"),
            format!("<html><HEAD><title>x</title>{t}</HEAD><body></body></html>")
        );
        assert_eq!(
            inj("<html><head lang=\"a>b\"><body>"),
            format!("<html><head lang=\"a>b\">{t}<body>")
        );
        assert_eq!(
            inj("<html><header>h</header><body class=x>hi"),
            format!("<html><header>h</header><body class=x>{t}hi")
        );
        assert_eq!(
            inj("<!doctype html><html lang=en><p>x"),
            format!("<!doctype html><html lang=en>{t}<p>x")
        );
        assert_eq!(inj("<p>fragment</p>"), format!("{t}<p>fragment</p>"));
        assert_eq!(inj(""), t);
        assert!(inject_html(inj("<head></head>").as_bytes()).is_none());
    }

    #[test]
    fn encodings() {
        let html = b"<html><head></head><body>hello</body></html>";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(html).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(html).unwrap();
        let zl = zl.finish().unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(html).unwrap();
        let raw = raw.finish().unwrap();
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(html)
            .unwrap();
        let expect = inject_html(html).unwrap();
        assert_eq!(inject_body(Some(b"gzip"), &gz).unwrap(), expect);
        assert_eq!(inject_body(Some(b"deflate"), &zl).unwrap(), expect);
        assert_eq!(inject_body(Some(b"deflate"), &raw).unwrap(), expect);
        assert_eq!(inject_body(Some(b"br"), &br).unwrap(), expect);
        assert_eq!(inject_body(None, html).unwrap(), expect);
        assert!(inject_body(Some(b"zstd"), html).is_none());
        assert!(inject_body(Some(b"gzip"), &gz[..gz.len() / 2]).is_none());
        assert!(inject_body(Some(b"gzip"), b"not gzip at all").is_none());
        assert!(is_html(Some(b"Text/HTML; charset=utf-8")));
        assert!(!is_html(Some(b"application/json")));
    }

    #[test]
    fn prepare_rewrites_then_injects() {
        let origins = ["https://localhost:5173".to_string()];
        let rw = Rewriter::new(&origins, "http://127.0.0.1:9").unwrap();
        let tag = &SCRIPT_TAG[..];
        let page = b"<head><script src=\"https://localhost:5173/a.js\"></script></head>";
        let t = std::str::from_utf8(tag).unwrap();
        let want = format!("<head><script src=\"http://127.0.0.1:9/a.js\"></script>{t}</head>");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(page).unwrap();
        let gz = gz.finish().unwrap();
        let p = prepare_body(Some(b"gzip"), &gz, Some(tag), Some(&rw)).unwrap();
        assert!(p.injected);
        assert_eq!(p.body, want.as_bytes());
        // Already injected: the rewrite alone still counts.
        let p = prepare_body(
            None,
            want.replace("http://127.0.0.1:9", "https://localhost:5173")
                .as_bytes(),
            Some(tag),
            Some(&rw),
        )
        .unwrap();
        assert_eq!((p.body, p.injected), (want.clone().into_bytes(), false));
        // CSS: rewritten, or None when nothing matched (the original bytes go out).
        let css = b"a{background:url(https://localhost:5173/i.png)}";
        let p = prepare_body(None, css, None, Some(&rw)).unwrap();
        assert_eq!(p.body, b"a{background:url(http://127.0.0.1:9/i.png)}");
        assert!(prepare_body(None, b"a{}", None, Some(&rw)).is_none());
        assert!(prepare_body(Some(b"gzip"), css, None, Some(&rw)).is_none());
        assert!(prepare_body(Some(b"zstd"), css, None, Some(&rw)).is_none());
        assert!(is_css_or_js(Some(b"Text/CSS; charset=utf-8")));
        assert!(is_css_or_js(Some(b"application/javascript")));
        assert!(!is_css_or_js(Some(b"application/json")));
        assert!(!is_css_or_js(Some(b"text/event-stream")));
        assert!(!is_css_or_js(None));
    }

    proptest! {
        #[test]
        fn injector_inserts_exactly_once(html in proptest::collection::vec(any::<u8>(), 0..4096)) {
            if let Some(out) = inject_html(&html) {
                prop_assert_eq!(out.len(), html.len() + SCRIPT_TAG.len());
                let pos = insert_position(&html);
                prop_assert_eq!(&out[..pos], &html[..pos]);
                prop_assert_eq!(&out[pos + SCRIPT_TAG.len()..], &html[pos..]);
            }
            let _ = inject_body(Some(b"gzip"), &html);
            let _ = inject_body(Some(b"br"), &html);
            let _ = inject_body(Some(b"deflate"), &html);
        }

        #[test]
        fn injector_text_positions(pre in "[a-z <>/]{0,40}", tag in prop::sample::select(vec!["</head>", "<head>", "<body>", "<html>"]), post in "[a-z ]{0,40}") {
            let html = format!("{pre}{tag}{post}");
            let out = inject_html(html.as_bytes());
            prop_assert!(out.is_some());
        }
    }
}
