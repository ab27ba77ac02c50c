//! A process's dashboard (`GET /api/v1/workspaces/{id}/workflows/{process}/dashboard`,
//! `workflows.manage`): instances started and ended over time, each step's waiting and
//! working time percentiles and SLA breaches, open incidents, and a heat overlay for the
//! diagram, read from what [`super::facts`] keeps in the write that records each step (its
//! definitions are there). The dashboard reads a few hundred rows: the range's buckets, one
//! histogram bin per element and measure that holds anything, the steps and incidents open
//! now; never the history itself. Its figures are aggregates (no variables, no names but the
//! model's), so reading it is not audited.
//!
//! The range is widened to whole buckets (UTC hours or days): `from` down to its bucket's
//! start, `to` up to the next bucket's start; the answer says which range it covers. Counts
//! of a bucket are what started, ended or left a step in it; `running`, `incidents_open`,
//! open steps and open breaches are as of now, whatever the range.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::facts::{bin_value, tracked_kind, Period};
use super::WorkflowService;
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::{Action, Actor};
use crate::store::workflow_facts as facts;
use crate::store::workflows as wf;

/// The most buckets one dashboard covers.
pub const MAX_BUCKETS: i64 = 400;
/// The range when none is given: the last seven days.
pub const DEFAULT_DAYS: i64 = 7;
/// Ranges up to this long are drawn by the hour unless asked otherwise; longer ones by day.
pub const HOURLY_UP_TO_DAYS: i64 = 7;

/// A dashboard's bucket size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// UTC hours.
    Hour,
    /// UTC days.
    Day,
}

impl Bucket {
    fn period(self) -> Period {
        match self {
            Bucket::Hour => Period::Hour,
            Bucket::Day => Period::Day,
        }
    }
}

/// What range a dashboard covers.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DashboardQuery {
    /// The range's start (RFC 3339); by default seven days before `to`.
    pub from: Option<DateTime<Utc>>,
    /// The range's end (RFC 3339); by default now.
    pub to: Option<DateTime<Utc>>,
    /// `hour` or `day`; by default `hour` for ranges up to seven days, else `day`.
    pub bucket: Option<Bucket>,
}

/// A range a dashboard can be drawn over: whole buckets, at least one, at most
/// [`MAX_BUCKETS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Bucket,
}

/// Why a range cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeError {
    /// `from` is not before `to`.
    #[error("`from` must be before `to`")]
    Empty,
    /// Too many buckets.
    #[error("the range holds {buckets} buckets of a {bucket}; at most {MAX_BUCKETS} are drawn: choose a shorter range or `bucket=day`")]
    TooLong {
        /// How many it would hold.
        buckets: i64,
        /// Their size.
        bucket: &'static str,
    },
    /// A time outside the years 1970 to 9999.
    #[error("`from` and `to` must fall between the years 1970 and 9999")]
    OutOfRange,
}

impl Range {
    /// The stored periods that cover the range exactly with the fewest rows: by day for a
    /// daily range; for an hourly one, its whole days by day and the hours before and after
    /// them by the hour.
    fn spans(&self) -> Vec<(Period, DateTime<Utc>, DateTime<Utc>)> {
        if self.bucket == Bucket::Day {
            return vec![(Period::Day, self.from, self.to)];
        }
        let first_day = Period::Day.floor(self.from);
        let first_day = if first_day == self.from {
            first_day
        } else {
            first_day + Period::Day.length()
        };
        let last_day = Period::Day.floor(self.to);
        if first_day >= last_day {
            return vec![(Period::Hour, self.from, self.to)];
        }
        [
            (Period::Hour, self.from, first_day),
            (Period::Day, first_day, last_day),
            (Period::Hour, last_day, self.to),
        ]
        .into_iter()
        .filter(|(_, from, to)| from < to)
        .collect()
    }

