//! One row per run, for spreadsheets. Fields are quoted only when they must be (RFC 4180:
//! a comma, quote or line break inside); numbers use a dot and no thousands separator;
//! an empty field means "not applicable" (α of a plain run, speedup without a plain run).
//! A text cell that a spreadsheet would run as a formula (model names, suite ids and
//! categories come from other people's files) starts with `'`, as OWASP's CSV-injection
//! advice and the spreadsheets themselves expect; numbers are left as they are.

use std::io::{self, Write};

use crate::compare::{Comparison, RunStats};
use crate::record::RunRecord;

/// The header row, in order.
pub const CSV_COLUMNS: [&str; 34] = [
    "run_id",
    "comparison_id",
    "created_at",
    "suite_item",
    "category",
    "mode",
    "target",
    "target_precision",
    "draft",
    "draft_precision",
    "draft_layers",
    "backend",
    "device",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "gamma",
    "max_new_tokens",
    "prompt_tokens",
    "new_tokens",
    "wall_ms",
    "tokens_per_second",
    "time_to_first_token_ms",
    "alpha",
    "tau",
    "drafted",
    "accepted",
    "target_forwards",
    "draft_forwards",
    "draft_ms",
    "verify_ms",
    "speedup",
    "stop_reason",
];

/// Writes the header and one row for every run of every comparison.
pub fn write_csv(comparisons: &[Comparison], out: &mut dyn Write) -> io::Result<()> {
    write_row(out, CSV_COLUMNS.iter().map(|c| c.to_string()))?;
    for comparison in comparisons {
        for (run, stats) in comparison.runs.iter().zip(comparison.stats()) {
            write_row(out, run_row(run, &stats))?;
        }
    }
    out.flush()
}

fn run_row(run: &RunRecord, stats: &RunStats) -> Vec<String> {
    let h = &run.header;
    let s = run.summary();
    let opt = |v: Option<String>| v.unwrap_or_default();
    let num = |v: f64| format!("{v:.3}");
    vec![
        h.run_id.clone(),
        opt(h.comparison_id.clone()),
        h.created_at.clone(),
        opt(h.suite_item.as_ref().map(|i| i.id.clone())),
        opt(h.suite_item.as_ref().map(|i| i.category.clone())),
        h.mode.label().to_string(),
        h.target.name.clone(),
        h.target.precision.clone(),
        opt(h.draft.as_ref().map(|d| d.name.clone())),
        opt(h.draft.as_ref().map(|d| d.precision.clone())),
        opt(h
            .draft
            .as_ref()
            .and_then(|d| d.layer_limit)
            .map(|n| n.to_string())),
        h.backend.clone(),
        h.device.clone(),
        h.sampling.temperature.to_string(),
        opt(h.sampling.top_k.map(|k| k.to_string())),
        opt(h.sampling.top_p.map(|p| p.to_string())),
        h.sampling.seed.to_string(),
        opt(h.gamma_policy.as_ref().map(crate::compare::gamma_label)),
        h.max_new_tokens.to_string(),
        h.prompt_tokens.len().to_string(),
        s.new_tokens.to_string(),
        num(s.wall_ms),
        num(s.tokens_per_second),
        opt(s.time_to_first_token_ms.map(num)),
        opt(s.alpha.map(|a| format!("{a:.4}"))),
        format!("{:.4}", s.tau),
        s.drafted.to_string(),
        s.accepted.to_string(),
        s.target_forwards.to_string(),
        s.draft_forwards.to_string(),
        num(s.draft_ms),
        num(s.verify_ms),
        opt(stats.speedup.map(|x| format!("{x:.4}"))),
        format!("{:?}", s.stop_reason),
    ]
}

fn write_row(out: &mut dyn Write, fields: impl IntoIterator<Item = String>) -> io::Result<()> {
    let line: Vec<String> = fields
        .into_iter()
        .map(|f| quote(&defuse_formula(f)))
        .collect();
    out.write_all(line.join(",").as_bytes())?;
    out.write_all(b"\r\n")
}

