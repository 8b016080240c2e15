//! Charts as SVG drawn on the server (the dashboard's metrics: no script,
//! readable without JavaScript): one value per minute, as bars or lines,
//! scaled to the largest value, with the largest value and the window's
//! ends written on the axes and a `<title>` saying what it shows.

use std::fmt::Write;

const W: f64 = 600.0;
const H: f64 = 136.0;
/// Room on the left for the axis's figure, above for the legend, and below
/// for the times.
const LEFT: f64 = 56.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 18.0;
const COLOURS: [&str; 6] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

/// One series: a value per minute (None: nothing counted then).
pub struct Line {
    pub label: String,
    pub values: Vec<Option<f64>>,
    /// Drawn dashed (a limit).
    pub dashed: bool,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An SVG chart of `lines` over the same minutes; `bars` draws every series
/// as bars, each over the one before (so a part, like 5xx, shows within
/// its whole), else as lines. `unit` formats the axis's figure.
pub fn draw(title: &str, lines: &[Line], bars: bool, unit: &dyn Fn(f64) -> String, first: &str, last: &str) -> String {
    let n = lines.iter().map(|l| l.values.len()).max().unwrap_or(0).max(1);
    let max = lines.iter().flat_map(|l| l.values.iter().flatten()).copied().fold(0.0, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let plot_w = W - LEFT;
    let plot_h = H - BOTTOM - TOP;
    let bottom = H - BOTTOM;
    let x = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| bottom - plot_h * (v / top);
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title)
    );
    let _ = write!(svg, r##"<line x1="{LEFT}" y1="{bottom}" x2="{W}" y2="{bottom}" stroke="#999"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#999"/>"##);
    let _ = write!(svg, r##"<text x="{}" y="{:.1}" font-size="10" text-anchor="end" fill="#555">{}</text>"##, LEFT - 4.0, y(max) + 4.0, esc(&unit(max)));
    let _ = write!(svg, r##"<text x="{}" y="{bottom}" font-size="10" text-anchor="end" fill="#555">0</text>"##, LEFT - 4.0);
    let _ = write!(svg, r##"<text x="{LEFT}" y="{}" font-size="10" fill="#555">{}</text>"##, H - 4.0, esc(first));
    let _ = write!(svg, r##"<text x="{W}" y="{}" font-size="10" text-anchor="end" fill="#555">{}</text>"##, H - 4.0, esc(last));
    for (k, line) in lines.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        if bars {
            let width = (plot_w / n as f64 * 0.8).max(1.0);
            for (i, v) in line.values.iter().enumerate() {
                if let Some(v) = v.filter(|v| *v > 0.0) {
                    let _ = write!(svg, r#"<rect x="{:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" fill="{colour}"/>"#, x(i) - width / 2.0, y(v), bottom - y(v));
                }
            }
            continue;
        }
        // A line breaks where minutes have nothing.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, v) in line.values.iter().enumerate() {
            match v {
                Some(v) => runs.last_mut().expect("one run").push((x(i), y(*v))),
                None if !runs.last().expect("one run").is_empty() => runs.push(Vec::new()),
                None => {}
            }
        }
        let dash = if line.dashed { r#" stroke-dasharray="4 3""# } else { "" };
        for run in runs.iter().filter(|r| !r.is_empty()) {
            let points: Vec<String> = run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            if run.len() == 1 {
                let _ = write!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="2" fill="{colour}"/>"#, run[0].0, run[0].1);
            } else {
                let _ = write!(svg, r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>"#, points.join(" "));
            }
        }
    }
    // The legend, along the top.
    let mut lx = LEFT + 8.0;
    for (k, line) in lines.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let _ = write!(svg, r#"<rect x="{lx:.1}" y="3" width="8" height="8" fill="{colour}"/><text x="{:.1}" y="11" font-size="10">{}</text>"#, lx + 11.0, esc(&line.label));
        lx += 24.0 + 6.2 * line.label.chars().count() as f64;
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_lines_gaps_and_labels_are_drawn() {
        let lines = [
            Line { label: "requests".into(), values: vec![Some(2.0), None, Some(4.0)], dashed: false },
            Line { label: "5xx <b>".into(), values: vec![Some(1.0), Some(1.0), None], dashed: true },
        ];
        let svg = draw("Requests per minute", &lines, true, &|v| format!("{v:.0}/min"), "14:00", "14:02");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect x").count(), 4 + 2, "four bars and two legend boxes: {svg}");
        let lines = draw("Memory", &lines, false, &|v| format!("{v:.0}"), "14:00", "14:02");
        assert!(lines.contains("stroke-dasharray") && lines.contains("<polyline") && lines.contains("<circle"), "{lines}");
        assert!(svg.contains("4/min") && svg.contains("14:00") && svg.contains("<title>Requests per minute</title>"));
        assert!(svg.contains("5xx &lt;b&gt;") && !svg.contains("<b>"));
    }
}
