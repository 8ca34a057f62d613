//! `browser`: Chromium that agnt drives itself (headless by default) through a proxy, so the
//! injected script reports errors, interactions and `exec` with no human at the page. Actions
//! follow the Go original (`start`/`open`, `stop`/`close`, `status`, `list`) plus page actions:
//! navigation, viewport, clicks and typing by selector or visible text, waits, screenshots,
//! console and dialogs. The browsers themselves live in `host::browser`.

use std::{path::PathBuf, sync::Arc, time::Duration};

use serde_json::{Value, json};

use super::{Annotations, Call, Host, Tool, ToolError, input, object};
use crate::{
    host::browser::{Browser, LaunchOptions, Shot, Target, Viewport, WaitFor},
    proxy::{ProxyConfig, ProxyServer},
};

/// The tool.
pub static TOOL: Tool = Tool {
    name: "browser",
    description: "Drive a headless Chromium through a proxy (no human needed). `start` (url \
or proxy_id), `stop`, `status`, `list`; by id or proxy_id: `navigate`, `reload`, `back`, \
`resize`, `click`/`hover`/`fill`/`select`/`press`/`upload` (selector or text), `wait_for`, \
`screenshot`, `console`, `dialog`. Example: {\"action\": \"click\", \"text\": \"Buy\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Browser",
        read_only: false,
        destructive: true,
        idempotent: false,
        open_world: true,
    },
};

const ACTIONS: &[&str] = &[
    "start",
    "open",
    "stop",
    "close",
    "status",
    "list",
    "navigate",
    "reload",
    "back",
    "resize",
    "click",
    "hover",
    "fill",
    "select",
    "press",
    "upload",
    "wait_for",
    "screenshot",
    "console",
    "dialog",
];

fn input_schema() -> Value {
    input(
        json!({
            "action": {"type": "string", "enum": ACTIONS, "description": "What to do"},
            "id": {"type": "string", "description": "Browser id"},
            "proxy_id": {"type": "string", "description": "Its proxy"},
            "url": {"type": "string", "description": "URL or path"},
            "headless": {"type": "boolean", "description": "Default true"},
            "binary_path": {"type": "string", "description": "Chromium"},
            "profile": {"type": "string", "description": "throwaway or persistent (keeps logins)"},
            "preset": {"type": "string", "enum": ["mobile", "tablet", "desktop"], "description": "resize"},
            "width": {"type": "integer", "description": "resize"},
            "height": {"type": "integer", "description": "resize"},
            "selector": {"type": "string", "description": "Element (CSS)"},
            "text": {"type": "string", "description": "Visible text; dialog: prompt"},
            "value": {"type": "string", "description": "fill, select"},
            "key": {"type": "string", "description": "press: e.g. Enter"},
            "files": {"type": "array", "items": {"type": "string"}, "description": "upload"},
            "network_idle": {"type": "boolean", "description": "wait_for"},
            "timeout": super::timeout_schema("s"),
            "full_page": {"type": "boolean", "description": "screenshot"},
            "inline": {"type": "boolean", "description": "screenshot: base64 too"},
            "since": {"type": "integer", "minimum": 0, "description": "console cursor"},
            "accept": {"type": "boolean", "description": "dialog (default true)"},
            "global": {"type": "boolean", "description": "list: all projects"},
            "path": {"type": "string", "description": "Project"},
        }),
        &["action"],
    )
}

fn output_schema() -> Value {
    object(json!({
        "id": {"type": "string"},
        "message": {"type": "string"},
    }))
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let action = c.action("");
    match action {
        "start" | "open" => start(host, c),
        "list" => {
            let global = c.bool("global");
            let project = c.project();
            let list: Vec<Value> = host
                .browsers()
                .list(if global { None } else { Some(&project) })
                .iter()
                .map(|b| b.status())
                .collect();
            Ok(json!({"count": list.len(), "browsers": list, "global": global}))
        }
        "" => Err(ToolError::new(format!(
            "missing required parameter \"action\"; valid actions: {}",
            ACTIONS.join(", ")
        ))),
        _ => {
            let b = find(host, c)?;
            let mut v = page_action(host, c, &b, action)?;
            if v.is_object() && v.get("id").is_none() {
                v["id"] = b.id().into();
            }
            Ok(v)
        }
    }
}

