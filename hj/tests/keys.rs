//! `hj keys` as an operator runs it (a file of its own: cli.rs is near the 800-line limit).

mod support;

use support::{hj, temp_dir};

/// `hj keys rotate` then `hj keys list`: on a fresh store a rotation makes the first key of
/// each algorithm, signing at once; a second rotation publishes a new key that signs after
/// HELLOJOHN_KEY_PUBLISH_DELAY, when the current one retires.
#[test]
fn keys_rotate_then_list() {
    let dir = temp_dir("keys");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = hj()
            .args(args)
            .env("HELLOJOHN_DATA_DIR", &dir)
            .env("HELLOJOHN_LOG", "error")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let lines = |out: &str| -> Vec<Vec<String>> {
        out.lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    };
    assert_eq!(run(&["migrate"], &[]).0, Some(0));
    let (code, out, err) = run(&["keys", "list"], &[]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");

    let (code, out, err) = run(&["keys", "rotate"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let rotated = lines(&out);
    assert_eq!(rotated.len(), 2, "{out}");
    assert_eq!(
        (rotated[0][1].as_str(), rotated[1][1].as_str()),
        ("EdDSA", "RS256")
    );
    assert!(
        rotated.iter().all(|r| r[3] == "0 key(s) retire then"),
        "{out}"
    );

    let (code, out, _) = run(&["keys", "list"], &[]);
    assert_eq!(code, Some(0));
    let listed = lines(&out);
    assert_eq!(listed.len(), 2, "{out}");
    for new in &rotated {
        // kid, alg, created, activates, retired, state (oldest first; these by kid)
        let row = listed.iter().find(|r| r[0] == new[0]).unwrap();
        assert_eq!(row.len(), 6, "{row:?}");
        assert_eq!(row[1], new[1]);
        assert_eq!(row[0].len(), 16);
        assert!(row[2].ends_with('Z') && row[2] == row[3], "{row:?}");
        assert_eq!((row[4].as_str(), row[5].as_str()), ("-", "active"));
    }

    // A rotation of RS256 only, with the default delay (10 minutes).
    let (code, out, err) = run(&["keys", "rotate", "--alg", "RS256"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let second = lines(&out);
    assert_eq!(second.len(), 1, "{out}");
    assert_eq!(second[0][1], "RS256");
    assert_eq!(second[0][3], "1 key(s) retire then");
    let (_, out, _) = run(&["keys", "list"], &[]);
    let listed = lines(&out);
    assert_eq!(listed.len(), 3, "{out}");
    let by_kid = |kid: &str| listed.iter().find(|r| r[0] == kid).unwrap().clone();
    let old = by_kid(&rotated[1][0]);
    let new = by_kid(&second[0][0]);
    assert_eq!(old[5], "active", "signs until the new key activates");
    assert_eq!(new[5], "pending", "published, not signing yet");
    assert_eq!(old[4], new[3], "retires exactly when the new key activates");
    assert_eq!(new[4], "-");
    assert_eq!(by_kid(&rotated[0][0])[5], "active", "EdDSA untouched");
    let minutes = |t: &str| -> i64 {
        let hm: Vec<i64> = t[11..16].split(':').map(|p| p.parse().unwrap()).collect();
        hm[0] * 60 + hm[1]
    };
    assert_eq!(
        (minutes(&new[3]) - minutes(&new[2])).rem_euclid(24 * 60),
        10,
        "{new:?}"
    );

    // Bad input: an unknown algorithm, a delay shorter than the JWKS cache.
    let (code, _, err) = run(&["keys", "rotate", "--alg", "HS256"], &[]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = run(
        &["keys", "rotate"],
        &[("HELLOJOHN_KEY_PUBLISH_DELAY", "1m")],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("HELLOJOHN_KEY_PUBLISH_DELAY: must be at least 330s"),
        "{err}"
    );
    let (_, out, _) = run(&["keys", "list"], &[]);
    assert_eq!(out.lines().count(), 3, "nothing rotated: {out}");
}
