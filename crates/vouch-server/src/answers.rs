//! Large answers share a memory budget. An answer stays in memory until the
//! client has read it (at most the 30 s write timeout), so a client that asks
//! for big answers and never reads them pins them: 200 unread `/v1/me` of a
//! user in 100 companies of 32 KiB held 930 MiB. Every answer over
//! [`LARGE`] therefore reserves its size, per client address and for the
//! listener as a whole, until it has been handed to the connection; one that
//! does not fit answers `503 unavailable` with `Retry-After` at once. Small
//! answers (identify, track, health) never wait on the budget.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

use crate::codes::ErrorCode;
use crate::error::ApiError;
use crate::extract::ClientAddr;
use crate::state::AppState;

/// Answers larger than this reserve their size.
pub const LARGE: usize = 64 * 1024;
/// What one client address may have in flight in large answers.
pub const PER_CLIENT: usize = 32 * 1024 * 1024;
/// What all clients of one listener may have in flight in large answers.
pub const TOTAL: usize = 256 * 1024 * 1024;
/// A large answer is handed to the connection in pieces of this size, so that
/// the connection asks for the next piece only when it has sent the last.
const PIECE: usize = 64 * 1024;

/// The bytes of large answers in flight, in total and by client address.
#[derive(Debug, Default)]
pub struct AnswerBudget {
    ledger: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    total: usize,
    by_client: HashMap<String, usize>,
}

/// Bytes reserved for one answer; given back when dropped.
#[derive(Debug)]
struct Reservation {
    budget: Arc<AnswerBudget>,
    client: String,
    bytes: usize,
}

impl AnswerBudget {
    /// Reserves `bytes` for `client`, or `None` when either limit would be passed.
    fn reserve(self: &Arc<Self>, client: String, bytes: usize) -> Option<Reservation> {
        let mut ledger = self.ledger.lock().ok()?;
        let mine = ledger.by_client.get(&client).copied().unwrap_or(0);
        if ledger.total + bytes > TOTAL || mine + bytes > PER_CLIENT {
            return None;
        }
        ledger.total += bytes;
        ledger.by_client.insert(client.clone(), mine + bytes);
        Some(Reservation {
            budget: self.clone(),
            client,
            bytes,
        })
    }

    /// Bytes in flight in total, and for `client`.
    pub fn in_flight(&self, client: &str) -> (usize, usize) {
        self.ledger.lock().map_or((0, 0), |l| {
            (l.total, l.by_client.get(client).copied().unwrap_or(0))
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Ok(mut ledger) = self.budget.ledger.lock() else {
            return;
        };
        ledger.total = ledger.total.saturating_sub(self.bytes);
        if let Some(mine) = ledger.by_client.get_mut(&self.client) {
            *mine = mine.saturating_sub(self.bytes);
            if *mine == 0 {
                ledger.by_client.remove(&self.client);
            }
        }
    }
}

/// A large answer's body: its bytes in pieces, and the reservation until the
/// connection has taken the last piece or gone away.
struct Metered {
    rest: Bytes,
    _held: Reservation,
}

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = this.rest.len().min(PIECE);
        Poll::Ready(Some(Ok(Frame::data(this.rest.split_to(n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// Middleware: an answer over [`LARGE`] goes out only within the budget.
pub async fn bound_large_answers(
    State((state, budget)): State<(AppState, Arc<AnswerBudget>)>,
    req: Request,
    next: Next,
) -> Response {
    // The address only (no allocation): its key is made for large answers alone.
    let client = ClientAddr::of(&req, &state);
    let resp = next.run(req).await;
    let Some(size) = http_body::Body::size_hint(resp.body()).exact() else {
        return resp;
    };
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if size <= LARGE {
        return resp;
    }
    let Some(held) = budget.reserve(client.key(), size) else {
        return busy();
    };
    let (parts, body) = resp.into_parts();
    // One frame already in memory: collecting it copies nothing.
    let Ok(collected) = body.collect().await else {
        return ApiError::internal().into_response();
    };
    Response::from_parts(
        parts,
        Body::new(Metered {
            rest: collected.to_bytes(),
            _held: held,
        }),
    )
}

fn busy() -> Response {
    let mut e = ApiError::new(
        ErrorCode::Unavailable,
        "Too many large answers are still being sent to this client (or to all clients); retry in a moment.",
    );
    e.retry_after = Some(1);
    e.into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_client_and_the_listener_have_a_ceiling_and_dropping_gives_back() {
        let budget = Arc::new(AnswerBudget::default());
        let mb = 1024 * 1024;
        let a: Vec<_> = (0..8)
            .map(|_| budget.reserve("a".into(), 4 * mb).unwrap())
            .collect();
        assert!(
            budget.reserve("a".into(), 1).is_none(),
            "a is at its 32 MiB"
        );
        assert_eq!(budget.in_flight("a"), (32 * mb, 32 * mb));
        // Other clients fill the rest of the listener's 256 MiB.
        let others: Vec<_> = (0..7)
            .map(|i| budget.reserve(format!("c{i}"), 32 * mb).unwrap())
            .collect();
        assert!(
            budget.reserve("d".into(), 1).is_none(),
            "the listener is full"
        );
        drop(others);
        drop(a);
        assert_eq!(budget.in_flight("a"), (0, 0));
        assert!(budget.reserve("a".into(), 32 * mb).is_some());
    }

    #[test]
    fn a_metered_body_hands_out_every_byte_in_pieces() {
        let budget = Arc::new(AnswerBudget::default());
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut body = Metered {
            rest: Bytes::from(data.clone()),
            _held: budget.reserve("a".into(), data.len()).unwrap(),
        };
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(Ok(frame))) =
            http_body::Body::poll_frame(Pin::new(&mut body), &mut cx)
        {
            let piece = frame.into_data().unwrap();
            assert!(piece.len() <= PIECE);
            out.extend_from_slice(&piece);
        }
        assert_eq!(out, data);
        assert_eq!(budget.in_flight("a").1, data.len(), "held until dropped");
        drop(body);
        assert_eq!(budget.in_flight("a"), (0, 0));
    }
}