fn page_action(
    host: &Host,
    c: &Call<'_>,
    b: &Arc<Browser>,
    action: &str,
) -> Result<Value, ToolError> {
    let err = |m: String| ToolError(m);
    let nav_timeout = || super::timeout_arg(c, Duration::from_secs(30), Duration::from_secs(300));
    match action {
        "stop" | "close" => {
            host.browsers().stop(b.id());
            Ok(json!({"success": true, "message": format!("browser {} closed", b.id())}))
        }
        "status" => {
            let mut v = b.status();
            v["page"] = b.location().unwrap_or(Value::Null);
            v["console_cursor"] = b.events().cursor().into();
            Ok(v)
        }
        "navigate" => {
            let url = c.need_str("url", "the URL or path to load, e.g. \"/settings\"")?;
            let url = behind_proxy(host, b, url);
            let page = b.navigate(&url, nav_timeout()?).map_err(err)?;
            Ok(json!({"page": page, "message": format!("loaded {url}")}))
        }
        "reload" => {
            Ok(json!({"page": b.reload(nav_timeout()?).map_err(err)?, "message": "reloaded"}))
        }
        "back" => Ok(json!({"page": b.back(nav_timeout()?).map_err(err)?, "message": "went back"})),
        "resize" => {
            let vp = match c.str("preset") {
                Some(p) => {
                    Viewport::preset(p).ok_or_else(|| err(format!("unknown preset {p:?}")))?
                }
                None => match (c.u64("width"), c.u64("height")) {
                    (Some(w), Some(h)) => Viewport {
                        width: w as u32,
                        height: h as u32,
                        ..Viewport::default()
                    },
                    _ => {
                        return Err(ToolError::new(
                            "resize needs a preset (mobile, tablet, desktop) or width and height",
                        ));
                    }
                },
            };
            let mut v = b.resize(vp).map_err(err)?;
            v["message"] = format!("viewport {}x{}", vp.width, vp.height).into();
            Ok(v)
        }
        "click" | "hover" | "fill" | "select" | "upload" => {
            let t = target(c)?.ok_or_else(|| err(format!("{action} needs a selector or text")))?;
            let hit = match action {
                "click" => b.click(&t),
                "hover" => b.hover(&t),
                "fill" | "select" => {
                    let value = c
                        .args
                        .get("value")
                        .and_then(Value::as_str)
                        .ok_or_else(|| err(format!("{action} needs a value")))?;
                    if action == "fill" {
                        b.fill(&t, value)
                    } else {
                        b.select(&t, value)
                    }
                }
                _ => {
                    let files = files(c)?;
                    b.upload(&t, &files)
                }
            }
            .map_err(err)?;
            Ok(hit_answer(action, hit))
        }
        "press" => {
            let key = c.need_str(
                "key",
                "the key, as KeyboardEvent.key names it, e.g. \"Enter\"",
            )?;
            let t = target(c)?;
            let hit = b.press(t.as_ref(), key).map_err(err)?;
            let mut v = hit_answer("press", hit);
            v["message"] = format!(
                "pressed {key} in {}",
                v["hit"]["tag"].as_str().unwrap_or("the page")
            )
            .into();
            Ok(v)
        }
        "wait_for" => {
            let what = if let Some(t) = target(c)? {
                WaitFor::Element(t)
            } else if let Some(u) = c.str("url") {
                WaitFor::Url(u.to_string())
            } else if c.bool("network_idle") {
                WaitFor::NetworkIdle
            } else {
                return Err(ToolError::new(
                    "wait_for needs selector, text, url or network_idle: true",
                ));
            };
            let timeout = super::timeout_arg(c, Duration::from_secs(10), Duration::from_secs(300))?;
            let mut v = b.wait_for(&what, timeout).map_err(err)?;
            v["message"] = format!("{what:?} met").into();
            Ok(v)
        }
        "screenshot" => {
            let shot = match target(c)? {
                Some(t) => Shot::Element(t),
                None if c.bool("full_page") => Shot::FullPage,
                None => Shot::Viewport,
            };
            let (png, hit) = b.screenshot(&shot).map_err(err)?;
            let dir = host.state().browser_screenshots();
            let millis = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let path = dir.join(format!("{}-{millis}.png", b.id().replace(['/', '.'], "_")));
            crate::paths::private_dir(&dir)
                .and_then(|()| crate::util::fs::write_atomic(&path, &png.data))
                .map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
            let mut v = json!({
                "path": path, "width": png.width, "height": png.height, "bytes": png.data.len(),
                "message": format!("{}x{} PNG written to {}", png.width, png.height, path.display()),
            });
            if !hit.is_null() {
                v["hit"] = hit;
            }
            if c.bool("inline") {
                v["data"] = crate::util::base64::base64(&png.data).into();
            }
            Ok(v)
        }
        "console" => {
            let (entries, cursor) = b.events().console_since(c.u64("since").unwrap_or(0));
            let mut v = json!({"count": entries.len(), "entries": entries, "cursor": cursor});
            let cut = super::fit_array(&mut v, "entries", true);
            v["message"] = if cut > 0 {
                format!("{cut} older entries left out; pass since to page").into()
            } else {
                format!("pass since: {cursor} for newer entries").into()
            };
            Ok(v)
        }
        "dialog" => {
            let accept = c
                .args
                .get("accept")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            b.events()
                .answer_next_dialog(accept, c.str("text").map(String::from));
            Ok(
                json!({"message": format!("the next dialog will be {}", if accept { "accepted" } else { "dismissed" })}),
            )
        }
        other => Err(err(format!(
            "unknown action {other:?}; valid actions: {}",
            ACTIONS.join(", ")
        ))),
    }
}

