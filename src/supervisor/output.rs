//! Output reads: turn a ring chunk into an [`OutputRead`] by applying `grep` → `head` → `tail`
//! line-wise, then the `max_bytes` budget. Pure: no locks, no IO.
//!
//! Cursor semantics: offsets are absolute byte offsets of one stream (stdout, stderr and
//! combined each count their own). `since: Some(n)` reads what the ring still holds from `n`
//! on; `next_offset` is the stream's end at read time, whatever the filters kept, so passing it
//! back as `since` yields only newer bytes. `lost_bytes` counts bytes from `since` (or from 0)
//! that the ring had already dropped. When bytes were lost, a cut first line is dropped, so the
//! text always starts at a line boundary.

use regex::Regex;

use super::{OutputRead, OutputRequest};
use crate::{Error, ringbuf::Chunk};

/// Compiles a `grep` pattern; a bad one is an [`Error::InvalidArgument`] carrying the regex
/// error.
pub fn compile_grep(pattern: &str) -> Result<Regex, Error> {
    Regex::new(pattern).map_err(|e| Error::invalid(format!("invalid grep regex {pattern:?}: {e}")))
}

/// Applies the request's filters to a chunk read from a ring.
pub fn select(chunk: Chunk, overflowed: bool, req: &OutputRequest) -> Result<OutputRead, Error> {
    let grep = req.grep.as_deref().map(compile_grep).transpose()?;
    let mut data: &[u8] = &chunk.data;
    if chunk.lost > 0 && chunk.before.is_some_and(|b| b != b'\n') {
        // The oldest line lost its beginning: drop the fragment.
        if let Some(nl) = data.iter().position(|&b| b == b'\n') {
            data = &data[nl + 1..];
        }
    }
    let text = String::from_utf8_lossy(data);
    let all: Vec<&str> = split_lines(&text).collect();
    // Index of an unfinished last line (no trailing newline), which stays unfinished.
    let partial = (!text.is_empty() && !text.ends_with('\n')).then(|| all.len() - 1);
    let mut lines: Vec<(usize, &str)> = all.into_iter().enumerate().collect();
    if let Some(re) = &grep {
        lines.retain(|(_, l)| re.is_match(l) != req.grep_v);
    } else if req.grep_v {
        // `grep_v` without a pattern inverts "match everything": nothing is selected.
        lines.clear();
    }
    if let Some(h) = req.head {
        lines.truncate(h);
    }
    if let Some(t) = req.tail {
        let cut = lines.len().saturating_sub(t);
        lines.drain(..cut);
    }
    let mut truncated = false;
    if let Some(budget) = req.max_bytes {
        truncated = apply_budget(&mut lines, budget);
    }
    let mut out = String::with_capacity(lines.iter().map(|(_, l)| l.len() + 1).sum());
    for (i, l) in &lines {
        out.push_str(l);
        if Some(*i) != partial {
            out.push('\n');
        }
    }
    if truncated && req.max_bytes.is_some_and(|b| out.len() > b) {
        // A single line longer than the budget: keep its newest bytes.
        let budget = req.max_bytes.unwrap_or(0);
        let mut cut = out.len() - budget;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out.drain(..cut);
    }
    Ok(OutputRead {
        lines: out.lines().count(),
        text: out,
        next_offset: chunk.end,
        lost_bytes: chunk.lost,
        overflowed,
        truncated,
    })
}

/// Lines without their `\n` (a trailing `\r` is kept; a final empty piece is not a line).
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let empty = text.is_empty();
    body.split('\n').filter(move |_| !empty)
}

