//! `GET /metrics`: the daemon's figures in the Prometheus (OpenMetrics)
//! text format, encoded by `prometheus-client`. Everything about jobs is
//! read from the store at scrape time, so every daemon sharing a store
//! reports the same totals and a restart loses none.

use crate::store::Figures;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Bounds of the attempt-duration histogram, in milliseconds.
pub const ATTEMPT_BOUNDS_MS: [i64; 10] = [
    1_000, 5_000, 15_000, 60_000, 300_000, 900_000, 1_800_000, 3_600_000, 10_800_000, 43_200_000,
];

/// What one scrape reports.
#[derive(Debug)]
pub struct Scrape {
    pub figures: Figures,
    pub uptime_s: u64,
    /// How late the scheduler fired its last due run, when it has one.
    pub scheduler_lag_s: Option<f64>,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let f = &self.figures;
        let count = |status: &str| {
            f.jobs
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n)
        };
        let mut jobs = encoder.encode_descriptor(
            "sluice_jobs",
            "Jobs in the store, by status.",
            None,
            MetricType::Gauge,
        )?;
        for status in ["pending", "running", "succeeded", "failed", "cancelled"] {
            jobs.encode_family(&vec![("status", status)])?
                .encode_gauge(&count(status))?;
        }
        encoder
            .encode_descriptor(
                "sluice_jobs_running",
                "Jobs running now.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&count("running"))?;
        encoder
            .encode_descriptor(
                "sluice_queue_depth",
                "Jobs queued and not yet started.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&count("pending"))?;
        for (name, help, value) in [
            (
                "sluice_connection_records",
                "Records read from each connection's source, over all attempts.",
                (|c: &crate::store::ConnectionTotals| c.records) as fn(&_) -> i64,
            ),
            (
                "sluice_connection_bytes",
                "Bytes of records read from each connection's source.",
                |c| c.bytes,
            ),
            (
                "sluice_connection_records_committed",
                "Records each connection's destination committed.",
                |c| c.records_committed,
            ),
        ] {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for c in &f.connections {
                m.encode_family(&vec![("connection", c.connection.as_str())])?
                    .encode_counter::<NoLabelSet, _, u64>(&(value(c).max(0) as u64), None)?;
            }
        }
        // The encoder adds the buckets up itself: each one's own count.
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        for (bound, cumulative) in &f.attempt_buckets {
            buckets.push((*bound as f64 / 1000.0, (cumulative - below).max(0) as u64));
            below = *cumulative;
        }
        buckets.push((f64::INFINITY, (f.attempts - below).max(0) as u64));
        encoder
            .encode_descriptor(
                "sluice_attempt_duration_seconds",
                "How long ended attempts took.",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                f.attempt_ms as f64 / 1000.0,
                f.attempts as u64,
                &buckets,
                None,
            )?;
        if let Some(lag) = self.scheduler_lag_s {
            encoder
                .encode_descriptor(
                    "sluice_scheduler_lag_seconds",
                    "How late the scheduler fired its last due run.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&lag)?;
        }
        encoder
            .encode_descriptor(
                "sluice_daemon_uptime_seconds",
                "Seconds since this daemon started.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.uptime_s)?;
        Ok(())
    }
}

/// The scrape as OpenMetrics text.
pub fn render(scrape: Scrape) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ConnectionTotals;

    #[test]
    fn figures_become_openmetrics_text() {
        let text = render(Scrape {
            figures: Figures {
                jobs: vec![("failed".into(), 2), ("running".into(), 1)],
                connections: vec![ConnectionTotals {
                    connection: "pg-to-lake".into(),
                    records: 1500,
                    bytes: 90_000,
                    records_committed: 1400,
                }],
                attempt_buckets: ATTEMPT_BOUNDS_MS
                    .iter()
                    .map(|b| (*b, i64::from(*b >= 5_000) * 3))
                    .collect(),
                attempts: 3,
                attempt_ms: 12_000,
            },
            uptime_s: 42,
            scheduler_lag_s: None,
        })
        .unwrap();
        for line in [
            "sluice_jobs{status=\"failed\"} 2",
            "sluice_jobs{status=\"succeeded\"} 0",
            "sluice_jobs_running 1",
            "sluice_queue_depth 0",
            "sluice_connection_records_total{connection=\"pg-to-lake\"} 1500",
            "sluice_connection_records_committed_total{connection=\"pg-to-lake\"} 1400",
            "sluice_attempt_duration_seconds_bucket{le=\"1.0\"} 0",
            "sluice_attempt_duration_seconds_bucket{le=\"5.0\"} 3",
            "sluice_attempt_duration_seconds_bucket{le=\"+Inf\"} 3",
            "sluice_attempt_duration_seconds_sum 12.0",
            "sluice_daemon_uptime_seconds 42",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
    }
}
