//! Pixel diffs for visual snapshots: the changed fraction, the bounding boxes of changed regions
//! (changed pixels grouped by 8×8 cells that touch, boxes in exact pixels) and a diff image
//! (the new capture faded, changes in red). Pure.

use std::collections::VecDeque;

use serde::Serialize;

use super::png::Rgb;

/// A pixel differs when its channels differ by more than this in sum (rendering noise).
const TOLERANCE: u32 = 24;
/// Side of the cells changed pixels are grouped by.
const CELL: usize = 8;
/// Regions reported at most (the largest).
const MAX_REGIONS: usize = 50;

/// A rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Region {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// The comparison of two captures.
#[derive(Debug, Clone)]
pub struct Diff {
    /// Pixels that differ (outside the smaller image counts as differing).
    pub changed: u64,
    /// Pixels compared (the larger width × the larger height).
    pub total: u64,
    /// Changed regions, largest first.
    pub regions: Vec<Region>,
    /// The new image faded, changes in red.
    pub image: Rgb,
}

impl Diff {
    /// `changed / total`.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.changed as f64 / self.total as f64
        }
    }
}

/// Compares `before` and `after`.
pub fn diff(before: &Rgb, after: &Rgb) -> Diff {
    let (w, h) = (
        before.width.max(after.width) as usize,
        before.height.max(after.height) as usize,
    );
    let at = |img: &Rgb, x: usize, y: usize| {
        (x < img.width as usize && y < img.height as usize)
            .then(|| img.pixels[y * img.width as usize + x])
    };
    let (gw, gh) = (w.div_ceil(CELL), h.div_ceil(CELL));
    let mut cells = vec![false; gw * gh];
    let mut mask = vec![false; w * h];
    let mut image = Rgb {
        width: w as u32,
        height: h as u32,
        pixels: vec![[255, 255, 255]; w * h],
    };
    let mut changed = 0u64;
    for y in 0..h {
        for x in 0..w {
            let (a, b) = (at(before, x, y), at(after, x, y));
            let differs = match (a, b) {
                (Some(a), Some(b)) => {
                    a.iter()
                        .zip(b)
                        .map(|(p, q)| p.abs_diff(q) as u32)
                        .sum::<u32>()
                        > TOLERANCE
                }
                _ => true,
            };
            let i = y * w + x;
            if differs {
                changed += 1;
                mask[i] = true;
                cells[(y / CELL) * gw + x / CELL] = true;
                image.pixels[i] = [255, 0, 0];
            } else if let Some(p) = b {
                image.pixels[i] = p.map(|c| (u16::from(c) * 3 / 10 + 178) as u8);
            }
        }
    }
    // Label touching cells, then box the changed pixels of each label.
    let mut label = vec![usize::MAX; gw * gh];
    let mut boxes: Vec<(usize, usize, usize, usize)> = Vec::new();
    for start in 0..cells.len() {
        if !cells[start] || label[start] != usize::MAX {
            continue;
        }
        let id = boxes.len();
        boxes.push((usize::MAX, usize::MAX, 0, 0));
        let mut queue = VecDeque::from([start]);
        label[start] = id;
        while let Some(c) = queue.pop_front() {
            let (cx, cy) = ((c % gw) as isize, (c / gw) as isize);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (cx + dx, cy + dy);
                    if nx < 0 || ny < 0 || nx >= gw as isize || ny >= gh as isize {
                        continue;
                    }
                    let n = ny as usize * gw + nx as usize;
                    if cells[n] && label[n] == usize::MAX {
                        label[n] = id;
                        queue.push_back(n);
                    }
                }
            }
        }
    }
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] {
                let b = &mut boxes[label[(y / CELL) * gw + x / CELL]];
                *b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
            }
        }
    }
    let mut regions: Vec<Region> = boxes
        .into_iter()
        .map(|(x0, y0, x1, y1)| Region {
            x: x0 as u32,
            y: y0 as u32,
            width: (x1 - x0 + 1) as u32,
            height: (y1 - y0 + 1) as u32,
        })
        .collect();
    regions.sort_by_key(|r| std::cmp::Reverse(u64::from(r.width) * u64::from(r.height)));
    regions.truncate(MAX_REGIONS);
    Diff {
        changed,
        total: (w * h) as u64,
        regions,
        image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Rgb {
        Rgb {
            width: w,
            height: h,
            pixels: (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .map(|(x, y)| f(x, y))
                .collect(),
        }
    }

    #[test]
    fn regions_box_exactly_what_changed() {
        let a = img(64, 48, |_, _| [255, 255, 255]);
        assert_eq!(diff(&a, &a).changed, 0);
        assert!(diff(&a, &a).regions.is_empty());
        // Two separate blocks and a barely different pixel (noise).
        let b = img(64, 48, |x, y| {
            if (3..10).contains(&x) && (5..9).contains(&y)
                || (40..50).contains(&x) && (30..40).contains(&y)
            {
                [0, 0, 0]
            } else if x == 20 && y == 20 {
                [250, 250, 250]
            } else {
                [255, 255, 255]
            }
        });
        let d = diff(&a, &b);
        assert_eq!(d.changed, 7 * 4 + 10 * 10);
        assert_eq!(
            d.regions,
            vec![
                Region {
                    x: 40,
                    y: 30,
                    width: 10,
                    height: 10
                },
                Region {
                    x: 3,
                    y: 5,
                    width: 7,
                    height: 4
                },
            ]
        );
        assert_eq!(d.image.pixels[5 * 64 + 3], [255, 0, 0]);
        // A size change counts the extra area as changed.
        let c = img(64, 50, |_, _| [255, 255, 255]);
        assert_eq!(diff(&a, &c).changed, 64 * 2);
    }
}
