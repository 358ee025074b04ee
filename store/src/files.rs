//! Owner-only files for the data dir: the embedded database (password hashes, token hashes,
//! emails) and the generated master key live there, so nothing in it should be readable by
//! other users of the machine.
//!
//! What this code creates gets exact modes, whatever the process umask: directories 0700, files
//! 0600 (a umask can only remove bits from the mode asked for, and a restrictive one such as
//! 0277 would leave a file the owner cannot write, so the mode is set again after creation).
//! SQLite creates the `-wal` and `-shm` files of a database with the database file's own mode,
//! so creating the database file 0600 makes them 0600 too. Existing directories and files keep
//! their modes (an operator may have chosen them); [`open_to_others`] finds the ones group or
//! others can use, so that the start can warn about them.

use std::io;
use std::path::Path;

/// The mode of directories created here.
pub const DIR_MODE: u32 = 0o700;
/// The mode of files created here.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parent with mode 0700. Returns whether `dir` was created; an
/// existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)?;
    set_mode(dir, DIR_MODE)?;
    Ok(true)
}

/// Creates the empty file `path` with mode 0600 unless it exists. Returns whether it was
/// created.
pub fn create_private_file(path: &Path) -> io::Result<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(FILE_MODE);
    }
    match options.open(path) {
        Ok(file) => {
            restrict(&file, FILE_MODE)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sets the mode of an open file exactly (`fchmod`), past the umask.
pub fn restrict(file: &std::fs::File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (file, mode);
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The permission bits group and others hold on `path` (its mode & 0o077), when there are any;
/// `None` when there are none or `path` cannot be read.
pub fn open_to_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Logs a warning when group or others may use `path`, which holds `what`.
pub fn warn_if_open_to_others(path: &Path, what: &str) {
    if let Some(mode) = open_to_others(path) {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "{what} is accessible to other users (group or others may read, write or enter it); \
             restrict it to its owner (chmod go-rwx)"
        );
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn scratch() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("hj-files-{}", uuid::Uuid::new_v4().simple()))
    }

    #[test]
    fn created_dirs_and_files_are_owner_only() {
        let root = scratch();
        let dir = root.join("a").join("data");
        assert!(create_private_dir(&dir).unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert!(!create_private_dir(&dir).unwrap(), "already there");
        let file = dir.join("f");
        assert!(create_private_file(&file).unwrap());
        assert_eq!(mode(&file), 0o600);
        assert!(!create_private_file(&file).unwrap(), "already there");
        assert_eq!(open_to_others(&dir), None);
        assert_eq!(open_to_others(&file), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn existing_modes_are_kept_and_open_ones_found() {
        let dir = scratch();
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!create_private_dir(&dir).unwrap());
        assert_eq!(mode(&dir), 0o755, "an operator's choice is not changed");
        assert_eq!(open_to_others(&dir), Some(0o755));
        for (m, open) in [(0o700, false), (0o750, true), (0o701, true), (0o720, true)] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).unwrap();
            assert_eq!(open_to_others(&dir).is_some(), open, "{m:o}");
        }
        let file = dir.join("f");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!create_private_file(&file).unwrap());
        assert_eq!(mode(&file), 0o644);
        assert_eq!(open_to_others(&file), Some(0o644));
        assert_eq!(open_to_others(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
