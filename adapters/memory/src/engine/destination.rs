//! A memory destination: routes each sent message to every consumer group.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::group::{Deadline, Group, Pushed, Stop};
use super::queue::Entry;
use brokerkit_core::closed::closed_error;
use brokerkit_core::{ClosedFlag, Error, ErrorKind, Message, Result, DEFAULT_GROUP};

pub(crate) struct Destination {
    pub name: Arc<str>,
    groups: Mutex<Groups>,
    capacity: usize,
    visibility: Duration,
}

struct Groups {
    named: Vec<(String, Arc<Group>)>,
    /// Messages sent before any group subscribed wait here for the first group (queue
    /// semantics); later groups only see messages sent after they subscribed (topic semantics).
    unclaimed: Option<Arc<Group>>,
    /// What a send delivers to: every named group, or the unclaimed backlog.
    targets: Arc<Vec<Arc<Group>>>,
}

impl Destination {
    pub fn new(name: &str, capacity: usize, visibility: Duration) -> Self {
        Destination {
            name: name.into(),
            groups: Mutex::new(Groups {
                named: Vec::new(),
                unclaimed: None,
                targets: Arc::new(Vec::new()),
            }),
            capacity,
            visibility,
        }
    }

    fn targets(&self) -> Arc<Vec<Arc<Group>>> {
        let mut g = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if g.targets.is_empty() {
            let backlog = Group::new(self.capacity, self.visibility);
            g.unclaimed = Some(backlog.clone());
            g.targets = Arc::new(vec![backlog]);
        }
        g.targets.clone()
    }

    /// The group called `name`, created (or adopting the unclaimed backlog) if new.
    pub fn subscribe(&self, name: &str) -> Arc<Group> {
        let mut g = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, group)) = g.named.iter().find(|(n, _)| n == name) {
            return group.clone();
        }
        let group = g
            .unclaimed
            .take()
            .unwrap_or_else(|| Group::new(self.capacity, self.visibility));
        g.named.push((name.to_string(), group.clone()));
        g.targets = Arc::new(g.named.iter().map(|(_, grp)| grp.clone()).collect());
        group
    }

    /// The group a browse reads: the backlog waiting for a first group, else the default
    /// group, else the first group that subscribed.
    pub fn browsed_group(&self) -> Option<Arc<Group>> {
        let g = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        g.unclaimed.clone().or_else(|| {
            let default = g.named.iter().find(|(n, _)| n == DEFAULT_GROUP);
            default.or(g.named.first()).map(|(_, grp)| grp.clone())
        })
    }

    /// The group `name` without creating it; for a group not subscribed yet, the backlog the
    /// first group will adopt (if no group subscribed yet), else `None` (for lag).
    pub fn group_for_lag(&self, name: &str) -> Option<Arc<Group>> {
        let g = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        match g.named.iter().find(|(n, _)| n == name) {
            Some((_, group)) => Some(group.clone()),
            None => g.unclaimed.clone(),
        }
    }

    /// Stores the messages in every group, waiting for room where a group is full, until
    /// `deadline` (then a retryable [`ErrorKind::Timeout`]) or until `closed` is set (then
    /// [`ErrorKind::Closed`]). Groups filled before the one that stayed full keep their copy,
    /// so a retried send can give those groups a duplicate (at-least-once, as on every broker).
    pub async fn send_batch(
        &self,
        messages: Vec<Message>,
        timeout: Duration,
        closed: &ClosedFlag,
    ) -> Result<()> {
        let mut deadline = Deadline::after(timeout);
        let targets = self.targets();
        let count = targets.len();
        let total = messages.len();
        let mut messages = Some(messages);
        for (i, group) in targets.iter().enumerate() {
            // The last group takes the messages; the others get copies (cheap: a message
            // shares its payload and headers).
            let entries: Vec<Entry> = if i + 1 == count {
                messages
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .map(Entry::new)
                    .collect()
            } else {
                messages.iter().flatten().cloned().map(Entry::new).collect()
            };
            let pushed = group.push_all(entries, &mut deadline, closed).await;
            self.check_pushed(pushed, total, i, count)?;
        }
        Ok(())
    }

    /// Stores one message without waiting when the destination has a single group (or
    /// backlog) with room; gives it back otherwise (then [`Destination::send_one`] waits).
    pub fn try_send_one(&self, message: Message) -> Result<(), Message> {
        let targets = self.targets();
        match targets.as_slice() {
            [group] => group.try_push(Entry::new(message)).map_err(|e| e.message),
            _ => Err(message),
        }
    }

    /// [`Destination::send_batch`] of one message, without building a batch.
    pub async fn send_one(
        &self,
        message: Message,
        timeout: Duration,
        closed: &ClosedFlag,
    ) -> Result<()> {
        let mut deadline = Deadline::after(timeout);
        let targets = self.targets();
        let count = targets.len();
        let mut message = Some(message);
        for (i, group) in targets.iter().enumerate() {
            // The last group takes the message; the others get copies.
            let m = if i + 1 == count {
                message.take().unwrap_or_default()
            } else {
                message.clone().unwrap_or_default()
            };
            let pushed = group.push_one(Entry::new(m), &mut deadline, closed).await;
            self.check_pushed(pushed, 1, i, count)?;
        }
        Ok(())
    }

    /// The error of a push into group `i` of `count` that stopped early.
    fn check_pushed(&self, pushed: Pushed, total: usize, i: usize, count: usize) -> Result<()> {
        match pushed.stop {
            None => Ok(()),
            Some(Stop::Closed) => Err(closed_error().with_operation("send")),
            Some(Stop::Full) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "destination {:?}: a consumer group stayed full (capacity {}) until \
                     the send timeout; {} of {} messages stored in that group, {i} of \
                     {count} groups complete; consume, raise capacity or send_timeout_ms",
                    self.name, self.capacity, pushed.stored, total
                ),
            )
            .retryable(true)),
        }
    }

    /// Wakes consumers waiting on any group (shutdown).
    pub fn wake_all(&self) {
        let g = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        for group in g.targets.iter() {
            group.wake_all();
        }
    }
}
