//! Pipelining: several statements sent before the first answer arrives.
//!
//! tokio-postgres sends a statement when its future is first polled, and the server runs
//! statements one after the other in the order received, each (under READ COMMITTED) on a
//! snapshot taken when it starts. Polling the futures in argument order sends them in that
//! order: one round trip for all. Each future must be an `async` block (or `async fn` call)
//! that sends its statement on first poll.

use std::future::Future;

pub(super) async fn pipelined2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    tokio::join!(biased; a, b)
}

pub(super) async fn pipelined3<A: Future, B: Future, C: Future>(
    a: A,
    b: B,
    c: C,
) -> (A::Output, B::Output, C::Output) {
    tokio::join!(biased; a, b, c)
}

pub(super) async fn pipelined4<A: Future, B: Future, C: Future, D: Future>(
    a: A,
    b: B,
    c: C,
    d: D,
) -> (A::Output, B::Output, C::Output, D::Output) {
    tokio::join!(biased; a, b, c, d)
}
