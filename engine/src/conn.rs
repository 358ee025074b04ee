//! One connection's clock: socket timeouts applied at the I/O layer, where hyper cannot see
//! them (`TimedIo`, used by `server`), and the state the request handler shares with it
//! ([`ConnClock`]: the request was read, the pace after a refusal).
//!
//! A connection is in one of three phases. `Idle`: waiting for the first byte of a request; a
//! pending read fails after the idle timeout (the read timeout for a fresh connection).
//! `Reading`: the first byte arrived; the whole request must be read before the read timeout
//! counted from that byte, so a client that sends half a request and stalls is cut off.
//! `Handling`: the request was read; reads have no deadline while the handler runs. A response
//! write returns the connection to `Idle`. A write that makes no progress for the write timeout
//! fails.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Reading,
    Handling,
}

/// Shared between the I/O wrapper and the request handler of one connection.
pub struct ConnClock {
    phase: Cell<Phase>,
    deadline: Cell<Instant>,
    read_timeout: Duration,
    idle_timeout: Duration,
    /// Set when this connection was refused a hash for overload: its next request that needs
    /// a hash waits until then (see [`ConnClock::pace_until`]).
    paced_until: Cell<Option<Instant>>,
}

impl ConnClock {
    pub fn new(read_timeout: Duration, idle_timeout: Duration) -> Rc<ConnClock> {
        Rc::new(ConnClock {
            phase: Cell::new(Phase::Idle),
            deadline: Cell::new(Instant::now() + read_timeout.min(idle_timeout)),
            read_timeout,
            idle_timeout,
            paced_until: Cell::new(None),
        })
    }

    /// The connection was told to retry after `until` (503 `OVERLOADED`, `Retry-After`). A
    /// closed-loop client re-sends at once whatever it is told; holding its next hashing
    /// request on this connection until then, with a timer and no other work, makes it pace
    /// itself, so refusals cannot take the CPU the hash workers need.
    pub fn pace_until(&self, until: Instant) {
        self.paced_until.set(Some(until));
    }

    /// When this connection's next hashing request may start, once (the hold is used up).
    pub fn take_pace(&self) -> Option<Instant> {
        self.paced_until.take()
    }

    /// The handler has the whole request: stop the read deadline.
    pub fn request_read(&self) {
        self.phase.set(Phase::Handling);
    }

    fn bytes_read(&self) {
        if self.phase.get() == Phase::Idle {
            self.phase.set(Phase::Reading);
            self.deadline.set(Instant::now() + self.read_timeout);
        }
    }

    /// Returns whether the connection went idle (its read deadline changed).
    fn bytes_written(&self) -> bool {
        if self.phase.get() == Phase::Handling {
            self.phase.set(Phase::Idle);
            self.deadline.set(Instant::now() + self.idle_timeout);
            true
        } else {
            false
        }
    }
}

pub struct TimedIo {
    inner: TcpStream,
    clock: Rc<ConnClock>,
    write_timeout: Duration,
    read_sleep: Pin<Box<Sleep>>,
    read_armed: Option<Instant>,
    write_sleep: Pin<Box<Sleep>>,
    write_armed: Option<Instant>,
}

impl TimedIo {
    pub fn new(inner: TcpStream, clock: Rc<ConnClock>, write_timeout: Duration) -> TimedIo {
        let now = Instant::now();
        TimedIo {
            inner,
            clock,
            write_timeout,
            read_sleep: Box::pin(tokio::time::sleep_until(now)),
            read_armed: None,
            write_sleep: Box::pin(tokio::time::sleep_until(now)),
            write_armed: None,
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timeout"))
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.clock.phase.get() == Phase::Handling {
                    return Poll::Pending;
                }
                let deadline = this.clock.deadline.get();
                if this.read_armed != Some(deadline) {
                    this.read_sleep.as_mut().reset(deadline);
                    this.read_armed = Some(deadline);
                }
                match this.read_sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Err(timed_out(if this.clock.phase.get() == Phase::Idle {
                            "idle"
                        } else {
                            "read"
                        })))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl TimedIo {
    /// hyper does not poll a read again just because a response was written: a read that is
    /// already pending stays parked on its old (read-timeout) timer. Re-arm that timer with the
    /// idle deadline and wake the task so the next poll sees it.
    fn went_idle(&mut self, cx: &mut Context<'_>) {
        let deadline = self.clock.deadline.get();
        self.read_sleep.as_mut().reset(deadline);
        self.read_armed = Some(deadline);
        cx.waker().wake_by_ref();
    }

    fn poll_write_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_armed.is_none() {
            let d = Instant::now() + self.write_timeout;
            self.write_sleep.as_mut().reset(d);
            self.write_armed = Some(d);
        }
        match self.write_sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(timed_out("write"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.write_armed = None;
                if n > 0 && this.clock.bytes_written() {
                    this.went_idle(cx);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.poll_write_deadline(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.write_armed = None;
                if n > 0 && this.clock.bytes_written() {
                    this.went_idle(cx);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.poll_write_deadline(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
