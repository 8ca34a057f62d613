//! Terminal hygiene for text that came from a process, a page or the network: [`sanitize`]
//! keeps colour (SGR, `ESC [ … m`), newlines, tabs and carriage returns, and drops every other
//! escape sequence (OSC window titles and hyperlinks, DCS, cursor movement, mode switches) and
//! control character, so printed output cannot retitle, reprogram or redraw the user's terminal.

/// `text` with everything but SGR sequences, `\n`, `\t` and `\r` removed from its controls.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' | '\r' => out.push(c),
            '\u{1b}' => match chars.peek().copied() {
                Some('[') => {
                    chars.next();
                    let mut params = String::new();
                    let mut fin = None;
                    for p in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&p) {
                            fin = Some(p);
                            break;
                        }
                        params.push(p);
                    }
                    let sgr = fin == Some('m')
                        && params
                            .chars()
                            .all(|p| p.is_ascii_digit() || p == ';' || p == ':');
                    if sgr {
                        out.push_str("\u{1b}[");
                        out.push_str(&params);
                        out.push('m');
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    skip_string(&mut chars);
                }
                // Any other escape: ESC plus intermediates plus one final byte.
                Some(_) => {
                    for p in chars.by_ref() {
                        if !(' '..='/').contains(&p) {
                            break;
                        }
                    }
                }
                None => {}
            },
            // C1 controls: CSI, OSC, DCS … as single code points.
            '\u{9b}' => {
                for p in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&p) {
                        break;
                    }
                }
            }
            '\u{90}' | '\u{9d}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Skips a control string up to and including its terminator (BEL, `ESC \` or C1 ST).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(p) = chars.next() {
        match p {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_colour_drops_the_rest() {
        assert_eq!(sanitize("\x1b[1;31mred\x1b[0m\n"), "\x1b[1;31mred\x1b[0m\n");
        assert_eq!(sanitize("a\x1b]0;pwned\x07b"), "ab");
        assert_eq!(
            sanitize("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b"),
            "alinkb"
        );
        assert_eq!(sanitize("a\x1bP+q544e\x1b\\b"), "ab");
        assert_eq!(sanitize("a\x1b[2J\x1b[Hb"), "ab");
        assert_eq!(sanitize("a\x1b[?1049hb"), "ab");
        assert_eq!(sanitize("a\x1bcb\x1b(0c"), "abc");
        assert_eq!(sanitize("a\u{9b}2Jb\u{9d}0;t\u{9c}c"), "abc");
        assert_eq!(
            sanitize("bell\x07 back\x08 tab\t cr\r"),
            "bell back tab\t cr\r"
        );
        assert_eq!(sanitize("unterminated \x1b]0;title"), "unterminated ");
        assert_eq!(sanitize("trailing \x1b"), "trailing ");
        assert_eq!(sanitize("héllo ✓"), "héllo ✓");
    }
}
