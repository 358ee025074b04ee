//! The master key: it encrypts signing keys (and webhook secrets) at rest.
//!
//! XChaCha20-Poly1305 under the master key (`HELLOJOHN_MASTER_KEY`), which never leaves the
//! process: a database dump alone cannot forge tokens. A sealed blob is
//! `nonce (24 bytes) || ciphertext`.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use sha2::Sha256;
use zeroize::{Zeroize as _, Zeroizing};

use super::KeyError;

/// The file in the data dir that holds the generated development master key.
pub const MASTER_KEY_FILE: &str = "master.key";
pub(super) const NONCE_LEN: usize = 24;

/// The 32-byte key that encrypts signing keys at rest. Its `Debug` is redacted and its bytes
/// are wiped on drop.
#[derive(Clone)]
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_bytes(key: [u8; 32]) -> MasterKey {
        MasterKey {
            key: Zeroizing::new(key),
        }
    }

    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let master = MasterKey::from_bytes(key);
        key.zeroize();
        master
    }

    /// A subkey for one purpose (`label`): HMAC-SHA256 of the label under the master key, so
    /// keys for different purposes are independent and none reveals the master key.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac as _};
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(self.key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Parses 64 hex characters, or base64 (standard or URL-safe, padded or not) of 32 bytes.
    /// Error messages never repeat the value, which is a secret.
    pub fn parse(text: &str) -> Result<MasterKey, KeyError> {
        let text = text.trim();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut key = [0u8; 32];
            for (i, byte) in key.iter_mut().enumerate() {
                *byte = (hex_value(text.as_bytes()[2 * i]) << 4)
                    | hex_value(text.as_bytes()[2 * i + 1]);
            }
            let master = MasterKey::from_bytes(key);
            key.zeroize();
            return Ok(master);
        }
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            if let Ok(bytes) = engine.decode(text) {
                let bytes = Zeroizing::new(bytes);
                if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                    return Ok(MasterKey::from_bytes(key));
                }
            }
        }
        Err(KeyError::InvalidMasterKey(format!(
            "expected 64 hex characters or 32 bytes in base64, got {} characters \
             (generate one with `openssl rand -hex 32`)",
            text.chars().count()
        )))
    }

    /// The hex form written to the development key file.
    fn to_hex(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(64));
        for b in self.key.iter() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }

    /// The master key: `setting` (`HELLOJOHN_MASTER_KEY`) when set. Otherwise, only when
    /// `allow_generate` (the embedded store, a single-machine development set-up), the key in
    /// `<data_dir>/master.key`, generated on first start. With PostgreSQL the key must be set,
    /// because every instance has to share it.
    pub fn resolve(
        setting: Option<&str>,
        data_dir: &Path,
        allow_generate: bool,
    ) -> Result<MasterKey, KeyError> {
        if let Some(text) = setting.filter(|t| !t.trim().is_empty()) {
            return MasterKey::parse(text);
        }
        if !allow_generate {
            return Err(KeyError::MasterKeyRequired);
        }
        load_or_generate_file(&data_dir.join(MASTER_KEY_FILE))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_ref().into())
    }

    /// Encrypts `plaintext` bound to `aad`: `nonce || ciphertext` with a random 24-byte nonce
    /// (large enough that random nonces never repeat in practice).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|e| KeyError::Encrypt(e.to_string()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts what [`MasterKey::encrypt`] made. `None` when the key is wrong, `aad` differs
    /// or the blob was altered (the AEAD cannot tell these apart).
    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if blob.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn file_error(path: &Path, message: impl Into<String>) -> KeyError {
    KeyError::MasterKeyFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads the development key file, or creates it (owner-only permissions) when missing.
fn load_or_generate_file(path: &Path) -> Result<MasterKey, KeyError> {
    match read_key_file(path) {
        Ok(Some(key)) => return Ok(key),
        Ok(None) => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        store::files::create_private_dir(dir)
            .map_err(|e| file_error(path, format!("cannot create its directory: {e}")))?;
    }
    let key = MasterKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            // 0600 exactly, whatever the umask left of the mode asked for.
            store::files::restrict(&file, store::files::FILE_MODE)
                .map_err(|e| file_error(path, format!("cannot restrict its mode: {e}")))?;
            let mut text = key.to_hex();
            text.push('\n');
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| file_error(path, format!("cannot write: {e}")))?;
            tracing::warn!(
                path = %path.display(),
                "generated a master key for development; set HELLOJOHN_MASTER_KEY in production \
                 (and back it up: signing keys cannot be decrypted without it)"
            );
            Ok(key)
        }
        // Another process created it first: use theirs. It may still be writing, so wait a
        // moment for the whole key to appear.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            for _ in 0..20 {
                if let Ok(Some(key)) = read_key_file(path) {
                    return Ok(key);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            read_key_file(path)?.ok_or_else(|| file_error(path, "is empty"))
        }
        Err(e) => Err(file_error(path, format!("cannot create: {e}"))),
    }
}

