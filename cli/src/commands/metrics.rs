//! `metrics`: the app's requests, service times, errors, memory and CPU by
//! minute: a compact text chart (one line of blocks per figure, each block
//! a span of minutes) with the totals, or `--json`.

use super::Ctx;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{AppMetrics, MetricsMinute};

#[derive(Subcommand)]
pub enum Cmd {
    /// Show requests per minute, p50/p95/p99 service time, 4xx and 5xx, and each process type's memory and CPU, by minute (`--since 1h`; up to 24h).
    Metrics {
        /// How far back: 30m, 1h, 6h, 24h.
        #[arg(long, default_value = "1h")]
        since: String,
    },
}

const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Blocks a chart line has at most.
const WIDTH: usize = 60;

/// `values` (one per minute, None where nothing was counted) as at most
/// [`WIDTH`] blocks, each the largest value of its minutes; a space where
/// none had a value.
pub fn spark(values: &[Option<f64>]) -> String {
    if values.is_empty() {
        return String::new();
    }
    let per = values.len().div_ceil(WIDTH);
    let cells: Vec<Option<f64>> = values.chunks(per).map(|c| c.iter().flatten().copied().reduce(f64::max)).collect();
    let max = cells.iter().flatten().copied().fold(0.0, f64::max);
    cells
        .iter()
        .map(|c| match c {
            None => ' ',
            Some(_) if max <= 0.0 => BLOCKS[0],
            Some(v) => BLOCKS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0} ms"))
}

fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / f64::from(1 << 20))
}

/// Every minute from the first to the last the answer has, so gaps show.
fn timeline(m: &AppMetrics) -> Vec<Option<&MetricsMinute>> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).map(|d| d.timestamp()).ok();
    let Some(from) = parse(&m.since) else { return m.minutes.iter().map(Some).collect() };
    let now = chrono::Utc::now().timestamp();
    let count = ((now - from) / 60 + 1).clamp(1, 24 * 60) as usize;
    let mut out = vec![None; count];
    for minute in &m.minutes {
        if let Some(at) = parse(&minute.at) {
            let i = ((at - from) / 60) as usize;
            if i < count {
                out[i] = Some(minute);
            }
        }
    }
    out
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let Cmd::Metrics { since } = cmd;
    if let Err(e) = paas_wire::parse_window(&since) {
        crate::exit::bail_usage!("--since {e}");
    }
    let name = ctx.app()?;
    let m: AppMetrics = ctx.client()?.get_with(&["apps", &name, "metrics"], &[("since", since.clone())])?;
    if ctx.json {
        output::json(&m);
        return Ok(0);
    }
    let s = &m.summary;
    output::heading(&format!("{name} since {} ({since})", m.since));
    println!(
        "requests {}   4xx {}   5xx {}   p50 {}   p95 {}   p99 {}",
        s.requests,
        s.client_errors,
        s.server_errors,
        ms(s.p50_ms),
        ms(s.p95_ms),
        ms(s.p99_ms)
    );
    let minutes = timeline(&m);
    let series = |f: &dyn Fn(&MetricsMinute) -> Option<f64>| minutes.iter().map(|m| m.and_then(f)).collect::<Vec<_>>();
    let line = |label: &str, values: Vec<Option<f64>>, top: String| println!("{label:<18} {}  max {top}", spark(&values));
    let requests = series(&|m| Some(m.requests.requests as f64));
    let max_rpm = requests.iter().flatten().copied().fold(0.0, f64::max);
    line("requests/min", requests, format!("{max_rpm:.0}"));
    let p95 = series(&|m| m.requests.p95_ms);
    let top = p95.iter().flatten().copied().reduce(f64::max);
    line("p95 service", p95, ms(top));
    let errors = series(&|m| Some((m.requests.client_errors + m.requests.server_errors) as f64));
    let top = errors.iter().flatten().copied().fold(0.0, f64::max);
    line("4xx+5xx/min", errors, format!("{top:.0}"));
    let types: std::collections::BTreeSet<&String> = m.minutes.iter().flat_map(|m| m.processes.keys()).collect();
    for t in types {
        let memory = series(&|m| m.processes.get(t).map(|p| p.memory_max_bytes as f64));
        let limit = m.minutes.iter().filter_map(|m| m.processes.get(t)).map(|p| p.memory_limit_bytes).max().unwrap_or(0);
        let top = memory.iter().flatten().copied().fold(0.0, f64::max);
        line(&format!("{t} memory"), memory, format!("{} of {}", mib(top), mib(limit as f64)));
        let cpu = series(&|m| m.processes.get(t).and_then(|p| p.cpu_percent));
        let top = cpu.iter().flatten().copied().fold(0.0, f64::max);
        line(&format!("{t} cpu"), cpu, format!("{top:.1}%"));
    }
    if m.minutes.is_empty() {
        println!("\nNothing counted in this window: metrics count requests through the router and sample running dynos every PAAS_METRICS_EVERY_SECONDS.");
    }
    if !m.dynos.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = m
            .dynos
            .iter()
            .map(|d| {
                let percent = if d.memory_limit_bytes > 0 { format!(" ({:.0}%)", d.memory_bytes as f64 * 100.0 / d.memory_limit_bytes as f64) } else { String::new() };
                vec![
                    d.name.clone(),
                    format!("{} of {}{percent}", mib(d.memory_bytes as f64), mib(d.memory_limit_bytes as f64)),
                    d.cpu_percent.map_or_else(|| "-".into(), |c| format!("{c:.1}%")),
                    d.sampled_at.clone(),
                ]
            })
            .collect();
        output::table(&["Dyno", "Memory", "CPU", "Sampled"], &rows);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::spark;

    #[test]
    fn a_chart_scales_to_its_largest_value_and_shows_gaps() {
        assert_eq!(spark(&[Some(0.0), Some(5.0), None, Some(10.0)]), "▁▅ █");
        let long: Vec<Option<f64>> = (0..120).map(|i| Some(f64::from(i))).collect();
        assert_eq!(spark(&long).chars().count(), 60);
        assert_eq!(spark(&[]), "");
    }
}
