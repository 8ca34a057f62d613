//! Just enough PNG for visual snapshots, over `flate2` (already a dependency): decoding the
//! 8-bit, non-interlaced RGB/RGBA images Chromium's `Page.captureScreenshot` writes, and
//! encoding RGB diff images. Pure: no IO.

use std::io::{Read, Write};

/// An RGB image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Row-major RGB triples.
    pub pixels: Vec<[u8; 3]>,
}

const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Decodes an 8-bit RGB or RGBA PNG (alpha dropped); the error says what is unsupported.
pub fn decode(data: &[u8]) -> Result<Rgb, String> {
    if !data.starts_with(SIGNATURE) {
        return Err("not a PNG".into());
    }
    let (mut w, mut h, mut bpp) = (0u32, 0u32, 0usize);
    let mut idat = Vec::new();
    let mut i = SIGNATURE.len();
    while i + 8 <= data.len() {
        let len = u32::from_be_bytes(data[i..i + 4].try_into().map_err(|_| "truncated")?) as usize;
        let body = data.get(i + 8..i + 8 + len).ok_or("truncated PNG chunk")?;
        match &data[i + 4..i + 8] {
            b"IHDR" if body.len() >= 13 => {
                w = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                h = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                if body[8] != 8 || body[12] != 0 {
                    return Err("only 8-bit non-interlaced PNGs are supported".into());
                }
                bpp = match body[9] {
                    2 => 3,
                    6 => 4,
                    c => return Err(format!("PNG colour type {c} is not supported")),
                };
            }
            b"IDAT" => idat.extend_from_slice(body),
            b"IEND" => break,
            _ => {}
        }
        i += 12 + len;
    }
    if bpp == 0 {
        return Err("PNG without IHDR".into());
    }
    let stride = w as usize * bpp;
    let mut raw = Vec::with_capacity((stride + 1) * h as usize);
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .map_err(|e| format!("PNG data: {e}"))?;
    if raw.len() < (stride + 1) * h as usize {
        return Err("PNG data is short".into());
    }
    let mut prev = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(w as usize * h as usize);
    for row in raw.chunks_exact(stride + 1).take(h as usize) {
        let mut cur = row[1..].to_vec();
        unfilter(row[0], &mut cur, &prev, bpp)?;
        pixels.extend(cur.chunks_exact(bpp).map(|p| [p[0], p[1], p[2]]));
        prev = cur;
    }
    Ok(Rgb {
        width: w,
        height: h,
        pixels,
    })
}

/// Encodes an RGB image (filter 0, default compression).
pub fn encode(img: &Rgb) -> Vec<u8> {
    let mut raw = Vec::with_capacity(img.pixels.len() * 3 + img.height as usize);
    for row in img.pixels.chunks(img.width.max(1) as usize) {
        raw.push(0);
        row.iter().for_each(|p| raw.extend_from_slice(p));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&img.width.to_be_bytes());
    ihdr.extend_from_slice(&img.height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = SIGNATURE.to_vec();
    for (kind, body) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &idat[..]),
        (b"IEND", &[][..]),
    ] {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

fn unfilter(f: u8, cur: &mut [u8], prev: &[u8], bpp: usize) -> Result<(), String> {
    for x in 0..cur.len() {
        let a = if x >= bpp { i16::from(cur[x - bpp]) } else { 0 };
        let b = i16::from(prev[x]);
        let c = if x >= bpp {
            i16::from(prev[x - bpp])
        } else {
            0
        };
        let pred = match f {
            0 => 0,
            1 => a,
            2 => b,
            3 => (a + b) / 2,
            4 => {
                let p = a + b - c;
                let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                if pa <= pb && pa <= pc {
                    a
                } else if pb <= pc {
                    b
                } else {
                    c
                }
            }
            other => return Err(format!("bad PNG filter {other}")),
        };
        cur[x] = cur[x].wrapping_add(pred as u8);
    }
    Ok(())
}

/// CRC-32 (IEEE) as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_crc() {
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        let img = Rgb {
            width: 3,
            height: 2,
            pixels: vec![
                [1, 2, 3],
                [4, 5, 6],
                [7, 8, 9],
                [255, 0, 0],
                [0, 255, 0],
                [0, 0, 255],
            ],
        };
        assert_eq!(decode(&encode(&img)).unwrap(), img);
        assert!(decode(b"GIF89a").is_err());
    }
}
