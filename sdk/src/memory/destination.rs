//! A memory destination: routes each sent message to every consumer group.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::group::Group;
use super::queue::Entry;
use brokerkit_core::Message;

/// Name of the group used by consumers that name none.
pub(crate) const DEFAULT_GROUP: &str = "default";

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

    /// Stores the message in every group, waiting for room where a group is full.
    pub async fn send(&self, message: Message) {
        let targets = self.targets();
        let (last, others) = targets.split_last().expect("targets are never empty");
        for group in others {
            group.push(Entry::new(message.clone())).await;
        }
        last.push(Entry::new(message)).await;
    }

    /// Stores the messages in every group, waiting for room where a group is full.
    pub async fn send_batch(&self, messages: Vec<Message>) {
        let targets = self.targets();
        let (last, others) = targets.split_last().expect("targets are never empty");
        for group in others {
            group
                .push_all(messages.iter().cloned().map(Entry::new).collect())
                .await;
        }
        last.push_all(messages.into_iter().map(Entry::new).collect())
            .await;
    }

    /// Wakes consumers waiting on any group (shutdown).
    pub fn wake_all(&self) {
        let g = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        for group in g.targets.iter() {
            group.wake_readers();
        }
    }
}
