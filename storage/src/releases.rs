//! Which releases can run on which schema (`hj migrate status`, docs/upgrading.md).
//!
//! Migrations are additive within a release (expand): a release adds tables, columns, functions
//! and row kinds, and every release from [`FIRST_TOLERANT`] on serves on a schema a newer
//! release migrated, skipping the data it does not know (the tolerant readers of
//! docs/ARCHITECTURE.md). A migration that removes or renames (contract) waits until no release
//! still supported reads what it removes, and is listed in [`CONTRACTS`] with the oldest
//! release that can run after it.

/// A release and the last migration it ships (the same number on both backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub version: &'static str,
    pub schema: i64,
}

/// Every release, oldest first. A release cut adds its line (and a CHANGELOG.md entry).
pub const RELEASES: &[Release] = &[
    // 2026-11-28 (4913ec3): refuses signing keys of a kind it does not know.
    Release {
        version: "0.1.0",
        schema: 2,
    },
    // Tolerant readers: serves on any later expand-only schema.
    Release {
        version: "0.2.0",
        schema: 13,
    },
];

/// The first release that serves on a schema a newer release migrated and wrote to. The ones
/// before it run on a newer schema only until a newer release writes a row kind they do not
/// know (an RSA signing key stopped 0.1.0), so a rollback to them is not safe.
pub const FIRST_TOLERANT: &str = "0.2.0";

/// Contract migrations: (migration, oldest release that runs after it). None yet; see
/// docs/upgrading.md for how one is staged over two releases.
pub const CONTRACTS: &[(i64, &str)] = &[];

/// The releases that can serve on a database whose applied migrations are `applied`, oldest
/// first, and those that cannot, each with the reason. Migrations this binary does not know
/// (a newer release applied them) cannot be judged here: a newer `hj migrate status` can.
pub fn compatible(applied: &[i64]) -> (Vec<&'static str>, Vec<(&'static str, String)>) {
    let top = applied.iter().copied().max().unwrap_or(0);
    let floor = CONTRACTS
        .iter()
        .filter(|(m, _)| applied.contains(m))
        .map(|(_, oldest)| *oldest)
        .max_by(|a, b| order(a, b));
    let mut can = Vec::new();
    let mut cannot = Vec::new();
    for r in RELEASES {
        if let Some(oldest) = floor {
            if order(r.version, oldest).is_lt() {
                cannot.push((
                    r.version,
                    format!("a contract migration needs {oldest} or later"),
                ));
                continue;
            }
        }
        if r.schema < top && order(r.version, FIRST_TOLERANT).is_lt() {
            cannot.push((
                r.version,
                format!(
                    "ships schema {}; it refuses data later releases write (not rollback-safe)",
                    r.schema
                ),
            ));
            continue;
        }
        can.push(r.version);
    }
    (can, cannot)
}

/// Orders `major.minor.patch` versions numerically.
fn order(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_ordered_and_ship_growing_schemas() {
        for pair in RELEASES.windows(2) {
            assert!(order(pair[0].version, pair[1].version).is_lt(), "{pair:?}");
            assert!(pair[0].schema <= pair[1].schema, "{pair:?}");
        }
        assert!(RELEASES.iter().any(|r| r.version == FIRST_TOLERANT));
    }

    #[test]
    fn the_release_before_tolerant_readers_cannot_roll_back_onto_a_newer_schema() {
        let applied: Vec<i64> = (1..=13).collect();
        let (can, cannot) = compatible(&applied);
        assert_eq!(can, vec!["0.2.0"]);
        assert_eq!(cannot.len(), 1);
        assert_eq!(cannot[0].0, "0.1.0");
        // On its own schema it runs.
        let (can, cannot) = compatible(&[1, 2]);
        assert_eq!(can, vec!["0.1.0", "0.2.0"]);
        assert!(cannot.is_empty());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(order("0.10.0", "0.9.1").is_gt());
        assert!(order("1.0.0", "1.0.0").is_eq());
    }
}
