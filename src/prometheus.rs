//! The process-wide Prometheus recorder of the `metrics` crate, shared by
//! the sidecar and the gateway (and by both when tests run them in one
//! process), rendered as Prometheus text on each `/metrics`.
//!
//! Histograms are real Prometheus histograms (`_bucket`, `_sum`, `_count`),
//! so they aggregate across instances, with fixed buckets:
//!
//! | metrics | buckets |
//! |---|---|
//! | every name ending in `_seconds` (fsync, mirror commit, export round trip, gateway publish and sync) | 100 µs to 10 s |
//! | `src_telemetrygatewayexporter_batch_size` (events per exported payload), `telespool_gateway_payload_events` | 1 to 50,000 events |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Buckets of every `*_seconds` histogram.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets of the events-per-payload histograms.
pub const EVENTS_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 50000.0,
];

/// Histograms counting events per payload.
/// (`export::exporter::BATCH_SIZE` and `gateway::metrics::PAYLOAD_EVENTS`,
/// written out here because this module sits below both; a test checks
/// they agree).
pub const EVENT_COUNT_HISTOGRAMS: &[&str] = &[
    "src_telemetrygatewayexporter_batch_size",
    "telespool_gateway_payload_events",
];

/// Why the recorder could not be installed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("installing the Prometheus recorder: {reason}")]
pub struct InstallError {
    /// The exporter's complaint (another recorder already installed, say).
    pub reason: String,
}

/// Installs the recorder on first call and returns its handle (later calls
/// return the same handle, or the same error).
pub fn install() -> Result<PrometheusHandle, InstallError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, InstallError>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS);
            for name in EVENT_COUNT_HISTOGRAMS {
                builder = builder.and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full((*name).to_owned()), EVENTS_BUCKETS)
                });
            }
            let builder = builder.map_err(|e| InstallError {
                reason: e.to_string(),
            })?;
            builder.install_recorder().map_err(|e| InstallError {
                reason: e.to_string(),
            })
        })
        .clone()
}

/// A series' kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic count.
    Counter,
    /// Monotonic count recorded only with labels: described, not
    /// registered (an unlabeled 0 beside the labeled series would mislead).
    LabeledCounter,
    /// Current value.
    Gauge,
    /// Distribution.
    Histogram,
}

/// One series: name, kind, help.
pub type Series = (&'static str, Kind, &'static str);