fn start(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let err = |m: String| ToolError(m);
    let project = c.project();
    let (proxy, url) = match (c.str("proxy_id"), c.str("url")) {
        (None, None) => {
            return Err(ToolError::new(
                "start needs a url or a proxy_id (see proxy list)",
            ));
        }
        (Some(pid), url) => {
            let p = host.proxies().get(pid)?;
            let url = match url {
                None => format!("{}/", p.url()),
                Some(u) => rewrite(&p, u).ok_or_else(|| {
                    err(format!(
                        "{u} is not behind proxy {} ({} → {})",
                        p.id(),
                        p.url(),
                        p.config().target_url
                    ))
                })?,
            };
            (p, url)
        }
        (None, Some(u)) => {
            let found = host
                .proxies()
                .list(None)
                .into_iter()
                .find_map(|p| rewrite(&p, u).map(|r| (p, r)));
            match found {
                Some(x) => x,
                None => {
                    let target =
                        origin(u).ok_or_else(|| err(format!("{u} is not an http(s) URL")))?;
                    let pid = c
                        .str("id")
                        .map_or_else(|| proxy_id_for(target), String::from);
                    let p = host
                        .proxies()
                        .start(ProxyConfig::new(&pid, target, &project))?;
                    host.save_proxies();
                    let url = rewrite(&p, u).unwrap_or_else(|| p.url());
                    (p, url)
                }
            }
        }
    };
    let id = c.str("id").unwrap_or(proxy.id()).to_string();
    if let Some(b) = host
        .browsers()
        .for_proxy(proxy.id())
        .or_else(|| host.browsers().get(&id))
    {
        let mut v = b.status();
        v["message"] = format!("browser {} is already running", b.id()).into();
        return Ok(v);
    }
    let state = host.state();
    let persistent = match c.str("profile") {
        None | Some("throwaway") => false,
        Some("persistent") => true,
        Some(other) => {
            return Err(err(format!(
                "invalid profile {other:?}; valid values: throwaway, persistent"
            )));
        }
    };
    let marker = host.pm().ok().map(|pm| {
        crate::supervisor::descendants::marker(
            &pm.config().instance,
            &project,
            &format!("browser:{id}"),
        )
    });
    let opts = LaunchOptions {
        id: id.clone(),
        proxy_id: Some(proxy.id().to_string()),
        url: url.clone(),
        headless: c
            .args
            .get("headless")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        binary: c.str("binary_path").map(PathBuf::from),
        profile: if persistent {
            state.browser_profile(&project)
        } else {
            state.browser_tmp_profile(&id)
        },
        throwaway: !persistent,
        log: state.browser_log(&id),
        marker,
        project,
    };
    let b = host.browsers().start(opts).map_err(err)?;
    let loaded = b.navigate(&url, Duration::from_secs(30));
    let mut v = b.status();
    v["url"] = url.clone().into();
    v["page"] = b.location().unwrap_or(Value::Null);
    if let Err(e) = loaded {
        // The browser runs; the agent learns why the page is not there.
        v["warning"] = e.into();
    }
    v["message"] = format!(
        "browser {} started on {url} through proxy {}; read the page with proxylog, drive it with this tool",
        b.id(),
        proxy.id()
    )
    .into();
    Ok(v)
}

