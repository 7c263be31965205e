//! What the bridge measures and how it is exported: the catalogue of the core
//! (`xdm_core::metric_names`) and of the HTTP face ([`webhooks`]), Prometheus text for `serve`
//! (histogram buckets and `# HELP` lines set up here, at install), CloudWatch EMF on Lambda
//! ([`emf`]), the gauges sampled from the store ([`gauges`]), and the heap allocations counted
//! in builds with the `count-allocations` feature ([`allocations`]). The catalogue for operators,
//! with the alarms to set, is docs/operations.md.

pub mod allocations;
pub mod emf;
pub mod gauges;
pub mod webhooks;

use metrics::{Unit, describe_counter, describe_gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use xdm_core::metric_names::SECONDS_BUCKETS;

/// Installs the Prometheus recorder as the process's recorder and describes every metric;
/// `None` when a recorder is installed already (on Lambda: the EMF one).
pub fn install_prometheus() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS);
    let builder = match builder {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "histogram buckets refused; histograms are summaries");
            PrometheusBuilder::new()
        }
    };
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    // To this recorder itself: the calling thread may have a recorder of its own (a test's).
    metrics::with_local_recorder(&recorder, describe);
    metrics::set_global_recorder(recorder).ok()?;
    Some(handle)
}

/// Registers the `# HELP` lines and units of every metric with the installed recorder.
pub fn describe() {
    xdm_core::metric_names::describe();
    webhooks::describe();
    allocations::describe();
    describe_counter!(
        "xdm_http_rejections_total",
        Unit::Count,
        "Error answers of the HTTP listeners, by status."
    );
    // The listeners' limits (server/listener.rs).
    describe_counter!(
        "xdm_http_connections_refused_total",
        "Connections closed as soon as accepted because the listener already served its maximum (XDM_HTTP_MAX_CONNECTIONS)"
    );
    describe_counter!(
        "xdm_http_connections_evicted_total",
        "Idle connections (no request begun) closed to make room for a new one when the listener served its maximum"
    );
    describe_counter!(
        "xdm_http_connections_timed_out_total",
        "Connections closed because no request came in time (phase=idle, XDM_HTTP_IDLE_TIMEOUT_MS) or its headers were too slow (phase=headers, XDM_HTTP_HEADER_TIMEOUT_MS)"
    );
    describe_gauge!(
        "xdm_http_connections_open",
        "Connections a listener serves now"
    );
}
