//! The scheduled daily export (`[ediscovery.daily_export]`): once the configured hour (UTC)
//! has come, the previous day's content of every workspace is exported to the configured
//! directory as `ediscovery-<workspace>-<day>.<ext>`.
//!
//! Resumable and idempotent: each file is written beside its final name and renamed into
//! place once complete and synced, then recorded in `ediscovery_daily_exports`; a workspace
//! and day already recorded is skipped, so a restart, a second tick or a second process
//! never writes a day twice, and a run interrupted before the record writes that day again
//! in full at the next tick. Each export is audited like an officer's (`ediscovery.exported`
//! by the system, `scheduled: true`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::criteria::{Criteria, Format, Kind};
use super::formats::sha256_hex;
use super::EDiscoveryService;
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::Actor;
use crate::store::ediscovery::{self as records, DailyExportRecord};

/// When and where the daily export runs.
#[derive(Clone, Debug)]
pub struct DailySettings {
    /// Whether the background task runs.
    pub enabled: bool,
    /// Where files are written.
    pub directory: Option<PathBuf>,
    /// In which format.
    pub format: Format,
    /// From which hour of the day (UTC) the previous day is exported.
    pub hour: u32,
    /// How often the task looks whether a day is due.
    pub check: Duration,
}

impl DailySettings {
    /// The settings the configuration holds (validated at start: an unknown format is
    /// refused there).
    pub fn from_config(c: &crate::config::DailyExportConfig) -> DailySettings {
        DailySettings {
            enabled: c.enabled,
            directory: c.directory.clone(),
            format: Format::parse(&c.format).unwrap_or(Format::Jsonl),
            hour: c.hour,
            check: Duration::from_secs(c.check_seconds.max(1)),
        }
    }
}

/// A file a run wrote.
#[derive(Clone, Debug, Serialize)]
pub struct DailyFile {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Where it is.
    pub path: PathBuf,
    /// How many items it holds.
    pub items: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// What one run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DailyReport {
    /// The day exported (`YYYY-MM-DD`).
    pub day: String,
    /// Files written.
    pub written: Vec<DailyFile>,
    /// Workspaces whose day was already exported.
    pub skipped: Vec<WorkspaceId>,
    /// Workspaces that failed, with why (tried again at the next run).
    pub failures: Vec<(WorkspaceId, String)>,
}

impl EDiscoveryService {
    /// The background task, until `stop` is cancelled (`None` unless enabled with a
    /// directory).
    pub fn spawn_daily(self, stop: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
        let settings = self.inner.options.daily.clone();
        if !settings.enabled || settings.directory.is_none() {
            return None;
        }
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(settings.check);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = ticks.tick() => {
                        let now = Utc::now();
                        if now.hour() < settings.hour {
                            continue;
                        }
                        let yesterday = now.date_naive() - TimeDelta::days(1);
                        match self.export_day(yesterday, &stop).await {
                            Ok(report) => {
                                for (workspace, error) in &report.failures {
                                    tracing::warn!(%workspace, %error, day = %report.day, "ediscovery: daily export failed");
                                }
                            }
                            Err(error) => tracing::warn!(%error, "ediscovery: daily export failed"),
                        }
                    }
                }
            }
        }))
    }

    /// Exports `day` of every workspace not yet exported for it (the task, and
    /// `concord ediscovery daily`).
    pub async fn export_day(
        &self,
        day: NaiveDate,
        stop: &CancellationToken,
    ) -> Result<DailyReport, Error> {
        let settings = &self.inner.options.daily;
        let Some(directory) = settings.directory.clone() else {
            return Err(Error::refused(
                "daily_export_unconfigured",
                "ediscovery.daily_export.directory is not set",
            ));
        };
        tokio::fs::create_dir_all(&directory)
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", directory.display())))?;
        let format = settings.format;
        let name = day.format("%Y-%m-%d").to_string();
        let mut report = DailyReport {
            day: name.clone(),
            ..DailyReport::default()
        };
        let mut after = None;
        loop {
            let page = {
                let mut conn = self.inner.store.reader().await?;
                crate::store::workspaces::after(&mut conn.conn(), after, 100).await?
            };
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            for workspace in page {
                if stop.is_cancelled() {
                    return Ok(report);
                }
                let done = {
                    let mut conn = self.inner.store.reader().await?;
                    records::daily_export(&mut conn.conn(), workspace.id, &name, format.as_str())
                        .await?
                };
                if done.is_some() {
                    report.skipped.push(workspace.id);
                    continue;
                }
                match self.export_one(workspace.id, day, format, &directory).await {
                    Ok(file) => report.written.push(file),
                    Err(e) => report.failures.push((workspace.id, e.to_string())),
                }
            }
        }
        Ok(report)
    }

    async fn export_one(
        &self,
        workspace: WorkspaceId,
        day: NaiveDate,
        format: Format,
        directory: &Path,
    ) -> Result<DailyFile, Error> {
        let start: DateTime<Utc> = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| Error::Internal("a day without a midnight".into()))?;
        let criteria = Criteria {
            workspace,
            custodians: Vec::new(),
            channels: Vec::new(),
            from: Some(start),
            to: Some(start + TimeDelta::days(1)),
            query: None,
            kinds: Kind::ALL.to_vec(),
        };
        let day_name = day.format("%Y-%m-%d").to_string();
        let file_name = format!("ediscovery-{workspace}-{day_name}.{}", format.extension());
        let export = self
            .export_criteria(&Actor::system(), &criteria, format, file_name.clone(), true)
            .await?;
        let path = directory.join(&file_name);
        write_whole(&path, &export.bytes)
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
        let sha256 = sha256_hex(&export.bytes);
        let items: u64 = export.counts.iter().sum();
        let record = DailyExportRecord {
            workspace_id: workspace,
            day: day_name,
            format: format.as_str().to_owned(),
            file_name,
            items: items as i64,
            bytes: export.bytes.len() as i64,
            sha256: sha256.clone(),
            written_at: Utc::now(),
        };
        self.inner
            .store
            .write(move |tx: &mut crate::store::Tx| {
                Box::pin(async move {
                    records::record_daily_export(&mut tx.conn(), &record).await?;
                    Ok::<_, Error>(())
                })
            })
            .await?;
        Ok(DailyFile {
            workspace_id: workspace,
            path,
            items,
            sha256,
        })
    }
}

/// Writes `bytes` to `path` whole: beside it first, synced, then renamed into place.
async fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, path).await
}
