//! A process's mining view, from one ordered pass over its instances' completed activities
//! (streamed from the database, folded here) and two small queries (tasks that were
//! escalated or completed by someone else, incidents):
//!
//! - variants: each instance's completed activities in step order; instances with the same
//!   sequence make a variant (running instances count with the path they took so far), with
//!   the median and 90th percentile of its ended instances' durations;
//! - the directly-follows graph: an edge `a → b` per instance where `b` was the next activity
//!   completed after `a`, with the median time between the two completions; starts are each
//!   sequence's first activity, ends the last activity of each ended instance;
//! - deviations: instances that left the happy path: cancelled or failed, an incident, a
//!   boundary event that fired (`timer_boundary`, `error_boundary`), a compensation, a task
//!   escalated or completed by someone other than its assignee (`reassigned`).
//!
//! Percentiles are nearest-rank.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Activities, Deployed};
use crate::error::Error;
use crate::store::mining::{self as sm, LogScope, MiningRow};
use crate::store::Conn;

/// The most variants listed.
pub const MAX_VARIANTS: usize = 100;
/// The most instance ids listed per variant.
pub const VARIANT_INSTANCES: usize = 20;
/// The most deviations listed.
pub const MAX_DEVIATIONS: usize = 200;

/// What a process's instances really did.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProcessMining {
    /// The process.
    pub process_id: String,
    /// Instances started at or after this time only.
    pub from: Option<DateTime<Utc>>,
    /// Instances started before this time only.
    pub to: Option<DateTime<Utc>>,
    /// The instances mined (running ones included).
    pub instances: u64,
    /// How many distinct variants there are (`variants` lists at most 100).
    pub variants_total: u64,
    /// The paths taken, most frequent first.
    pub variants: Vec<VariantView>,
    /// The directly-follows graph.
    pub dfg: Dfg,
    /// How many instances deviated (`deviations` lists at most 200).
    pub deviations_total: u64,
    /// Instances that left the happy path, newest first.
    pub deviations: Vec<DeviationView>,
}

/// A path instances took.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VariantView {
    /// The activities completed, in order.
    pub activities: Vec<String>,
    /// How many instances took it.
    pub count: u64,
    /// Their share of all instances mined, 0 to 1.
    pub share: f64,
    /// The median duration of those that ended, start to end.
    pub median_duration_ms: Option<i64>,
    /// The 90th percentile of those durations.
    pub p90_duration_ms: Option<i64>,
    /// Up to 20 of its instances, the most recent.
    pub instance_ids: Vec<Uuid>,
}

/// The directly-follows graph.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Dfg {
    /// Activities, most completed first.
    pub nodes: Vec<DfgNode>,
    /// Who follows whom, most frequent first.
    pub edges: Vec<DfgEdge>,
    /// First activities.
    pub starts: Vec<ActivityCount>,
    /// Last activities of ended instances.
    pub ends: Vec<ActivityCount>,
}

/// An activity of the graph.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DfgNode {
    /// Its name.
    pub activity: String,
    /// Its element id in the model (the first seen, if elements share a name).
    pub element: String,
    /// How often it was completed.
    pub count: u64,
}

/// `to` was the next activity completed after `from`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DfgEdge {
    /// The earlier activity.
    pub from: String,
    /// The next activity.
    pub to: String,
    /// How often.
    pub count: u64,
    /// The median time from the one's completion to the other's.
    pub median_ms: i64,
}

/// An activity and a count.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ActivityCount {
    /// The activity.
    pub activity: String,
    /// How many instances.
    pub count: u64,
}

/// An instance that did not take the happy path.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeviationView {
    /// The instance.
    pub instance_id: Uuid,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its status.
    pub status: String,
    /// `cancelled`, `failed`, `incident`, `timer_boundary`, `error_boundary`,
    /// `compensated`, `escalated`, `reassigned`.
    pub kinds: Vec<String>,
    /// What happened, in words (activities by name).
    pub detail: String,
}

#[derive(Default)]
struct VariantAcc {
    count: u64,
    durations: Vec<i64>,
    ids: VecDeque<Uuid>,
}

#[derive(Default)]
struct DeviationAcc {
    started_at: Option<DateTime<Utc>>,
    status: String,
    kinds: BTreeSet<&'static str>,
    details: Vec<String>,
}

/// The instance being folded.
struct Current {
    row: MiningRow,
    completed: Vec<(String, DateTime<Utc>)>,
    fired: Vec<String>,
    compensations: u32,
}

