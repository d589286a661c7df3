//! The HTML report: one self-contained file (inline CSS and SVG, no script, nothing
//! fetched) that shows a race to someone who was not there: the texts with each token
//! coloured by where it came from, tokens/s of each run, acceptance per step and per
//! draft position, and draft vs verify time per step.
//!
//! The markup is XHTML-compatible (every element closed, attributes quoted, only the
//! five XML entities), so a strict XML parser can check it and a browser reads it as
//! HTML5.

use std::fmt::Write;

use tandem_decode::TokenOrigin;

use super::svg::{horizontal_bars, ColumnChart, HBar, Segment};
use crate::compare::{gamma_label, Comparison, GreedyCheck, RunStats, SpeedupBasis};
use crate::record::RunRecord;

const ACCEPTED: &str = "#2e9d4f";
const REJECTED: &str = "#d64545";
const DRAFT_TIME: &str = "#e8912d";
const VERIFY_TIME: &str = "#7b5cc7";

/// A table shown above the races (a suite's summary by category).
pub struct SummaryTable {
    pub caption: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub note: String,
}

/// What a report shows.
pub struct Report<'a> {
    pub title: String,
    pub comparisons: &'a [Comparison],
    pub summary: Option<SummaryTable>,
    /// Fold each race into a `<details>` (suites have many).
    pub collapse_races: bool,
}

/// Escapes text for element content and quoted attributes. Characters XML forbids
/// (most C0 controls, which a byte-level tokenizer can emit) become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub fn render_html(report: &Report) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>{}</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>{}</h1>"#,
        escape(&report.title),
        escape(&report.title)
    );
    if let Some(first) = report.comparisons.iter().flat_map(|c| &c.runs).next() {
        let h = &first.header;
        let _ = write!(
            html,
            r#"<p class="sub">{} · {} on {} · Tandem {}</p>"#,
            escape(&h.created_at),
            escape(&h.backend),
            escape(&h.device),
            escape(&h.tandem_version)
        );
    }
    html.push_str("</header>\n<main>\n");
    if let Some(table) = &report.summary {
        summary_table(&mut html, table);
    }
    html.push_str(&origin_legend());
    for comparison in report.comparisons {
        race_section(&mut html, comparison, report.collapse_races);
    }
    let _ = write!(
        html,
        r#"</main>
<footer>Speedup = plain wall time / run wall time when both produced the same number of tokens, else run tokens/s / plain tokens/s.
α = drafts accepted / drafts judged; τ = tokens per target forward. Written by Tandem {}.</footer>
</body>
</html>
"#,
        env!("CARGO_PKG_VERSION")
    );
    html
}

fn summary_table(html: &mut String, table: &SummaryTable) {
    let _ = write!(
        html,
        r#"<section class="suite"><h2>{}</h2><table><thead><tr>"#,
        escape(&table.caption)
    );
    for h in &table.headers {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{}</td>", escape(cell));
        }
        html.push_str("</tr>");
    }
    let _ = write!(
        html,
        r#"</tbody></table><p class="note">{}</p></section>"#,
        escape(&table.note)
    );
}

fn origin_class(origin: TokenOrigin) -> &'static str {
    match origin {
        TokenOrigin::Target => "o-target",
        TokenOrigin::AcceptedDraft => "o-accepted",
        TokenOrigin::Corrected => "o-corrected",
        TokenOrigin::Bonus => "o-bonus",
        TokenOrigin::NgramHit => "o-ngram",
    }
}

