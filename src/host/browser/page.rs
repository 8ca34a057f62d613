//! The page actions of a [`Browser`]: navigation, viewport, finding an element by CSS selector
//! or visible text, real input events (`Input.dispatch*`, so the page sees trusted clicks and
//! keys), waits and screenshots. Each returns what happened, phrased as JSON for the tool.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Browser;

/// How an element is named.
#[derive(Debug, Clone)]
pub enum Target {
    /// A CSS selector.
    Selector(String),
    /// Visible text: the innermost elements whose text (or value, label, placeholder) equals it,
    /// else contains it (case-insensitive); the first visible one in document order.
    Text(String),
}

/// The emulated viewport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    /// CSS pixels.
    pub width: u32,
    /// CSS pixels.
    pub height: u32,
    /// Device pixel ratio.
    pub scale: f64,
    /// Mobile emulation with touch.
    pub mobile: bool,
}

impl Default for Viewport {
    fn default() -> Viewport {
        Viewport {
            width: 1280,
            height: 800,
            scale: 1.0,
            mobile: false,
        }
    }
}

impl Viewport {
    /// A named preset: `mobile` (390×844, touch, scale 3), `tablet` (820×1180, touch, scale
    /// 2), `desktop` (1440×900).
    pub fn preset(name: &str) -> Option<Viewport> {
        let (width, height, scale, mobile) = match name {
            "mobile" => (390, 844, 3.0, true),
            "tablet" => (820, 1180, 2.0, true),
            "desktop" => (1440, 900, 1.0, false),
            _ => return None,
        };
        Some(Viewport {
            width,
            height,
            scale,
            mobile,
        })
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({"width": self.width, "height": self.height, "device_scale": self.scale, "mobile": self.mobile})
    }
}

/// A captured PNG.
#[derive(Debug, Clone)]
pub struct Png {
    /// The file's bytes.
    pub data: Vec<u8>,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

impl Browser {
    /// Loads `url` and waits for its load event (until `timeout`).
    pub fn navigate(&self, url: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        let (_, loads) = self.events.counters();
        let r = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = r["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(format!("cannot load {url}: {e}"));
        }
        if r.get("loaderId").is_some() && !self.events.wait_counters(deadline, |_, l| l > loads) {
            return Err(format!("{url} did not finish loading within {timeout:?}"));
        }
        self.location()
    }

    /// Reloads the page and waits for its load event.
    pub fn reload(&self, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        let (_, loads) = self.events.counters();
        self.call("Page.reload", json!({}))?;
        if !self.events.wait_counters(deadline, |_, l| l > loads) {
            return Err(format!("the page did not reload within {timeout:?}"));
        }
        self.location()
    }

    /// Goes back one history entry and waits until the page is loaded.
    pub fn back(&self, timeout: Duration) -> Result<Value, String> {
        let h = self.call("Page.getNavigationHistory", json!({}))?;
        let i = h["currentIndex"].as_u64().unwrap_or(0) as usize;
        if i == 0 {
            return Err("there is no previous page in this browser's history".into());
        }
        let entry = h["entries"][i - 1]["id"].clone();
        let (navs, _) = self.events.counters();
        self.call("Page.navigateToHistoryEntry", json!({"entryId": entry}))?;
        let deadline = Instant::now() + timeout;
        if !self.events.wait_counters(deadline, |n, _| n > navs) {
            return Err(format!("the previous page did not load within {timeout:?}"));
        }
        self.eval_for(
            "new Promise(r => document.readyState === 'complete' ? r(true) : addEventListener('load', () => r(true)))",
            deadline.saturating_duration_since(Instant::now()),
        )?;
        self.location()
    }

    /// The page's URL and title.
    pub fn location(&self) -> Result<Value, String> {
        self.eval("({url: location.href, title: document.title})")
    }

