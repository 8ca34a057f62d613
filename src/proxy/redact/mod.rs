//! Secret redaction: the one table of secret names and the `Redactor` that applies it to what a
//! proxy stores — HTTP records (headers, cookies, URLs, form, multipart and JSON bodies) and
//! browser events — before anything reaches the traffic log or a page session. Pure: no IO
//! beyond reading the per-process key from `/dev/urandom` once; nothing here may panic on
//! malformed input (bodies are cut at 10 KiB, often mid-token).
//!
//! A redacted value becomes `[redacted sha256:1a2b3c4d len=41]`: the first 4 bytes of an
//! HMAC-SHA256 of the value under a key drawn once per process (per daemon instance), so equal
//! values compare equal while the daemon lives and nothing can be brute-forced from a copied
//! log. Names match exactly, ignoring ASCII case, `_` and `-` (`api_key` = `apiKey` =
//! `API-KEY`); never by substring, except the header-name parts the policy lists
//! ([`HEADER_NAME_PARTS`]). The browser script keeps a copy of [`SECRET_NAMES`]
//! (`script/00-redact.js`), checked against this one by a unit test. Policy: `SECURITY.md`.

use std::{borrow::Cow, sync::LazyLock};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{http::Header, traffic::HttpRecord};

mod body;
#[cfg(test)]
mod tests;

pub use body::{form, json, multipart};

/// Field, parameter and key names whose values are secrets (everywhere: query strings, form
/// bodies, multipart parts, JSON keys at any depth, browser fields and storage keys).
pub const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "authorization",
    "api_key",
    "apikey",
    "private_key",
    "session",
    "sessionid",
    "card",
    "card_number",
    "cvv",
    "cvc",
    "ssn",
];

/// Names that are secrets only in query strings and form bodies (OAuth callbacks), never in
/// JSON, where an error's `code` is an agent's best clue.
pub const FORM_ONLY_NAMES: &[&str] = &["code", "state"];

/// Headers whose values are always redacted (cookies keep their names and attributes).
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
];

/// A header whose lower-cased name contains one of these is redacted too.
pub const HEADER_NAME_PARTS: &[&str] = &[
    "token", "secret", "password", "api-key", "apikey", "session",
];

/// Headers holding a URL whose query is redacted.
const URL_HEADERS: &[&str] = &["referer", "location", "content-location"];

/// Longest name (normalised) that can match; longer keys are dismissed at once.
const MAX_NAME: usize = 64;

/// The proxy's own tab cookie: an id, not a secret; kept so pages can be matched by hand.
const PAGE_COOKIE: &str = "__agnt_page";

/// Where a name was found: `code`/`state` are secrets only in query strings and forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Query strings, URL fragments, urlencoded and multipart form fields.
    Form,
    /// JSON keys (bodies and browser events), header names.
    Json,
}

/// The key of this process: 32 bytes from `/dev/urandom`, drawn once.
static KEY: LazyLock<[u8; 32]> = LazyLock::new(random_key);

