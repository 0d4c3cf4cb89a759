//! The ordered, named list of layers a producer or handler is built with.

use std::sync::Arc;

use brokerkit_core::{Error, Result};

use super::service::{SharedService, StackLayer};

pub(crate) type LayerFn<Req, Resp> =
    Arc<dyn Fn(SharedService<Req, Resp>) -> SharedService<Req, Resp> + Send + Sync>;

enum Entry<Req, Resp> {
    /// A default layer, made from the handler's settings when the handler is built.
    Builtin(&'static str),
    User(String, LayerFn<Req, Resp>),
}

impl<Req, Resp> Clone for Entry<Req, Resp> {
    fn clone(&self) -> Self {
        match self {
            Entry::Builtin(n) => Entry::Builtin(n),
            Entry::User(n, f) => Entry::User(n.clone(), f.clone()),
        }
    }
}

impl<Req, Resp> Entry<Req, Resp> {
    fn name(&self) -> &str {
        match self {
            Entry::Builtin(n) => n,
            Entry::User(n, _) => n,
        }
    }
}

/// The layers of a producer ([`crate::layers::send::SendStack`]) or a handler
/// ([`crate::layers::receive::ReceiveStack`]), outermost first, by name. Starts with the
/// defaults; a mistake (an unknown or repeated name) is reported when the producer or handler
/// is built, as a `Config` error.
pub struct LayerStack<Req, Resp> {
    entries: Vec<Entry<Req, Resp>>,
    error: Option<String>,
    /// How many entries at the end stay innermost when layers are pushed (`push_pinned`).
    pinned: usize,
}

impl<Req, Resp> Clone for LayerStack<Req, Resp> {
    fn clone(&self) -> Self {
        LayerStack {
            entries: self.entries.clone(),
            error: self.error.clone(),
            pinned: self.pinned,
        }
    }
}

impl<Req, Resp> std::fmt::Debug for LayerStack<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(Entry::name))
            .finish()
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> LayerStack<Req, Resp> {
    /// A stack of the named default layers, outermost first; each is made when the stack is
    /// built (see `build`).
    pub(crate) fn with_defaults(names: &[&'static str]) -> Self {
        LayerStack {
            entries: names.iter().map(|n| Entry::Builtin(n)).collect(),
            error: None,
            pinned: 0,
        }
    }

    /// Whether a layer of that name is in the stack.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name() == name)
    }

    /// The layer names, outermost first.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(Entry::name).collect()
    }

    fn position(&mut self, name: &str) -> Option<usize> {
        let at = self.entries.iter().position(|e| e.name() == name);
        if at.is_none() && self.error.is_none() {
            self.error = Some(format!(
                "no layer named {name:?}; the layers are {:?}",
                self.names()
            ));
        }
        at
    }

    fn check_new(&mut self, name: &str) -> bool {
        let taken = self.entries.iter().any(|e| e.name() == name);
        if taken && self.error.is_none() {
            self.error = Some(format!("a layer named {name:?} is there already"));
        }
        !taken
    }

    /// Adds `layer` innermost (next to the handler, or to the adapter on the send side), but
    /// outside layers pinned there (the send side's `claim_check`).
    pub fn push(&mut self, name: impl Into<String>, layer: impl StackLayer<Req, Resp>) {
        let name = name.into();
        if self.check_new(&name) {
            let at = self.entries.len() - self.pinned;
            self.entries
                .insert(at, Entry::User(name, layer.into_layer_fn().0));
        }
    }

    /// Adds `layer` innermost and keeps it there: layers pushed later go outside it.
    #[cfg_attr(not(feature = "claim-check"), allow(dead_code))]
    pub(crate) fn push_pinned(
        &mut self,
        name: impl Into<String>,
        layer: impl StackLayer<Req, Resp>,
    ) {
        let name = name.into();
        if self.check_new(&name) {
            self.entries
                .push(Entry::User(name, layer.into_layer_fn().0));
            self.pinned += 1;
        }
    }

    /// Adds `layer` just outside the layer called `before` (it sees requests first).
    pub fn insert_before(
        &mut self,
        before: &str,
        name: impl Into<String>,
        layer: impl StackLayer<Req, Resp>,
    ) {
        let name = name.into();
        if let Some(at) = self.position(before) {
            if self.check_new(&name) {
                self.entries
                    .insert(at, Entry::User(name, layer.into_layer_fn().0));
            }
        }
    }

    /// Removes the layer called `name` (a default such as `"trace"`, or one of yours).
    pub fn remove(&mut self, name: &str) {
        if let Some(at) = self.position(name) {
            if at >= self.entries.len() - self.pinned {
                self.pinned -= 1;
            }
            self.entries.remove(at);
        }
    }

    /// Replaces the layer called `name` with `layer`, under the same name and position.
    pub fn replace(&mut self, name: &str, layer: impl StackLayer<Req, Resp>) {
        if let Some(at) = self.position(name) {
            let name = self.entries[at].name().to_string();
            self.entries[at] = Entry::User(name, layer.into_layer_fn().0);
        }
    }

    /// Wraps `innermost` in the layers. `builtin` makes a default layer by name around the
    /// service it is given (`None`: that default is off here, e.g. no idempotency configured).
    pub(crate) fn build(
        &self,
        innermost: SharedService<Req, Resp>,
        builtin: impl Fn(&str, SharedService<Req, Resp>) -> Option<SharedService<Req, Resp>>,
    ) -> Result<SharedService<Req, Resp>> {
        if let Some(e) = &self.error {
            return Err(Error::config(e.clone()));
        }
        let mut service = innermost;
        for entry in self.entries.iter().rev() {
            service = match entry {
                Entry::Builtin(name) => match builtin(name, service.clone()) {
                    Some(s) => s,
                    None => service,
                },
                Entry::User(_, layer) => layer(service),
            };
        }
        Ok(service)
    }
}
