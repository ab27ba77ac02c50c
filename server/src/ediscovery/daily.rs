//! The scheduled daily export (`[ediscovery.daily_export]`): once the configured hour (UTC)
//! has come, the previous day's content of every workspace is exported to the configured
//! directory as `ediscovery-<workspace>-<day>.<ext>`; days missed while no server ran (up to
//! `catch_up_days` back, never before the workspace existed) are exported too, oldest first.
//!
//! One writer per day: before exporting a workspace's day, a runner (one per process, so two
//! server nodes on one database and `concord ediscovery daily` beside a running server are
//! different runners) claims it in `ediscovery_daily_claims` with a lease
//! ([`LEASE`]); only the holder writes. The file is written beside its final name (a hidden
//! `.partial` file named after the runner), synced, the lease renewed, renamed into place,
//! and only then recorded in `ediscovery_daily_exports`, in the transaction that ends the
//! claim. A workspace and day already recorded is skipped, so a restart, a second tick or a
//! second process never writes a day twice; a run that died holding a claim leaves a lease
//! that lapses, and the next runner takes the day over and writes it again in full. Each
//! export is audited like an officer's (`ediscovery.exported` by the system,
//! `scheduled: true`).
//!
//! The files are plaintext by design: archiving services (Global Relay, Smarsh, a records
//! system) ingest them as they are, so they are not encrypted with Concord's keys. They are
//! created readable by Concord's user only (mode 0600, the directory 0700 if Concord creates
//! it), and the directory is the operator's: its backups, access, encryption at rest and
//! deletion (retention, erasure of a person, the end of a legal hold) are outside Concord,
//! which never deletes or rewrites a file once written (policies/COMPLIANCE.md).
//!
//! Only a day that is over can be exported (before today, UTC): a day still running would be
//! recorded as done with part of its content, and its full export would never happen
//! (`day_not_past`).

use std::collections::{BTreeMap, HashSet};
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
use crate::store::ediscovery::{self as records, DailyClaim, DailyExportRecord};
use crate::store::workspaces::WorkspaceRecord;

/// How long a runner's claim on a workspace's day holds unless renewed; renewed before the
/// file is written and before it is renamed into place, so only a runner that stopped (or
/// one whose export of a single day took longer) loses it.
pub const LEASE: TimeDelta = TimeDelta::minutes(15);

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
    /// How many days back the task looks for days not yet exported.
    pub catch_up_days: u32,
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
            catch_up_days: c.catch_up_days.max(1),
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

/// What one run did for one day.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DailyReport {
    /// The day exported (`YYYY-MM-DD`).
    pub day: String,
    /// Files written.
    pub written: Vec<DailyFile>,
    /// Workspaces whose day was already exported.
    pub skipped: Vec<WorkspaceId>,
    /// Workspaces whose day another runner is exporting now (its lease holds).
    pub claimed_elsewhere: Vec<WorkspaceId>,
    /// Workspaces that failed, with why (tried again at the next run).
    pub failures: Vec<(WorkspaceId, String)>,
}

/// What exporting one workspace's day came to.
enum Outcome {
    Written(DailyFile),
    Done,
    Held,
}

/// The days the task exports at `now`: from `catch_up_days` back to yesterday once the
/// hour has come (the day before yesterday until then), oldest first.
pub fn due_days(now: DateTime<Utc>, hour: u32, catch_up_days: u32) -> Vec<NaiveDate> {
    let today = now.date_naive();
    let last = if now.hour() >= hour {
        today - TimeDelta::days(1)
    } else {
        today - TimeDelta::days(2)
    };
    let first = today - TimeDelta::days(i64::from(catch_up_days.max(1)));
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .collect::<Vec<_>>()
}