/// `'` before a cell that starts like a formula (`=`, `+`, `-`, `@`, a tab or a carriage
/// return) unless it is a number, so opening the file never runs what a name contains.
fn defuse_formula(field: String) -> String {
    let formula_like = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula_like && field.parse::<f64>().is_err() {
        format!("'{field}")
    } else {
        field
    }
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunMode;
    use crate::testing::fake_record;

    /// Splits one RFC 4180 line (no line breaks inside fields in these tests).
    fn fields(line: &str) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(ch) = chars.next() {
            match (ch, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    out.last_mut().unwrap().push('"');
                }
                ('"', _) => quoted = !quoted,
                (',', false) => out.push(String::new()),
                (c, _) => out.last_mut().unwrap().push(c),
            }
        }
        out
    }

    #[test]
    fn one_row_per_run_under_the_documented_columns() {
        let mut spec = fake_record("s", RunMode::Speculative, 2, 400.0);
        spec.header.device = "CPU, \"fast\" (2 threads)".into();
        let race = Comparison {
            id: "cmp-1".into(),
            runs: vec![fake_record("p", RunMode::Plain, 2, 800.0), spec],
            cancelled: false,
        };
        let mut bytes = Vec::new();
        write_csv(&[race], &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(fields(lines[0]), CSV_COLUMNS);
        let rows: Vec<Vec<String>> = lines[1..].iter().map(|l| fields(l)).collect();
        let col = |row: &Vec<String>, name: &str| {
            row[CSV_COLUMNS.iter().position(|c| *c == name).unwrap()].clone()
        };
        for row in &rows {
            assert_eq!(row.len(), CSV_COLUMNS.len());
        }
        let (plain, spec) = (&rows[0], &rows[1]);
        assert_eq!(col(plain, "mode"), "plain");
        assert_eq!(col(plain, "alpha"), "", "plain drafts nothing");
        assert_eq!(col(plain, "speedup"), "1.0000");
        assert_eq!(col(plain, "gamma"), "");
        assert_eq!(col(spec, "mode"), "speculative");
        assert_eq!(col(spec, "draft"), "draft");
        assert_eq!(col(spec, "new_tokens"), "16");
        assert_eq!(col(spec, "tokens_per_second"), "40.000");
        assert_eq!(col(spec, "alpha"), "0.7143");
        assert_eq!(col(spec, "speedup"), "2.0000");
        assert_eq!(col(spec, "gamma"), "γ=3");
        assert_eq!(
            col(spec, "device"),
            "CPU, \"fast\" (2 threads)",
            "quoted and unquoted back"
        );
        assert_eq!(col(spec, "stop_reason"), "MaxNewTokens");
    }

    #[test]
    fn names_that_look_like_formulas_are_defused() {
        let mut spec = fake_record("s", RunMode::Speculative, 2, 400.0);
        spec.header.target.name = "=HYPERLINK(\"http://x\",\"y\")".into();
        spec.header.device = "@SUM(A1)".into();
        spec.header.backend = "-2+3".into();
        spec.header.comparison_id = Some("+cmd|' /C calc'!A0".into());
        let race = Comparison {
            id: "cmp-1".into(),
            runs: vec![spec],
            cancelled: false,
        };
        let mut bytes = Vec::new();
        write_csv(&[race], &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let row = fields(text.split("\r\n").nth(1).unwrap());
        let col = |name: &str| row[CSV_COLUMNS.iter().position(|c| *c == name).unwrap()].clone();
        assert_eq!(col("target"), "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(col("device"), "'@SUM(A1)");
        assert_eq!(col("backend"), "'-2+3");
        assert_eq!(col("comparison_id"), "'+cmd|' /C calc'!A0");
        // Numbers, negative ones included, stay numbers.
        assert_eq!(col("new_tokens"), "16");
        assert_eq!(defuse_formula("-0.25".into()), "-0.25");
    }
}