fn origin_legend() -> String {
    let items = [
        (TokenOrigin::AcceptedDraft, "accepted draft"),
        (TokenOrigin::Corrected, "corrected by the target"),
        (TokenOrigin::Bonus, "bonus (after a fully accepted step)"),
        (TokenOrigin::NgramHit, "n-gram hit (NASD)"),
        (TokenOrigin::Target, "target (plain step)"),
    ];
    let mut html = String::from(r#"<p class="legend">Token colours: "#);
    for (origin, name) in items {
        let _ = write!(
            html,
            r#"<span class="{}">{}</span> "#,
            origin_class(origin),
            escape(name)
        );
    }
    html.push_str("</p>\n");
    html
}

fn race_section(html: &mut String, comparison: &Comparison, collapse: bool) {
    let Some(first) = comparison.runs.first() else {
        return;
    };
    let h = &first.header;
    let heading = match &h.suite_item {
        Some(item) => format!("{} · {}", item.id, item.category),
        None => format!("Race {}", comparison.id),
    };
    let _ = write!(
        html,
        r#"<section class="race" id="{}">"#,
        escape(&comparison.id)
    );
    if collapse {
        let _ = write!(
            html,
            "<details><summary><h2>{}</h2></summary>",
            escape(&heading)
        );
    } else {
        let _ = write!(html, "<h2>{}</h2>", escape(&heading));
    }
    setup_table(html, comparison);
    greedy_banner(html, comparison);
    let stats = comparison.stats();
    stats_table(html, &stats);
    html.push_str("<h3>Tokens per second</h3>");
    let bars: Vec<HBar> = stats
        .iter()
        .map(|s| HBar {
            label: s.label.clone(),
            value: s.tokens_per_second,
            note: match s.speedup {
                Some(x) => format!("{:.1} tok/s · {x:.2}×", s.tokens_per_second),
                None => format!("{:.1} tok/s", s.tokens_per_second),
            },
            color: mode_color(&s.label),
        })
        .collect();
    let _ = write!(
        html,
        r#"<div class="chart">{}</div>"#,
        horizontal_bars(&bars)
    );
    for (run, s) in comparison.runs.iter().zip(&stats) {
        run_article(html, run, s);
    }
    if collapse {
        html.push_str("</details>");
    }
    html.push_str("</section>\n");
}

fn mode_color(label: &str) -> &'static str {
    match label {
        "speculative" => ACCEPTED,
        "nasd" => "#1a9aa8",
        _ => "#8a8f98",
    }
}