/// Refuses (`day_not_past`) a day that is not over at `now` (today, UTC, or later).
pub fn check_past(day: NaiveDate, now: DateTime<Utc>) -> Result<(), Error> {
    if day >= now.date_naive() {
        return Err(Error::refused(
            "day_not_past",
            format!(
                "{day} is not over yet: only a day before today ({}, UTC) can be exported",
                now.date_naive()
            ),
        ));
    }
    Ok(())
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
                        let days = due_days(Utc::now(), settings.hour, settings.catch_up_days);
                        match self.export_days(&days, &stop).await {
                            Ok(reports) => {
                                for report in &reports {
                                    for (workspace, error) in &report.failures {
                                        tracing::warn!(%workspace, %error, day = %report.day, "ediscovery: daily export failed");
                                    }
                                }
                            }
                            Err(error) => tracing::warn!(%error, "ediscovery: daily export failed"),
                        }
                    }
                }
            }
        }))
    }

    /// Exports `day` of every workspace not yet exported for it (`concord ediscovery
    /// daily`); refused (`day_not_past`) unless the day is before today (UTC).
    pub async fn export_day(
        &self,
        day: NaiveDate,
        stop: &CancellationToken,
    ) -> Result<DailyReport, Error> {
        let mut reports = self.export_days(&[day], stop).await?;
        Ok(reports.pop().unwrap_or_else(|| DailyReport {
            day: day.format("%Y-%m-%d").to_string(),
            ..DailyReport::default()
        }))
    }

    /// Exports each of `days` (all before today) of every workspace that existed then and
    /// is not yet exported for it, workspace by workspace, each one's days oldest first; one
    /// report per day, in `days`' order.
    pub async fn export_days(
        &self,
        days: &[NaiveDate],
        stop: &CancellationToken,
    ) -> Result<Vec<DailyReport>, Error> {
        let now = Utc::now();
        let mut days = days.to_vec();
        days.sort();
        days.dedup();
        for day in &days {
            check_past(*day, now)?;
        }
        let settings = &self.inner.options.daily;
        let Some(directory) = settings.directory.clone() else {
            return Err(Error::refused(
                "daily_export_unconfigured",
                "ediscovery.daily_export.directory is not set",
            ));
        };
        let mut reports: BTreeMap<NaiveDate, DailyReport> = days
            .iter()
            .map(|d| {
                let report = DailyReport {
                    day: d.format("%Y-%m-%d").to_string(),
                    ..DailyReport::default()
                };
                (*d, report)
            })
            .collect();
        let Some(first) = days.first().copied() else {
            return Ok(Vec::new());
        };
        create_directory(&directory)
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", directory.display())))?;
        let format = settings.format;
        let first_name = first.format("%Y-%m-%d").to_string();
        let mut after = None;
        'pages: loop {
            let page = {
                let mut conn = self.inner.store.reader().await?;
                crate::store::workspaces::after(&mut conn.conn(), after, 100).await?
            };
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            for workspace in page {
                let done: HashSet<String> = {
                    let mut conn = self.inner.store.reader().await?;
                    records::daily_days_since(
                        &mut conn.conn(),
                        workspace.id,
                        format.as_str(),
                        &first_name,
                    )
                    .await?
                    .into_iter()
                    .collect()
                };
                for (day, report) in reports.iter_mut() {
                    if stop.is_cancelled() {
                        break 'pages;
                    }
                    if *day < workspace.created_at.date_naive() {
                        continue;
                    }
                    if done.contains(&report.day) {
                        report.skipped.push(workspace.id);
                        continue;
                    }
                    match self.export_one(&workspace, *day, format, &directory).await {
                        Ok(Outcome::Written(file)) => report.written.push(file),
                        Ok(Outcome::Done) => report.skipped.push(workspace.id),
                        Ok(Outcome::Held) => report.claimed_elsewhere.push(workspace.id),
                        Err(e) => report.failures.push((workspace.id, e.to_string())),
                    }
                }
            }
        }
        Ok(reports.into_values().collect())
    }

    /// Claims (or renews the claim on) `workspace`'s `day`.
    async fn claim(
        &self,
        workspace: WorkspaceId,
        day: &str,
        format: Format,
    ) -> Result<DailyClaim, Error> {
        let runner = self.inner.runner.clone();
        let day = day.to_owned();
        self.inner
            .store
            .write(move |tx: &mut crate::store::Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    let claim = records::claim_daily_export(
                        &mut tx.conn(),
                        workspace,
                        &day,
                        format.as_str(),
                        &runner,
                        now,
                        now + LEASE,
                    )
                    .await?;
                    Ok::<_, Error>(claim)
                })
            })
            .await
    }

    async fn release(&self, workspace: WorkspaceId, day: &str, format: Format) {
        let runner = self.inner.runner.clone();
        let day = day.to_owned();
        let released = self
            .inner
            .store
            .write(move |tx: &mut crate::store::Tx| {
                Box::pin(async move {
                    records::release_daily_claim(
                        &mut tx.conn(),
                        workspace,
                        &day,
                        format.as_str(),
                        &runner,
                    )
                    .await?;
                    Ok::<_, Error>(())
                })
            })
            .await;
        if let Err(error) = released {
            tracing::warn!(%workspace, %error, "ediscovery: releasing a daily export claim failed");
        }
    }

    async fn export_one(
        &self,
        workspace: &WorkspaceRecord,
        day: NaiveDate,
        format: Format,
        directory: &Path,
    ) -> Result<Outcome, Error> {
        let day_name = day.format("%Y-%m-%d").to_string();
        match self.claim(workspace.id, &day_name, format).await? {
            DailyClaim::Claimed => {}
            DailyClaim::Done => return Ok(Outcome::Done),
            DailyClaim::Held => return Ok(Outcome::Held),
        }
        let written = self
            .write_claimed(workspace.id, day, &day_name, format, directory)
            .await;
        if !matches!(written, Ok(Outcome::Written(_))) {
            self.release(workspace.id, &day_name, format).await;
        }
        written
    }

    /// Exports a claimed day and records it; the claim is ended by the record, or released
    /// by the caller if this fails.
    async fn write_claimed(
        &self,
        workspace: WorkspaceId,
        day: NaiveDate,
        day_name: &str,
        format: Format,
        directory: &Path,
    ) -> Result<Outcome, Error> {
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
        let file_name = format!("ediscovery-{workspace}-{day_name}.{}", format.extension());
        let export = self
            .export_criteria(&Actor::system(), &criteria, format, file_name.clone(), true)
            .await?;
        let path = directory.join(&file_name);
        // A runner that died holding this day left its partial file: the day is ours now.
        remove_partials(directory, &file_name)
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", directory.display())))?;
        let partial = directory.join(format!(".{file_name}.{}.partial", self.inner.runner));
        write_partial(&partial, &export.bytes)
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", partial.display())))?;
        // The export may have taken a while: make sure the day is still ours before the
        // file takes its final name.
        if self.claim(workspace, day_name, format).await? != DailyClaim::Claimed {
            let _ = tokio::fs::remove_file(&partial).await;
            return Ok(Outcome::Held);
        }
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
        // The rename is durable before the day is recorded: a crash cannot leave a day
        // recorded whose file is gone.
        sync_directory(directory)
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", directory.display())))?;
        let sha256 = sha256_hex(&export.bytes);
        let items: u64 = export.counts.iter().sum();
        let record = DailyExportRecord {
            workspace_id: workspace,
            day: day_name.to_owned(),
            format: format.as_str().to_owned(),
            file_name,
            items: items as i64,
            bytes: export.bytes.len() as i64,
            sha256: sha256.clone(),
            written_at: Utc::now(),
        };
        let runner = self.inner.runner.clone();
        let recorded = self
            .inner
            .store
            .write(move |tx: &mut crate::store::Tx| {
                Box::pin(async move {
                    let recorded =
                        records::complete_daily_export(&mut tx.conn(), &record, &runner).await?;
                    Ok::<_, Error>(recorded)
                })
            })
            .await?;
        if !recorded {
            // Another runner took the day over after our last renewal (our lease lapsed);
            // it writes the same day's content under the same name and records it.
            tracing::warn!(%workspace, day = %day_name, "ediscovery: a daily export's claim lapsed before it was recorded");
            return Ok(Outcome::Held);
        }
        Ok(Outcome::Written(DailyFile {
            workspace_id: workspace,
            path,
            items,
            sha256,
        }))
    }
}

