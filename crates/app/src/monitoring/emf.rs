//! CloudWatch Embedded Metric Format (EMF) on AWS Lambda: a `metrics` recorder that gathers what
//! one invocation measured and writes it, after the invocation, as EMF JSON lines to the
//! function's log (stdout), from which CloudWatch extracts the metrics — no PutMetricData call,
//! no extra permission. Specification:
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>.
//!
//! Only the metrics an operator alarms on or graphs are exported ([`EXPORTED`]), each with only
//! the labels that become its dimensions: every name × dimension values that reports is a
//! CloudWatch custom metric, billed monthly. Counters are summed over the invocation; a
//! histogram's values are sent as they are (EMF arrays, at most 100 values per document, so
//! CloudWatch can compute percentiles), split over several documents when there are more; a
//! gauge sends its last value, once, in the invocation that set it.
//!
//! Written here rather than with `metrics_cloudwatch_embedded` (0.10): that crate keeps at most
//! 100 values per histogram between flushes and drops the rest with an ERROR log line — which
//! this stack alarms on — and a sweep after an outage delivers far more than 100 jobs in one
//! invocation; the storage is `metrics-util`'s registry, which the Prometheus exporter already
//! builds.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use serde_json::{Map, Value, json};
use xdm_core::metric_names::{
    ACCOUNTS_NEEDING_LOGIN, BACKLOG_OLDEST_AGE, DELIVERY_LATENCY, JOB_ATTEMPTS, PLATFORM_ERRORS,
    RATE_LIMIT_WAITS, TOKEN_REFRESHES,
};

use super::webhooks::WEBHOOK_REQUESTS;

/// The exported metrics and the labels kept as their dimensions (the others are summed over):
/// what the stack's alarms and dashboard read, about 20 custom metrics in a month of traffic.
/// The job counts per state (`xdm_backlog_jobs`, 6 more) are left out: the oldest job's age and
/// the failed attempts say what needs attention.
pub const EXPORTED: &[(&str, &[&str])] = &[
    (WEBHOOK_REQUESTS, &["source", "result"]),
    (JOB_ATTEMPTS, &["queue", "outcome"]),
    (DELIVERY_LATENCY, &["queue"]),
    (BACKLOG_OLDEST_AGE, &["queue"]),
    (PLATFORM_ERRORS, &["platform"]),
    (RATE_LIMIT_WAITS, &["platform"]),
    (TOKEN_REFRESHES, &["result"]),
    (ACCOUNTS_NEEDING_LOGIN, &[]),
];

/// EMF's limits: values of one metric, and metrics, per document.
const MAX_VALUES: usize = 100;
const MAX_METRICS: usize = 100;

/// The recorder and its per-invocation aggregate. Cheap to clone (shared state): install one
/// clone (globally, or as a test's local recorder) and flush another.
#[derive(Clone)]
pub struct Emf {
    inner: Arc<Inner>,
}

struct Inner {
    namespace: String,
    registry: Registry<Key, AtomicStorage>,
}

impl std::fmt::Debug for Emf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emf")
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

/// One value of a document: a counter's sum, a gauge's value, or a histogram's values.
enum Sample {
    One(f64),
    Many(Vec<f64>),
}

/// The samples read at a flush, per label set (dimension names and values, sorted), each with
/// its metric's name, in the order they were read.
type ByLabels = BTreeMap<Vec<(String, String)>, Vec<(String, Sample)>>;

impl Emf {
    /// A recorder whose documents are in CloudWatch namespace `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                namespace: namespace.into(),
                registry: Registry::atomic(),
            }),
        }
    }

    /// Writes what was recorded since the last flush as EMF documents, one JSON object a line,
    /// timestamped `now_ms`, and starts over.
    pub fn flush(&self, now_ms: i64, out: &mut dyn Write) -> std::io::Result<()> {
        for document in self.take_documents(now_ms) {
            let mut line = document.to_string();
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        out.flush()
    }

    /// The documents of what was recorded since the last call; resets the counters, drains the
    /// histograms and drops the gauges.
    fn take_documents(&self, now_ms: i64) -> Vec<Value> {
        let mut by_labels = ByLabels::new();
        let registry = &self.inner.registry;
        registry.visit_counters(|key, counter| {
            let sum = counter.swap(0, Ordering::Relaxed);
            if sum > 0 {
                push(&mut by_labels, key, Sample::One(sum as f64));
            }
        });
        registry.retain_gauges(|key, gauge| {
            let value = f64::from_bits(gauge.load(Ordering::Relaxed));
            push(&mut by_labels, key, Sample::One(value));
            false
        });
        registry.visit_histograms(|key, histogram| {
            let mut values = Vec::new();
            histogram.clear_with(|chunk| values.extend_from_slice(chunk));
            for part in values.chunks(MAX_VALUES) {
                push(&mut by_labels, key, Sample::Many(part.to_vec()));
            }
        });
        let mut documents = Vec::new();
        for (labels, samples) in by_labels {
            // Each document holds a name once and at most MAX_METRICS names.
            let mut batches: Vec<Vec<(String, Sample)>> = Vec::new();
            for (name, sample) in samples {
                let batch = batches
                    .iter_mut()
                    .find(|b| b.len() < MAX_METRICS && b.iter().all(|(n, _)| *n != name));
                match batch {
                    Some(batch) => batch.push((name, sample)),
                    None => batches.push(vec![(name, sample)]),
                }
            }
            for batch in batches {
                documents.push(self.document(now_ms, &labels, batch));
            }
        }
        documents
    }

    fn document(
        &self,
        now_ms: i64,
        labels: &[(String, String)],
        samples: Vec<(String, Sample)>,
    ) -> Value {
        let mut root = Map::new();
        let definitions: Vec<Value> = samples
            .iter()
            .map(|(name, _)| json!({"Name": name, "Unit": unit_of(name)}))
            .collect();
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.inner.namespace,
                    "Dimensions": [labels.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()],
                    "Metrics": definitions,
                }],
            }),
        );
        for (k, v) in labels {
            root.insert(k.clone(), Value::String(v.clone()));
        }
        for (name, sample) in samples {
            let value = match sample {
                Sample::One(v) => json!(v),
                Sample::Many(vs) => json!(vs),
            };
            root.insert(name, value);
        }
        Value::Object(root)
    }

    /// The key recorded for `key`: `None` when the metric is not exported, else its name with
    /// only the labels kept as dimensions.
    fn exported(key: &Key) -> Option<Key> {
        let (name, kept) = EXPORTED.iter().find(|(name, _)| *name == key.name())?;
        let labels: Vec<Label> = key
            .labels()
            .filter(|l| kept.contains(&l.key()))
            .cloned()
            .collect();
        Some(Key::from_parts(*name, labels))
    }
}

