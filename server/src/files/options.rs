//! The files service's limits and hooks, from the `files` configuration.

use std::time::Duration;

use super::scan::{self, Scanner};

/// Limits and hooks, from the `files` configuration.
#[derive(Clone, Debug)]
pub struct FilesOptions {
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes per workspace.
    pub workspace_quota_bytes: u64,
    /// How long an upload may send nothing.
    pub idle: Duration,
    /// Largest image that gets a thumbnail.
    pub thumbnail_max_source_bytes: u64,
    /// Most pixels of an image that gets a thumbnail.
    pub thumbnail_max_pixels: u64,
    /// Most thumbnails decoded at once.
    pub thumbnail_concurrency: usize,
    /// How long an unfinished upload lives without progress.
    pub upload_expiry: Duration,
    /// How often expired uploads and orphaned blobs are removed.
    pub sweep_interval: Duration,
    /// How old a blob no row refers to must be before it is removed.
    pub orphan_grace: Duration,
    /// The malware scanner, if configured.
    pub scanner: Option<Scanner>,
}

impl FilesOptions {
    /// The options the configuration asks for.
    pub fn from_config(config: &crate::config::FilesConfig) -> FilesOptions {
        FilesOptions {
            max_file_bytes: config.max_file_bytes,
            workspace_quota_bytes: config.workspace_quota_bytes,
            idle: Duration::from_secs(config.upload_idle_seconds),
            thumbnail_max_source_bytes: config.thumbnail_max_source_bytes,
            thumbnail_max_pixels: config.thumbnail_max_pixels,
            thumbnail_concurrency: config.thumbnail_concurrency,
            upload_expiry: Duration::from_secs(config.upload_expiry_seconds),
            sweep_interval: Duration::from_secs(config.sweep_interval_seconds),
            orphan_grace: Duration::from_secs(config.orphan_grace_seconds),
            scanner: config
                .clamd
                .as_deref()
                .and_then(scan::Clamd::parse)
                .map(|c| Scanner::new(c, Duration::from_secs(config.scan_timeout_seconds))),
        }
    }
}
