//! Work to run once a delivery is acked, for layers whose clean-up must wait for the broker
//! to have the ack (claim-check deletes the offloaded object then, never earlier: a failed
//! ack means the message comes back and still needs it).

use std::future::Future;
use std::sync::{Arc, Mutex};

use super::BoxFuture;

/// Hooks the handler runner runs after it acked a delivery (acked, acked as a duplicate, or
/// dropped by policy), and never when the delivery was retried, dead-lettered, cancelled or
/// its ack failed. Present in [`super::Incoming::extensions`] only when a layer of the handler
/// asked for it when it was built (claim-check with delete-after-ack).
#[derive(Clone, Default)]
pub struct AfterAck(Arc<Mutex<Vec<BoxFuture<()>>>>);

impl AfterAck {
    /// Runs `work` after the ack. Failures are the hook's to log: the delivery is settled.
    pub fn push(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::pin(work));
    }

    /// Runs the hooks, in order.
    pub(crate) async fn run(self) {
        let hooks = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for hook in hooks {
            hook.await;
        }
    }
}

impl std::fmt::Debug for AfterAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterAck")
    }
}