#[derive(Default)]
struct Miner<'a> {
    deployed: Option<&'a HashMap<Uuid, Deployed>>,
    marked: HashSet<Uuid>,
    instances: u64,
    variants: HashMap<Vec<Arc<str>>, VariantAcc>,
    nodes: HashMap<Arc<str>, (Arc<str>, u64)>,
    edges: HashMap<(Arc<str>, Arc<str>), Vec<i64>>,
    starts: HashMap<Arc<str>, u64>,
    ends: HashMap<Arc<str>, u64>,
    deviations: HashMap<Uuid, DeviationAcc>,
}

/// The name of `element` in whichever of the process's versions has it.
fn name_in(deployed: &HashMap<Uuid, Deployed>, element: &str) -> String {
    deployed
        .values()
        .find(|d| {
            d.activities.elements.contains_key(element)
                || d.activities.boundaries.contains_key(element)
        })
        .map(|d| d.activities.name_of(element))
        .unwrap_or_else(|| element.to_owned())
}

impl Miner<'_> {
    fn finish(&mut self, c: Current) {
        self.instances += 1;
        let empty = Activities::default();
        let deployed = self.deployed;
        let acts = deployed
            .and_then(|d| d.get(&c.row.deployment_id))
            .map(|d| d.activities.as_ref())
            .unwrap_or(&empty);
        let path: Vec<(&super::Activity, DateTime<Utc>)> = c
            .completed
            .iter()
            .filter_map(|(el, at)| acts.elements.get(el).map(|a| (a, *at)))
            .collect();
        let names: Vec<Arc<str>> = path.iter().map(|(a, _)| a.name.clone()).collect();
        for (a, _) in &path {
            self.nodes
                .entry(a.name.clone())
                .or_insert_with(|| (a.element.clone(), 0))
                .1 += 1;
        }
        for pair in path.windows(2) {
            let (a, t0) = pair[0];
            let (b, t1) = pair[1];
            self.edges
                .entry((a.name.clone(), b.name.clone()))
                .or_default()
                .push((t1 - t0).num_milliseconds());
        }
        let ended = c.row.status != "running";
        if let Some(first) = names.first() {
            *self.starts.entry(first.clone()).or_default() += 1;
        }
        if ended {
            if let Some(last) = names.last() {
                *self.ends.entry(last.clone()).or_default() += 1;
            }
        }
        let v = self.variants.entry(names).or_default();
        v.count += 1;
        if let Some(end) = c.row.ended_at {
            v.durations
                .push((end - c.row.started_at).num_milliseconds());
        }
        if v.ids.len() == VARIANT_INSTANCES {
            v.ids.pop_front();
        }
        v.ids.push_back(c.row.id);

        let mut kinds: Vec<(&'static str, String)> = Vec::new();
        match c.row.status.as_str() {
            "cancelled" => kinds.push(("cancelled", "cancelled".into())),
            "failed" => kinds.push(("failed", "failed".into())),
            _ => {}
        }
        for b in &c.fired {
            if let Some(boundary) = acts.boundaries.get(b) {
                let kind = match boundary.trigger {
                    "timer" => "timer_boundary",
                    "error" => "error_boundary",
                    _ => continue,
                };
                kinds.push((
                    kind,
                    format!(
                        "{} boundary event {} fired on {}",
                        boundary.trigger,
                        boundary.name,
                        acts.name_of(&boundary.attached_to)
                    ),
                ));
            }
        }
        if c.compensations > 0 {
            kinds.push((
                "compensated",
                format!("{} compensation handler(s) ran", c.compensations),
            ));
        }
        if !kinds.is_empty() || self.marked.contains(&c.row.id) {
            let d = self.deviations.entry(c.row.id).or_default();
            d.started_at = Some(c.row.started_at);
            d.status = c.row.status.clone();
            for (kind, detail) in kinds {
                d.kinds.insert(kind);
                d.details.insert(0, detail);
            }
        }
    }
}

