//! Output health (`error-pattern` / `healthy-pattern`): a process is unhealthy when the latest
//! line matching its error pattern comes after the latest line matching its healthy pattern.
//! Computed on demand from the output ring (ANSI colours ignored), so the output pump does
//! nothing more per line.

use regex::Regex;

use super::{ManagedProcess, Stream};

/// A spec's health patterns.
#[derive(Debug, Clone)]
pub struct HealthPatterns {
    /// A match marks the process unhealthy.
    pub error: Option<Regex>,
    /// A later match marks it healthy again.
    pub healthy: Option<Regex>,
}

/// Built-in error lines (used when a script sets neither pattern): a Go panic or fatal error,
/// a Python traceback, a Node crash or npm failure, an unhandled .NET exception, a taken port.
pub const BUILTIN_ERROR: &str = r"^panic: |^fatal error: |^Traceback \(most recent call last\)|^Uncaught |UnhandledPromiseRejection|^npm ERR! |^Unhandled exception\. |EADDRINUSE|address already in use";
/// Built-in recovery lines: a dev server or watcher saying it is serving or rebuilt.
pub const BUILTIN_HEALTHY: &str = r"(?i)compiled successfully|ready in \d|now listening on|listening on|watching for file changes|server running|hot reload";

impl HealthPatterns {
    /// The built-in patterns.
    pub fn builtin() -> HealthPatterns {
        HealthPatterns {
            error: Regex::new(BUILTIN_ERROR).ok(),
            healthy: Regex::new(BUILTIN_HEALTHY).ok(),
        }
    }
}

/// The longest `line` kept (in characters).
const LINE_CHARS: usize = 200;

/// What the output says about a process's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    /// The line that decided it (the last error or healthy match, at most 200 characters).
    pub line: Option<String>,
}

/// Judges `text` (a process's output, oldest first) by `patterns`.
pub fn judge(patterns: &HealthPatterns, text: &str) -> Health {
    let mut verdict = Health {
        healthy: true,
        line: None,
    };
    for line in text.lines() {
        let mut plain = crate::urlwatch::strip_ansi(line);
        if let Some((cut, _)) = plain.char_indices().nth(LINE_CHARS) {
            plain.truncate(cut);
        }
        let hit = |re: &Option<Regex>| re.as_ref().is_some_and(|re| re.is_match(&plain));
        if hit(&patterns.error) {
            verdict = Health {
                healthy: false,
                line: Some(plain),
            };
        } else if hit(&patterns.healthy) {
            verdict = Health {
                healthy: true,
                line: Some(plain),
            };
        }
    }
    verdict
}

impl ManagedProcess {
    /// The process's output health, when its spec has health patterns.
    pub fn health(&self) -> Option<Health> {
        let patterns = self.spec().health.as_ref()?;
        let chunk = self.ring(Stream::Combined).read_since(0);
        Some(judge(patterns, &String::from_utf8_lossy(&chunk.data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_match_decides() {
        let p = HealthPatterns {
            error: Some(Regex::new(r"^ERROR|panic:").unwrap()),
            healthy: Some(Regex::new(r"compiled successfully").unwrap()),
        };
        assert_eq!(judge(&p, "starting\nlistening\n").line, None);
        let bad = judge(
            &p,
            "compiled successfully\n\x1b[31mERROR\x1b[0m in app.ts\n",
        );
        assert!(!bad.healthy);
        assert_eq!(bad.line.as_deref(), Some("ERROR in app.ts"));
        let good = judge(&p, "ERROR in app.ts\ncompiled successfully\n");
        assert!(good.healthy);
        let only_error = HealthPatterns {
            error: p.error.clone(),
            healthy: None,
        };
        assert!(!judge(&only_error, "panic: boom\nstill running\n").healthy);
    }

    #[test]
    fn builtins_know_common_failures_and_recoveries() {
        let b = HealthPatterns::builtin();
        for line in [
            "panic: runtime error: index out of range [3] with length 2",
            "Traceback (most recent call last):",
            "Error: listen EADDRINUSE: address already in use :::3000",
            "npm ERR! code ELIFECYCLE",
            "Unhandled exception. System.InvalidOperationException: boom",
        ] {
            assert!(!judge(&b, line).healthy, "{line}");
        }
        let back = judge(&b, "panic: x\n  VITE v5.0.0  ready in 312 ms\n");
        assert!(back.healthy);
        assert!(judge(&b, "GET / 200\nlistening\n").line.is_none());
    }
}
