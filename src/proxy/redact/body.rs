//! Body redaction over decoded bytes: urlencoded forms, multipart text parts and JSON. Each
//! returns `None` when nothing changed. The JSON pass is a lenient scanner, not a parser: a
//! body cut at 10 KiB (or not JSON at all) is still scanned, and a secret value cut by the end
//! is hidden up to the end. Formatting outside redacted values is kept byte for byte.

use super::{Place, Redactor, is_marker};

/// `application/x-www-form-urlencoded`: fields named like secrets (and `code`, `state`).
pub fn form(r: &Redactor, body: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(body.len() + 48);
    r.pairs(&text, &mut out).then(|| out.into_bytes())
}

/// `multipart/form-data; boundary=…`: the content of text parts (no `filename`) whose field
/// name is a secret. `ct` is the content type (the caller lower-cases it, so the boundary is
/// searched case-insensitively).
pub fn multipart(r: &Redactor, ct: &str, body: &[u8]) -> Option<Vec<u8>> {
    let b = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?;
    let b = b.trim_matches('"');
    if b.is_empty() || b.len() > 200 {
        return None;
    }
    let delim = format!("--{}", b.to_ascii_lowercase());
    let mut starts = Vec::new();
    let lower = body.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&lower[from..], delim.as_bytes()) {
        starts.push(from + at);
        from += at + delim.len();
    }
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for (k, &at) in starts.iter().enumerate() {
        let part_start = at + delim.len();
        let part_end = starts.get(k + 1).copied().unwrap_or(body.len());
        let part = &body[part_start..part_end];
        let Some(hdr_end) = memchr::memmem::find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..hdr_end]).to_ascii_lowercase();
        let Some(disp) = head
            .lines()
            .find_map(|l| l.trim().strip_prefix("content-disposition:"))
        else {
            continue;
        };
        if disp.contains("filename") {
            continue;
        }
        let Some(name) = param(disp, "name") else {
            continue;
        };
        if !r.is_secret(&name, Place::Form) {
            continue;
        }
        let cs = part_start + hdr_end + 4;
        // The part's content ends with the CRLF before the next delimiter (if there is one).
        let ce = if k + 1 < starts.len() {
            part_end.saturating_sub(2).max(cs)
        } else {
            body.len()
        };
        let content = &body[cs..ce];
        if content.is_empty() || is_marker(content) {
            continue;
        }
        let o = out.get_or_insert_with(|| Vec::with_capacity(body.len() + 48));
        o.extend_from_slice(&body[copied..cs]);
        o.extend_from_slice(r.marker(content).as_bytes());
        copied = ce;
    }
    out.map(|mut o| {
        o.extend_from_slice(&body[copied..]);
        o
    })
}

/// A `name="value"` (or `name=value`) parameter of a header value.
fn param(h: &str, key: &str) -> Option<String> {
    h.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// JSON at any depth: the value of every key that names a secret (not `code`/`state`) becomes
/// a marker string; an object or array value is replaced whole.
pub fn json(r: &Redactor, b: &[u8]) -> Option<Vec<u8>> {
    let n = b.len();
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'"', &b[i..]) {
        let start = i + off;
        let end = string_end(b, start);
        let colon = skip_ws(b, end);
        if colon >= n || b[colon] != b':' || end > n || b[end - 1] != b'"' || end - start < 2 {
            i = end;
            continue;
        }
        let key = unescape(&b[start + 1..end - 1]);
        if !r.is_secret_bytes(&key, Place::Json) {
            i = colon + 1;
            continue;
        }
        let vs = skip_ws(b, colon + 1);
        if vs >= n {
            break;
        }
        if matches!(b[vs], b',' | b'}' | b']' | b':') {
            i = vs;
            continue;
        }
        let ve = value_end(b, vs);
        let value = if b[vs] == b'"' {
            let inner_end = if ve > vs + 1 && b[ve - 1] == b'"' && string_end(b, vs) == ve {
                ve - 1
            } else {
                ve
            };
            unescape(&b[vs + 1..inner_end])
        } else {
            std::borrow::Cow::Borrowed(&b[vs..ve])
        };
        if b[vs..ve] != *b"null" && !is_marker(&value) {
            let o = out.get_or_insert_with(|| Vec::with_capacity(n + 48));
            o.extend_from_slice(&b[copied..vs]);
            o.push(b'"');
            o.extend_from_slice(r.marker(&value).as_bytes());
            o.push(b'"');
            copied = ve;
        }
        i = ve.max(vs + 1);
    }
    out.map(|mut o| {
        o.extend_from_slice(&b[copied..]);
        o
    })
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Index just after the string starting with the quote at `start` (the end if unterminated).
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// Index just after the JSON value starting at `vs` (the end if it is cut off).
fn value_end(b: &[u8], vs: usize) -> usize {
    match b[vs] {
        b'"' => string_end(b, vs),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = vs;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            b.len()
        }
        _ => {
            let mut i = vs;
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']') && !b[i].is_ascii_whitespace()
            {
                i += 1;
            }
            i.max(vs + 1).min(b.len())
        }
    }
}

/// A JSON string's content with escapes resolved (lenient: bad escapes are kept as written).
fn unescape(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !s.contains(&b'\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' || i + 1 >= s.len() {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let c = s[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'u' => {
                let hex = |at: usize| {
                    s.get(at..at + 4)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                let Some(mut cp) = hex(i) else {
                    out.extend_from_slice(b"\\u");
                    continue;
                };
                i += 4;
                if (0xD800..0xDC00).contains(&cp)
                    && s.get(i..i + 2) == Some(b"\\u")
                    && let Some(lo) = hex(i + 2).filter(|lo| (0xDC00..0xE000).contains(lo))
                {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            }
            other => out.push(other),
        }
    }
    std::borrow::Cow::Owned(out)
}