/// The browser named by `id` or `proxy_id`, or the only one of the project.
pub(super) fn find(host: &Host, c: &Call<'_>) -> Result<Arc<Browser>, ToolError> {
    let browsers = host.browsers();
    if let Some(id) = c.str("id") {
        return browsers
            .get(id)
            .ok_or_else(|| ToolError::new(format!("no browser {id:?} is running (browser list)")));
    }
    if let Some(pid) = c.str("proxy_id") {
        return browsers.for_proxy(pid).ok_or_else(|| {
            ToolError::new(format!("no browser runs on proxy {pid:?}; start one: {{\"action\": \"start\", \"proxy_id\": \"{pid}\"}}"))
        });
    }
    let mut mine = browsers.list(Some(&c.project()));
    match mine.len() {
        1 => Ok(mine.remove(0)),
        0 => Err(ToolError::new(
            "no browser is running for this project; start one with {\"action\": \"start\", \"proxy_id\": \"...\"}",
        )),
        n => Err(ToolError::new(format!(
            "{n} browsers are running; pass id or proxy_id (browser list)"
        ))),
    }
}

fn target(c: &Call<'_>) -> Result<Option<Target>, ToolError> {
    match (c.str("selector"), c.str("text")) {
        (Some(_), Some(_)) => Err(ToolError::new("pass selector or text, not both")),
        (Some(s), None) => Ok(Some(Target::Selector(s.to_string()))),
        (None, Some(t)) => Ok(Some(Target::Text(t.to_string()))),
        (None, None) => Ok(None),
    }
}

fn files(c: &Call<'_>) -> Result<Vec<String>, ToolError> {
    let project = c.project();
    let files: Vec<String> = c
        .strs("files")
        .iter()
        .map(|f| project.join(f).to_string_lossy().into_owned())
        .collect();
    if files.is_empty() {
        return Err(ToolError::new("upload needs files (paths)"));
    }
    if let Some(missing) = files.iter().find(|f| !std::path::Path::new(f).is_file()) {
        return Err(ToolError::new(format!("no such file: {missing}")));
    }
    Ok(files)
}

fn hit_answer(action: &str, hit: Value) -> Value {
    let n = hit["count"].as_u64().unwrap_or(1);
    let message = format!(
        "{action}: <{}> {} \"{}\" (first of {n} visible match{})",
        hit["tag"].as_str().unwrap_or("?"),
        hit["selector"].as_str().unwrap_or(""),
        hit["text"].as_str().unwrap_or(""),
        if n == 1 { "" } else { "es" }
    );
    json!({"hit": hit, "matched": n, "message": message})
}

/// `url` on the browser's proxy: paths join the proxy's URL, the dev server's URLs are moved
/// onto the proxy; anything else is loaded as given.
pub(super) fn behind_proxy(host: &Host, b: &Browser, url: &str) -> String {
    b.proxy_id()
        .and_then(|pid| host.proxies().get(pid).ok())
        .and_then(|p| rewrite(&p, url))
        .unwrap_or_else(|| url.to_string())
}

/// `u` as a URL of proxy `p`: a path, the proxy's own URL, or one of its target's.
fn rewrite(p: &ProxyServer, u: &str) -> Option<String> {
    let base = p.url();
    if u.starts_with('/') {
        return Some(format!("{base}{u}"));
    }
    if origin(u) == Some(base.trim_end_matches('/')) {
        return Some(u.to_string());
    }
    let target = p.config().target_url.trim_end_matches('/').to_string();
    let o = origin(u)?;
    (origin(&target) == Some(o)).then(|| format!("{base}{}", &u[o.len()..]))
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin(u: &str) -> Option<&str> {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&u[..u.len() - rest.len() + end])
}

/// A proxy id for a dev server: `localhost-3000`.
fn proxy_id_for(origin: &str) -> String {
    origin
        .split("://")
        .nth(1)
        .unwrap_or(origin)
        .replace([':', '.', '[', ']'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_ids() {
        assert_eq!(
            origin("http://localhost:3000/a?b"),
            Some("http://localhost:3000")
        );
        assert_eq!(origin("https://x.test"), Some("https://x.test"));
        assert_eq!(origin("file:///etc"), None);
        assert_eq!(proxy_id_for("http://localhost:3000"), "localhost-3000");
    }
}
