//! Micro-benchmarks of the proxy's pure hot paths: request head parsing (vs bare `httparse`),
//! chunked decoding, and HTML injection over a 1 MiB page (plain and gzip) vs a plain copy.
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
