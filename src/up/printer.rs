//! The foreground session's stdout: each line of a script's output prefixed with its name
//! (`web | ...`, padded to the widest name, coloured on a terminal) and session lines
//! (`agnt: proxy ...`). Whole lines only, one writer at a time, so followers on several threads
//! never interleave within a line; colours kept, every other escape sequence dropped
//! (`util::term::sanitize`). Knows nothing of processes or tools.

use std::io::{IsTerminal, Write};

use parking_lot::Mutex;

/// Writes prefixed lines to stdout, one whole line at a time.
#[derive(Debug)]
pub(super) struct Printer {
    color: bool,
    width: usize,
    out: Mutex<()>,
}

impl Printer {
    /// A printer whose prefixes are padded to `width`; coloured when stdout is a terminal.
    pub(super) fn new(width: usize) -> Printer {
        Printer {
            color: std::io::stdout().is_terminal(),
            width,
            out: Mutex::new(()),
        }
    }

    /// `name | ` padded to the widest name, coloured on a terminal; empty name = no prefix.
    pub(super) fn prefix(&self, name: &str, color: usize) -> String {
        if name.is_empty() {
            return String::new();
        }
        const COLORS: [u8; 6] = [36, 33, 32, 35, 34, 31];
        let padded = format!("{name:<width$} | ", width = self.width);
        if self.color {
            format!("\x1b[{}m{padded}\x1b[0m", COLORS[color % COLORS.len()])
        } else {
            padded
        }
    }

    /// Prints every complete line of `buf`, keeps the unfinished rest in it, and returns what
    /// was printed.
    pub(super) fn complete_lines(&self, prefix: &str, buf: &mut String) -> String {
        let Some(last_nl) = buf.rfind('\n') else {
            return String::new();
        };
        let rest = buf.split_off(last_nl + 1);
        {
            let _guard = self.out.lock();
            let mut out = std::io::stdout().lock();
            for line in buf.lines() {
                let _ = writeln!(out, "{prefix}{}", crate::util::term::sanitize(line));
            }
            let _ = out.flush();
        }
        std::mem::replace(buf, rest)
    }

    /// Prints one line (a trailing newline in `line` is dropped).
    pub(super) fn line(&self, prefix: &str, line: &str) {
        let _guard = self.out.lock();
        let mut out = std::io::stdout().lock();
        let line = crate::util::term::sanitize(line.trim_end_matches('\n'));
        let _ = writeln!(out, "{prefix}{line}");
        let _ = out.flush();
    }

    /// `agnt: proxy NAME listening on URL -> TARGET`.
    pub(super) fn proxy(&self, name: &str, url: &str, target: &str) {
        self.line(
            "",
            &format!("agnt: proxy {name} listening on {url} -> {target}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_lines() {
        let p = Printer {
            color: false,
            width: 5,
            out: Mutex::new(()),
        };
        assert_eq!(p.prefix("web", 0), "web   | ");
        assert_eq!(p.prefix("", 0), "");
        let colored = Printer {
            color: true,
            width: 3,
            out: Mutex::new(()),
        };
        assert_eq!(colored.prefix("api", 1), "\x1b[33mapi | \x1b[0m");
        let mut buf = "a\nb\npart".to_string();
        assert_eq!(p.complete_lines("", &mut buf), "a\nb\n");
        assert_eq!(buf, "part");
        let mut buf = "no newline".to_string();
        assert_eq!(p.complete_lines("", &mut buf), "");
        assert_eq!(buf, "no newline");
    }
}