/// Flushes a directory's entries (a rename into it) to disk; a no-op where directories cannot
/// be opened as files.
async fn sync_directory(directory: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        tokio::fs::File::open(directory).await?.sync_all().await?;
    }
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}

/// Creates the export directory readable by Concord's user only (0700 on Unix), unless it
/// exists: an existing directory is the operator's, and its permissions are left alone.
async fn create_directory(directory: &Path) -> std::io::Result<()> {
    if tokio::fs::try_exists(directory).await? {
        return Ok(());
    }
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(directory).await
}

/// Removes the partial files any runner left for `file_name` (only the claim's holder
/// calls this, so none of them is still being written by a live runner's claim).
async fn remove_partials(directory: &Path, file_name: &str) -> std::io::Result<()> {
    let prefix = format!(".{file_name}.");
    let mut entries = tokio::fs::read_dir(directory).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".partial") {
            match tokio::fs::remove_file(entry.path()).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to a new file at `partial` readable by Concord's user only (0600 on
/// Unix; a stale one a dead run left is replaced) and syncs it.
async fn write_partial(partial: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match tokio::fs::remove_file(partial).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(partial).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn due_days_run_from_the_catch_up_window_to_yesterday_once_the_hour_has_come() {
        assert_eq!(
            due_days(at("2024-03-02T05:00:00Z"), 1, 3),
            vec![day("2024-02-28"), day("2024-02-29"), day("2024-03-01")]
        );
        assert_eq!(
            due_days(at("2024-03-02T00:30:00Z"), 1, 3),
            vec![day("2024-02-28"), day("2024-02-29")]
        );
        assert_eq!(
            due_days(at("2024-03-02T00:30:00Z"), 1, 1),
            Vec::<NaiveDate>::new()
        );
    }

    #[test]
    fn only_a_day_that_is_over_may_be_exported() {
        let now = at("2024-03-02T23:59:59Z");
        assert!(check_past(day("2024-03-01"), now).is_ok());
        for d in ["2024-03-02", "2024-03-03"] {
            match check_past(day(d), now) {
                Err(Error::Refused { code, .. }) => assert_eq!(code, "day_not_past"),
                other => panic!("{d}: {other:?}"),
            }
        }
    }
}
