//! Compliance controls that act on stored content: legal holds and the retention job.
//!
//! [`holds`] places, lists and releases legal holds (`legal_holds.manage`: workspace owners
//! and admins, compliance officers through their system role); every change is audited.
//! [`retention`] destroys messages older than the effective `retention.messages_days` of
//! their workspace or channel ([`crate::policy::PolicyService::effective`]), files older
//! than `files_days` and document history older than `document_history_days`, in bounded
//! batches through the writer, skipping whatever an active hold covers; then records of
//! ended sessions past `sessions_days` and the audit log past `audit_days`, cut only at a
//! signed checkpoint. A background task runs it over every workspace, an administrator
//! runs one workspace's pass on demand, and `concord retention run` runs one from the
//! command line.
//! The job decides holds inside each batch's write, so a hold placed while a pass runs
//! protects everything the pass has not yet destroyed. [`erasure`] erases a person (GDPR
//! Art. 17): their account emptied at once, their content destroyed or left without a
//! profile per workspace policy through the same batches, holds respected, and their data
//! key destroyed last. [`record`] generates the record of processing activities (GDPR Art.
//! 30) from the policies, the data inventory and what is installed; [`breaches`] keeps the
//! breach register (Art. 33 and 34) and reports who and what a breach affected from the
//! audit log.

pub mod breaches;
pub mod erasure;
pub mod holds;
mod inventory;
pub mod record;
pub mod retention;

pub use breaches::BreachService;
pub use erasure::{EraseRequest, ErasureService, ErasureView};
pub use holds::{HoldList, HoldService, HoldView, NewHold};
pub use inventory::INVENTORY;
pub use record::{ProcessingRecord, RecordService, RecordSettings};
pub use retention::{
    DeploymentReport, HistoryFolder, PassFailure, PassReport, RetentionOptions, RetentionReport,
    RetentionService, RunRequest, SharedFolder,
};
