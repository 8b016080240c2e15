//! Prometheus's text exposition format (version 0.0.4) of what the
//! metrics module holds: the router's counters and service-time histogram
//! per app since the server started, and each running dyno's memory, limit,
//! CPU and restarts, labelled by app, process type and dyno.

use super::series::BOUNDS_MS;
use super::Metrics;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A label value, escaped as the format wants.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The exposition; `restarts` holds each crashed dyno's restarts by (app,
/// dyno name).
pub fn render(metrics: &Metrics, restarts: &BTreeMap<(String, String), u32>) -> String {
    let all = metrics.everything();
    let mut out = String::with_capacity(4096);
    head(&mut out, "paas_router_requests_total", "counter", "Requests the router answered for the app, by status class.");
    for (app, (totals, _)) in &all {
        for (i, n) in totals.by_class.iter().enumerate() {
            let _ = writeln!(out, "paas_router_requests_total{{app=\"{}\",status=\"{}xx\"}} {n}", esc(app), i + 1);
        }
    }
    head(&mut out, "paas_router_service_seconds", "histogram", "Time the app's dynos took to answer, as the router saw it.");
    for (app, (totals, _)) in &all {
        let app = esc(app);
        let mut cumulative = 0u64;
        for (i, bound) in BOUNDS_MS.iter().enumerate() {
            cumulative += totals.service.0.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "paas_router_service_seconds_bucket{{app=\"{app}\",le=\"{}\"}} {cumulative}", f64::from(*bound) / 1000.0);
        }
        let count = totals.service.count();
        let _ = writeln!(out, "paas_router_service_seconds_bucket{{app=\"{app}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "paas_router_service_seconds_sum{{app=\"{app}\"}} {}", totals.service_ms_sum as f64 / 1000.0);
        let _ = writeln!(out, "paas_router_service_seconds_count{{app=\"{app}\"}} {count}");
    }
    let dynos = || all.iter().flat_map(|(app, (_, d))| d.iter().map(move |(name, now)| (app, name, now)));
    let labels = |app: &str, name: &str, process: &str| format!("app=\"{}\",process=\"{}\",dyno=\"{}\"", esc(app), esc(process), esc(name));
    head(&mut out, "paas_dyno_memory_bytes", "gauge", "Memory the dyno uses (less inactive file cache).");
    for (app, name, now) in dynos() {
        let _ = writeln!(out, "paas_dyno_memory_bytes{{{}}} {}", labels(app, name, &now.process_type), now.memory);
    }
    head(&mut out, "paas_dyno_memory_limit_bytes", "gauge", "The dyno's memory limit (its size).");
    for (app, name, now) in dynos() {
        let _ = writeln!(out, "paas_dyno_memory_limit_bytes{{{}}} {}", labels(app, name, &now.process_type), now.limit);
    }
    head(&mut out, "paas_dyno_cpu_percent", "gauge", "CPU the dyno used between the last two samples, in percent of one core.");
    for (app, name, now) in dynos() {
        if let Some(cpu) = now.cpu {
            let _ = writeln!(out, "paas_dyno_cpu_percent{{{}}} {cpu:.2}", labels(app, name, &now.process_type));
        }
    }
    head(&mut out, "paas_dyno_restarts", "gauge", "Times the platform restarted the dyno after it crashed (since it last ran cleanly).");
    for ((app, name), n) in restarts {
        let process = name.split('.').next().unwrap_or_default();
        let _ = writeln!(out, "paas_dyno_restarts{{{}}} {n}", labels(app, name, process));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::DynoNow;

    #[test]
    fn counters_histograms_and_dynos_carry_their_labels() {
        let m = Metrics::new(true);
        m.request("shop", 200, 3);
        m.request("shop", 503, 40);
        m.dyno_sample("shop", "web.1", DynoNow { process_type: "web".into(), memory: 1 << 20, limit: 64 << 20, cpu: Some(12.5), at: 0 });
        let restarts = BTreeMap::from([(("shop".to_owned(), "worker.2".to_owned()), 3)]);
        let text = render(&m, &restarts);
        for line in [
            "paas_router_requests_total{app=\"shop\",status=\"2xx\"} 1",
            "paas_router_requests_total{app=\"shop\",status=\"5xx\"} 1",
            "paas_router_service_seconds_bucket{app=\"shop\",le=\"0.005\"} 1",
            "paas_router_service_seconds_bucket{app=\"shop\",le=\"+Inf\"} 2",
            "paas_router_service_seconds_sum{app=\"shop\"} 0.043",
            "paas_dyno_memory_bytes{app=\"shop\",process=\"web\",dyno=\"web.1\"} 1048576",
            "paas_dyno_cpu_percent{app=\"shop\",process=\"web\",dyno=\"web.1\"} 12.50",
            "paas_dyno_restarts{app=\"shop\",process=\"worker\",dyno=\"worker.2\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