    /// Sets the viewport.
    pub fn resize(&self, vp: Viewport) -> Result<Value, String> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": vp.width, "height": vp.height, "deviceScaleFactor": vp.scale, "mobile": vp.mobile}),
        )?;
        self.call(
            "Emulation.setTouchEmulationEnabled",
            json!({"enabled": vp.mobile, "maxTouchPoints": if vp.mobile { 5 } else { 1 }}),
        )?;
        *self.viewport.lock() = vp;
        let seen = self.eval("({innerWidth, innerHeight, devicePixelRatio})")?;
        Ok(json!({"viewport": vp.json(), "page": seen}))
    }

    /// Evaluates an expression in the page (promises awaited); its value, or the exception.
    pub fn eval(&self, expr: &str) -> Result<Value, String> {
        self.eval_for(expr, Duration::from_secs(30))
    }

    fn eval_for(&self, expr: &str, timeout: Duration) -> Result<Value, String> {
        let r = self.call_for(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true, "userGesture": true}),
            timeout,
        )?;
        if let Some(d) = r.get("exceptionDetails") {
            let msg = d["exception"]["description"]
                .as_str()
                .or_else(|| d["text"].as_str())
                .unwrap_or("exception");
            return Err(format!("the page threw: {msg}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Finds the element, scrolls it into view and checks that it is visible, enabled and not
    /// covered; what was hit (tag, selector, text, how many matched, centre point).
    pub fn locate(&self, target: &Target) -> Result<Value, String> {
        let (sel, text) = match target {
            Target::Selector(s) => (json!(s), Value::Null),
            Target::Text(t) => (Value::Null, json!(t)),
        };
        let hit = self.eval(&format!("({LOCATE})({sel}, {text})"))?;
        if let Some(e) = hit["error"].as_str() {
            return Err(e.to_string());
        }
        let what = match target {
            Target::Selector(s) => format!("selector {s:?}"),
            Target::Text(t) => format!("text {t:?}"),
        };
        if hit["count"].as_u64() == Some(0) {
            return Err(format!(
                "no visible element matches {what} ({} hidden match(es)); try wait_for, or check with proxy exec",
                hit["total"]
            ));
        }
        if hit["disabled"].as_bool() == Some(true) {
            return Err(format!("the element matching {what} is disabled: {hit}"));
        }
        if let Some(c) = hit["covered_by"].as_str() {
            return Err(format!(
                "the element matching {what} is covered by {c} (an overlay?); a click would land there"
            ));
        }
        Ok(hit)
    }

    /// Clicks the element's centre with real mouse events.
    pub fn click(&self, target: &Target) -> Result<Value, String> {
        let hit = self.locate(target)?;
        let (x, y) = (hit["x"].clone(), hit["y"].clone());
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        )?;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1}),
            )?;
        }
        Ok(hit)
    }

    /// Moves the mouse over the element.
    pub fn hover(&self, target: &Target) -> Result<Value, String> {
        let hit = self.locate(target)?;
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": hit["x"], "y": hit["y"]}),
        )?;
        Ok(hit)
    }

    /// Replaces the field's value by typing `value` (input events as from a keyboard).
    pub fn fill(&self, target: &Target, value: &str) -> Result<Value, String> {
        let hit = self.locate(target)?;
        let ok = self.eval(
            "(() => { const el = window.__agntTarget; el.focus(); \
             if ('value' in el) { el.value = ''; el.dispatchEvent(new Event('input', {bubbles: true})); return true; } \
             if (el.isContentEditable) { document.execCommand('selectAll'); return true; } return false; })()",
        )?;
        if ok != Value::Bool(true) {
            return Err(format!("the element is not a text field: {hit}"));
        }
        self.call("Input.insertText", json!({"text": value}))?;
        self.eval("window.__agntTarget.dispatchEvent(new Event('change', {bubbles: true}))")?;
        Ok(hit)
    }

    /// Chooses the option of a `<select>` whose value or text is `value`.
    pub fn select(&self, target: &Target, value: &str) -> Result<Value, String> {
        let hit = self.locate(target)?;
        let r = self.eval(&format!(
            "(v => {{ const el = window.__agntTarget; if (el.tagName !== 'SELECT') return 'not a <select>'; \
             const o = Array.from(el.options).find(o => o.value === v) || Array.from(el.options).find(o => o.text.trim() === v); \
             if (!o) return 'no option ' + JSON.stringify(v) + '; options: ' + Array.from(el.options).map(o => o.value).join(', '); \
             el.value = o.value; el.dispatchEvent(new Event('input', {{bubbles: true}})); el.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})({})",
            json!(value)
        ))?;
        match r {
            Value::Bool(true) => Ok(hit),
            other => Err(format!("cannot select: {}", other.as_str().unwrap_or("?"))),
        }
    }

    /// Presses a key (`KeyboardEvent.key` names, modifiers as `Control+a`) in the element, or
    /// in whatever has focus.
    pub fn press(&self, target: Option<&Target>, key: &str) -> Result<Value, String> {
        let hit = match target {
            Some(t) => {
                let hit = self.locate(t)?;
                self.eval("window.__agntTarget.focus()")?;
                hit
            }
            None => self.eval(
                "(el => ({tag: el.tagName.toLowerCase(), id: el.id || undefined}))(document.activeElement || document.body)",
            )?,
        };
        let (mods, key) = split_modifiers(key)?;
        let (code, vk, text) = key_info(key)?;
        let mut down = json!({"type": if text.is_some() && mods & !8 == 0 { "keyDown" } else { "rawKeyDown" },
            "key": key, "code": code, "windowsVirtualKeyCode": vk, "modifiers": mods});
        if let Some(t) = text.filter(|_| mods & !8 == 0) {
            down["text"] = t.into();
        }
        self.call("Input.dispatchKeyEvent", down)?;
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk, "modifiers": mods}),
        )?;
        Ok(hit)
    }

    /// Sets the files of an `<input type=file>`.
    pub fn upload(&self, target: &Target, files: &[String]) -> Result<Value, String> {
        let hit = self.locate(target)?;
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": "window.__agntTarget"}),
        )?;
        let object = r["result"]["objectId"].clone();
        if hit["tag"] != "input" {
            return Err(format!("the element is not an <input type=file>: {hit}"));
        }
        self.call(
            "DOM.setFileInputFiles",
            json!({"files": files, "objectId": object}),
        )?;
        Ok(hit)
    }

    /// Waits until an element is visible, the URL contains `url`, or the network is idle.
    pub fn wait_for(&self, what: &WaitFor, timeout: Duration) -> Result<Value, String> {
        let started = Instant::now();
        let met = match what {
            WaitFor::NetworkIdle => self
                .events
                .wait_network_idle(Duration::from_millis(500), started + timeout),
            WaitFor::Url(u) => {
                self.poll(&format!("location.href.includes({})", json!(u)), timeout)?
            }
            WaitFor::Element(t) => {
                let (sel, text) = match t {
                    Target::Selector(s) => (json!(s), Value::Null),
                    Target::Text(s) => (Value::Null, json!(s)),
                };
                self.poll(
                    &format!("(({LOCATE})({sel}, {text}, true).count || 0) > 0"),
                    timeout,
                )?
            }
        };
        let waited_ms = started.elapsed().as_millis() as u64;
        if !met {
            return Err(format!("{what:?} not met within {timeout:?}"));
        }
        Ok(json!({"met": true, "waited_ms": waited_ms}))
    }

    /// Polls `cond` in the page every 50 ms (in the page, not here) until true or `timeout`.
    fn poll(&self, cond: &str, timeout: Duration) -> Result<bool, String> {
        let ms = timeout.as_millis() as u64;
        let expr = format!(
            "new Promise(res => {{ const end = Date.now() + {ms}; const tick = () => {{ let ok = false; \
             try {{ ok = !!({cond}); }} catch (e) {{}} if (ok) res(true); else if (Date.now() > end) res(false); \
             else setTimeout(tick, 50); }}; tick(); }})"
        );
        let v = self.eval_for(&expr, timeout + Duration::from_secs(5))?;
        Ok(v == Value::Bool(true))
    }

    /// A PNG of the viewport, the whole page, or one element.
    pub fn screenshot(&self, shot: &Shot) -> Result<(Png, Value), String> {
        let (params, hit) = match shot {
            Shot::Viewport => (json!({"format": "png"}), Value::Null),
            Shot::FullPage => {
                let m = self.call("Page.getLayoutMetrics", json!({}))?;
                let size = &m["cssContentSize"];
                (
                    json!({"format": "png", "captureBeyondViewport": true, "clip": {
                        "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}),
                    Value::Null,
                )
            }
            Shot::Element(t) => {
                let hit = self.locate(t)?;
                let r = &hit["rect"];
                (
                    json!({"format": "png", "captureBeyondViewport": true, "clip": {
                        "x": r["x"], "y": r["y"], "width": r["width"], "height": r["height"], "scale": 1}}),
                    hit,
                )
            }
        };
        let r = self.call("Page.captureScreenshot", params)?;
        let data = r["data"]
            .as_str()
            .and_then(crate::util::base64::base64_decode)
            .ok_or("Page.captureScreenshot returned no image")?;
        let (width, height) = png_size(&data).ok_or("Page.captureScreenshot returned no PNG")?;
        Ok((
            Png {
                data,
                width,
                height,
            },
            hit,
        ))
    }
}

/// What `wait_for` waits for.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// A visible element.
    Element(Target),
    /// The URL contains this.
    Url(String),
    /// No request in flight for 500 ms.
    NetworkIdle,
}

/// What a screenshot covers.
#[derive(Debug, Clone)]
pub enum Shot {
    /// What is visible.
    Viewport,
    /// The whole scrollable page.
    FullPage,
    /// One element.
    Element(Target),
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(data: &[u8]) -> Option<(u32, u32)> {
    if !data.starts_with(b"\x89PNG\r\n\x1a\n") || data.len() < 24 || &data[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(data[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(data[20..24].try_into().ok()?);
    Some((w, h))
}

/// `Control+Shift+a` → (CDP modifier bits, `a`).
fn split_modifiers(key: &str) -> Result<(u32, &str), String> {
    let mut mods = 0;
    let mut parts: Vec<&str> = key.split('+').collect();
    // "+" itself, or "Control++".
    let last = if key.ends_with("++") || key == "+" {
        parts.truncate(parts.len().saturating_sub(2));
        "+"
    } else {
        parts.pop().unwrap_or("")
    };
    for m in parts {
        mods |= match m {
            "Alt" => 1,
            "Control" | "Ctrl" => 2,
            "Meta" | "Cmd" => 4,
            "Shift" => 8,
            other => {
                return Err(format!(
                    "unknown modifier {other:?} (Alt, Control, Meta, Shift)"
                ));
            }
        };
    }
    Ok((mods, last))
}

/// (code, virtual key code, text typed) of a `KeyboardEvent.key` name.
fn key_info(key: &str) -> Result<(String, u32, Option<String>), String> {
    let named = |code: &str, vk: u32, text: Option<&str>| {
        Ok((code.to_string(), vk, text.map(String::from)))
    };
    match key {
        "Enter" => named("Enter", 13, Some("\r")),
        "Tab" => named("Tab", 9, None),
        "Escape" => named("Escape", 27, None),
        "Backspace" => named("Backspace", 8, None),
        "Delete" => named("Delete", 46, None),
        " " | "Space" => named("Space", 32, Some(" ")),
        "ArrowUp" => named("ArrowUp", 38, None),
        "ArrowDown" => named("ArrowDown", 40, None),
        "ArrowLeft" => named("ArrowLeft", 37, None),
        "ArrowRight" => named("ArrowRight", 39, None),
        "Home" => named("Home", 36, None),
        "End" => named("End", 35, None),
        "PageUp" => named("PageUp", 33, None),
        "PageDown" => named("PageDown", 34, None),
        k if k.chars().count() == 1 => {
            let c = k.chars().next().unwrap_or(' ');
            let up = c.to_ascii_uppercase();
            let (code, vk) = if up.is_ascii_alphabetic() {
                (format!("Key{up}"), up as u32)
            } else if c.is_ascii_digit() {
                (format!("Digit{c}"), c as u32)
            } else {
                (String::new(), 0)
            };
            Ok((code, vk, Some(k.to_string())))
        }
        other => Err(format!(
            "unknown key {other:?}: use KeyboardEvent.key names (Enter, Tab, Escape, ArrowDown, a, …)"
        )),
    }
}

/// The page-side finder: `(selector, text, quiet)` → the hit, kept as `window.__agntTarget`.
const LOCATE: &str = r#"function (sel, text, quiet) {
  const norm = s => (s || '').replace(/\s+/g, ' ').trim();
  const visible = el => { const r = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none' && parseFloat(cs.opacity || '1') > 0; };
  let all;
  if (sel !== null) {
    try { all = Array.from(document.querySelectorAll(sel)); } catch (e) { return {error: 'invalid selector ' + JSON.stringify(sel) + ': ' + e.message}; }
  } else {
    const want = norm(text), lw = want.toLowerCase();
    const label = el => norm(el.innerText || el.value || el.getAttribute('aria-label') || el.getAttribute('placeholder') || el.getAttribute('title') || el.getAttribute('alt') || '');
    const els = document.body ? Array.from(document.body.querySelectorAll('*')).filter(el => !['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(el.tagName) && !el.closest('[data-agnt]')) : [];
    let m = els.filter(el => label(el) === want);
    if (!m.length) m = els.filter(el => label(el).toLowerCase().includes(lw));
    all = m.filter(el => !m.some(o => o !== el && el.contains(o)));
  }
  const vis = all.filter(visible);
  if (!vis.length || quiet) return {count: vis.length, total: all.length};
  const el = vis[0];
  el.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
  const r = el.getBoundingClientRect();
  window.__agntTarget = el;
  const path = e => { const parts = []; for (; e && e.nodeType === 1 && e !== document.body; e = e.parentElement) {
      if (e.id) { parts.unshift('#' + CSS.escape(e.id)); break; }
      const same = Array.from(e.parentElement ? e.parentElement.children : []).filter(s => s.tagName === e.tagName);
      parts.unshift(e.tagName.toLowerCase() + (same.length > 1 ? ':nth-of-type(' + (same.indexOf(e) + 1) + ')' : '')); }
    return parts.join(' > ') || 'body'; };
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const top = document.elementFromPoint(x, y);
  const covered = top && top !== el && !el.contains(top) && !top.contains(el) ? top.tagName.toLowerCase() + (top.id ? '#' + top.id : '') : undefined;
  return {count: vis.length, tag: el.tagName.toLowerCase(), selector: path(el), text: norm(el.innerText || el.value || '').slice(0, 80),
    disabled: !!el.disabled || el.getAttribute('aria-disabled') === 'true', covered_by: covered, x, y,
    rect: {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}};
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_modifiers() {
        assert_eq!(split_modifiers("Enter").unwrap(), (0, "Enter"));
        assert_eq!(split_modifiers("Control+Shift+a").unwrap(), (10, "a"));
        assert_eq!(split_modifiers("Control++").unwrap(), (2, "+"));
        assert!(split_modifiers("Hyper+a").is_err());
        assert_eq!(
            key_info("Enter").unwrap(),
            ("Enter".into(), 13, Some("\r".into()))
        );
        assert_eq!(
            key_info("a").unwrap(),
            ("KeyA".into(), 65, Some("a".into()))
        );
        assert!(key_info("Bogus").is_err());
        assert_eq!(Viewport::preset("mobile").unwrap().width, 390);
        assert!(Viewport::preset("watch").is_none());
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\x00\0\0\0\x02";
        assert_eq!(png_size(png), Some((256, 2)));
        assert_eq!(png_size(b"GIF89a"), None);
    }
}
