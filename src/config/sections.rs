//! The Go original's other `.agnt.kdl` sections and script keys, kept in the model so users'
//! files load unchanged: `project { name; type; port-conflict }`, `hooks { on-response { … } }`,
//! `toast { … }`, and a script's `depends-on` (names with `timeout=`, or a block).

use std::time::Duration;

use kdl::{KdlNode, KdlValue};

use super::{Cx, children};
use crate::Result;

/// How long a dependent waits for each dependency's readiness unless `timeout=` says otherwise.
pub const DEFAULT_DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(120);

/// `project { name; type; port-conflict }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectConfig {
    pub name: Option<String>,
    /// `type`: a hint such as `go`, `node`, `dotnet-vite`.
    pub kind: Option<String>,
    pub port_conflict: PortConflict,
}

pub use crate::supervisor::clash::PortConflict;

/// One entry of a script's `depends-on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub script: String,
    /// How long to wait for its readiness before starting anyway (with a warning).
    pub timeout: Duration,
}

/// `hooks { on-response { toast; indicator; sound } }`: what the page shows when an agent
/// answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksConfig {
    pub on_response_toast: bool,
    pub on_response_indicator: bool,
    pub on_response_sound: bool,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            on_response_toast: true,
            on_response_indicator: true,
            on_response_sound: false,
        }
    }
}

/// `toast { duration; position; max-visible }`: how the page's toasts look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToastConfig {
    /// `duration` in milliseconds (default 4000).
    pub duration: Duration,
    /// One of [`TOAST_POSITIONS`] (default `bottom-right`).
    pub position: String,
    pub max_visible: u32,
}

/// Where toasts may sit.
pub const TOAST_POSITIONS: [&str; 4] = ["top-left", "top-right", "bottom-left", "bottom-right"];

impl Default for ToastConfig {
    fn default() -> Self {
        ToastConfig {
            duration: Duration::from_millis(4000),
            position: "bottom-right".into(),
            max_visible: 3,
        }
    }
}

impl Cx<'_> {
    pub(super) fn project(&self, node: &KdlNode) -> Result<ProjectConfig> {
        let mut out = ProjectConfig::default();
        for child in children(node) {
            match child.name().value() {
                "name" => out.name = Some(self.string(child)?),
                "type" => out.kind = Some(self.string(child)?),
                "port-conflict" => {
                    let s = self.string(child)?;
                    out.port_conflict = PortConflict::parse(&s).ok_or_else(|| {
                        self.error(
                            child,
                            format!(
                                "port-conflict {s:?} is not one of {}",
                                PortConflict::NAMES.join(", ")
                            ),
                        )
                    })?;
                }
                _ => self.unknown(child, "project"),
            }
        }
        Ok(out)
    }

    pub(super) fn hooks(&self, node: &KdlNode) -> Result<HooksConfig> {
        let mut out = HooksConfig::default();
        for child in children(node) {
            if child.name().value() != "on-response" {
                self.unknown(child, "hooks");
                continue;
            }
            for key in children(child) {
                match key.name().value() {
                    "toast" => out.on_response_toast = self.bool(key)?,
                    "indicator" => out.on_response_indicator = self.bool(key)?,
                    "sound" => out.on_response_sound = self.bool(key)?,
                    _ => self.unknown(key, "hooks on-response"),
                }
            }
        }
        Ok(out)
    }

    pub(super) fn toast(&self, node: &KdlNode) -> Result<ToastConfig> {
        let mut out = ToastConfig::default();
        for child in children(node) {
            match child.name().value() {
                "duration" => {
                    out.duration = Duration::from_millis(self.int(child, 1, 600_000)? as u64)
                }
                "position" => {
                    let p = self.string(child)?;
                    if !TOAST_POSITIONS.contains(&p.as_str()) {
                        return Err(self.error(
                            child,
                            format!(
                                "toast position {p:?} is not one of {}",
                                TOAST_POSITIONS.join(", ")
                            ),
                        ));
                    }
                    out.position = p;
                }
                "max-visible" => out.max_visible = self.int(child, 1, 100)? as u32,
                _ => self.unknown(child, "toast"),
            }
        }
        Ok(out)
    }

    /// `depends-on "a" "b" timeout=60` or `depends-on { a timeout=30; b }`.
    pub(super) fn depends_on(&self, node: &KdlNode) -> Result<Vec<Dependency>> {
        let timeout_of = |n: &KdlNode| -> Result<Duration> {
            match n.get("timeout") {
                None => Ok(DEFAULT_DEPENDENCY_TIMEOUT),
                Some(KdlValue::Integer(s)) if *s > 0 => Ok(Duration::from_secs(*s as u64)),
                Some(KdlValue::String(s)) => crate::util::duration::parse(s)
                    .ok_or_else(|| self.error(n, format!("depends-on: cannot read timeout={s:?}"))),
                Some(v) => Err(self.error(
                    n,
                    format!("depends-on: timeout= expects seconds, found {v}"),
                )),
            }
        };
        let timeout = timeout_of(node)?;
        let mut out: Vec<Dependency> = self
            .strings(node)?
            .into_iter()
            .map(|script| Dependency { script, timeout })
            .collect();
        for child in children(node) {
            out.push(Dependency {
                script: child.name().value().to_string(),
                timeout: timeout_of(child)?,
            });
        }
        if out.is_empty() {
            return Err(self.error(node, "depends-on names no script".into()));
        }
        Ok(out)
    }
}
