//! API clients with a deadline, and a size bound, on every request.
//!
//! kube's client times out connecting and writing, not reading: an API server that accepts a
//! request and never answers it, sends half a body or drips it, holds the caller forever. The
//! [`DeadlineLayer`] bounds every request: the answer and its whole body within the deadline,
//! except the body of a watch (`?watch=true`), which streams for as long as the watch lasts and
//! whose silence the watch itself bounds (see [`crate::watch`]). Callers with a tighter bound of
//! their own (the watch's list pages, lookups, Lease renewals, checkpoint saves) keep it; this
//! is the backstop for every other request (the checkpoint load, the Slack thread store).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The deadline of a request that names none tighter: the API server's own limit for a
/// request that is not a watch.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// A request that was not answered (or whose body did not arrive) within its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the API server did not answer within {0:?}")]
pub struct TimedOut(pub Duration);

/// The largest answer to a request that is not a watch: a list page of 500 events is a few
/// MiB; a watch bounds its lines itself (see [`crate::watch::MAX_WATCH_LINE`]).
pub const MAX_ANSWER: usize = 64 << 20;

/// An answer larger than [`MAX_ANSWER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the API server's answer is larger than {} MiB", MAX_ANSWER >> 20)]
pub struct TooLarge;

/// Bounds each request by a deadline (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    deadline: Duration,
}

impl DeadlineLayer {
    /// Requests (and the bodies of their answers, watches excepted) within `deadline`.
    pub fn new(deadline: Duration) -> Self {
        Self { deadline }
    }
}

impl<S> tower_layer::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            deadline: self.deadline,
        }
    }
}

/// The service [`DeadlineLayer`] makes.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    deadline: Duration,
}

fn is_watch<B>(req: &http::Request<B>) -> bool {
    req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "watch=true" | "watch=1" | "watch=True" | "watch=TRUE"))
    })
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for Deadline<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<DeadlineBody<RB>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let watch = is_watch(&req);
        let limit = self.deadline;
        let at = Instant::now() + limit;
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = tokio::time::timeout_at(at, answer)
                .await
                .map_err(|_| Box::new(TimedOut(limit)) as BoxError)?
                .map_err(Into::into)?;
            let body_deadline = (!watch).then(|| (Box::pin(tokio::time::sleep_until(at)), limit));
            Ok(response.map(|inner| DeadlineBody {
                inner,
                deadline: body_deadline,
                left: if watch { usize::MAX } else { MAX_ANSWER },
            }))
        })
    }
}

/// A response body that fails once its request's deadline has passed, or it has grown larger
/// than [`MAX_ANSWER`] (watches aside).
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Option<(Pin<Box<Sleep>>, Duration)>,
    /// Bytes it may still bring.
    left: usize,
}

impl<B> std::fmt::Debug for DeadlineBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineBody").finish_non_exhaustive()
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some((sleep, limit)) = &mut self.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            let limit = *limit;
            return Poll::Ready(Some(Err(Box::new(TimedOut(limit)))));
        }
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref))
            && let Some(data) = data
        {
            match self.left.checked_sub(data.len()) {
                Some(left) => self.left = left,
                None => return Poll::Ready(Some(Err(Box::new(TooLarge)))),
            }
        }
        Poll::Ready(frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A kube client for `config` whose every request has `deadline` (see the module docs).
pub fn with_deadline(
    config: kube::Config,
    deadline: Duration,
) -> Result<kube::Client, kube::Error> {
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder.with_layer(&DeadlineLayer::new(deadline)).build())
}
