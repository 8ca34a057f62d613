//! Micro-benchmarks of the proxy's pure hot paths: request head parsing (vs bare `httparse`),
//! chunked decoding, HTML injection over a 1 MiB page (plain and gzip) vs a plain copy, and the
//! redaction pass over a 10 KiB JSON exchange vs `serde_json` parsing the same body.
//!
//! `cargo bench --bench proxy`

use std::{hint::black_box, io::Write};

use agnt::proxy::{http, inject};
use divan::{Bencher, counter::BytesCount};

fn main() {
    divan::main();
}

const HEAD: &[u8] = b"GET /assets/app.3f2a1b.js?v=12 HTTP/1.1\r\nHost: localhost:3000\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\nReferer: http://localhost:3000/\r\nCookie: __agnt_page=tab-abc; session=0123456789abcdef\r\nConnection: keep-alive\r\n\r\n";

#[divan::bench]
fn parse_head_httparse_only(b: Bencher<'_, '_>) {
    b.counter(BytesCount::new(HEAD.len())).bench(|| {
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Request::new(&mut hs);
        black_box(r.parse(black_box(HEAD)).unwrap());
    });
}

#[divan::bench]
fn parse_head_owned(b: Bencher<'_, '_>) {
    b.counter(BytesCount::new(HEAD.len()))
        .bench(|| black_box(http::parse_request(black_box(HEAD)).unwrap()));
}

#[divan::bench]
fn parse_and_rewrite_head(b: Bencher<'_, '_>) {
    b.bench(|| {
        let (mut h, _) = http::parse_request(black_box(HEAD)).unwrap().unwrap();
        http::set(&mut h.headers, "Host", "127.0.0.1:3000");
        http::set(&mut h.headers, "X-Forwarded-For", "127.0.0.1");
        let mut out = Vec::with_capacity(1024);
        http::write_request(&h, &mut out);
        black_box(out)
    });
}

fn page() -> Vec<u8> {
    let mut html = b"<!doctype html><html><head><title>bench</title></head><body>\n".to_vec();
    let mut i = 0u32;
    while html.len() < 1024 * 1024 {
        html.extend_from_slice(
            format!("<div class=row><span>item {i}</span> <a href=/x/{i}>link</a></div>\n")
                .as_bytes(),
        );
        i += 1;
    }
    html.extend_from_slice(b"</body></html>\n");
    html
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(8192) {
        http::encode_chunk(c, &mut out);
    }
    http::encode_chunk(b"", &mut out);
    out
}

#[divan::bench]
fn chunked_decode_1mib(b: Bencher<'_, '_>) {
    let wire = chunked(&page());
    b.counter(BytesCount::new(wire.len())).bench(|| {
        let mut d = http::ChunkedDecoder::new();
        let mut n = 0;
        d.feed(black_box(&wire), |x| n += x.len()).unwrap();
        black_box(n)
    });
}

#[divan::bench]
fn copy_1mib_baseline(b: Bencher<'_, '_>) {
    let p = page();
    b.counter(BytesCount::new(p.len()))
        .bench(|| black_box(black_box(&p).to_vec()));
}

#[divan::bench]
fn inject_1mib_plain(b: Bencher<'_, '_>) {
    let p = page();
    b.counter(BytesCount::new(p.len()))
        .bench(|| black_box(inject::inject_body(None, black_box(&p))));
}

#[divan::bench]
fn inject_1mib_gzip(b: Bencher<'_, '_>) {
    let p = page();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&p).unwrap();
    let gz = e.finish().unwrap();
    b.counter(BytesCount::new(p.len()))
        .bench(|| black_box(inject::inject_body(Some(b"gzip"), black_box(&gz))));
}

/// A 10 KiB JSON API answer with a few secrets at several depths (the redaction bench body).
fn json_10kib() -> Vec<u8> {
    let mut items = Vec::new();
    let mut i = 0;
    loop {
        let item = format!(
            r#"{{"id":{i},"name":"item {i}","status":"active","statusCode":200,"tags":["a","b","c"],"owner":{{"login":"user{i}","session":{{"id":"s{i}","expires":1700000000}}}},"price":{{"amount":{i}.5,"currency":"EUR"}},"description":"lorem ipsum dolor sit amet consectetur"}}"#
        );
        if items.iter().map(String::len).sum::<usize>() + item.len() > 10 * 1024 - 200 {
            break;
        }
        items.push(item);
        i += 1;
    }
    format!(
        r#"{{"access_token":"eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.abc","user":{{"password":"hunter2"}},"items":[{}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

#[divan::bench]
fn json_parse_10kib_baseline(b: Bencher<'_, '_>) {
    let body = json_10kib();
    b.counter(BytesCount::new(body.len())).bench(|| {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap())
    });
}

#[divan::bench]
fn redact_json_10kib(b: Bencher<'_, '_>) {
    let body = json_10kib();
    let r = agnt::proxy::redact::Redactor::new(&[]);
    b.counter(BytesCount::new(body.len()))
        .bench(|| black_box(agnt::proxy::redact::json(&r, black_box(&body))));
}

/// The whole pass over one exchange: URL with a token, browser-like request headers with a
/// cookie and a bearer token, a 10 KiB JSON response.
#[divan::bench]
fn redact_exchange_10kib_json(b: Bencher<'_, '_>) {
    use agnt::proxy::traffic::HttpRecord;
    let (head, _) = http::parse_request(HEAD).unwrap().unwrap();
    let mut request_headers = head.headers;
    request_headers.push((
        "Authorization".into(),
        b"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x".to_vec(),
    ));
    let rec = HttpRecord {
        method: "GET".into(),
        url: "/api/items?page=2&access_token=abc123&sort=name".into(),
        status: 200,
        request_headers,
        response_headers: vec![
            ("Content-Type".into(), b"application/json".to_vec()),
            (
                "Set-Cookie".into(),
                b"sid=0123456789; Path=/; HttpOnly".to_vec(),
            ),
        ],
        response_body: json_10kib(),
        ..Default::default()
    };
    let r = agnt::proxy::redact::Redactor::new(&[]);
    b.with_inputs(|| rec.clone()).bench_local_values(|mut rec| {
        r.record(&mut rec);
        rec
    });
}