/// Describes `series` and registers the unlabeled ones (counters and
/// gauges at their current value, 0 when new; histograms empty), so that a
/// scrape sees every series before its first event.
pub fn register(series: &[Series]) {
    for &(name, kind, help) in series {
        match kind {
            Kind::Counter => {
                metrics::describe_counter!(name, help);
                metrics::counter!(name).increment(0);
            }
            Kind::LabeledCounter => metrics::describe_counter!(name, help),
            Kind::Gauge => {
                metrics::describe_gauge!(name, help);
                let _ = metrics::gauge!(name);
            }
            Kind::Histogram => {
                if name.ends_with("_seconds") {
                    metrics::describe_histogram!(name, metrics::Unit::Seconds, help);
                } else {
                    metrics::describe_histogram!(name, help);
                }
                let _ = metrics::histogram!(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_with_buckets() {
        let handle = install().expect("the recorder installs");
        metrics::histogram!("telespool_test_histogram_seconds").record(0.003);
        metrics::histogram!("src_telemetrygatewayexporter_batch_size").record(700.0);
        let text = handle.render();
        assert!(
            text.contains("telespool_test_histogram_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("src_telemetrygatewayexporter_batch_size_bucket{le=\"1000\"}"),
            "{text}"
        );
    }
}

/// A scan of `src/` at test time: every name given to `counter!`, `gauge!`
/// or `histogram!` outside tests is registered (the sidecar's
/// `app::series::SIDECAR_SERIES`, `gateway::metrics::GATEWAY_SERIES`,
/// `net::listener::SERIES`), so that a metric cannot be emitted without
/// being described and listed.
#[cfg(test)]
mod registration_tests {
    use crate::app::series::SIDECAR_SERIES;
    use std::collections::{HashMap, HashSet};
    use std::path::{Path, PathBuf};

    /// Emitters whose name is a variable, with where its values come from
    /// (checked by the series lists themselves).
    const DYNAMIC: &[(&str, &str)] = &[
        // register: the names of the series lists.
        ("prometheus.rs", "name"),
        // record_call: STREAMS or RECORD_EVENT.
        ("gateway/metrics.rs", "name"),
        // DecodeBudget: SIDECAR_BUDGET or GATEWAY_BUDGET, both listed.
        ("grpc_limits/budget.rs", "names.in_use_gauge"),
        ("grpc_limits/budget.rs", "self.names.in_use_gauge"),
        ("grpc_limits/budget.rs", "names.refused_counter"),
        ("grpc_limits/budget.rs", "self.names.refused_counter"),
    ];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.to_string_lossy().ends_with("tests.rs")
            {
                out.push(path);
            }
        }
    }

    /// The file's lines outside `#[cfg(test)]` modules, without comments,
    /// with their line numbers.
    fn code_lines(text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut lines = text.lines().enumerate().peekable();
        while let Some((i, line)) = lines.next() {
            let t = line.trim();
            if t == "#[cfg(test)]" {
                if let Some((_, next)) = lines.peek()
                    && next.trim_start().starts_with("mod ")
                    && next.trim_end().ends_with('{')
                {
                    let mut depth = 0i64;
                    for (_, l) in lines.by_ref() {
                        depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                        if depth <= 0 {
                            break;
                        }
                    }
                }
                continue;
            }
            if t.starts_with("//") {
                continue;
            }
            out.push((i + 1, line.to_owned()));
        }
        out
    }

    #[test]
    fn every_metric_emitted_in_src_is_registered() {
        let registered: HashSet<&str> = SIDECAR_SERIES
            .iter()
            .map(|s| s.0)
            .chain(crate::gateway::metrics::GATEWAY_SERIES.iter().copied())
            .chain(crate::net::listener::SERIES.iter().copied())
            .collect();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut sources = Vec::new();
        for f in &files {
            let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let joined = code_lines(&std::fs::read_to_string(f).unwrap())
                .into_iter()
                .map(|(n, l)| format!("{n}\u{0}{l}"))
                .collect::<Vec<_>>();
            sources.push((rel, joined));
        }
        // `const NAME: &str = "value";` anywhere in src.
        let mut consts: HashMap<String, Vec<String>> = HashMap::new();
        for (_, lines) in &sources {
            for l in lines {
                let l = l.split('\u{0}').nth(1).unwrap();
                let Some(at) = l.find("const ") else { continue };
                let rest = &l[at + 6..];
                let Some((name, value)) = rest.split_once(": &str = \"") else {
                    continue;
                };
                let Some(value) = value.strip_suffix("\";") else {
                    continue;
                };
                consts
                    .entry(name.trim().to_owned())
                    .or_default()
                    .push(value.to_owned());
            }
        }
        let mut checked = 0;
        let mut problems = Vec::new();
        for (file, lines) in &sources {
            // Whole file as one text, to follow an argument onto the next line.
            let text: String = lines
                .iter()
                .map(|l| l.split('\u{0}').nth(1).unwrap().to_owned() + "\n")
                .collect();
            let line_of = |offset: usize| {
                let n = text[..offset].matches('\n').count();
                lines[n].split('\u{0}').next().unwrap().to_owned()
            };
            for mac in ["counter!(", "gauge!(", "histogram!("] {
                for (at, _) in text.match_indices(mac) {
                    if text[..at].ends_with("describe_") {
                        continue;
                    }
                    let args = text[at + mac.len()..].trim_start();
                    let end = args.find([',', ')']).unwrap_or(args.len());
                    let arg = args[..end].trim();
                    let names: Vec<String> = if let Some(lit) = arg.strip_prefix('"') {
                        vec![lit.trim_end_matches('"').to_owned()]
                    } else if DYNAMIC.iter().any(|&(f, a)| file.ends_with(f) && a == arg) {
                        continue;
                    } else {
                        let last = arg.rsplit("::").next().unwrap();
                        match consts.get(last) {
                            Some(values) => values.clone(),
                            None => {
                                problems.push(format!(
                                    "src/{file}:{}: {mac}{arg}: not a string literal or a `const {last}: &str` in src (a variable name belongs in DYNAMIC)",
                                    line_of(at)
                                ));
                                continue;
                            }
                        }
                    };
                    checked += 1;
                    if !names.iter().any(|n| registered.contains(n.as_str())) {
                        problems.push(format!(
                            "src/{file}:{}: {mac}{arg}: {names:?} is in neither SIDECAR_SERIES, gateway::metrics::GATEWAY_SERIES nor net::listener::SERIES",
                            line_of(at)
                        ));
                    }
                }
            }
        }
        assert!(checked > 40, "the scan found only {checked} emitters");
        assert_eq!(
            super::EVENT_COUNT_HISTOGRAMS,
            [
                crate::export::exporter::BATCH_SIZE,
                crate::gateway::metrics::PAYLOAD_EVENTS
            ]
        );
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
