//! The in-process broker itself: destinations, consumer groups and their queues. This is the
//! memory adapter's "client library": it knows nothing of brokerkit's contract beyond
//! [`brokerkit_core::Message`], and the rest of the crate drives it through `link`.

mod clock;
pub(crate) mod destination;
pub(crate) mod group;
#[cfg(test)]
mod group_tests;
pub(crate) mod queue;