    /// The range `q` asks for, as of `now`, widened to whole buckets.
    pub fn parse(q: &DashboardQuery, now: DateTime<Utc>) -> Result<Range, RangeError> {
        // Bounded years keep the arithmetic below (a week back, a bucket on) from overflowing.
        if [q.from, q.to]
            .into_iter()
            .flatten()
            .any(|t| !(1970..=9999).contains(&t.year()))
        {
            return Err(RangeError::OutOfRange);
        }
        let to = q.to.unwrap_or(now);
        let from = q.from.unwrap_or(to - Duration::days(DEFAULT_DAYS));
        if from >= to {
            return Err(RangeError::Empty);
        }
        let bucket = q
            .bucket
            .unwrap_or(if to - from <= Duration::days(HOURLY_UP_TO_DAYS) {
                Bucket::Hour
            } else {
                Bucket::Day
            });
        let period = bucket.period();
        let from = period.floor(from);
        let floor = period.floor(to);
        let to = if floor == to {
            to
        } else {
            floor + period.length()
        };
        let buckets = (to - from).num_seconds() / period.length().num_seconds();
        if buckets > MAX_BUCKETS {
            return Err(RangeError::TooLong {
                buckets,
                bucket: period.as_str(),
            });
        }
        Ok(Range { from, to, bucket })
    }
}

/// Three percentiles of a duration, in milliseconds; `null` when nothing was measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Percentiles {
    /// The median.
    pub p50: Option<i64>,
    /// The 90th percentile.
    pub p90: Option<i64>,
    /// The 99th percentile.
    pub p99: Option<i64>,
}

/// A process's dashboard.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DashboardView {
    /// The process.
    pub process_id: String,
    /// Its name, from its latest version.
    pub name: Option<String>,
    /// The range covered, widened to whole buckets: its start …
    pub from: DateTime<Utc>,
    /// … and its end (exclusive).
    pub to: DateTime<Utc>,
    /// `hour` or `day`.
    pub bucket: Bucket,
    /// When the figures were read.
    pub generated_at: DateTime<Utc>,
    /// Totals over the range (`running` and `incidents_open`: now).
    pub totals: DashboardTotals,
    /// One point per bucket of the range, oldest first, empty buckets included.
    pub series: Vec<SeriesPoint>,
    /// The process's activities (those of its latest version, in model order, then any
    /// other with figures), with what left them in the range.
    pub steps: Vec<StepFigures>,
    /// Due dates kept and missed.
    pub sla: SlaFigures,
    /// Open incidents by element.
    pub incidents: Vec<IncidentFigures>,
    /// The steps left completed in the range by their 90th-percentile total time (waiting
    /// and working), slowest first, each with its share of the slowest: for a heat
    /// overlay on the diagram.
    pub heat: Vec<HeatFigure>,
}

/// A dashboard's totals.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct DashboardTotals {
    /// Instances started in the range.
    pub started: i64,
    /// Instances running now.
    pub running: i64,
    /// Instances that ended completed in the range (a terminate end event included).
    pub completed: i64,
    /// Instances that ended failed in the range (an error nothing caught). An instance
    /// stopped on an incident is running, and counted in `incidents_open`.
    pub failed: i64,
    /// Instances cancelled in the range.
    pub cancelled: i64,
    /// Open incidents of the process now.
    pub incidents_open: i64,
}

/// Instances started and ended in one bucket.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    /// Started.
    pub started: i64,
    /// Ended completed.
    pub completed: i64,
    /// Ended failed.
    pub failed: i64,
    /// Ended cancelled.
    pub cancelled: i64,
}

/// One activity's figures.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StepFigures {
    /// The element id.
    pub element: String,
    /// Its name in the model.
    pub name: Option<String>,
    /// `user_task`, `service_task`, `send_task`, `business_rule_task`, `receive_task`,
    /// `sub_process`, `call_activity` (or `unknown` when no deployed version has it).
    pub kind: String,
    /// Executions left completed in the range.
    pub count: i64,
    /// Executions cancelled in the range (not in the percentiles).
    pub cancelled: i64,
    /// Executions in progress now.
    pub open: i64,
    /// Waiting time of the completed ones (user tasks: opened to picked up; others 0).
    pub waiting_ms: Percentiles,
    /// Working time of the completed ones (picked up, or entered, to left).
    pub working_ms: Percentiles,
    /// Left in the range after their due date.
    pub sla_breaches: i64,
    /// In progress now past their due date.
    pub open_breached: i64,
}

/// Due dates kept and missed.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SlaFigures {
    /// Tasks with a due date that closed in the range.
    pub tasks_with_due: i64,
    /// Of those, closed after their due date.
    pub breached: i64,
    /// Tasks open now past their due date.
    pub open_breached: i64,
}

/// Open incidents at one element.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentFigures {
    /// The element id.
    pub element: String,
    /// Its name in the model.
    pub name: Option<String>,
    /// How many are open.
    pub open: i64,
}

