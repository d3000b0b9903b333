//! The service's counters in the Prometheus text format (version 0.0.4): requests and errors
//! by route and status, a latency histogram per route, rows scored, requests in flight, the
//! model generation and reloads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];

/// Latency histogram of one route.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Everything `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, status) → requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// route → latency histogram.
    latency: Mutex<BTreeMap<String, Histogram>>,
    rows: AtomicU64,
    in_flight: AtomicU64,
    reloads: AtomicU64,
    failed_reloads: AtomicU64,
}

impl Metrics {
    /// Count a finished request.
    pub fn record(&self, route: &str, status: u16, took: Duration) {
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry((route.to_string(), status)).or_default() += 1;
        let secs = took.as_secs_f64();
        let mut lat = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = lat.entry(route.to_string()).or_default();
        for (b, &le) in h.buckets.iter_mut().zip(&LATENCY_BUCKETS) {
            if secs <= le {
                *b += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }
    /// Count rows (or entities) scored.
    pub fn add_rows(&self, n: usize) {
        self.rows.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// Rows scored so far.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }
    /// A scoring request started (`true`) or ended (`false`).
    pub fn in_flight(&self, started: bool) {
        if started {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
        } else {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
    /// Count a reload attempt.
    pub fn reload(&self, ok: bool) {
        if ok { &self.reloads } else { &self.failed_reloads }.fetch_add(1, Ordering::Relaxed);
    }
    /// Requests answered with `status` on `route` so far.
    pub fn requests(&self, route: &str, status: u16) -> u64 {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).get(&(route.to_string(), status)).copied().unwrap_or(0)
    }

    /// The Prometheus text exposition; `generation` is the serving model's.
    pub fn render(&self, generation: u64) -> String {
        let mut s = String::new();
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone();
        s.push_str("# HELP promoml_requests_total Requests answered, by route and HTTP status.\n");
        s.push_str("# TYPE promoml_requests_total counter\n");
        for ((route, status), n) in &requests {
            let _ = writeln!(s, "promoml_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        s.push_str("# HELP promoml_request_errors_total Requests answered with a 4xx or 5xx status, by route.\n");
        s.push_str("# TYPE promoml_request_errors_total counter\n");
        let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
        for ((route, status), n) in &requests {
            let e = errors.entry(route).or_default();
            if *status >= 400 {
                *e += n;
            }
        }
        for (route, n) in errors {
            let _ = writeln!(s, "promoml_request_errors_total{{route=\"{route}\"}} {n}");
        }
        s.push_str("# HELP promoml_request_duration_seconds Time from request to answer, by route.\n");
        s.push_str("# TYPE promoml_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            for (le, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(s, "promoml_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {n}");
            }
            let _ = writeln!(s, "promoml_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(s, "promoml_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(s, "promoml_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        let gauge = |s: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        gauge(&mut s, "promoml_rows_scored_total", "counter", "Rows (or event-log entities) scored.", self.rows());
        gauge(
            &mut s,
            "promoml_requests_in_flight",
            "gauge",
            "Scoring requests being answered.",
            self.in_flight.load(Ordering::Relaxed),
        );
        gauge(&mut s, "promoml_model_generation", "gauge", "Generation of the serving model (1 at start).", generation);
        gauge(
            &mut s,
            "promoml_model_reloads_total",
            "counter",
            "Model reloads that swapped the model.",
            self.reloads.load(Ordering::Relaxed),
        );
        gauge(
            &mut s,
            "promoml_model_reload_failures_total",
            "counter",
            "Model reloads refused (the old model stayed).",
            self.failed_reloads.load(Ordering::Relaxed),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("/v1/predict", 200, Duration::from_micros(800));
        m.record("/v1/predict", 400, Duration::from_millis(30));
        m.add_rows(5);
        let text = m.render(3);
        assert!(text.contains("promoml_requests_total{route=\"/v1/predict\",status=\"400\"} 1"));
        assert!(text.contains("promoml_request_errors_total{route=\"/v1/predict\"} 1"));
        assert!(text.contains("promoml_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.001\"} 1"));
        assert!(text.contains("promoml_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.05\"} 2"));
        assert!(text.contains("promoml_request_duration_seconds_count{route=\"/v1/predict\"} 2"));
        assert!(text.contains("promoml_rows_scored_total 5"));
        assert!(text.contains("promoml_model_generation 3"));
    }
}
