//! Prometheus metrics: the histograms the hot paths observe ([`Seconds`], [`Sizes`]) and the
//! exposition `GET /metrics` answers ([`Exposition`]). This module owns `prometheus-client`;
//! the rest of the runtime sees these types only.
//!
//! Counters are not kept twice: the runtime's own atomic counters (what `/api/v1/stats`
//! shows) are read at scrape time and written out as counter families. Only what those
//! counters cannot say, distributions, is observed here as it happens.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Exposition::render`]'s text: OpenMetrics, which Prometheus asks for
/// first and reads natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A distribution of durations, in seconds: buckets from 0.25 ms doubling to about 4 s, which
/// covers a webhook's answer (milliseconds) and a slow poll (seconds) with one layout.
/// Clones share their counts.
#[derive(Debug, Clone)]
pub struct Seconds(Histogram);

impl Default for Seconds {
    fn default() -> Self {
        Seconds(Histogram::new(exponential_buckets(0.000_25, 2.0, 15)))
    }
}

impl Seconds {
    pub fn observe(&self, elapsed: Duration) {
        self.0.observe(elapsed.as_secs_f64());
    }
}

/// A distribution of counts (alerts in a writer batch): buckets 1, 2, 4, … 4,096.
#[derive(Debug, Clone)]
pub struct Sizes(Histogram);

impl Default for Sizes {
    fn default() -> Self {
        Sizes(Histogram::new(exponential_buckets(1.0, 2.0, 13)))
    }
}

impl Sizes {
    pub fn observe(&self, count: usize) {
        self.0.observe(count as f64);
    }
}

/// Label pairs of one sample, e.g. `[("addon", "if-mib")]`.
pub type Labels = Vec<(String, String)>;

/// One metric family: a name, its help text and its samples, all of one type.
#[derive(Debug)]
pub struct Family {
    name: String,
    help: String,
    samples: Samples,
}

#[derive(Debug)]
enum Samples {
    Counters(Vec<(Labels, u64)>),
    Gauges(Vec<(Labels, i64)>),
    Seconds(Vec<(Labels, Seconds)>),
    Sizes(Vec<(Labels, Sizes)>),
}

impl Family {
    /// A counter family; the exposition adds the `_total` suffix.
    pub fn counters(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family::new(name, help, Samples::Counters(Vec::new()))
    }

    pub fn gauges(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family::new(name, help, Samples::Gauges(Vec::new()))
    }

    pub fn seconds(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family::new(name, help, Samples::Seconds(Vec::new()))
    }

    pub fn sizes(name: impl Into<String>, help: impl Into<String>) -> Family {
        Family::new(name, help, Samples::Sizes(Vec::new()))
    }

    fn new(name: impl Into<String>, help: impl Into<String>, samples: Samples) -> Family {
        Family {
            name: name.into(),
            help: help.into(),
            samples,
        }
    }

    /// Adds a counter sample. Panics on a family of another type: a programming error in the
    /// code that builds the exposition, caught by its tests.
    pub fn counter(&mut self, labels: Labels, value: u64) -> &mut Family {
        match &mut self.samples {
            Samples::Counters(s) => s.push((labels, value)),
            _ => panic!("{} is not a counter family", self.name),
        }
        self
    }

    pub fn gauge(&mut self, labels: Labels, value: i64) -> &mut Family {
        match &mut self.samples {
            Samples::Gauges(s) => s.push((labels, value)),
            _ => panic!("{} is not a gauge family", self.name),
        }
        self
    }

    pub fn duration(&mut self, labels: Labels, histogram: &Seconds) -> &mut Family {
        match &mut self.samples {
            Samples::Seconds(s) => s.push((labels, histogram.clone())),
            _ => panic!("{} is not a family of durations", self.name),
        }
        self
    }

    pub fn size(&mut self, labels: Labels, histogram: &Sizes) -> &mut Family {
        match &mut self.samples {
            Samples::Sizes(s) => s.push((labels, histogram.clone())),
            _ => panic!("{} is not a family of sizes", self.name),
        }
        self
    }
}

/// The families of one scrape, read from the runtime's state when the scrape arrives.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    pub fn push(&mut self, family: Family) {
        self.families.push(family);
    }

    /// The exposition text, ending with `# EOF`.
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String does not fail");
        text
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        for family in &self.families {
            let kind = match &family.samples {
                Samples::Counters(_) => MetricType::Counter,
                Samples::Gauges(_) => MetricType::Gauge,
                Samples::Seconds(_) | Samples::Sizes(_) => MetricType::Histogram,
            };
            let metric = encoder.encode_descriptor(&family.name, &family.help, None, kind)?;
            match &family.samples {
                Samples::Counters(samples) => {
                    write_samples(metric, samples, |v, m| ConstCounter::new(*v).encode(m))?
                }
                Samples::Gauges(samples) => {
                    write_samples(metric, samples, |v, m| ConstGauge::new(*v).encode(m))?
                }
                Samples::Seconds(samples) => write_samples(metric, samples, |h, m| h.0.encode(m))?,
                Samples::Sizes(samples) => write_samples(metric, samples, |h, m| h.0.encode(m))?,
            }
        }
        Ok(())
    }
}

/// Writes a family's samples. A family of one sample without labels is written as the bare
/// metric (`name 3`): the encoder would otherwise write an empty label set (`name{} 3`).
fn write_samples<V>(
    mut metric: MetricEncoder<'_>,
    samples: &[(Labels, V)],
    encode: impl Fn(&V, MetricEncoder<'_>) -> std::fmt::Result,
) -> std::fmt::Result {
    match samples {
        [(labels, value)] if labels.is_empty() => encode(value, metric),
        _ => {
            for (labels, value) in samples {
                encode(value, metric.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn families_render_as_openmetrics() {
        let latency = Seconds::default();
        latency.observe(Duration::from_millis(3));
        let mut exposition = Exposition::default();
        let mut requests = Family::counters("opsconductor_webhook_requests", "Webhook requests.");
        requests
            .counter(labels(&[("outcome", "accepted")]), 7)
            .counter(labels(&[("outcome", "bad_body")]), 1);
        exposition.push(requests);
        let mut queue = Family::gauges("opsconductor_writer_queue", "Jobs waiting.");
        queue.gauge(Vec::new(), 3);
        exposition.push(queue);
        let mut ingest = Family::seconds("opsconductor_ingest_seconds", "Ingest latency.");
        ingest.duration(labels(&[("source", "webhook"), ("addon", "a")]), &latency);
        exposition.push(ingest);

        let text = exposition.render();
        for line in [
            "# TYPE opsconductor_webhook_requests counter",
            "opsconductor_webhook_requests_total{outcome=\"accepted\"} 7",
            "opsconductor_webhook_requests_total{outcome=\"bad_body\"} 1",
            "# TYPE opsconductor_writer_queue gauge",
            "opsconductor_writer_queue 3",
            "# TYPE opsconductor_ingest_seconds histogram",
            "opsconductor_ingest_seconds_count{source=\"webhook\",addon=\"a\"} 1",
            "opsconductor_ingest_seconds_bucket{le=\"0.004\",source=\"webhook\",addon=\"a\"} 1",
            "opsconductor_ingest_seconds_bucket{le=\"0.002\",source=\"webhook\",addon=\"a\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    #[should_panic(expected = "is not a gauge family")]
    fn a_sample_of_the_wrong_type_is_a_bug() {
        Family::counters("c", "a counter").gauge(Vec::new(), 1);
    }
}
