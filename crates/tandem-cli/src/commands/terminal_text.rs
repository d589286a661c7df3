//! Text from a model or a log, made safe to print on a terminal.
//!
//! A run log is a file people share, and a model's tokenizer can decode to any bytes: an
//! escape sequence in either would reach the terminal as a command (OSC 52 writes the
//! clipboard, others retitle the window or move the cursor over what was printed). So
//! control characters and the bidirectional overrides that reorder what is shown
//! ("Trojan Source") are printed as visible escapes (`\u{1b}`); only line breaks and tabs
//! stay, where the text is meant to span lines.

use std::borrow::Cow;

/// Whether line breaks and tabs stay as they are (a generated text) or are escaped too (a
/// one-line field: a model name, a hash, a run id).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lines {
    Keep,
    Escape,
}

/// `text` with every character a terminal would act on written as an escape.
pub fn printable(text: &str, lines: Lines) -> Cow<'_, str> {
    let unsafe_char = |c: char| match c {
        '\n' | '\t' => lines == Lines::Escape,
        // '\r' returns the cursor to overwrite what the line showed: escaped too.
        c => c.is_control() || is_bidi_control(c),
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The first `n` characters of `text` (a hash from a log: not necessarily ASCII).
pub fn first_chars(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Unicode's explicit direction marks, embeddings, overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible_text() {
        // OSC 52 (set the clipboard), a colour, a bell and a C1 CSI.
        let hostile = "a\u{1b}]52;c;cm0gLXJm\u{7}b\u{1b}[31mc\u{9b}2Jd";
        let shown = printable(hostile, Lines::Keep);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(shown, "a\\u{1b}]52;c;cm0gLXJm\\u{7}b\\u{1b}[31mc\\u{9b}2Jd");
    }

    #[test]
    fn line_breaks_stay_in_texts_and_go_in_fields() {
        assert_eq!(printable("one\n\ttwo", Lines::Keep), "one\n\ttwo");
        assert_eq!(printable("one\ntwo", Lines::Escape), "one\\ntwo");
        assert_eq!(printable("over\rwrite", Lines::Keep), "over\\rwrite");
    }

    #[test]
    fn direction_overrides_are_escaped_and_plain_unicode_is_not() {
        assert_eq!(printable("abc\u{202E}fed", Lines::Keep), "abc\\u{202e}fed");
        let text = "naïve 日本語 🙂";
        assert!(matches!(printable(text, Lines::Keep), Cow::Borrowed(_)));
    }

    #[test]
    fn first_chars_never_splits_a_character() {
        assert_eq!(first_chars("éééééé", 3), "ééé");
        assert_eq!(first_chars("ab", 12), "ab");
        assert_eq!(first_chars("0123456789abcdef", 12), "0123456789ab");
    }
}
