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
///
/// Each new token costs two decodes of a few tokens, not a decode of the whole output
/// (which made a long generation quadratic): the new text is what decoding the tokens
/// from `prefix_start` adds to decoding them up to `read_end`. Starting a few tokens
/// back keeps the context a SentencePiece tokenizer needs to place leading spaces.
pub struct TextStream<'a> {
    decode: Decode<'a>,
    tokens: Vec<u32>,
    origins: Vec<TokenOrigin>,
    /// The text of `tokens` decoded so far (up to `read_end`), and its length in
    /// characters.
    text: String,
    chars: usize,
    /// `tokens[prefix_start..read_end]` decoded is `prefix_text`.
    prefix_start: usize,
    read_end: usize,
    prefix_text: String,
    /// Characters of `text` already released, and their byte length.
    released_chars: usize,
    released_bytes: usize,
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

/// Tokens of context before the new ones in each incremental decode.
const CONTEXT_TOKENS: usize = 4;

impl<'a> TextStream<'a> {
    /// `holdback` is the longest stop string's length in characters minus one (0 if none).
    pub fn new(decode: impl Fn(&[u32]) -> String + 'a, holdback: usize) -> Self {
        Self {
            decode: Box::new(decode),
            tokens: Vec::new(),
            origins: Vec::new(),
            text: String::new(),
            chars: 0,
            prefix_start: 0,
            read_end: 0,
            prefix_text: String::new(),
            released_chars: 0,
            released_bytes: 0,
            holdback,
        }
    }

    /// Adds a token; returns the text it releases (possibly empty).
    pub fn push(&mut self, token: u32, origin: TokenOrigin) -> Option<TextPiece> {
        self.tokens.push(token);
        self.origins.push(origin);
        let window = (self.decode)(&self.tokens[self.prefix_start..]);
        if window.ends_with('\u{FFFD}') {
            return None;
        }
        match window.strip_prefix(self.prefix_text.as_str()) {
            Some(new) => {
                self.chars += new.chars().count();
                self.text.push_str(new);
            }
            // A tokenizer whose text for the window does not extend the prefix's (a
            // normalizer at work): decode everything once.
            None => {
                self.text = (self.decode)(&self.tokens);
                self.chars = self.text.chars().count();
            }
        }
        self.prefix_start = self.tokens.len().saturating_sub(CONTEXT_TOKENS);
        self.read_end = self.tokens.len();
        self.prefix_text = (self.decode)(&self.tokens[self.prefix_start..self.read_end]);
        let releasable = self.chars.saturating_sub(self.holdback);
        self.release(releasable, origin)
    }

    /// Removes the last `n` tokens (a stop string reached back into them).
    pub fn retract(&mut self, n: usize) {
        let keep = self.tokens.len().saturating_sub(n);
        self.tokens.truncate(keep);
        self.origins.truncate(keep);
        // Rare (a stop string): decode what is left once.
        self.text = (self.decode)(&self.tokens);
        self.chars = self.text.chars().count();
        self.prefix_start = keep.saturating_sub(CONTEXT_TOKENS);
        self.read_end = keep;
        self.prefix_text = (self.decode)(&self.tokens[self.prefix_start..]);
        if self.released_chars > self.chars {
            self.released_chars = self.chars;
            self.released_bytes = self.text.len();
        }
    }

    /// Releases what is left, given the final text (cut before any stop string).
    pub fn finish(&mut self, final_text: &str) -> Option<TextPiece> {
        let origin = self.origins.last().copied().unwrap_or(TokenOrigin::Target);
        self.text = final_text.to_string();
        self.chars = final_text.chars().count();
        // The released text is a prefix of the final one: recount its bytes.
        self.released_chars = self.released_chars.min(self.chars);
        self.released_bytes = byte_index(&self.text, self.released_chars);
        self.release(self.chars, origin)
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

    /// Releases the characters of `text` up to `up_to_chars`.
    fn release(&mut self, up_to_chars: usize, origin: TokenOrigin) -> Option<TextPiece> {
        if up_to_chars <= self.released_chars {
            return None;
        }
        let rest = &self.text[self.released_bytes..];
        let end = byte_index(rest, up_to_chars - self.released_chars);
        let piece = rest[..end].to_string();
        self.released_chars = up_to_chars;
        self.released_bytes += end;
        Some(TextPiece {
            text: piece,
            origin,
        })
    }
}

/// Byte offset of the `chars`-th character of `text` (its length if it has fewer).
fn byte_index(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
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
    fn incremental_text_equals_decoding_everything() {
        // A decoder that drops the leading space of its first token, as SentencePiece
        // ones do: the context tokens must put it back.
        let words = [
            "▁The",
            "▁cat",
            "▁sat",
            "▁on",
            "▁the",
            "▁mat",
            ".",
            "▁It",
            "▁purred",
        ];
        let decode = |ids: &[u32]| {
            let text: String = ids
                .iter()
                .map(|&i| words[i as usize].replace('▁', " "))
                .collect();
            text.strip_prefix(' ').unwrap_or(&text).to_string()
        };
        let mut s = TextStream::new(decode, 0);
        let ids: Vec<u32> = (0..9).collect();
        let shown: String = ids
            .iter()
            .filter_map(|&i| s.push(i, TokenOrigin::Target))
            .map(|p| p.text)
            .collect();
        assert_eq!(shown, decode(&ids));
    }

    #[test]
    fn finish_releases_the_held_back_tail() {
        let mut s = TextStream::new(decode, 4);
        (0..7).for_each(|i| drop(s.push(i, TokenOrigin::Target)));
        assert_eq!(s.finish("héllo ").map(|p| p.text), Some("llo ".into()));
    }
}