fn setup_table(html: &mut String, comparison: &Comparison) {
    let h = &comparison.runs[0].header;
    let draft = comparison.runs.iter().find_map(|r| r.header.draft.as_ref());
    let model = |p: &crate::provenance::ModelProvenance| {
        let mut text = p.label();
        if let Some(rev) = &p.revision {
            let _ = write!(text, " @ {}", rev.chars().take(12).collect::<String>());
        }
        text
    };
    let sampling = if h.sampling.is_greedy() {
        "greedy".to_string()
    } else {
        format!(
            "temperature {}, top-k {}, top-p {}, seed {}",
            h.sampling.temperature,
            h.sampling.top_k.map_or("-".into(), |k| k.to_string()),
            h.sampling.top_p.map_or("-".into(), |p| p.to_string()),
            h.sampling.seed
        )
    };
    let gamma = comparison
        .runs
        .iter()
        .find_map(|r| r.header.gamma_policy.as_ref())
        .map_or("-".into(), gamma_label);
    let rows = [
        ("target", model(&h.target)),
        ("draft", draft.map_or("-".into(), model)),
        ("sampling", sampling),
        ("γ", gamma),
        (
            "budget",
            format!(
                "{} new tokens{}{}{}",
                h.max_new_tokens,
                if h.ignore_eos { ", EOS ignored" } else { "" },
                if h.chat { ", chat template" } else { "" },
                match h.enable_thinking {
                    Some(true) => ", thinking on",
                    Some(false) => ", thinking off",
                    None => "",
                }
            ),
        ),
        ("prompt tokens", h.prompt_tokens.len().to_string()),
    ];
    html.push_str(r#"<table class="setup"><tbody>"#);
    for (name, value) in rows {
        let _ = write!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    let _ = write!(
        html,
        r#"<tr><th>prompt</th><td><pre class="prompt">{}</pre></td></tr></tbody></table>"#,
        escape(&h.prompt)
    );
}

fn greedy_banner(html: &mut String, comparison: &Comparison) {
    let (class, text) = match comparison.greedy_check() {
        GreedyCheck::Identical => (
            "ok",
            "Greedy: every output is identical to plain decoding, token for token.".to_string(),
        ),
        GreedyCheck::Diverged { divergences } => (
            "bad",
            divergences
                .iter()
                .map(|d| {
                    format!(
                        "ERROR: {} differs from plain at new token {} (plain {}, {} {}).",
                        d.label,
                        d.position,
                        d.plain_token
                            .map_or("ended".into(), |t| format!("token {t}")),
                        d.label,
                        d.run_token.map_or("ended".into(), |t| format!("token {t}"))
                    )
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        GreedyCheck::NotGreedy => (
            "info",
            "Sampled (not greedy): outputs differ from run to run by design.".into(),
        ),
        GreedyCheck::NoPlainRun => ("info", "No plain run to compare with.".into()),
        check @ GreedyCheck::Incomplete { .. } => (
            "info",
            format!(
                "Greedy check {}: identical to plain is not proven.",
                check.summary()
            ),
        ),
    };
    let _ = write!(html, r#"<p class="check {class}">{}</p>"#, escape(&text));
    if comparison.cancelled {
        html.push_str(
            r#"<p class="check info">The race was cancelled before every mode finished.</p>"#,
        );
    }
}

fn stats_table(html: &mut String, stats: &[RunStats]) {
    html.push_str(
        "<table class=\"stats\"><thead><tr><th>mode</th><th>tokens</th><th>time (s)</th><th>tokens/s</th>\
         <th>first token (ms)</th><th>α</th><th>τ</th><th>speedup</th><th>model</th></tr></thead><tbody>",
    );
    for s in stats {
        let speedup = match (s.speedup, s.speedup_basis) {
            (Some(x), Some(SpeedupBasis::TokensPerSecond)) => format!("{x:.2}× (tok/s)"),
            (Some(x), _) => format!("{x:.2}×"),
            _ => "-".into(),
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.label),
            s.new_tokens,
            s.wall_ms / 1e3,
            s.tokens_per_second,
            s.time_to_first_token_ms.map_or("-".into(), |t| format!("{t:.0}")),
            s.alpha.map_or("-".into(), |a| format!("{a:.3}")),
            s.tau,
            speedup,
            s.modelled_speedup.map_or("-".into(), |x| format!("{x:.2}×")),
        );
    }
    html.push_str(
        "</tbody></table><p class=\"note\">model: the speedup formula (1 − α^(γ+1)) / ((1 − α)(γc + r)) fed with the \
         run's own α, mean γ, draft cost c and verify cost r, both relative to plain's time per forward.</p>",
    );
}

fn run_article(html: &mut String, run: &RunRecord, stats: &RunStats) {
    let h = &run.header;
    let title = match (&h.draft, &h.gamma_policy) {
        (Some(draft), Some(g)) => format!(
            "{} · draft {} · {}",
            run.label(),
            draft.label(),
            gamma_label(g)
        ),
        (None, Some(g)) => format!("{} · {}", run.label(), gamma_label(g)),
        _ => run.label().to_string(),
    };
    let _ = write!(
        html,
        r#"<article class="run" id="{}"><h3>{}</h3><p class="meta">{} tokens in {:.2} s · {:.1} tokens/s · run {}</p><div class="text">"#,
        escape(&h.run_id),
        escape(&title),
        stats.new_tokens,
        stats.wall_ms / 1e3,
        stats.tokens_per_second,
        escape(&h.run_id)
    );
    for piece in run.pieces() {
        let _ = write!(
            html,
            r#"<span class="{}">{}</span>"#,
            origin_class(piece.origin),
            escape(&piece.text)
        );
    }
    html.push_str("</div><div class=\"charts\">");
    let steps = &run.steps;
    let step_labels: Vec<String> = (1..=steps.len()).map(|i| i.to_string()).collect();
    if h.gamma_policy.is_some() {
        let chart = ColumnChart {
            y_label: "drafts".into(),
            x_label: "step".into(),
            columns: steps
                .iter()
                .map(|s| {
                    vec![
                        Segment {
                            value: s.trace.accepted as f64,
                            color: ACCEPTED,
                        },
                        Segment {
                            value: (s.trace.judged - s.trace.accepted) as f64,
                            color: REJECTED,
                        },
                    ]
                })
                .collect(),
            tooltips: steps
                .iter()
                .map(|s| {
                    format!(
                        "step {}: {} of {} drafts accepted ({} proposed)",
                        s.trace.step + 1,
                        s.trace.accepted,
                        s.trace.judged,
                        s.trace.drafts.len()
                    )
                })
                .collect(),
            x_labels: step_labels.clone(),
            y_max: None,
            legend: vec![("accepted".into(), ACCEPTED), ("rejected".into(), REJECTED)],
        };
        chart_figure(html, "Acceptance per step", &chart);
        let positions = &run.summary().acceptance_by_position;
        let chart = ColumnChart {
            y_label: "acceptance rate".into(),
            x_label: "draft position".into(),
            columns: positions
                .iter()
                .map(|p| {
                    vec![Segment {
                        value: p.rate,
                        color: ACCEPTED,
                    }]
                })
                .collect(),
            tooltips: positions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    format!(
                        "position {}: {} of {} accepted",
                        i + 1,
                        p.accepted,
                        p.drafted
                    )
                })
                .collect(),
            x_labels: (1..=positions.len()).map(|i| i.to_string()).collect(),
            y_max: Some(1.0),
            legend: vec![],
        };
        chart_figure(html, "Acceptance per draft position", &chart);
    }
    let chart = ColumnChart {
        y_label: "ms".into(),
        x_label: "step".into(),
        columns: steps
            .iter()
            .map(|s| {
                vec![
                    Segment {
                        value: s.trace.draft_ms,
                        color: DRAFT_TIME,
                    },
                    Segment {
                        value: s.trace.verify_ms,
                        color: VERIFY_TIME,
                    },
                ]
            })
            .collect(),
        tooltips: steps
            .iter()
            .map(|s| {
                format!(
                    "step {}: draft {:.1} ms, verify {:.1} ms",
                    s.trace.step + 1,
                    s.trace.draft_ms,
                    s.trace.verify_ms
                )
            })
            .collect(),
        x_labels: step_labels,
        y_max: None,
        legend: vec![
            ("draft".into(), DRAFT_TIME),
            ("verify (target)".into(), VERIFY_TIME),
        ],
    };
    chart_figure(html, "Draft vs verify time per step", &chart);
    html.push_str("</div></article>");
}

fn chart_figure(html: &mut String, caption: &str, chart: &ColumnChart) {
    let _ = write!(
        html,
        "<figure><figcaption>{}</figcaption>{}</figure>",
        escape(caption),
        chart.render()
    );
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d1f23; background: #f6f7f9; line-height: 1.45; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; }
h1 { font-size: 1.6rem; margin: 0.4rem 0 0.2rem; }
h2 { font-size: 1.25rem; margin: 0.2rem 0 0.8rem; display: inline-block; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
.sub, .meta, .note { color: #5c6370; font-size: 0.9rem; margin: 0.2rem 0 0.6rem; }
section.race, section.suite { background: #fff; border: 1px solid #e1e4e8; border-radius: 10px; padding: 16px 20px; margin: 18px 0; }
details > summary { cursor: pointer; }
table { border-collapse: collapse; font-size: 0.92rem; margin: 0.4rem 0; }
th, td { padding: 4px 10px; text-align: left; border-bottom: 1px solid #eceef1; vertical-align: top; }
table.stats td:not(:first-child), table.stats th:not(:first-child), section.suite td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
table.setup th { color: #5c6370; font-weight: 600; width: 9em; }
pre.prompt { white-space: pre-wrap; margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85rem; max-height: 12em; overflow: auto; }
.check { padding: 6px 10px; border-radius: 6px; font-weight: 600; }
.check.ok { background: #e6f6ea; color: #17612f; }
.check.bad { background: #fde8e8; color: #8b1a1a; }
.check.info { background: #eef1f5; color: #3b4350; }
article.run { border-top: 1px solid #e1e4e8; margin-top: 14px; padding-top: 4px; }
.text { white-space: pre-wrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.9rem; background: #fbfbfc; border: 1px solid #eceef1; border-radius: 6px; padding: 10px 12px; }
.legend span { padding: 1px 6px; border-radius: 4px; margin-right: 4px; font-size: 0.85rem; }
.o-accepted { background: #d3f2da; color: #14532d; }
.o-corrected { background: #fcdcdc; color: #8b1a1a; }
.o-bonus { background: #d9e4fb; color: #1e3a8a; }
.o-ngram { background: #cdeff3; color: #0e5560; }
.o-target { color: #1d1f23; }
.legend .o-target { border: 1px solid #d6d9de; }
.charts { display: flex; flex-wrap: wrap; gap: 8px 24px; }
figure { margin: 8px 0; }
figcaption { font-size: 0.9rem; font-weight: 600; color: #3b4350; margin-bottom: 2px; }
svg { max-width: 100%; height: auto; }
footer { color: #5c6370; font-size: 0.85rem; padding-bottom: 28px; }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunMode;
    use crate::testing::fake_record;
    use quick_xml::events::Event;
    use quick_xml::Reader;

    fn race() -> Comparison {
        Comparison {
            id: "cmp-1".into(),
            runs: vec![
                fake_record("run-p", RunMode::Plain, 2, 800.0),
                fake_record("run-s", RunMode::Speculative, 2, 400.0),
                fake_record(
                    "run-n",
                    RunMode::Nasd {
                        ngram_n: 4,
                        filler_top_k: None,
                    },
                    2,
                    300.0,
                ),
            ],
            cancelled: false,
        }
    }

    /// Parses the report as strict XML: every element closed and properly nested.
    /// Returns the element names in document order.
    fn parse_strict(html: &str) -> Vec<String> {
        let mut reader = Reader::from_str(html);
        reader.config_mut().check_end_names = true;
        let mut open = Vec::new();
        let mut names = Vec::new();
        loop {
            match reader.read_event() {
                Ok(Event::Start(e)) => {
                    let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    names.push(name.clone());
                    open.push(name);
                }
                Ok(Event::Empty(e)) => {
                    names.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap())
                }
                Ok(Event::End(e)) => {
                    let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    assert_eq!(open.pop(), Some(name));
                }
                Ok(Event::GeneralRef(r)) => {
                    // Only the XML entities (and character references): no HTML-only
                    // names like `&nbsp;`, which an XML parser would reject.
                    let name = r.decode().unwrap();
                    assert!(
                        r.is_char_ref()
                            || ["amp", "lt", "gt", "quot", "apos"].contains(&name.as_ref()),
                        "entity &{name};"
                    );
                }
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not well-formed at {}: {e}", reader.buffer_position()),
            }
        }
        assert!(open.is_empty(), "unclosed: {open:?}");
        names
    }

    #[test]
    fn the_report_is_well_formed_and_shows_every_run() {
        let race = race();
        let html = render_html(&Report {
            title: "Race <1>".into(),
            comparisons: std::slice::from_ref(&race),
            summary: None,
            collapse_races: false,
        });
        let names = parse_strict(&html);
        assert_eq!(names[0], "html");
        for run in &race.runs {
            assert!(
                html.contains(&format!(r#"<article class="run" id="{}">"#, run.run_id())),
                "{}",
                run.run_id()
            );
        }
        assert_eq!(names.iter().filter(|n| *n == "article").count(), 3);
        // Charts: tokens/s once; time per step for every run; acceptance per step and
        // per position for the two drafting runs.
        assert_eq!(names.iter().filter(|n| *n == "svg").count(), 1 + 3 + 2 * 2);
        assert!(html.contains("Race &lt;1&gt;"), "the title is escaped");
        assert!(
            html.contains("Say &lt;b&gt;&quot;hi&quot;&lt;/b&gt; &amp; go"),
            "the prompt is escaped"
        );
        assert!(html.contains(r#"<span class="o-accepted"> w0</span>"#));
        assert!(
            html.contains(r#"<span class="o-ngram">"#)
                && html.contains(r#"<span class="o-corrected">"#)
        );
        assert!(html.contains("identical to plain"));
        assert!(
            !html.contains("http://") || !html.contains("src="),
            "nothing is fetched"
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_suite_report_folds_races_and_shows_its_table() {
        let races = [race(), race()];
        let html = render_html(&Report {
            title: "Suite".into(),
            comparisons: &races,
            summary: Some(SummaryTable {
                caption: "By category".into(),
                headers: vec!["category".into(), "α".into()],
                rows: vec![vec!["code".into(), "0.714".into()]],
                note: "pooled".into(),
            }),
            collapse_races: true,
        });
        let names = parse_strict(&html);
        assert_eq!(names.iter().filter(|n| *n == "details").count(), 2);
        assert!(html.contains("<td>code</td><td>0.714</td>"));
    }

    #[test]
    fn divergence_and_control_characters() {
        let mut race = race();
        race.runs[1].outcome.tokens[3] = 77;
        race.runs[1].steps[0].pieces[0].text = "bell\u{7}".into();
        let html = render_html(&Report {
            title: "t".into(),
            comparisons: std::slice::from_ref(&race),
            summary: None,
            collapse_races: false,
        });
        parse_strict(&html);
        assert!(html.contains("ERROR: speculative differs from plain at new token 3 (plain token 3, speculative token 77)."));
        assert!(html.contains("bell\u{FFFD}"));
    }

    #[test]
    fn a_cancelled_race_is_not_reported_identical() {
        let mut race = race();
        race.runs.truncate(2);
        race.runs[1].outcome.summary.cancelled = true;
        race.cancelled = true;
        let html = render_html(&Report {
            title: "t".into(),
            comparisons: std::slice::from_ref(&race),
            summary: None,
            collapse_races: false,
        });
        parse_strict(&html);
        assert!(!html.contains("every output is identical"));
        assert!(html.contains("Greedy check incomplete: speculative cancelled before the end"));
    }
}
