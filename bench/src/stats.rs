//! Per-worker result recording and merging.
//!
//! Every worker thread records into its own [`Recorder`] (HdrHistograms in microseconds, counts
//! by status); the recorders are merged once the run is over, so recording never contends.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;

use crate::scenario::Op;

/// Lowest recordable latency, µs.
pub const HIST_LOW_US: u64 = 1;
/// Highest recordable latency, µs (one hour; longer values saturate).
pub const HIST_HIGH_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by every histogram.
pub const HIST_SIGFIG: u8 = 3;

/// An empty latency histogram in microseconds (1 µs .. 1 h, 3 significant digits).
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .context("cannot create histogram")
}

/// Merges histograms into a new one.
pub fn merge<'a, I>(hists: I) -> anyhow::Result<Histogram<u64>>
where
    I: IntoIterator<Item = &'a Histogram<u64>>,
{
    let mut out = new_histogram()?;
    for h in hists {
        out.add(h).context("cannot merge histograms")?;
    }
    Ok(out)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// No answer within the timeout (counted from the intended start).
    Timeout,
    /// The connection could not be opened.
    Connect,
    /// The connection broke.
    Io,
}

impl Outcome {
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::Status(200..=299))
    }
}

/// Results of one operation kind (the scenarios of a mix).
#[derive(Clone)]
pub struct OpRecorder {
    pub latency: Histogram<u64>,
    pub requests: u64,
    pub errors: u64,
}

/// What one worker saw during the measured phase.
#[derive(Clone)]
pub struct Recorder {
    /// Latency from the intended start (open loop) or from the send (closed loop), µs. Every
    /// answer of any status is in it, and timeouts at the time they were given up.
    pub latency: Histogram<u64>,
    /// Time from the moment the request was actually written to its answer, µs: what a
    /// coordinated-omission-prone tool would report. Answers only.
    pub service: Histogram<u64>,
    /// [`Recorder::latency`] of the 2xx answers alone: what an admitted request waited. Under
    /// overload the refusals are fast, so the latency of all answers hides the admitted ones.
    pub ok_latency: Histogram<u64>,
    /// [`Recorder::latency`] of the non-2xx answers alone (refusals such as 503 and 429).
    pub refused_latency: Histogram<u64>,
    /// Answers by HTTP status.
    pub status: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    pub io_errors: u64,
    /// Refresh chains restarted with a fresh sign-in after their token was refused.
    pub recoveries: u64,
    pub ops: BTreeMap<Op, OpRecorder>,
}

impl Recorder {
    pub fn new() -> anyhow::Result<Recorder> {
        Ok(Recorder {
            latency: new_histogram()?,
            service: new_histogram()?,
            ok_latency: new_histogram()?,
            refused_latency: new_histogram()?,
            status: BTreeMap::new(),
            timeouts: 0,
            connect_errors: 0,
            io_errors: 0,
            recoveries: 0,
            ops: BTreeMap::new(),
        })
    }

    /// Records one finished request. `latency` counts from the intended start, `service` from
    /// the send (absent when nothing was sent or nothing came back).
    pub fn record(
        &mut self,
        op: Op,
        outcome: Outcome,
        latency: Duration,
        service: Option<Duration>,
    ) {
        let lat = micros(latency);
        match outcome {
            Outcome::Status(code) => {
                *self.status.entry(code).or_insert(0) += 1;
                self.latency.saturating_record(lat);
                if (200..300).contains(&code) {
                    self.ok_latency.saturating_record(lat);
                } else {
                    self.refused_latency.saturating_record(lat);
                }
                if let Some(s) = service {
                    self.service.saturating_record(micros(s));
                }
            }
            Outcome::Timeout => {
                self.timeouts += 1;
                self.latency.saturating_record(lat);
            }
            Outcome::Connect => self.connect_errors += 1,
            Outcome::Io => self.io_errors += 1,
        }
        let entry = match self.ops.entry(op) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => match new_histogram() {
                Ok(latency) => v.insert(OpRecorder {
                    latency,
                    requests: 0,
                    errors: 0,
                }),
                Err(_) => return,
            },
        };
        entry.requests += 1;
        if outcome.is_error() {
            entry.errors += 1;
        }
        if matches!(outcome, Outcome::Status(_) | Outcome::Timeout) {
            entry.latency.saturating_record(lat);
        }
    }

    /// Adds another worker's results into this one.
    pub fn add(&mut self, other: &Recorder) -> anyhow::Result<()> {
        self.latency.add(&other.latency).context("merge latency")?;
        self.service.add(&other.service).context("merge service")?;
        self.ok_latency
            .add(&other.ok_latency)
            .context("merge ok latency")?;
        self.refused_latency
            .add(&other.refused_latency)
            .context("merge refused latency")?;
        for (code, n) in &other.status {
            *self.status.entry(*code).or_insert(0) += n;
        }
        self.timeouts += other.timeouts;
        self.connect_errors += other.connect_errors;
        self.io_errors += other.io_errors;
        self.recoveries += other.recoveries;
        for (op, o) in &other.ops {
            match self.ops.get_mut(op) {
                Some(mine) => {
                    mine.latency.add(&o.latency).context("merge op latency")?;
                    mine.requests += o.requests;
                    mine.errors += o.errors;
                }
                None => {
                    self.ops.insert(*op, o.clone());
                }
            }
        }
        Ok(())
    }

    /// Merges recorders into a new one.
    pub fn merged<'a, I>(parts: I) -> anyhow::Result<Recorder>
    where
        I: IntoIterator<Item = &'a Recorder>,
    {
        let mut out = Recorder::new()?;
        for p in parts {
            out.add(p)?;
        }
        Ok(out)
    }

    /// HTTP answers of any status.
    pub fn responses(&self) -> u64 {
        self.status.values().sum()
    }

    /// 2xx answers.
    pub fn ok(&self) -> u64 {
        self.status
            .iter()
            .filter(|(c, _)| (200..300).contains(*c))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every request that ended, answered or not.
    pub fn requests(&self) -> u64 {
        self.responses() + self.timeouts + self.connect_errors + self.io_errors
    }

    /// Requests without a 2xx answer.
    pub fn errors(&self) -> u64 {
        self.requests() - self.ok()
    }

    /// `errors / requests` (0 when nothing ran).
    pub fn error_rate(&self) -> f64 {
        let n = self.requests();
        if n == 0 {
            0.0
        } else {
            self.errors() as f64 / n as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admitted_and_refused_latencies_are_kept_apart() {
        let mut a = Recorder::new().unwrap();
        let ms = Duration::from_millis;
        a.record(Op::Signin, Outcome::Status(200), ms(400), Some(ms(400)));
        a.record(Op::Signin, Outcome::Status(503), ms(1), Some(ms(1)));
        let mut b = Recorder::new().unwrap();
        b.record(Op::Signin, Outcome::Status(429), ms(2), Some(ms(2)));
        b.record(Op::Signin, Outcome::Timeout, ms(10_000), None);
        let all = Recorder::merged([&a, &b]).unwrap();
        assert_eq!(all.latency.len(), 4, "every answer and the timeout");
        assert_eq!(all.ok_latency.len(), 1);
        assert!((399_000..=401_000).contains(&all.ok_latency.max()));
        assert_eq!(all.refused_latency.len(), 2, "503 and 429, not the timeout");
        assert!(all.refused_latency.max() <= 2_100);
    }
}
