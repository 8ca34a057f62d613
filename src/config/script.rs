//! A `scripts { NAME { ... } }` entry: its model and its parser (command, readiness, the Go
//! original's startup, port and health keys).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use kdl::{KdlNode, KdlValue};

use super::{Cx, DEFAULT_READY_TIMEOUT, Dependency, children, prop_bool, value_string};
use crate::{
    Result,
    supervisor::{CommandLine, ProcessSpec, ReadyCheck, health::HealthPatterns},
};

/// One entry of `scripts { ... }`.
#[derive(Debug, Clone)]
pub struct ScriptConfig {
    pub name: String,
    pub command: CommandLine,
    pub autostart: bool,
    pub env: BTreeMap<String, String>,
    /// Working directory, already resolved against the config's root.
    pub cwd: Option<PathBuf>,
    /// Regexes that pick the dev server's URL out of its output, as written: `{url}` stands for
    /// a local URL (compile with [`crate::urlwatch::compile_matcher`]).
    pub url_matchers: Vec<String>,
    /// `ready`, `ready-port`, `ready-url`, or `probe-port` (the first of `ports`).
    pub ready: Option<ReadyCheck>,
    pub ready_timeout: Duration,
    /// `shell` (with `run`): the shell that runs the line instead of `sh`.
    pub shell: Option<String>,
    /// `shell-args` (with `run`): the shell's arguments before the line (default `-c`).
    pub shell_args: Vec<String>,
    /// `depends-on`: scripts whose readiness this one waits for.
    pub depends_on: Vec<Dependency>,
    /// `auto-restart`: restart on exit (with backoff).
    pub auto_restart: bool,
    /// `ports`: ports this script listens on (pre-flight conflict check, and the first 30 s of
    /// each run watched for a holder that took one: `supervisor::clash`).
    pub ports: Vec<u16>,
    /// `probe-port`: readiness = the first of `ports` accepts a connection.
    pub probe_port: bool,
    /// `error-pattern`: a regex (checked) whose match marks the script unhealthy.
    pub error_pattern: Option<String>,
    /// `healthy-pattern`: a regex (checked) whose match marks it healthy again.
    pub healthy_pattern: Option<String>,
}

impl ScriptConfig {
    /// A process spec for this script, with `env`, `cwd` and `ready` applied.
    pub fn to_spec(&self, id: &str, project: &Path) -> ProcessSpec {
        let mut spec = ProcessSpec::new(id, project, self.command.clone());
        spec.env = self.env.clone();
        spec.cwd = self.cwd.clone();
        spec.ready = self.ready.clone();
        spec.restart.enabled = self.auto_restart;
        spec.ports = self.ports.clone();
        // Config parsing checked both patterns; with neither, the built-in ones apply.
        let re = |p: &Option<String>| p.as_deref().and_then(|p| regex::Regex::new(p).ok());
        spec.health = Some(
            if self.error_pattern.is_some() || self.healthy_pattern.is_some() {
                HealthPatterns {
                    error: re(&self.error_pattern),
                    healthy: re(&self.healthy_pattern),
                }
            } else {
                HealthPatterns::builtin()
            },
        );
        spec
    }
}

