//! How many exports are built at once. An export is built whole in memory (up to
//! `ediscovery.max_export_mib` of content), so the process bounds how many are in memory
//! together: `ediscovery.concurrent_exports` (2 by default) build at once, a further one
//! waits up to `ediscovery.export_wait_seconds` for its turn, then is refused with
//! `export_busy` (503, `Retry-After`) rather than queueing without end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Error;

/// What a refused export is told to wait before trying again, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 30;

/// The export slots; cheap to clone.
#[derive(Clone, Debug)]
pub struct ExportSlots {
    slots: Arc<Semaphore>,
    wait: Duration,
}

/// A slot held while an export is built; dropping it frees the slot.
#[derive(Debug)]
pub struct ExportSlot {
    _permit: OwnedSemaphorePermit,
}

impl ExportSlots {
    /// `slots` exports at once (at least one); a further one waits up to `wait`.
    pub fn new(slots: usize, wait: Duration) -> ExportSlots {
        ExportSlots {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            wait,
        }
    }

    /// A slot, once one is free within the wait; `export_busy` otherwise.
    pub async fn take(&self) -> Result<ExportSlot, Error> {
        let busy = || Error::Busy {
            code: "export_busy",
            message: format!(
                "other exports are being built; try again in {RETRY_AFTER_SECONDS} seconds"
            ),
            retry_after_seconds: RETRY_AFTER_SECONDS,
        };
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(ExportSlot { _permit: permit }),
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_third_export_waits_for_a_slot_then_is_refused_as_busy() {
        let slots = ExportSlots::new(2, Duration::from_millis(50));
        let first = slots.take().await.unwrap();
        let _second = slots.take().await.unwrap();
        match slots.take().await {
            Err(Error::Busy {
                code,
                retry_after_seconds,
                ..
            }) => {
                assert_eq!(code, "export_busy");
                assert_eq!(retry_after_seconds, RETRY_AFTER_SECONDS);
            }
            other => panic!("{other:?}"),
        }
        // A waiting export gets the slot one that finishes frees.
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.take().await.map(|_| ()) }
        });
        drop(first);
        assert!(waiting.await.unwrap().is_ok());
    }
}