/// One step's heat.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HeatFigure {
    /// The element id.
    pub element: String,
    /// The 90th percentile of its total time (waiting and working), in milliseconds.
    pub p90_total_ms: i64,
    /// That, as a share of the slowest step's (0 to 1; the slowest is 1).
    pub share: f64,
}

/// Each element's histograms: measure → bin → count.
type Histograms = BTreeMap<String, BTreeMap<String, BTreeMap<i64, i64>>>;

impl WorkflowService {
    /// A process's dashboard over `range` (`workflows.manage`).
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn dashboard(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        process_id: &str,
        range: Range,
    ) -> Result<DashboardView, Error> {
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
            .await?;
        let latest = wf::deployment_of(&mut conn.conn(), workspace, process_id, None)
            .await?
            .ok_or(Error::NotFound("workflow"))?;
        let model = self.model_of(&mut conn.conn(), &latest).await?;
        let now = Utc::now();
        let period = range.bucket.period().as_str();
        let (from, to) = (range.from, range.to);
        let mut c = conn.conn();
        let counts = facts::process_counts(&mut c, workspace, process_id, period, from, to).await?;
        let running = facts::running_instances(&mut c, workspace, process_id).await?;
        // Step figures need no buckets: whole days come from the daily rows, the hours
        // around them from the hourly ones (a week by the hour reads 7 days' rows and at
        // most 46 hours', not 168 hours').
        let mut steps: BTreeMap<String, facts::ElementCounts> = BTreeMap::new();
        let mut histograms: Histograms = BTreeMap::new();
        for (period, from, to) in range.spans() {
            let p = period.as_str();
            for row in facts::step_counts(&mut c, workspace, process_id, p, from, to).await? {
                let s = steps
                    .entry(row.element.clone())
                    .or_insert_with(|| facts::ElementCounts {
                        completed: 0,
                        cancelled: 0,
                        with_due: 0,
                        breached: 0,
                        ..row.clone()
                    });
                s.completed += row.completed;
                s.cancelled += row.cancelled;
                s.with_due += row.with_due;
                s.breached += row.breached;
            }
            for b in facts::step_durations(&mut c, workspace, process_id, p, from, to).await? {
                *histograms
                    .entry(b.element)
                    .or_default()
                    .entry(b.measure)
                    .or_default()
                    .entry(b.bin)
                    .or_default() += b.count;
            }
        }
        let open = facts::open_steps(&mut c, workspace, process_id, now).await?;
        let incidents = facts::open_incidents_by_element(&mut c, workspace, process_id).await?;

        let mut totals = DashboardTotals {
            running,
            ..DashboardTotals::default()
        };
        let mut by_start: BTreeMap<DateTime<Utc>, &facts::PeriodCounts> = BTreeMap::new();
        for row in &counts {
            by_start.insert(row.period_start, row);
            totals.started += row.started;
            totals.completed += row.completed;
            totals.failed += row.failed;
            totals.cancelled += row.cancelled;
        }
        let step = range.bucket.period().length();
        let mut series = Vec::new();
        let mut at = from;
        while at < to {
            let row = by_start.get(&at);
            series.push(SeriesPoint {
                at,
                started: row.map_or(0, |r| r.started),
                completed: row.map_or(0, |r| r.completed),
                failed: row.map_or(0, |r| r.failed),
                cancelled: row.map_or(0, |r| r.cancelled),
            });
            at += step;
        }

        let step_counts: BTreeMap<&str, &facts::ElementCounts> =
            steps.iter().map(|(e, s)| (e.as_str(), s)).collect();
        let open_steps: BTreeMap<&str, &facts::OpenSteps> =
            open.iter().map(|s| (s.element.as_str(), s)).collect();

        // The latest version's activities in model order, then any other element with
        // figures (from an older version), named by the newest version that has it.
        let mut elements: Vec<(String, Option<String>, String)> = model
            .elements
            .iter()
            .filter_map(|e| tracked_kind(&e.kind).map(|k| (e.id.clone(), e.name.clone(), k.into())))
            .collect();
        let mut others: Vec<&str> = step_counts
            .keys()
            .copied()
            .chain(open_steps.keys().copied())
            .chain(histograms.keys().map(String::as_str))
            .chain(incidents.iter().map(|(e, _)| e.as_str()))
            .filter(|e| model.element(e).is_none())
            .collect();
        others.sort_unstable();
        others.dedup();
        let older = if others.is_empty() {
            Vec::new()
        } else {
            let mut models = Vec::new();
            for d in wf::deployments(&mut conn.conn(), workspace).await? {
                if d.process_id == process_id && d.id != latest.id {
                    models.push(self.model_of(&mut conn.conn(), &d).await?);
                }
            }
            models
        };
        let name_of = |id: &str| -> (Option<String>, Option<String>) {
            std::iter::once(&model)
                .chain(older.iter())
                .find_map(|m| m.element(id))
                .map(|e| (e.name.clone(), tracked_kind(&e.kind).map(str::to_owned)))
                .unwrap_or((None, None))
        };
        for &id in &others {
            let (name, kind) = name_of(id);
            // An incident at a gateway or event is listed with incidents, not as a step.
            let listed_as_step = step_counts.contains_key(id)
                || open_steps.contains_key(id)
                || histograms.contains_key(id);
            if listed_as_step {
                elements.push((
                    id.to_owned(),
                    name,
                    kind.unwrap_or_else(|| "unknown".into()),
                ));
            }
        }

        let mut sla = SlaFigures::default();
        let mut figures = Vec::with_capacity(elements.len());
        let mut heat = Vec::new();
        for (element, name, kind) in elements {
            let counts = step_counts.get(element.as_str());
            let open = open_steps.get(element.as_str());
            let measures = histograms.get(&element);
            let measure = |m: &str| -> Vec<(i64, i64)> {
                measures
                    .and_then(|h| h.get(m))
                    .map(|bins| bins.iter().map(|(b, c)| (*b, *c)).collect())
                    .unwrap_or_default()
            };
            if kind == "user_task" {
                sla.tasks_with_due += counts.map_or(0, |c| c.with_due);
                sla.breached += counts.map_or(0, |c| c.breached);
                sla.open_breached += open.map_or(0, |o| o.open_breached);
            }
            if let Some(p90) = percentile(&measure("total"), 0.90) {
                heat.push(HeatFigure {
                    element: element.clone(),
                    p90_total_ms: p90,
                    share: 0.0,
                });
            }
            figures.push(StepFigures {
                count: counts.map_or(0, |c| c.completed),
                cancelled: counts.map_or(0, |c| c.cancelled),
                open: open.map_or(0, |o| o.open),
                waiting_ms: percentiles(&measure("waiting")),
                working_ms: percentiles(&measure("working")),
                sla_breaches: counts.map_or(0, |c| c.breached),
                open_breached: open.map_or(0, |o| o.open_breached),
                element,
                name,
                kind,
            });
        }
        let slowest = heat.iter().map(|h| h.p90_total_ms).max().unwrap_or(0);
        for h in &mut heat {
            h.share = if slowest > 0 {
                h.p90_total_ms as f64 / slowest as f64
            } else {
                0.0
            };
        }
        heat.sort_by(|a, b| {
            b.p90_total_ms
                .cmp(&a.p90_total_ms)
                .then_with(|| a.element.cmp(&b.element))
        });

        let incidents: Vec<IncidentFigures> = incidents
            .into_iter()
            .map(|(element, open)| IncidentFigures {
                name: name_of(&element).0,
                element,
                open,
            })
            .collect();
        totals.incidents_open = incidents.iter().map(|i| i.open).sum();

        Ok(DashboardView {
            process_id: process_id.to_owned(),
            name: model.name.clone(),
            from,
            to,
            bucket: range.bucket,
            generated_at: now,
            totals,
            series,
            steps: figures,
            sla,
            incidents,
            heat,
        })
    }

