//! Status reports to the server. Runners hand in the latest status of
//! their allocation; one thread sends what piled up as one batch, so a
//! burst of task events costs one request, and a server that is away gets
//! the newest status of each allocation once it is back.

use orch_wire::{Client, StatusUpdate};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Reporter {
    pending: Mutex<BTreeMap<String, StatusUpdate>>,
    cv: Condvar,
}

impl Reporter {
    /// Queues `update`, replacing an unsent one of the same allocation.
    pub fn report(&self, update: StatusUpdate) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.insert(update.alloc_id.clone(), update);
        self.cv.notify_one();
    }

    /// Sends batches to `client` for as long as the process runs.
    pub fn spawn(self: &Arc<Self>, client: Client) -> std::io::Result<()> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("orch-agent-report".into())
            .spawn(move || me.send_forever(&client))
            .map(drop)
    }

    fn send_forever(&self, client: &Client) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let batch: Vec<StatusUpdate> = {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                while pending.is_empty() {
                    pending = self.cv.wait(pending).unwrap_or_else(|p| p.into_inner());
                }
                std::mem::take(&mut *pending).into_values().collect()
            };
            match client.report_status(&batch) {
                Ok(answer) => {
                    backoff = Duration::from_millis(100);
                    for id in answer.unknown {
                        tracing::warn!(alloc = %id, "the server does not know this allocation");
                    }
                }
                Err(e) if e.is_not_found() => {
                    tracing::warn!("the server knows none of the reported allocations: {e}");
                }
                // The server refused the batch as it is (a bug on one side
                // or the other): sending it again cannot help.
                Err(e) if e.is_refused() => {
                    tracing::error!("the server refused a status report, dropped: {e}");
                }
                Err(e) => {
                    tracing::warn!("cannot report allocation status, will retry: {e}");
                    // Put the batch back unless something newer arrived.
                    let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                    for update in batch {
                        pending.entry(update.alloc_id.clone()).or_insert(update);
                    }
                    drop(pending);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