fn push(by_labels: &mut ByLabels, key: &Key, sample: Sample) {
    let mut labels: Vec<(String, String)> = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    labels.sort();
    by_labels
        .entry(labels)
        .or_default()
        .push((key.name().to_owned(), sample));
}

/// The CloudWatch unit of a metric, from its name's suffix (the catalogue's convention).
fn unit_of(name: &str) -> &'static str {
    if name.ends_with("_seconds") || name.ends_with("_seconds_total") {
        "Seconds"
    } else {
        "Count"
    }
}

impl metrics::Recorder for Emf {
    // CloudWatch has no descriptions; units come from the names.
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match Self::exported(key) {
            Some(key) => self
                .inner
                .registry
                .get_or_create_counter(&key, |c| Counter::from_arc(Arc::clone(c))),
            None => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match Self::exported(key) {
            Some(key) => self
                .inner
                .registry
                .get_or_create_gauge(&key, |g| Gauge::from_arc(Arc::clone(g))),
            None => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match Self::exported(key) {
            Some(key) => self
                .inner
                .registry
                .get_or_create_histogram(&key, |h| Histogram::from_arc(Arc::clone(h))),
            None => Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn lines(emf: &Emf) -> Vec<Value> {
        let mut out = Vec::new();
        emf.flush(1_700_000_000_000, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn documents_follow_the_specification_and_keep_only_exported_dimensions() {
        let emf = Emf::new("xdm-test");
        metrics::with_local_recorder(&emf, || {
            metrics::counter!(JOB_ATTEMPTS, "queue" => "inbound", "outcome" => "done").increment(2);
            metrics::counter!(JOB_ATTEMPTS, "queue" => "inbound", "outcome" => "done").increment(1);
            // `code` is not a dimension on CloudWatch: summed over.
            metrics::counter!(PLATFORM_ERRORS, "platform" => "x", "code" => "503").increment(1);
            metrics::counter!(PLATFORM_ERRORS, "platform" => "x", "code" => "timeout").increment(1);
            metrics::histogram!(DELIVERY_LATENCY, "queue" => "inbound").record(0.5);
            metrics::histogram!(DELIVERY_LATENCY, "queue" => "inbound").record(1.5);
            metrics::gauge!(ACCOUNTS_NEEDING_LOGIN).set(1.0);
            // Not exported.
            metrics::counter!("xdm_http_rejections_total", "status" => "401").increment(1);
        });
        let docs = lines(&emf);
        let find = |name: &str| {
            docs.iter()
                .find(|d| d.get(name).is_some())
                .unwrap_or_else(|| panic!("{name} in {docs:?}"))
        };
        let attempts = find(JOB_ATTEMPTS);
        assert_eq!(attempts[JOB_ATTEMPTS], 3.0);
        assert_eq!(attempts["queue"], "inbound");
        assert_eq!(attempts["outcome"], "done");
        let directive = &attempts["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(attempts["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(directive["Namespace"], "xdm-test");
        assert_eq!(directive["Dimensions"], json!([["outcome", "queue"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": JOB_ATTEMPTS, "Unit": "Count"}])
        );
        let errors = find(PLATFORM_ERRORS);
        assert_eq!(errors[PLATFORM_ERRORS], 2.0);
        assert!(errors.get("code").is_none(), "{errors}");
        let latency = find(DELIVERY_LATENCY);
        assert_eq!(latency[DELIVERY_LATENCY], json!([0.5, 1.5]));
        assert_eq!(
            latency["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Seconds"
        );
        let login = find(ACCOUNTS_NEEDING_LOGIN);
        assert_eq!(
            login["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert!(
            docs.iter()
                .all(|d| d.get("xdm_http_rejections_total").is_none())
        );

        // Flushed: nothing left until something is recorded again.
        assert_eq!(lines(&emf), Vec::<Value>::new());
    }

    #[test]
    fn histograms_over_100_values_span_documents() {
        let emf = Emf::new("xdm-test");
        metrics::with_local_recorder(&emf, || {
            for i in 0..250 {
                metrics::histogram!(DELIVERY_LATENCY, "queue" => "outbound").record(f64::from(i));
            }
        });
        let docs = lines(&emf);
        let sizes: Vec<usize> = docs
            .iter()
            .map(|d| d[DELIVERY_LATENCY].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
    }
}
