//! Logging and metrics setup.
//!
//! The `metrics` facade has one process-wide recorder; [`metrics_handle`] installs the
//! Prometheus recorder once and hands out its render handle to every server in the process.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the log subscriber (to stderr) once; later calls do nothing.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The process's Prometheus handle, installing the recorder on first use.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            // People work on tasks for minutes to weeks, not milliseconds.
            let task_buckets = [
                1.0,
                10.0,
                60.0,
                300.0,
                900.0,
                3_600.0,
                4.0 * 3_600.0,
                86_400.0,
                3.0 * 86_400.0,
                7.0 * 86_400.0,
                30.0 * 86_400.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("concord_workflow_task_working_seconds".into()),
                    &task_buckets,
                )
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .clone()
}