/// Drops the oldest lines until the rest (with newlines) fits `budget`; keeps at least the
/// newest line (cut later). Returns whether anything was cut.
fn apply_budget(lines: &mut Vec<(usize, &str)>, budget: usize) -> bool {
    let mut used = 0;
    let mut keep = 0;
    for (_, l) in lines.iter().rev() {
        let n = l.len() + 1;
        if used + n > budget {
            break;
        }
        used += n;
        keep += 1;
    }
    if keep == lines.len() {
        return false;
    }
    let keep = keep.max(1).min(lines.len());
    let cut = lines.len() - keep;
    lines.drain(..cut);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The regex crate is built with a trimmed feature set (see Cargo.toml): the syntax users
    /// commonly type into `grep` and `ready` patterns must still compile and match.
    #[test]
    fn common_user_regex_syntax_compiles() {
        for (pattern, text) in [
            (r"\d+ms", "took 42ms"),
            (r"\w+@\w+", "user@host"),
            (r"(?i)error", "ERROR: boom"),
            (r"(?i)straße", "STRASSE straße"),
            (r"\bready\b", "server ready now"),
            (r"^\s*listening on", "  listening on :3000"),
            (r"\p{L}+", "héllo"),
            (r"\p{Lu}\p{Ll}", "Ab"),
            (r"[[:alpha:]]+", "abc"),
            (r"(?m)^done$", "a\ndone\nb"),
            (r"(?s)a.b", "a\nb"),
            (r"(?x) a \s b", "a b"),
            (r"é\w*", "école"),
        ] {
            let re = compile_grep(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert!(re.is_match(text), "{pattern} vs {text:?}");
        }
    }

    fn chunk(s: &str) -> Chunk {
        Chunk {
            data: s.as_bytes().to_vec(),
            start: 0,
            end: s.len() as u64,
            lost: 0,
            before: None,
        }
    }

    fn read(s: &str, req: OutputRequest) -> OutputRead {
        select(chunk(s), false, &req).unwrap()
    }

    #[test]
    fn filters_in_order_grep_head_tail() {
        let text = "a1\nb1\na2\nb2\na3\na4\n";
        let r = read(
            text,
            OutputRequest {
                grep: Some("^a".into()),
                head: Some(3),
                tail: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(r.text, "a2\na3\n");
        assert_eq!(r.lines, 2);
        let r = read(
            text,
            OutputRequest {
                grep: Some("^a".into()),
                grep_v: true,
                ..Default::default()
            },
        );
        assert_eq!(r.text, "b1\nb2\n");
        let r = read(
            text,
            OutputRequest {
                tail: Some(1),
                ..Default::default()
            },
        );
        assert_eq!(r.text, "a4\n");
        assert_eq!(r.next_offset, text.len() as u64);
    }

    #[test]
    fn budget_keeps_newest_whole_lines() {
        let r = read(
            "aaaa\nbbbb\ncccc\n",
            OutputRequest {
                max_bytes: Some(11),
                ..Default::default()
            },
        );
        assert_eq!(r.text, "bbbb\ncccc\n");
        assert!(r.truncated);
        let r = read(
            "aaaa\nbbbb\n",
            OutputRequest {
                max_bytes: Some(100),
                ..Default::default()
            },
        );
        assert!(!r.truncated);
        let r = read(
            "0123456789\n",
            OutputRequest {
                max_bytes: Some(4),
                ..Default::default()
            },
        );
        assert_eq!(r.text, "789\n");
        assert!(r.truncated);
        let r = read(
            "abc\n",
            OutputRequest {
                max_bytes: Some(0),
                ..Default::default()
            },
        );
        assert_eq!(r.text, "");
    }

    #[test]
    fn partial_last_line_and_empty() {
        assert_eq!(read("x\ny", OutputRequest::default()).text, "x\ny");
        let r = read("", OutputRequest::default());
        assert_eq!((r.text.as_str(), r.lines), ("", 0));
        assert_eq!(read("\n\n", OutputRequest::default()).lines, 2);
    }

    #[test]
    fn lost_bytes_drop_the_cut_line() {
        let c = Chunk {
            data: b"tail of line\nnext\n".to_vec(),
            start: 10,
            end: 28,
            lost: 10,
            before: Some(b'x'),
        };
        let r = select(c, true, &OutputRequest::default()).unwrap();
        assert_eq!(r.text, "next\n");
        assert_eq!(r.lost_bytes, 10);
        assert!(r.overflowed);
        let c = Chunk {
            data: b"whole\n".to_vec(),
            start: 10,
            end: 16,
            lost: 10,
            before: Some(b'\n'),
        };
        assert_eq!(
            select(c, true, &OutputRequest::default()).unwrap().text,
            "whole\n"
        );
    }

    #[test]
    fn bad_regex_is_invalid_argument() {
        let e = select(
            chunk("x"),
            false,
            &OutputRequest {
                grep: Some("(".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument(ref m) if m.contains("invalid grep regex")),
            "{e}"
        );
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let c = Chunk {
            data: vec![0xff, b'a', b'\n'],
            start: 0,
            end: 3,
            lost: 0,
            before: None,
        };
        let r = select(c, false, &OutputRequest::default()).unwrap();
        assert_eq!(r.text, "\u{fffd}a\n");
    }
}