impl Cx<'_> {
    pub(super) fn script(&self, node: &KdlNode) -> Result<ScriptConfig> {
        let name = node.name().value().to_string();
        let mut run: Option<String> = None;
        let mut argv: Vec<String> = vec![];
        let mut extra_args: Vec<String> = vec![];
        let mut autostart = prop_bool(node, &["autostart", "auto-start"]).unwrap_or(false);
        let mut env = BTreeMap::new();
        let mut cwd = None;
        let mut url_matchers = vec![];
        let mut ready = None;
        let mut ready_timeout = DEFAULT_READY_TIMEOUT;
        let (mut shell, mut shell_args) = (None, Vec::new());
        let (mut depends_on, mut auto_restart) = (Vec::new(), false);
        let (mut ports, mut probe_port) = (Vec::new(), None);
        let (mut error_pattern, mut healthy_pattern) = (None, None);
        for child in children(node) {
            match child.name().value() {
                "run" => run = Some(self.string(child)?),
                "command" => argv = self.strings(child)?,
                "args" => extra_args.extend(self.strings(child)?),
                "autostart" | "auto-start" => autostart = self.bool(child)?,
                "env" => {
                    for var in children(child) {
                        env.insert(var.name().value().to_string(), self.strings(var)?.join(" "));
                    }
                    for entry in child.entries() {
                        if let Some(key) = entry.name() {
                            env.insert(key.value().to_string(), value_string(entry.value()));
                        }
                    }
                }
                "cwd" => cwd = Some(self.root.join(self.string(child)?)),
                "url-matchers" | "url-matcher" => {
                    for pattern in self.strings(child)? {
                        crate::urlwatch::compile_matcher(&pattern).map_err(|e| {
                            self.error(child, format!("invalid url-matchers regex: {e}"))
                        })?;
                        url_matchers.push(pattern);
                    }
                }
                "ready" => {
                    let pattern = self.string(child)?;
                    let re = regex::Regex::new(&pattern)
                        .map_err(|e| self.error(child, format!("invalid ready regex: {e}")))?;
                    ready = Some(ReadyCheck::Log(re));
                }
                "ready-port" => ready = Some(ReadyCheck::Port(self.int(child, 1, 65535)? as u16)),
                "ready-url" => ready = Some(ReadyCheck::Url(self.string(child)?)),
                "ready-timeout" => {
                    ready_timeout = match self.args(child).next() {
                        Some(KdlValue::Integer(s)) if *s > 0 => Duration::from_secs(*s as u64),
                        Some(KdlValue::String(s)) => {
                            crate::util::duration::parse(s).ok_or_else(|| {
                                self.error(
                                child,
                                format!(
                                    "ready-timeout: cannot read {s:?} as a duration (try \"90s\")"
                                ),
                            )
                            })?
                        }
                        _ => {
                            return Err(
                                self.error(child, "ready-timeout expects seconds, e.g. 60".into())
                            );
                        }
                    }
                }
                "shell" => shell = Some(self.string(child)?),
                "shell-args" => shell_args = self.strings(child)?,
                "depends-on" => depends_on.extend(self.depends_on(child)?),
                "auto-restart" => auto_restart = self.bool(child)?,
                "ports" | "port" => {
                    for v in self.args(child) {
                        match v {
                            KdlValue::Integer(p) if (1..=65535).contains(p) => {
                                ports.push(*p as u16)
                            }
                            v => {
                                return Err(self.error(
                                    child,
                                    format!("ports expects port numbers, found {v}"),
                                ));
                            }
                        }
                    }
                }
                "probe-port" => probe_port = Some((child, self.bool(child)?)),
                "error-pattern" => error_pattern = Some(self.regex(child)?),
                "healthy-pattern" => healthy_pattern = Some(self.regex(child)?),
                _ => self.unknown(child, &format!("script {name:?}")),
            }
        }
        if ready.is_none() {
            // The original's rule: a line the `url-matchers` match marks the script ready.
            ready = crate::urlwatch::readiness_pattern(&url_matchers).map(ReadyCheck::Log);
        }
        let probe_port = match probe_port {
            Some((child, true)) => {
                if !url_matchers.is_empty() {
                    return Err(self.error(
                        child,
                        format!("script {name:?}: probe-port and url-matchers exclude each other: keep one"),
                    ));
                }
                let Some(&port) = ports.first() else {
                    return Err(self.error(
                        child,
                        format!("script {name:?}: probe-port needs `ports N`"),
                    ));
                };
                ready.get_or_insert(ReadyCheck::Port(port));
                true
            }
            _ => false,
        };
        let command = match (run, argv.is_empty()) {
            (Some(_), false) => {
                return Err(self.error(
                    node,
                    format!("script {name:?} has both run and command: keep one"),
                ));
            }
            (Some(line), true) => {
                if !extra_args.is_empty() {
                    return Err(self.error(
                        node,
                        format!("script {name:?}: args go with command, not run"),
                    ));
                }
                match (&shell, shell_args.is_empty()) {
                    (None, true) => CommandLine::Shell(line),
                    (shell, _) => {
                        let mut argv = vec![shell.clone().unwrap_or_else(|| "sh".into())];
                        if shell_args.is_empty() {
                            argv.push("-c".into());
                        }
                        argv.extend(shell_args.iter().cloned());
                        argv.push(line);
                        CommandLine::Argv(argv)
                    }
                }
            }
            (None, false) => {
                argv.extend(extra_args);
                CommandLine::Argv(argv)
            }
            (None, true) => {
                return Err(self.error(
                    node,
                    format!("script {name:?} needs run \"...\" or command \"...\""),
                ));
            }
        };
        Ok(ScriptConfig {
            name,
            command,
            autostart,
            env,
            cwd,
            url_matchers,
            ready,
            ready_timeout,
            shell,
            shell_args,
            depends_on,
            auto_restart,
            ports,
            probe_port,
            error_pattern,
            healthy_pattern,
        })
    }
}
