//! `correlation`: the handled message's [`crate::Context`] is current while the inner layers
//! and the handler run, so messages they send carry its correlation-id and take its
//! message-id as causation-id.

use std::sync::Arc;

use brokerkit_core::Result;

use super::{BoxFuture, Call, Disposition, Incoming, ReceiveService};

/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct CorrelationLayer;

impl tower::Layer<ReceiveService> for CorrelationLayer {
    type Service = ReceiveService;

    fn layer(&self, inner: ReceiveService) -> ReceiveService {
        ReceiveService::from_arc(Arc::new(Correlation { inner }))
    }
}

struct Correlation {
    inner: ReceiveService,
}

impl Call<Incoming, Disposition> for Correlation {
    fn call(self: Arc<Self>, request: Incoming) -> BoxFuture<Result<Disposition>> {
        let ctx = request.context.clone();
        Box::pin(ctx.scope(self.inner.run(request)))
    }
}
