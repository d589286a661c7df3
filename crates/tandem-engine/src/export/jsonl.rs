//! The run log: JSON Lines, one file per run. Line 1 is the header, then one line per
//! step, then the summary. Every line is an object whose `type` says which it is, so
//! `jq 'select(.type == "step")'` works. The schema is in docs/log-format.md.

use std::io::{self, BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::export::atomic::write_atomically;
use crate::record::{LoggedStep, RunHeader, RunOutcome, RunRecord, LOG_SCHEMA_VERSION};

/// One line of a log, for writing (borrowed, so a record is not copied to be saved).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LineOut<'a> {
    Header(&'a RunHeader),
    Step(&'a LoggedStep),
    Summary(&'a RunOutcome),
}

/// One line of a log, for reading.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LineIn {
    Header(Box<RunHeader>),
    Step(Box<LoggedStep>),
    Summary(Box<RunOutcome>),
}

/// Writes a record as JSON Lines.
pub fn write_log(record: &RunRecord, out: &mut dyn Write) -> io::Result<()> {
    let mut line = |value: &LineOut| -> io::Result<()> {
        serde_json::to_writer(&mut *out, value)?;
        out.write_all(b"\n")
    };
    line(&LineOut::Header(&record.header))?;
    for step in &record.steps {
        line(&LineOut::Step(step))?;
    }
    line(&LineOut::Summary(&record.outcome))?;
    out.flush()
}

/// Saves a record to `path` atomically.
pub fn save_log(record: &RunRecord, path: &Path) -> Result<()> {
    write_atomically(path, |w| write_log(record, w))
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
}

/// Reads a log back. `source` names it in error messages.
pub fn read_log(input: impl BufRead, source: &str) -> Result<RunRecord> {
    let bad = |line: usize, reason: String| EngineError::BadFile {
        path: source.to_string(),
        reason: format!("line {line}: {reason}"),
    };
    let mut header = None;
    let mut steps = Vec::new();
    let mut outcome = None;
    for (index, text) in input.lines().enumerate() {
        let number = index + 1;
        let text = text.map_err(|e| EngineError::io(format!("reading {source}"), e))?;
        if text.trim().is_empty() {
            continue;
        }
        if outcome.is_some() {
            return Err(bad(number, "text after the summary line".into()));
        }
        let line: LineIn = serde_json::from_str(&text).map_err(|e| {
            // A newer schema is the likely cause of a line that does not parse: say so.
            let version = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("schema_version").and_then(|s| s.as_u64()));
            match version {
                Some(v) if v > u64::from(LOG_SCHEMA_VERSION) => bad(
                    number,
                    format!(
                        "schema version {v} is newer than this Tandem reads ({LOG_SCHEMA_VERSION})"
                    ),
                ),
                _ => bad(number, e.to_string()),
            }
        })?;
        match (line, &header) {
            (LineIn::Header(h), None) => {
                if h.schema_version > LOG_SCHEMA_VERSION {
                    return Err(bad(
                        number,
                        format!(
                            "schema version {} is newer than this Tandem reads ({LOG_SCHEMA_VERSION})",
                            h.schema_version
                        ),
                    ));
                }
                header = Some(*h);
            }
            (LineIn::Header(_), Some(_)) => return Err(bad(number, "a second header".into())),
            (_, None) => return Err(bad(number, "the first line must be the header".into())),
            (LineIn::Step(step), Some(_)) => steps.push(*step),
            (LineIn::Summary(o), Some(_)) => outcome = Some(*o),
        }
    }
    let header = header.ok_or_else(|| bad(1, "empty log".into()))?;
    let outcome = outcome.ok_or_else(|| EngineError::BadFile {
        path: source.to_string(),
        reason: "no summary line: the log is incomplete".into(),
    })?;
    Ok(RunRecord {
        header,
        steps,
        outcome,
    })
}

/// Reads a log file.
pub fn load_log(path: &Path) -> Result<RunRecord> {
    let file = std::fs::File::open(path)
        .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
    read_log(io::BufReader::new(file), &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunMode;
    use crate::testing::sample_record;

    #[test]
    fn a_record_round_trips() {
        let record = sample_record("run-1", RunMode::Speculative);
        let mut bytes = Vec::new();
        write_log(&record, &mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), record.steps.len() + 2);
        assert!(
            lines[0].starts_with(r#"{"type":"header","schema_version":1,"#),
            "{}",
            lines[0]
        );
        assert!(lines[1].starts_with(r#"{"type":"step","trace":"#));
        assert!(lines
            .last()
            .unwrap()
            .starts_with(r#"{"type":"summary","summary":"#));
        let back = read_log(bytes.as_slice(), "test").unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn logs_from_before_the_gamma_cost_ratio_still_read() {
        let mut record = sample_record("run-3", RunMode::Speculative);
        record.header.gamma_cost_ratio = Some(0.125);
        let mut bytes = Vec::new();
        write_log(&record, &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#""gamma_cost_ratio":0.125,"#));
        assert_eq!(read_log(text.as_bytes(), "new").unwrap(), record);
        // Written before the field existed: the header simply lacks it.
        let old = text.replacen(r#""gamma_cost_ratio":0.125,"#, "", 1);
        record.header.gamma_cost_ratio = None;
        assert_eq!(read_log(old.as_bytes(), "old").unwrap(), record);
    }

    #[test]
    fn broken_logs_are_refused_with_the_line() {
        let record = sample_record("run-2", RunMode::Plain);
        let mut bytes = Vec::new();
        write_log(&record, &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        let without_summary = lines[..lines.len() - 1].join("\n");
        let err = read_log(without_summary.as_bytes(), "a.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.contains("incomplete"), "{err}");

        let steps_first = lines[1..].join("\n");
        let err = read_log(steps_first.as_bytes(), "a.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("header"), "{err}");

        let newer = text.replacen(r#""schema_version":1"#, r#""schema_version":99"#, 1);
        let err = read_log(newer.as_bytes(), "a.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.contains("newer"), "{err}");

        let garbled = text.replacen(r#""type":"step""#, r#""type":"stpe""#, 1);
        let err = read_log(garbled.as_bytes(), "a.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a.jsonl: line 2"), "{err}");
    }
}
