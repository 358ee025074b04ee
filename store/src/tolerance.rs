//! Tolerant readers: a release never refuses to start or to serve because of data a newer
//! release wrote (a rolling upgrade runs both side by side, a rollback runs the older one on
//! what the newer wrote). A reader that meets a value it does not know (a signing-key
//! algorithm, an enum column, a setting, a token type) skips the row, drops the value or reads
//! a safe default, as its own comment says, and reports it here: one warning per kind and value
//! per process, so a value met on every request does not flood the log, and a counter per kind,
//! which `/metrics` renders as `hellojohn_unknown_values_total{kind}`.
//!
//! Backends report through this module because they cannot reach the engine's metrics; the
//! counters are process-wide, like the values they count (one database, every shard).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

/// How many distinct values are remembered (and so warned about) per process. An unknown
/// value is rare and comes from the deployment's own data, but a reader of client input (a
/// token's `typ`, once its signature verified) could otherwise grow the set without bound.
const MAX_WARNED: usize = 256;

/// The longest value a warning repeats, in characters.
const MAX_VALUE_CHARS: usize = 64;

struct Seen {
    counts: BTreeMap<&'static str, u64>,
    warned: BTreeSet<(&'static str, String)>,
}

static SEEN: Mutex<Seen> = Mutex::new(Seen {
    counts: BTreeMap::new(),
    warned: BTreeSet::new(),
});

/// `value`, cut to [`MAX_VALUE_CHARS`] characters: a log line never carries a whole column.
fn truncated(value: &str) -> String {
    match value.char_indices().nth(MAX_VALUE_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    }
}

/// Counts one `value` of `kind` that this release does not know, and says whether it is the
/// first time this process meets that value of that kind (the caller then logs its own,
/// more specific warning, as [`unknown`] does).
pub fn note(kind: &'static str, value: &str) -> bool {
    let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    *seen.counts.entry(kind).or_insert(0) += 1;
    if seen.warned.len() >= MAX_WARNED {
        return false;
    }
    seen.warned.insert((kind, truncated(value)))
}

/// Counts one `value` of `kind` that this release does not know, and warns once per process
/// about that value. Only the value is logged (truncated), never the row it was found in.
pub fn unknown(kind: &'static str, value: &str) {
    if note(kind, value) {
        tracing::warn!(
            kind,
            value = %truncated(value),
            "skipping a value this release does not know (written by a newer release?); \
             counted in hellojohn_unknown_values_total"
        );
    }
}

/// Every kind met so far with how many values of it were skipped, sorted by kind.
pub fn snapshot() -> Vec<(&'static str, u64)> {
    let seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    seen.counts.iter().map(|(k, v)| (*k, *v)).collect()
}

/// The count of `kind` so far (0 when never met).
pub fn count(kind: &str) -> u64 {
    let seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    seen.counts.get(kind).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_value_and_warns_once_per_value() {
        let before = count("test_kind");
        assert!(note("test_kind", "a"));
        assert!(!note("test_kind", "a"), "the second time is not new");
        assert!(note("test_kind", "b"));
        unknown("test_kind", "a");
        assert_eq!(count("test_kind"), before + 4);
        assert!(snapshot()
            .iter()
            .any(|(k, v)| *k == "test_kind" && *v == before + 4));
        assert_eq!(count("never_met"), 0);
    }

    #[test]
    fn long_values_are_cut() {
        let long = "é".repeat(100);
        let cut = truncated(&long);
        assert_eq!(cut.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(truncated("ML-DSA-65"), "ML-DSA-65");
    }
}
