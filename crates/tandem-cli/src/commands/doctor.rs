//! `tandem doctor DRAFT TARGET`: checks that two models can work as a pair,
//! from their configs and tokenizers only (no weights are downloaded).

use anyhow::bail;
use tandem_pairs::{doctor_models, DoctorOptions, Verdict, DEFAULT_CONTEXT_LEN};

use super::hub::{client, explain_pairs_error};

/// Lines of the report are wrapped to this width.
const WRAP_WIDTH: usize = 92;

#[derive(clap::Args)]
pub struct Args {
    /// The draft (small) model: a local folder or a hub model id.
    draft: String,
    /// The target (large) model: a local folder or a hub model id.
    target: String,
    /// Estimate memory for int8 weights instead of f32.
    #[arg(long)]
    int8: bool,
    /// Tokens of context to size the conversation memory (KV caches) for.
    #[arg(long, default_value_t = DEFAULT_CONTEXT_LEN)]
    context: usize,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the verdict; exits with an error when the pair cannot work.
pub fn run(args: Args) -> anyhow::Result<()> {
    let options = DoctorOptions {
        precision: super::precision(args.int8),
        context_len: args.context,
    };
    let client = client()?;
    let verdict =
        doctor_models(&client, &args.draft, &args.target, &options).map_err(explain_pairs_error)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&verdict)?);
    } else {
        println!("{}", report(&args.draft, &args.target, &verdict));
    }
    if !verdict.ok {
        bail!("these two models can't work as a pair (see the problems above)");
    }
    Ok(())
}

/// The verdict in plain words.
fn report(draft: &str, target: &str, verdict: &Verdict) -> String {
    let mut out = vec![
        format!("Draft:  {draft}"),
        format!("Target: {target}"),
        String::new(),
    ];
    out.push(if verdict.ok {
        "OK: these two models can work as a pair.".to_string()
    } else {
        "NOT OK: these two models can't work as a pair.".to_string()
    });
    let sections = [
        ("Problems (must be fixed):", &verdict.problems),
        ("Warnings (works, but not at its best):", &verdict.warnings),
        ("Good to know:", &verdict.notes),
    ];
    for (title, items) in sections {
        if items.is_empty() {
            continue;
        }
        out.push(String::new());
        out.push(title.to_string());
        for item in items {
            out.push(wrap(item, "  - ", "    ", WRAP_WIDTH));
        }
    }
    out.join("\n")
}

/// Word-wraps `text` to `width`, the first line after `first`, the others
/// after `rest`.
fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut line_has_words = false;
    for word in words(text) {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if line_has_words && !fits {
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            line_has_words = false;
        }
        if line_has_words {
            line.push(' ');
        }
        line.push_str(&word);
        line_has_words = true;
    }
    lines.push(line);
    lines.join("\n")
}

/// The words of `text`, keeping a number and its unit ("1.2 GiB") together.
fn words(text: &str) -> Vec<String> {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut words: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let unit = UNITS.contains(&word.trim_end_matches([',', '.', ')', ';']));
        match words.last_mut() {
            Some(number) if unit && number.ends_with(|c: char| c.is_ascii_digit()) => {
                number.push(' ');
                number.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_indents_continuation_lines() {
        assert_eq!(
            wrap("one two three four", "- ", "  ", 10),
            "- one two\n  three\n  four"
        );
        assert_eq!(wrap("short", "- ", "  ", 10), "- short");
        // A word longer than the width gets a line of its own.
        assert_eq!(wrap("a verylongword", "- ", "  ", 8), "- a\n  verylongword");
        // Sizes are not split from their unit.
        assert_eq!(
            wrap("needs 481.2 KiB, ok", "- ", "  ", 12),
            "- needs\n  481.2 KiB,\n  ok"
        );
    }
}
