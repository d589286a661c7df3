//! Turning a stream of tokens into text pieces, each tagged with the token's origin, for
//! live display: byte-level tokenizers split multi-byte characters across tokens, and
//! a stop string may only be recognised a few tokens after it began.

use serde::{Deserialize, Serialize};
use tandem_decode::TokenOrigin;

/// Incremental detokenizer.
///
/// Text is released only when it is complete: never ending in a half character (U+FFFD
/// from a split UTF-8 sequence), and never within `holdback` characters of the end
/// while a stop string could still be forming there.
pub struct TextStream<'a> {
    decode: Decode<'a>,
    tokens: Vec<u32>,
    origins: Vec<TokenOrigin>,
    /// Characters of the decoded text already released.
    released_chars: usize,
    holdback: usize,
}

/// Token ids to text.
type Decode<'a> = Box<dyn Fn(&[u32]) -> String + 'a>;

/// A piece of released text and the origin of the token that completed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextPiece {
    pub text: String,
    pub origin: TokenOrigin,
}

impl<'a> TextStream<'a> {
    /// `holdback` is the longest stop string's length in characters minus one (0 if none).
    pub fn new(decode: impl Fn(&[u32]) -> String + 'a, holdback: usize) -> Self {
        Self {
            decode: Box::new(decode),
            tokens: Vec::new(),
            origins: Vec::new(),
            released_chars: 0,
            holdback,
        }
    }

    /// Adds a token; returns the text it releases (possibly empty).
    pub fn push(&mut self, token: u32, origin: TokenOrigin) -> Option<TextPiece> {
        self.tokens.push(token);
        self.origins.push(origin);
        let text = (self.decode)(&self.tokens);
        if text.ends_with('\u{FFFD}') {
            return None;
        }
        let total = text.chars().count();
        let releasable = total.saturating_sub(self.holdback);
        self.release(&text, releasable, origin)
    }

    /// Removes the last `n` tokens (a stop string reached back into them).
    pub fn retract(&mut self, n: usize) {
        let keep = self.tokens.len().saturating_sub(n);
        self.tokens.truncate(keep);
        self.origins.truncate(keep);
    }

    /// Releases what is left, given the final text (cut before any stop string).
    pub fn finish(&mut self, final_text: &str) -> Option<TextPiece> {
        let origin = self.origins.last().copied().unwrap_or(TokenOrigin::Target);
        let total = final_text.chars().count();
        self.release(final_text, total, origin)
    }

    /// Releases what is left, cutting the text before the first stop string in it.
    pub fn finish_at_stop(&mut self, stop_strings: &[String]) -> Option<TextPiece> {
        let mut text = (self.decode)(&self.tokens);
        if let Some(cut) = stop_strings
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            text.truncate(cut);
        }
        self.finish(&text)
    }

    fn release(
        &mut self,
        text: &str,
        up_to_chars: usize,
        origin: TokenOrigin,
    ) -> Option<TextPiece> {
        if up_to_chars <= self.released_chars {
            return None;
        }
        let piece: String = text
            .chars()
            .skip(self.released_chars)
            .take(up_to_chars - self.released_chars)
            .collect();
        self.released_chars = up_to_chars;
        Some(TextPiece {
            text: piece,
            origin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token i decodes to byte i of "héllo": 'é' is two bytes, split over two tokens.
    fn decode(ids: &[u32]) -> String {
        let bytes = "héllo stop".as_bytes();
        String::from_utf8_lossy(&ids.iter().map(|&i| bytes[i as usize]).collect::<Vec<_>>())
            .into_owned()
    }

    #[test]
    fn waits_for_whole_characters() {
        let mut s = TextStream::new(decode, 0);
        assert_eq!(s.push(0, TokenOrigin::Target).unwrap().text, "h");
        assert_eq!(s.push(1, TokenOrigin::AcceptedDraft), None, "half of é");
        let piece = s.push(2, TokenOrigin::Bonus).unwrap();
        assert_eq!(
            (piece.text.as_str(), piece.origin),
            ("é", TokenOrigin::Bonus)
        );
    }

    #[test]
    fn holds_back_a_possible_stop_string() {
        // Stop string " stop" (5 characters): hold back 4. The decoder never emits the
        // token that completes a stop string, so tokens 0..10 ("héllo sto") arrive.
        let mut s = TextStream::new(decode, 4);
        let mut shown = String::new();
        for i in 0..10 {
            if let Some(p) = s.push(i, TokenOrigin::Target) {
                shown.push_str(&p.text);
            }
        }
        assert_eq!(shown, "héllo", "nothing of \" sto\" is shown");
        // The run ends with the output cut before " stop": nothing more to show.
        assert_eq!(s.finish("héllo"), None);
    }

    #[test]
    fn finish_releases_the_held_back_tail() {
        let mut s = TextStream::new(decode, 4);
        (0..7).for_each(|i| drop(s.push(i, TokenOrigin::Target)));
        assert_eq!(s.finish("héllo ").map(|p| p.text), Some("llo ".into()));
    }
}
