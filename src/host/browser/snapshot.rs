//! Visual snapshots: named baselines of pages captured through a [`Browser`] with animations,
//! transitions and the caret disabled, kept under the state directory (one directory per
//! snapshot: `meta.json` and one PNG per page), and comparisons against them (changed fraction,
//! pass/fail, regions, a diff image per page).

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Browser, Shot, diff, png};
use crate::util::fs::write_atomic;

/// One snapshot's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Its name.
    pub name: String,
    /// When it was taken (RFC 3339).
    pub created: String,
    /// The captured pages.
    pub pages: Vec<PageShot>,
}

/// One captured page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageShot {
    /// As the caller named it (a path or URL).
    pub page: String,
    /// The URL loaded.
    pub url: String,
    /// The PNG.
    pub file: PathBuf,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

/// The page style that stops motion, so two captures of an unchanged page are identical.
const FREEZE: &str = r#"(() => {
  let s = document.getElementById('__agnt_freeze');
  if (!s) { s = document.createElement('style'); s.id = '__agnt_freeze'; s.setAttribute('data-agnt', '');
    s.textContent = '*, *::before, *::after { animation: none !important; transition: none !important; caret-color: transparent !important; scroll-behavior: auto !important; }';
    (document.head || document.documentElement).appendChild(s); }
  if (document.getAnimations) document.getAnimations().forEach(a => { try { a.finish(); } catch (e) { a.cancel(); } });
  if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
  return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))));
})()"#;

impl Browser {
    /// Loads `url`, freezes motion and captures the viewport.
    pub fn capture_still(&self, url: &str) -> Result<png::Rgb, String> {
        self.navigate(url, Duration::from_secs(30))?;
        // Late requests (fonts, images) settle first; a page that never idles is captured anyway.
        self.events.wait_network_idle(
            Duration::from_millis(300),
            std::time::Instant::now() + Duration::from_secs(5),
        );
        self.eval(FREEZE)?;
        let (shot, _) = self.screenshot(&Shot::Viewport)?;
        png::decode(&shot.data)
    }
}

/// Captures `pages` (`(as named, URL)`) as snapshot `name` in `dir`, replacing an older one.
pub fn baseline(
    b: &Browser,
    dir: &Path,
    name: &str,
    pages: &[(String, String)],
) -> Result<Meta, String> {
    let _ = fs::remove_dir_all(dir);
    crate::paths::private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut shots = Vec::new();
    for (i, (page, url)) in pages.iter().enumerate() {
        let img = b.capture_still(url)?;
        let file = dir.join(format!("{i}.png"));
        write_atomic(&file, &png::encode(&img))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        shots.push(PageShot {
            page: page.clone(),
            url: url.clone(),
            file,
            width: img.width,
            height: img.height,
        });
    }
    let meta = Meta {
        name: name.to_string(),
        created: crate::util::time::rfc3339(std::time::SystemTime::now()),
        pages: shots,
    };
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| e.to_string())?;
    write_atomic(&dir.join("meta.json"), &json)
        .map_err(|e| format!("cannot save the snapshot: {e}"))?;
    Ok(meta)
}

/// Captures the pages of the snapshot in `dir` again (`url_of` maps each to a URL for this
/// browser) and compares; one result per page, and whether all passed.
pub fn compare(
    b: &Browser,
    dir: &Path,
    threshold: f64,
    url_of: impl Fn(&PageShot) -> String,
) -> Result<(Vec<Value>, bool), String> {
    let meta = load(dir)?;
    let mut out = Vec::new();
    let mut all = true;
    for (i, shot) in meta.pages.iter().enumerate() {
        let before = fs::read(&shot.file)
            .map_err(|e| format!("cannot read {}: {e}", shot.file.display()))
            .and_then(|d| png::decode(&d))?;
        let after = b.capture_still(&url_of(shot))?;
        let d = diff::diff(&before, &after);
        let current = dir.join(format!("{i}-current.png"));
        let diff_path = dir.join(format!("{i}-diff.png"));
        for (p, img) in [(&current, &after), (&diff_path, &d.image)] {
            write_atomic(p, &png::encode(img))
                .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
        let fraction = d.fraction();
        let pass = fraction <= threshold;
        all &= pass;
        out.push(json!({
            "page": shot.page, "changed_fraction": fraction, "changed_pixels": d.changed,
            "pass": pass, "regions": d.regions, "diff_path": diff_path, "current_path": current,
            "size": [after.width, after.height],
        }));
    }
    Ok((out, all))
}

/// The record of the snapshot in `dir`.
pub fn load(dir: &Path) -> Result<Meta, String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = fs::read(dir.join("meta.json"))
        .map_err(|_| format!("no snapshot {name:?} (snapshot list)"))?;
    serde_json::from_slice(&text).map_err(|e| format!("snapshot {name:?} is unreadable: {e}"))
}

/// Every snapshot under `root`.
pub fn list(root: &Path) -> Vec<Meta> {
    let Ok(dir) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut all: Vec<Meta> = dir.flatten().filter_map(|e| load(&e.path()).ok()).collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}
