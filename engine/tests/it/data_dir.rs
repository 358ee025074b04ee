//! The data dir and the files in it (the embedded database with its password hashes, token
//! hashes and emails, and the development master key) are the owner's only.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use engine::config::Config;

use crate::support::temp_dir;

/// The permission bits of `path`, in octal as `ls` and `chmod` write them.
fn mode(path: &Path) -> String {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", mode & 0o777)
}

/// What `hj serve` does on the embedded store up to serving: open (creating the data dir and
/// the database), migrate, bootstrap, load or generate the master key.
async fn start_embedded(config: &Config) -> std::sync::Arc<dyn store::Store> {
    let store = engine::open_store(config).await.unwrap();
    engine::prepare_store(store.as_ref()).await.unwrap();
    engine::bootstrap_embedded(store.as_ref(), &config.cors_origins)
        .await
        .unwrap();
    engine::master_key(config, store.as_ref()).unwrap();
    store
}

#[tokio::test]
async fn a_fresh_data_dir_and_every_file_in_it_are_owner_only() {
    let root = temp_dir("files");
    let data = root.join("deploy").join("data");
    let config = Config::for_tests(data.clone());
    let store = start_embedded(&config).await;
    // The writes above (migrations, the bootstrap tenant and client, the signing key) left a
    // WAL and its index next to the database while the store is open.
    let db = data.join("hellojohn.db");
    let files = [
        db.clone(),
        data.join("hellojohn.db-wal"),
        data.join("hellojohn.db-shm"),
        data.join("master.key"),
    ];
    assert_eq!(mode(&data), "700", "the data dir");
    assert_eq!(
        mode(&root.join("deploy")),
        "700",
        "a parent created with it"
    );
    for file in &files {
        assert_eq!(mode(file), "600", "{}", file.display());
    }
    drop(store);
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn an_existing_data_dir_keeps_its_mode_and_new_files_are_owner_only() {
    // An operator's directory, open to others (the start warns about it): not changed, but
    // the database made in it is still the owner's only.
    let data = temp_dir("files-existing");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(store::files::open_to_others(&data), Some(0o755));
    let config = Config::for_tests(data.clone());
    let store = start_embedded(&config).await;
    assert_eq!(mode(&data), "755");
    for name in [
        "hellojohn.db",
        "hellojohn.db-wal",
        "hellojohn.db-shm",
        "master.key",
    ] {
        assert_eq!(mode(&data.join(name)), "600", "{name}");
    }
    drop(store);
    std::fs::remove_dir_all(&data).unwrap();
}