/// Mines the process in `scope` (one process) whose deployments are `deployed`.
pub(super) async fn mine(
    conn: &mut Conn<'_>,
    scope: &LogScope,
    deployed: &HashMap<Uuid, Deployed>,
    process_id: &str,
) -> Result<ProcessMining, Error> {
    let mut miner = Miner {
        deployed: Some(deployed),
        ..Miner::default()
    };
    // Tasks and incidents first (few rows): their instances' start times come from the pass.
    for t in sm::task_deviations(conn, scope).await? {
        let d = miner.deviations.entry(t.instance_id).or_default();
        let name = name_in(deployed, &t.element);
        if t.escalation_level > 0 {
            d.kinds.insert("escalated");
            d.details.push(format!(
                "task {name} escalated {} level(s)",
                t.escalation_level
            ));
        }
        if t.reassigned {
            d.kinds.insert("reassigned");
            d.details.push(format!(
                "task {name} completed by someone other than its assignee"
            ));
        }
        miner.marked.insert(t.instance_id);
    }
    for n in sm::incident_marks(conn, scope).await? {
        let d = miner.deviations.entry(n.instance_id).or_default();
        d.kinds.insert("incident");
        let name = name_in(deployed, &n.element);
        d.details.push(format!("incident at {name} ({})", n.status));
        miner.marked.insert(n.instance_id);
    }

    let mut activities: BTreeSet<String> = BTreeSet::new();
    let mut boundaries: BTreeSet<String> = BTreeSet::new();
    for d in deployed.values() {
        activities.extend(d.activities.elements.keys().cloned());
        boundaries.extend(d.activities.boundaries.keys().cloned());
    }
    let activities: Vec<String> = activities.into_iter().collect();
    let boundaries: Vec<String> = boundaries.into_iter().collect();
    let mut current: Option<Current> = None;
    sm::fold_mining_rows(conn, scope, &activities, &boundaries, |row| {
        if current.as_ref().is_some_and(|c| c.row.id != row.id) {
            if let Some(done) = current.take() {
                miner.finish(done);
            }
        }
        let c = current.get_or_insert_with(|| Current {
            row: MiningRow {
                step: None,
                at: None,
                element: None,
                kind: None,
                ..row.clone()
            },
            completed: Vec::new(),
            fired: Vec::new(),
            compensations: 0,
        });
        match (row.kind.as_deref(), row.element, row.at) {
            (Some("completed"), Some(el), Some(at)) => c.completed.push((el, at)),
            (Some("entered"), Some(el), _) => c.fired.push(el),
            (Some("compensation_started"), _, _) => c.compensations += 1,
            _ => {}
        }
    })
    .await?;
    if let Some(done) = current.take() {
        miner.finish(done);
    }
    Ok(view(miner, scope, process_id))
}

fn view(m: Miner<'_>, scope: &LogScope, process_id: &str) -> ProcessMining {
    let total = m.instances;
    let mut variants: Vec<(Vec<Arc<str>>, VariantAcc)> = m.variants.into_iter().collect();
    variants.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    let variants_total = variants.len() as u64;
    let variants = variants
        .into_iter()
        .take(MAX_VARIANTS)
        .map(|(names, mut acc)| {
            acc.durations.sort_unstable();
            VariantView {
                activities: names.iter().map(|n| n.to_string()).collect(),
                count: acc.count,
                share: if total > 0 {
                    acc.count as f64 / total as f64
                } else {
                    0.0
                },
                median_duration_ms: percentile(&acc.durations, 0.5),
                p90_duration_ms: percentile(&acc.durations, 0.9),
                instance_ids: acc.ids.into_iter().rev().collect(),
            }
        })
        .collect();

    let mut nodes: Vec<DfgNode> = m
        .nodes
        .into_iter()
        .map(|(name, (element, count))| DfgNode {
            activity: name.to_string(),
            element: element.to_string(),
            count,
        })
        .collect();
    nodes.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.activity.cmp(&b.activity))
    });
    let mut edges: Vec<DfgEdge> = m
        .edges
        .into_iter()
        .map(|((from, to), mut times)| {
            times.sort_unstable();
            DfgEdge {
                from: from.to_string(),
                to: to.to_string(),
                count: times.len() as u64,
                median_ms: percentile(&times, 0.5).unwrap_or(0),
            }
        })
        .collect();
    edges.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    let counts = |map: HashMap<Arc<str>, u64>| {
        let mut v: Vec<ActivityCount> = map
            .into_iter()
            .map(|(a, count)| ActivityCount {
                activity: a.to_string(),
                count,
            })
            .collect();
        v.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.activity.cmp(&b.activity))
        });
        v
    };

    let mut deviations: Vec<DeviationView> = m
        .deviations
        .into_iter()
        .filter_map(|(id, d)| {
            Some(DeviationView {
                instance_id: id,
                started_at: d.started_at?,
                status: d.status,
                kinds: d.kinds.iter().map(|k| (*k).to_owned()).collect(),
                detail: d.details.join("; "),
            })
        })
        .collect();
    deviations.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then_with(|| b.instance_id.cmp(&a.instance_id))
    });
    let deviations_total = deviations.len() as u64;
    deviations.truncate(MAX_DEVIATIONS);
    ProcessMining {
        process_id: process_id.to_owned(),
        from: scope.from,
        to: scope.to,
        instances: total,
        variants_total,
        variants,
        dfg: Dfg {
            nodes,
            edges,
            starts: counts(m.starts),
            ends: counts(m.ends),
        },
        deviations_total,
        deviations,
    }
}

/// The nearest-rank percentile `p` (0 to 1) of sorted `values`.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 0.5), Some(5));
        assert_eq!(percentile(&v, 0.9), Some(9));
        assert_eq!(percentile(&[7], 0.9), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