    /// Open incidents in the whole database, for the metrics scrape.
    pub async fn open_incidents(&self) -> Result<i64, Error> {
        let mut conn = self.store().reader().await?;
        Ok(facts::open_incidents(&mut conn.conn()).await?)
    }
}

/// p50, p90 and p99 of a histogram (bins in ascending order).
fn percentiles(bins: &[(i64, i64)]) -> Percentiles {
    Percentiles {
        p50: percentile(bins, 0.50),
        p90: percentile(bins, 0.90),
        p99: percentile(bins, 0.99),
    }
}

/// The `p` quantile of a histogram by the nearest-rank method: the value of the bin holding
/// the `ceil(p * n)`-th smallest duration. `None` for an empty histogram.
fn percentile(bins: &[(i64, i64)], p: f64) -> Option<i64> {
    let n: i64 = bins.iter().map(|(_, c)| *c).sum();
    if n <= 0 {
        return None;
    }
    let rank = ((p * n as f64).ceil() as i64).clamp(1, n);
    let mut seen = 0;
    for (bin, count) in bins {
        seen += count;
        if seen >= rank {
            return Some(bin_value(*bin));
        }
    }
    bins.last().map(|(bin, _)| bin_value(*bin))
}

#[cfg(test)]
mod tests {
    use super::super::facts::bin_of;
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_range_is_widened_to_whole_buckets_and_bounded() {
        let now = at("2026-03-10T12:34:56Z");
        let r = Range::parse(&DashboardQuery::default(), now).unwrap();
        assert_eq!(r.bucket, Bucket::Hour, "seven days are drawn by the hour");
        assert_eq!(r.from, at("2026-03-03T12:00:00Z"));
        assert_eq!(r.to, at("2026-03-10T13:00:00Z"));
        let q = DashboardQuery {
            from: Some(at("2026-01-01T05:00:00Z")),
            to: Some(at("2026-03-01T00:00:00Z")),
            bucket: None,
        };
        let r = Range::parse(&q, now).unwrap();
        assert_eq!(r.bucket, Bucket::Day);
        assert_eq!(
            (r.from, r.to),
            (at("2026-01-01T00:00:00Z"), at("2026-03-01T00:00:00Z"))
        );
        let q = DashboardQuery {
            bucket: Some(Bucket::Hour),
            ..q
        };
        assert!(matches!(
            Range::parse(&q, now),
            Err(RangeError::TooLong { .. })
        ));
        let q = DashboardQuery {
            from: Some(now),
            to: Some(now),
            bucket: None,
        };
        assert_eq!(Range::parse(&q, now), Err(RangeError::Empty));
    }

