//! Stop strings, checked on the decoded output text.
//!
//! Stop strings are found in text, not tokens, because one string can be
//! split across tokens in many ways. The caller passes the detokenizer.

/// Where a stop string cut the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopCut {
    /// How many output tokens to keep: the most whose text lies entirely
    /// before the stop string. A stop string that began in an earlier step's
    /// tokens cuts into those too.
    pub keep_tokens: usize,
    /// The output text up to (not including) the stop string.
    pub text: String,
    /// The stop string found.
    pub stop: String,
}

/// The earliest occurrence of any of `stops` in `text`: (byte offset, stop).
pub fn find_stop_string<'s>(text: &str, stops: &'s [String]) -> Option<(usize, &'s str)> {
    stops
        .iter()
        .filter_map(|stop| text.find(stop.as_str()).map(|at| (at, stop.as_str())))
        .min_by_key(|&(at, _)| at)
}

/// Checks the decoded `output` for stop strings.
pub fn check_stop_strings(
    output: &[u32],
    stops: &[String],
    detokenize: &dyn Fn(&[u32]) -> String,
) -> Option<StopCut> {
    if stops.is_empty() {
        return None;
    }
    let text = detokenize(output);
    let (at, stop) = find_stop_string(&text, stops)?;
    let before_stop = &text[..at];
    // Walk back from the end: the stop string is usually in the last tokens.
    let keep_tokens = (0..output.len())
        .rev()
        .find(|&m| before_stop.starts_with(detokenize(&output[..m]).as_str()))
        .unwrap_or(0);
    Some(StopCut {
        keep_tokens,
        text: before_stop.to_owned(),
        stop: stop.to_owned(),
    })
}

/// Checks `output` for stop strings as plain decoding would, one token at a time from
/// `first_new` (the step's first token): the first prefix that holds a stop string
/// decides. Checking the whole step's text at once could let a longer stop string
/// completed by a later token of the step, but starting earlier, win over the one
/// plain decoding stopped at (stops "c" and "bcd", a step emitting b c d).
pub fn check_stop_strings_per_token(
    output: &[u32],
    first_new: usize,
    stops: &[String],
    detokenize: &dyn Fn(&[u32]) -> String,
) -> Option<StopCut> {
    if stops.is_empty() {
        return None;
    }
    (first_new.min(output.len()) + 1..=output.len())
        .find_map(|end| check_stop_strings(&output[..end], stops, detokenize))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token i decodes to PIECES[i].
    const PIECES: [&str; 5] = ["a", "b", "\n", "c\nd", "END"];

    fn detokenize(tokens: &[u32]) -> String {
        tokens.iter().map(|&t| PIECES[t as usize]).collect()
    }

    fn stops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn earliest_stop_string_wins() {
        let list = stops(&["END", "\n"]);
        assert_eq!(find_stop_string("ab\ncEND", &list), Some((2, "\n")));
        assert_eq!(find_stop_string("abc", &list), None);
    }

    #[test]
    fn cut_keeps_the_tokens_before_the_stop() {
        // a b \n a → keep "a b", text "ab".
        let cut = check_stop_strings(&[0, 1, 2, 0], &stops(&["\n"]), &detokenize).unwrap();
        assert_eq!(
            cut,
            StopCut {
                keep_tokens: 2,
                text: "ab".into(),
                stop: "\n".into()
            }
        );
    }

    #[test]
    fn stop_inside_a_token_drops_the_token_but_keeps_its_text() {
        // a "c\nd": the second token holds the stop; its "c" stays in the text.
        let cut = check_stop_strings(&[0, 3], &stops(&["\n"]), &detokenize).unwrap();
        assert_eq!((cut.keep_tokens, cut.text.as_str()), (1, "ac"));
    }

    #[test]
    fn stop_across_tokens() {
        // "b\n" split over tokens 1 and 2: token 1 goes too.
        let cut = check_stop_strings(&[0, 1, 2], &stops(&["b\n"]), &detokenize).unwrap();
        assert_eq!((cut.keep_tokens, cut.text.as_str()), (1, "a"));
    }

    #[test]
    fn per_token_the_first_prefix_with_a_stop_decides() {
        // a b \n END: the whole text holds "ab\n" at 0, but "b\n" completes first…
        let list = stops(&["ab\nEND", "\n"]);
        let cut = check_stop_strings_per_token(&[0, 1, 2, 4], 1, &list, &detokenize).unwrap();
        assert_eq!((cut.keep_tokens, cut.stop.as_str()), (2, "\n"));
        // … while the whole text at once picks the longer, earlier one.
        let whole = check_stop_strings(&[0, 1, 2, 4], &list, &detokenize).unwrap();
        assert_eq!(whole.stop, "ab\nEND");
        assert_eq!(
            check_stop_strings_per_token(&[0, 1], 0, &list, &detokenize),
            None
        );
    }

    #[test]
    fn no_stop_no_cut() {
        assert_eq!(
            check_stop_strings(&[0, 1], &stops(&["END"]), &detokenize),
            None
        );
        assert_eq!(check_stop_strings(&[4], &[], &detokenize), None);
    }
}
