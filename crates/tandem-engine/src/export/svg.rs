//! Small inline SVG charts for the HTML report, written by hand: a charting library
//! would pull in far more than two chart shapes need, and the report must work offline.
//! Every element is closed and every attribute quoted, so the SVG is valid XML too.

use std::fmt::Write;

use super::html::escape;

/// One stacked piece of a column.
#[derive(Clone, Debug)]
pub struct Segment {
    pub value: f64,
    pub color: &'static str,
}

/// A column chart; each column is a stack of segments drawn from the bottom up.
pub struct ColumnChart {
    pub y_label: String,
    pub x_label: String,
    pub columns: Vec<Vec<Segment>>,
    /// Tooltip of each column.
    pub tooltips: Vec<String>,
    /// Labels under the columns; when there are many, only some are drawn.
    pub x_labels: Vec<String>,
    /// Top of the y axis; `None` fits the tallest column.
    pub y_max: Option<f64>,
    /// Shown under the chart: (name, colour).
    pub legend: Vec<(String, &'static str)>,
}

/// Column charts are sized so two fit side by side in the report.
const WIDTH: f64 = 500.0;
const BARS_WIDTH: f64 = 640.0;
const HEIGHT: f64 = 210.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;

impl ColumnChart {
    pub fn render(&self) -> String {
        let legend_height = if self.legend.is_empty() { 0.0 } else { 22.0 };
        let total_height = HEIGHT + legend_height;
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let tallest = self
            .columns
            .iter()
            .map(|c| c.iter().map(|s| s.value.max(0.0)).sum::<f64>())
            .fold(0.0, f64::max);
        let y_max = nice_ceiling(self.y_max.unwrap_or(tallest).max(f64::MIN_POSITIVE));
        let mut svg = open_svg(WIDTH, total_height);

        // Grid lines and y tick labels at 0, ¼, ½, ¾ and the top.
        for i in 0..=4 {
            let value = y_max * i as f64 / 4.0;
            let y = TOP + plot_h - plot_h * i as f64 / 4.0;
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3" stroke-width="1"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#666">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                format_tick(value)
            );
        }

        let n = self.columns.len().max(1);
        let slot = plot_w / n as f64;
        let bar = (slot * 0.8).max(1.0);
        for (i, column) in self.columns.iter().enumerate() {
            let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
            let mut base = TOP + plot_h;
            let _ = write!(svg, "<g>");
            if let Some(tip) = self.tooltips.get(i) {
                let _ = write!(svg, "<title>{}</title>", escape(tip));
            }
            for segment in column.iter().filter(|s| s.value > 0.0) {
                let h = plot_h * segment.value / y_max;
                base -= h;
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.2}" y="{base:.2}" width="{bar:.2}" height="{h:.2}" fill="{}"/>"#,
                    segment.color
                );
            }
            let _ = write!(svg, "</g>");
        }

        // At most ~16 x labels, evenly spaced.
        let every = self.x_labels.len().div_ceil(16).max(1);
        for (i, label) in self
            .x_labels
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
        {
            let x = LEFT + slot * (i as f64 + 0.5);
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#666">{}</text>"##,
                TOP + plot_h + 14.0,
                escape(label)
            );
        }
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#999" stroke-width="1"/><text x="{2:.1}" y="{3:.1}" font-size="12" text-anchor="middle" fill="#333">{4}</text><text x="14" y="{5:.1}" font-size="12" text-anchor="middle" fill="#333" transform="rotate(-90 14 {5:.1})">{6}</text>"##,
            TOP + plot_h,
            LEFT + plot_w,
            LEFT + plot_w / 2.0,
            HEIGHT - 6.0,
            escape(&self.x_label),
            TOP + plot_h / 2.0,
            escape(&self.y_label),
        );
        legend(&mut svg, &self.legend, HEIGHT + 6.0);
        svg.push_str("</svg>");
        svg
    }
}

/// One horizontal bar.
pub struct HBar {
    pub label: String,
    pub value: f64,
    /// Text after the bar.
    pub note: String,
    pub color: &'static str,
}

/// Horizontal bars, one per row, scaled to the largest value.
pub fn horizontal_bars(bars: &[HBar]) -> String {
    const ROW: f64 = 30.0;
    const LABEL_W: f64 = 120.0;
    const NOTE_W: f64 = 150.0;
    let height = ROW * bars.len() as f64 + 8.0;
    let max = bars
        .iter()
        .map(|b| b.value)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let span = BARS_WIDTH - LABEL_W - NOTE_W;
    let mut svg = open_svg(BARS_WIDTH, height);
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let w = (span * b.value.max(0.0) / max).max(1.0);
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="end" fill="#333">{}</text><rect x="{LABEL_W}" y="{:.1}" width="{w:.2}" height="{:.1}" rx="3" fill="{}"><title>{}</title></rect><text x="{:.1}" y="{:.1}" font-size="13" fill="#333">{}</text>"##,
            LABEL_W - 8.0,
            y + 18.0,
            escape(&b.label),
            y + 3.0,
            ROW - 8.0,
            b.color,
            escape(&b.note),
            LABEL_W + w + 6.0,
            y + 18.0,
            escape(&b.note)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn open_svg(width: f64, height: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" font-family="system-ui, sans-serif">"#
    )
}

fn legend(svg: &mut String, items: &[(String, &'static str)], y: f64) {
    let mut x = LEFT;
    for (name, color) in items {
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{y:.1}" width="12" height="12" rx="2" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#333">{}</text>"##,
            x + 16.0,
            y + 10.5,
            escape(name)
        );
        x += 16.0 + 7.5 * name.chars().count() as f64 + 18.0;
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `value`.
pub fn nice_ceiling(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&v| v >= value * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// Ticks are quarters of a nice ceiling (3.75, 0.125…): up to three decimals, trailing
/// zeros dropped.
fn format_tick(value: f64) -> String {
    if value >= 100.0 {
        return format!("{value:.0}");
    }
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.93), 1.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(17.0), 20.0);
        assert_eq!(nice_ceiling(210.0), 250.0);
        assert_eq!(nice_ceiling(0.004), 0.005);
    }

    #[test]
    fn tick_labels() {
        let ticks: Vec<String> = [0.0, 1.25, 3.75, 0.125, 250.0, 2.0]
            .map(format_tick)
            .to_vec();
        assert_eq!(ticks, ["0", "1.25", "3.75", "0.125", "250", "2"]);
    }

    #[test]
    fn columns_scale_to_the_axis() {
        let chart = ColumnChart {
            y_label: "ms".into(),
            x_label: "step".into(),
            columns: vec![
                vec![
                    Segment {
                        value: 1.0,
                        color: "#f00",
                    },
                    Segment {
                        value: 3.0,
                        color: "#00f",
                    },
                ],
                vec![Segment {
                    value: 0.0,
                    color: "#f00",
                }],
            ],
            tooltips: vec!["a < b".into(), "b".into()],
            x_labels: vec!["1".into(), "2".into()],
            y_max: None,
            legend: vec![("draft".into(), "#f00")],
        };
        let svg = chart.render();
        // y max 5 over a 158-pixel plot: 3 ms is 94.8 pixels tall.
        assert!(svg.contains(r##"height="94.80" fill="#00f""##), "{svg}");
        assert!(svg.contains("<title>a &lt; b</title>"));
        assert_eq!(
            svg.matches("<rect").count(),
            3,
            "two segments and the legend swatch"
        );
    }
}