fn random_key() -> [u8; 32] {
    use std::io::Read;
    let mut key = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
    if read.is_err() {
        // No /dev/urandom (a sandbox): the standard library's per-process random hash seeds.
        use std::hash::{BuildHasher, Hasher};
        for chunk in key.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::UNIX_EPOCH
                    .elapsed()
                    .unwrap_or_default()
                    .as_nanos(),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    key
}

/// Applies the secret-name table (plus a proxy's extra names) to what a proxy stores.
#[derive(Clone)]
pub struct Redactor {
    /// Normalised names (see [`normalize`]): the table plus the extra names.
    names: Vec<String>,
    /// The same names by normalised length (most keys are dismissed by their length alone).
    by_len: Vec<Vec<Box<[u8]>>>,
    /// The keyed hash, key already absorbed; cloned per value.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// A name lower-cased without `_` and `-`: the form names are compared in.
pub fn normalize(name: &str) -> String {
    name.bytes()
        .filter(|b| *b != b'_' && *b != b'-')
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect()
}

/// `name` equals the normalised `want`, ignoring ASCII case, `_` and `-` (no allocation).
fn same_name(name: &[u8], want: &[u8]) -> bool {
    let mut w = want.iter();
    for &b in name {
        if b == b'_' || b == b'-' {
            continue;
        }
        if w.next() != Some(&b.to_ascii_lowercase()) {
            return false;
        }
    }
    w.next().is_none()
}

/// The name a form field is matched by: `user[password]` → `password` (Rails/PHP nesting).
fn field_name(name: &str) -> &str {
    match name.strip_suffix(']').and_then(|n| n.rsplit_once('[')) {
        Some((_, last)) if !last.is_empty() => last,
        _ => name,
    }
}

/// Whether a value is already a redaction marker (redacting twice changes nothing).
pub fn is_marker(v: &[u8]) -> bool {
    v.starts_with(b"[redacted ") && v.ends_with(b"]")
}

impl Redactor {
    /// The table plus `extra` names, under this process's key.
    pub fn new(extra: &[String]) -> Redactor {
        Redactor::with_key(extra, &KEY[..])
    }

    /// The table plus `extra` names under a given key (tests, benches).
    pub fn with_key(extra: &[String], key: &[u8]) -> Redactor {
        let mut names: Vec<String> = SECRET_NAMES.iter().map(|n| normalize(n)).collect();
        for n in extra {
            let n = normalize(n.trim());
            if !n.is_empty() && !names.contains(&n) {
                names.push(n);
            }
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        let mut by_len: Vec<Vec<Box<[u8]>>> = vec![Vec::new(); MAX_NAME + 1];
        for n in &names {
            if let Some(bucket) = by_len.get_mut(n.len()) {
                bucket.push(n.as_bytes().into());
            }
        }
        Redactor { names, by_len, mac }
    }

    /// Whether `name` names a secret at `place` (exact match after normalising).
    pub fn is_secret(&self, name: &str, place: Place) -> bool {
        let name = match place {
            Place::Form => field_name(name),
            Place::Json => name,
        };
        self.is_secret_bytes(name.as_bytes(), place)
    }

    /// [`Redactor::is_secret`] over raw bytes (a JSON key as it was written).
    pub(crate) fn is_secret_bytes(&self, n: &[u8], place: Place) -> bool {
        if n.is_empty() || n.len() > 2 * MAX_NAME {
            return false;
        }
        let len = n.iter().filter(|b| **b != b'_' && **b != b'-').count();
        let Some(bucket) = self.by_len.get(len) else {
            return false;
        };
        bucket.iter().any(|w| same_name(n, w))
            || (place == Place::Form && FORM_ONLY_NAMES.iter().any(|w| same_name(n, w.as_bytes())))
    }

    /// `[redacted sha256:1a2b3c4d len=41]` for `value`.
    pub fn marker(&self, value: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        format!(
            "[redacted sha256:{:02x}{:02x}{:02x}{:02x} len={}]",
            tag[0],
            tag[1],
            tag[2],
            tag[3],
            value.len()
        )
    }

    /// A header whose whole value is a secret (beyond cookies, `Authorization` and URLs).
    fn secret_header(&self, lname: &str) -> bool {
        SECRET_HEADERS.contains(&lname)
            || HEADER_NAME_PARTS.iter().any(|p| lname.contains(p))
            || self.names[SECRET_NAMES.len()..]
                .iter()
                .any(|w| same_name(lname.as_bytes(), w.as_bytes()))
    }

    /// Redacts header values in place (see the module docs for which).
    pub fn headers(&self, headers: &mut [Header]) {
        for (name, value) in headers.iter_mut() {
            let lname = name.to_ascii_lowercase();
            let new = match lname.as_str() {
                "cookie" => Some(self.cookie(value, false)),
                "set-cookie" => Some(self.cookie(value, true)),
                "authorization" | "proxy-authorization" => Some(self.credentials(value)),
                l if URL_HEADERS.contains(&l) => match self.url(&String::from_utf8_lossy(value)) {
                    Cow::Owned(u) => Some(u.into_bytes()),
                    Cow::Borrowed(_) => None,
                },
                l if self.secret_header(l) && !is_marker(value) => {
                    Some(self.marker(value).into_bytes())
                }
                _ => None,
            };
            if let Some(v) = new {
                *value = v;
            }
        }
    }

    /// `Bearer abc` → `Bearer [redacted …]` (the scheme says what kind of credential it was).
    fn credentials(&self, value: &[u8]) -> Vec<u8> {
        let scheme_len = value
            .iter()
            .position(|b| *b == b' ')
            .filter(|&i| i > 0 && value[..i].iter().all(u8::is_ascii_alphanumeric));
        match scheme_len {
            Some(i) => {
                let cred = value[i..].trim_ascii();
                if is_marker(cred) {
                    return value.to_vec();
                }
                let mut out = value[..=i].to_vec();
                out.extend_from_slice(self.marker(cred).as_bytes());
                out
            }
            None if is_marker(value) => value.to_vec(),
            None => self.marker(value).into_bytes(),
        }
    }

    /// `Cookie: a=1; b=2` → names kept, values hidden; `Set-Cookie`: the first pair's value
    /// hidden, attributes kept.
    fn cookie(&self, value: &[u8], set: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(value.len() + 48);
        for (i, pair) in value.split(|b| *b == b';').enumerate() {
            if i > 0 {
                out.push(b';');
            }
            if set && i > 0 {
                out.extend_from_slice(pair);
                continue;
            }
            let lead = pair.len() - pair.trim_ascii_start().len();
            let pair_t = pair.trim_ascii();
            let Some(eq) = pair_t.iter().position(|b| *b == b'=') else {
                out.extend_from_slice(pair);
                continue;
            };
            let (name, v) = (&pair_t[..eq], &pair_t[eq + 1..]);
            out.extend_from_slice(&pair[..lead]);
            out.extend_from_slice(name);
            out.push(b'=');
            let bare = v
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v);
            if name == PAGE_COOKIE.as_bytes() || bare.is_empty() || is_marker(bare) {
                out.extend_from_slice(v);
            } else {
                out.extend_from_slice(self.marker(bare).as_bytes());
            }
        }
        out
    }

    /// A URL (absolute, or a path with a query) with secret query and fragment parameters
    /// hidden; `Borrowed` when nothing changed.
    pub fn url<'a>(&self, url: &'a str) -> Cow<'a, str> {
        let Some(q) = url.find(['?', '#']) else {
            return Cow::Borrowed(url);
        };
        let mut out = String::with_capacity(url.len() + 48);
        out.push_str(&url[..q]);
        let rest = &url[q..];
        let (query, fragment) = match rest.find('#') {
            Some(h) => (&rest[..h], Some(&rest[h + 1..])),
            None => (rest, None),
        };
        let mut changed = false;
        if let Some(query) = query.strip_prefix('?') {
            out.push('?');
            changed |= self.pairs(query, &mut out);
        }
        if let Some(f) = fragment {
            out.push('#');
            // `#access_token=…&state=…` (OAuth implicit flow) is a query in all but name.
            if f.contains('=') {
                changed |= self.pairs(f, &mut out);
            } else {
                out.push_str(f);
            }
        }
        if changed {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(url)
        }
    }

    /// `a=1&password=x` → `a=1&password=[redacted …]` appended to `out`; true if any changed.
    pub fn pairs(&self, s: &str, out: &mut String) -> bool {
        let mut changed = false;
        for (i, part) in s.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match part.split_once('=') {
                Some((name, value)) if !value.is_empty() => {
                    let decoded = percent_decode(value.as_bytes());
                    if self.is_secret(
                        &String::from_utf8_lossy(&percent_decode(name.as_bytes())),
                        Place::Form,
                    ) && !is_marker(&decoded)
                    {
                        out.push_str(name);
                        out.push('=');
                        out.push_str(&self.marker(&decoded));
                        changed = true;
                    } else {
                        out.push_str(part);
                    }
                }
                _ => out.push_str(part),
            }
        }
        changed
    }

    /// Free text (an error message, a stack, a URL): every `?name=value`, `&name=value` or
    /// `#name=value` whose name is a secret has its value hidden; `Borrowed` when none.
    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let b = s.as_bytes();
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut i = 0;
        while let Some(off) = memchr::memchr3(b'?', b'&', b'#', &b[i..]) {
            let start = i + off + 1;
            let name_end = start
                + b[start..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || b"_-.[]%".contains(c)))
                    .unwrap_or(b.len() - start);
            i = start;
            if b.get(name_end) != Some(&b'=') || name_end == start {
                continue;
            }
            let vs = name_end + 1;
            let ve = vs
                + b[vs..]
                    .iter()
                    .position(|c| c.is_ascii_whitespace() || b"&#\"'<>`)".contains(c))
                    .unwrap_or(b.len() - vs);
            let name = String::from_utf8_lossy(&percent_decode(&b[start..name_end])).into_owned();
            let value = percent_decode(&b[vs..ve]);
            if ve > vs && self.is_secret(&name, Place::Form) && !is_marker(&value) {
                let o = out.get_or_insert_with(|| String::with_capacity(s.len() + 48));
                o.push_str(&s[copied..vs]);
                o.push_str(&self.marker(&value));
                copied = ve;
            }
            i = ve;
        }
        match out {
            Some(mut o) => {
                o.push_str(&s[copied..]);
                Cow::Owned(o)
            }
            None => Cow::Borrowed(s),
        }
    }

    /// A browser event (JSON): values under secret keys at any depth become markers (objects
    /// and arrays whole), and every string has its URL parameters redacted ([`Redactor::text`]).
    pub fn event(&self, v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, val) in m.iter_mut() {
                    if self.is_secret(k, Place::Json) {
                        self.hide_value(val);
                    } else {
                        self.event(val);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.event(x)),
            Value::String(s) => {
                if let Cow::Owned(new) = self.text(s) {
                    *s = new;
                }
            }
            _ => {}
        }
    }

    /// Replaces a JSON value by its marker (strings hashed by content, others by their JSON).
    fn hide_value(&self, val: &mut Value) {
        let m = match &*val {
            Value::Null => return,
            Value::String(s) if is_marker(s.as_bytes()) => return,
            Value::String(s) => self.marker(s.as_bytes()),
            other => self.marker(other.to_string().as_bytes()),
        };
        *val = Value::String(m);
    }

    /// The one pass over an HTTP record before it is stored: the URL, both header lists and
    /// both (already decoded) bodies.
    pub fn record(&self, rec: &mut HttpRecord) {
        if let Cow::Owned(u) = self.url(&rec.url) {
            rec.url = u;
        }
        if let Some(e) = &rec.error
            && let Cow::Owned(e) = self.text(e)
        {
            rec.error = Some(e);
        }
        self.body(&rec.request_headers, &mut rec.request_body);
        self.body(&rec.response_headers, &mut rec.response_body);
        self.headers(&mut rec.request_headers);
        self.headers(&mut rec.response_headers);
    }

    /// Redacts a decoded body by its `Content-Type` (JSON also when it looks like JSON: fetch
    /// sends `JSON.stringify` bodies as `text/plain`).
    fn body(&self, headers: &[Header], body: &mut Vec<u8>) {
        if body.is_empty() {
            return;
        }
        let ct = super::http::header(headers, "content-type").unwrap_or_default();
        let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
        let new = if ct.starts_with("application/x-www-form-urlencoded") {
            form(self, body)
        } else if ct.starts_with("multipart/form-data") {
            multipart(self, &ct, body)
        } else if ct.contains("json")
            || matches!(
                body.iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'{' | b'[')
            )
        {
            json(self, body)
        } else {
            None
        };
        if let Some(new) = new {
            *body = new;
        }
    }
}

/// `%41+b` → `A b` (invalid escapes kept as they are).
pub fn percent_decode(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.iter().any(|b| *b == b'%' || *b == b'+') {
        return Cow::Borrowed(s);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(out)
}