    #[test]
    fn an_hourly_range_reads_its_whole_days_by_day() {
        let q = DashboardQuery {
            from: Some(at("2026-03-03T12:00:00Z")),
            to: Some(at("2026-03-10T13:00:00Z")),
            bucket: Some(Bucket::Hour),
        };
        let r = Range::parse(&q, at("2026-03-10T12:34:56Z")).unwrap();
        assert_eq!(
            r.spans(),
            vec![
                (
                    Period::Hour,
                    at("2026-03-03T12:00:00Z"),
                    at("2026-03-04T00:00:00Z")
                ),
                (
                    Period::Day,
                    at("2026-03-04T00:00:00Z"),
                    at("2026-03-10T00:00:00Z")
                ),
                (
                    Period::Hour,
                    at("2026-03-10T00:00:00Z"),
                    at("2026-03-10T13:00:00Z")
                ),
            ]
        );
        let q = DashboardQuery {
            from: Some(at("2026-03-03T00:00:00Z")),
            to: Some(at("2026-03-04T00:00:00Z")),
            bucket: Some(Bucket::Hour),
        };
        let r = Range::parse(&q, at("2026-03-10T12:34:56Z")).unwrap();
        assert_eq!(r.spans(), vec![(Period::Day, r.from, r.to)]);
        let q = DashboardQuery {
            from: Some(at("2026-03-03T01:00:00Z")),
            to: Some(at("2026-03-03T05:00:00Z")),
            bucket: None,
        };
        let r = Range::parse(&q, at("2026-03-10T12:34:56Z")).unwrap();
        assert_eq!(r.spans(), vec![(Period::Hour, r.from, r.to)]);
    }

    #[test]
    fn percentiles_read_the_bin_of_the_nearest_rank() {
        assert_eq!(percentiles(&[]), Percentiles::default());
        // 90 durations of 1 s and 10 of 60 s.
        let bins = vec![(bin_of(1_000), 90), (bin_of(60_000), 10)];
        let p = percentiles(&bins);
        let near = |v: Option<i64>, ms: i64| (v.unwrap() - ms).abs() * 50 <= ms;
        assert!(
            near(p.p50, 1_000) && near(p.p90, 1_000) && near(p.p99, 60_000),
            "{p:?}"
        );
        assert_eq!(percentile(&[(0, 3)], 0.99), Some(0));
    }
}