/// `Ok(None)` when the file does not exist.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, KeyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path, format!("cannot read: {e}"))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the master key file is readable by other users; restrict it with chmod 600"
                );
            }
        }
    }
    MasterKey::parse(&text)
        .map(Some)
        .map_err(|e| file_error(path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::TempDir;

    #[test]
    fn parses_hex_and_base64_master_keys() {
        let bytes: [u8; 32] = core::array::from_fn(|i| i as u8 * 7);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let expected = MasterKey::from_bytes(bytes);
        let forms = [
            hex.clone(),
            hex.to_uppercase(),
            format!("  {hex}\n"),
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
        ];
        for form in forms {
            let key = MasterKey::parse(&form).unwrap();
            assert_eq!(*key.key, *expected.key, "{form}");
        }
        assert_eq!(expected.to_hex().as_str(), hex);
    }

    #[test]
    fn refuses_bad_master_keys_without_echoing_them() {
        let bads = [
            "secret-password".to_string(),
            "ab".repeat(31),
            STANDARD.encode([1u8; 16]),
            "zz".repeat(32),
        ];
        for bad in &bads {
            let err = MasterKey::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("64 hex characters or 32 bytes in base64"),
                "{err}"
            );
            assert!(
                !err.contains(bad.as_str()),
                "the error must not repeat the key: {err}"
            );
        }
        assert!(format!("{:?}", MasterKey::generate()).contains("redacted"));
    }

    #[test]
    fn dev_master_key_file_is_generated_once_with_owner_only_permissions() {
        let dir = TempDir::new("dev-key");
        let data = dir.path().join("data");
        let first = MasterKey::resolve(None, &data, true).unwrap();
        let path = data.join(MASTER_KEY_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert_eq!(*MasterKey::parse(&text).unwrap().key, *first.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            // The data dir it had to create, too.
            let mode = std::fs::metadata(&data).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let second = MasterKey::resolve(Some(""), &data, true).unwrap();
        assert_eq!(*second.key, *first.key);

        // A configured key wins over the file.
        let configured = MasterKey::resolve(Some(&"11".repeat(32)), &data, true).unwrap();
        assert_eq!(*configured.key, [0x11; 32]);

        // Without permission to generate (PostgreSQL), an unset key is an error even though
        // the file exists: instances must share one key.
        let err = MasterKey::resolve(None, &data, false).unwrap_err();
        assert!(matches!(err, KeyError::MasterKeyRequired));
        assert!(err
            .to_string()
            .starts_with("HELLOJOHN_MASTER_KEY is required with PostgreSQL"));
    }

    #[test]
    fn encryption_round_trip_and_tamper_detection() {
        let master = MasterKey::from_bytes([1; 32]);
        let blob = master.encrypt(b"seed bytes", b"public").unwrap();
        assert_eq!(blob.len(), NONCE_LEN + 10 + 16);
        assert_eq!(
            master.decrypt(&blob, b"public").unwrap().as_slice(),
            b"seed bytes"
        );
        // Random nonces: the same plaintext encrypts differently.
        assert_ne!(blob, master.encrypt(b"seed bytes", b"public").unwrap());
        assert!(master.decrypt(&blob, b"other").is_none());
        assert!(MasterKey::from_bytes([2; 32])
            .decrypt(&blob, b"public")
            .is_none());
        let mut tampered = blob.clone();
        tampered[NONCE_LEN] ^= 1;
        assert!(master.decrypt(&tampered, b"public").is_none());
        assert!(master.decrypt(&blob[..10], b"public").is_none());
    }
}
