//! The master key and the signing-key ring.
//!
//! Signing keys live in the store so that every instance signs and verifies alike. Their
//! private halves are encrypted at rest with XChaCha20-Poly1305 under the master key
//! (`HELLOJOHN_MASTER_KEY`), which never leaves the process: a database dump alone cannot forge
//! tokens. The stored blob is `nonce (24 bytes) || ciphertext`, and the public key is the
//! associated data, so a ciphertext cannot be moved onto another key's row.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use protocol::token::{AccessClaims, Jwk, Jwks};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use storage::{Store, StoreError};
use zeroize::{Zeroize as _, Zeroizing};

use super::tokens::{self, TokenError};

/// The file in the data dir that holds the generated development master key.
pub const MASTER_KEY_FILE: &str = "master.key";
const NONCE_LEN: usize = 24;

/// Why the master key or the signing keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("HELLOJOHN_MASTER_KEY is invalid: {0}")]
    InvalidMasterKey(String),
    #[error(
        "HELLOJOHN_MASTER_KEY is required with PostgreSQL: set it to the same 32-byte key \
         (64 hex characters, e.g. from `openssl rand -hex 32`) on every instance"
    )]
    MasterKeyRequired,
    #[error("master key file {}: {message}", path.display())]
    MasterKeyFile { path: PathBuf, message: String },
    #[error("cannot decrypt signing keys: wrong HELLOJOHN_MASTER_KEY? (key {kid})")]
    WrongMasterKey { kid: String },
    #[error("signing key {kid} is corrupt: {reason}")]
    CorruptKey { kid: String, reason: String },
    #[error("cannot encrypt a signing key: {0}")]
    Encrypt(String),
    #[error("the store returned no active signing key")]
    NoActiveKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

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
        storage::files::create_private_dir(dir)
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
            storage::files::restrict(&file, storage::files::FILE_MODE)
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

/// The key id of a public key: base64url of the first 12 bytes of its SHA-256 (16 characters).
pub fn kid_of(public_key: &[u8]) -> String {
    let digest = Sha256::digest(public_key);
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// A new signing key: the record to store (private half encrypted) and the key itself.
pub fn new_signing_key(
    master: &MasterKey,
    now: i64,
) -> Result<(storage::SigningKey, SigningKey), KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let key = SigningKey::from_bytes(&seed);
    let public_key = key.verifying_key().to_bytes().to_vec();
    let record = storage::SigningKey {
        kid: kid_of(&public_key),
        private_key_encrypted: master.encrypt(seed.as_ref(), &public_key)?,
        public_key,
        created_at: now,
        retired_at: None,
    };
    Ok((record, key))
}

fn verifying_key_of(record: &storage::SigningKey) -> Result<VerifyingKey, KeyError> {
    let corrupt = |reason: &str| KeyError::CorruptKey {
        kid: record.kid.clone(),
        reason: reason.to_string(),
    };
    let bytes = <[u8; 32]>::try_from(record.public_key.as_slice())
        .map_err(|_| corrupt("public key is not 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| corrupt("public key is not a valid Ed25519 key"))
}

fn decrypt_signing_key(
    record: &storage::SigningKey,
    master: &MasterKey,
) -> Result<SigningKey, KeyError> {
    let seed = master
        .decrypt(&record.private_key_encrypted, &record.public_key)
        .ok_or_else(|| KeyError::WrongMasterKey {
            kid: record.kid.clone(),
        })?;
    let seed = <[u8; 32]>::try_from(seed.as_slice()).map_err(|_| KeyError::CorruptKey {
        kid: record.kid.clone(),
        reason: "private key is not 32 bytes".to_string(),
    })?;
    let key = SigningKey::from_bytes(&seed);
    if key.verifying_key().as_bytes().as_slice() != record.public_key.as_slice() {
        return Err(KeyError::CorruptKey {
            kid: record.kid.clone(),
            reason: "private key does not match public key".to_string(),
        });
    }
    Ok(key)
}

/// The signing key and every verifying key, loaded once at start and shared by all shards.
pub struct KeyRing {
    kid: String,
    signing: SigningKey,
    /// Every known key (the current one first). A handful at most, so a list beats a map.
    verifying: Vec<(String, VerifyingKey)>,
    jwks: Jwks,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("kid", &self.kid)
            .field(
                "verifying",
                &self.verifying.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the keys from the store, creating the first signing key when there is no active
    /// one. Several instances may start at once: the store keeps exactly one of their new
    /// keys, and every instance uses that one.
    pub async fn load_or_create(
        store: &dyn Store,
        master: &MasterKey,
        now: i64,
    ) -> Result<KeyRing, KeyError> {
        let mut records = store.list_signing_keys().await?;
        if !records.iter().any(|k| k.retired_at.is_none()) {
            let (record, _) = new_signing_key(master, now)?;
            let kid = record.kid.clone();
            let active = store.insert_signing_key_if_none(record).await?;
            if active.iter().any(|k| k.kid == kid) {
                tracing::info!(kid, "created the first signing key");
            }
            // Read again so that retired keys (which still verify) are included alongside
            // whichever active key won.
            records = store.list_signing_keys().await?;
        }
        KeyRing::from_records(&records, master)
    }

    /// Builds the ring from stored records: the newest active key signs; every key verifies.
    pub fn from_records(
        records: &[storage::SigningKey],
        master: &MasterKey,
    ) -> Result<KeyRing, KeyError> {
        let current = records
            .iter()
            .filter(|k| k.retired_at.is_none())
            .max_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)))
            .ok_or(KeyError::NoActiveKey)?;
        let signing = decrypt_signing_key(current, master)?;

        let mut others: Vec<&storage::SigningKey> =
            records.iter().filter(|k| k.kid != current.kid).collect();
        others.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
        let mut verifying = vec![(current.kid.clone(), signing.verifying_key())];
        for record in others {
            match verifying_key_of(record) {
                Ok(vk) => verifying.push((record.kid.clone(), vk)),
                // An unusable old key must not stop the server; tokens it signed fail instead.
                Err(e) => tracing::warn!(error = %e, "skipping an unusable signing key"),
            }
        }
        let jwks = Jwks {
            keys: verifying
                .iter()
                .map(|(kid, vk)| Jwk::ed25519(kid.clone(), URL_SAFE_NO_PAD.encode(vk.as_bytes())))
                .collect(),
        };
        Ok(KeyRing {
            kid: current.kid.clone(),
            signing,
            verifying,
            jwks,
        })
    }

    /// The kid of the key that signs new tokens.
    pub fn current_kid(&self) -> &str {
        &self.kid
    }

    /// The public keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Jwks {
        self.jwks.clone()
    }

    /// Signs an access token with the current key.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        tokens::sign(&self.kid, &self.signing, claims)
    }

    /// Verifies an access token signed by any key of the ring (retired keys included).
    pub fn verify(&self, token: &str, now: i64, issuer: &str) -> Result<AccessClaims, TokenError> {
        tokens::verify(token, now, issuer, |kid| {
            self.verifying
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, vk)| vk)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use storage::sqlite::SqliteStore;

    const ISS: &str = "http://localhost:8080";

    use testkit::TempDir;

    async fn store(dir: &Path) -> Arc<SqliteStore> {
        let store = SqliteStore::open(&dir.join("db"), 1).unwrap();
        store.migrate().await.unwrap();
        Arc::new(store)
    }

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            sub: "user-1".into(),
            aud: "local-app".into(),
            iat: now,
            nbf: now,
            exp: now + 900,
            tid: "tenant-1".into(),
            amr: vec!["pwd".into()],
            scp: String::new(),
            custom: Default::default(),
            sid: None,
            jti: String::new(),
        }
    }

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

    #[test]
    fn kid_is_base64url_of_sha256_prefix() {
        let kid = kid_of(&[0u8; 32]);
        assert_eq!(kid.len(), 16);
        let digest = Sha256::digest([0u8; 32]);
        assert_eq!(URL_SAFE_NO_PAD.decode(&kid).unwrap(), digest[..12].to_vec());
    }

    #[tokio::test]
    async fn concurrent_creation_yields_one_key_and_reload_verifies() {
        let dir = TempDir::new("ring");
        let store = store(dir.path()).await;
        let master = MasterKey::from_bytes([5; 32]);
        let now = 1_700_000_000;
        let (a, b) = tokio::join!(
            KeyRing::load_or_create(&*store, &master, now),
            KeyRing::load_or_create(&*store, &master, now)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.current_kid(), b.current_kid());
        let stored = store.list_signing_keys().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].kid, a.current_kid());
        assert_eq!(stored[0].kid, kid_of(&stored[0].public_key));
        // The private key is stored encrypted, never in the clear.
        assert_eq!(stored[0].private_key_encrypted.len(), NONCE_LEN + 32 + 16);

        let jwks = a.jwks();
        assert_eq!(jwks.keys.len(), 1);
        assert_eq!(jwks.keys[0].kid, a.current_kid());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&jwks.keys[0].x).unwrap(),
            stored[0].public_key
        );

        // Signed by one instance, verified by the other.
        let token = a.sign(&claims(now));
        assert_eq!(b.verify(&token, now + 1, ISS).unwrap(), claims(now));

        // A restart with the same master key verifies tokens signed before it.
        drop((a, b));
        let reloaded = KeyRing::load_or_create(&*store, &master, now + 60)
            .await
            .unwrap();
        assert_eq!(
            reloaded.verify(&token, now + 60, ISS).unwrap().sub,
            "user-1"
        );
        assert_eq!(store.list_signing_keys().await.unwrap().len(), 1);

        // A wrong master key is a clear error at load.
        let wrong = MasterKey::from_bytes([6; 32]);
        let err = KeyRing::load_or_create(&*store, &wrong, now)
            .await
            .unwrap_err();
        assert!(matches!(err, KeyError::WrongMasterKey { .. }));
        assert!(err
            .to_string()
            .starts_with("cannot decrypt signing keys: wrong HELLOJOHN_MASTER_KEY?"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_on_one_database_agree_on_one_key() {
        // Two store instances on one file behave like two processes starting at once.
        let dir = TempDir::new("two-stores");
        let first = store(dir.path()).await;
        let second = store(dir.path()).await;
        let master = MasterKey::from_bytes([7; 32]);
        let (a, b) = tokio::join!(
            KeyRing::load_or_create(&*first, &master, 10),
            KeyRing::load_or_create(&*second, &master, 10)
        );
        assert_eq!(a.unwrap().current_kid(), b.unwrap().current_kid());
        assert_eq!(first.list_signing_keys().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn retired_keys_still_verify_but_do_not_sign() {
        let dir = TempDir::new("retired");
        let store = store(dir.path()).await;
        let master = MasterKey::from_bytes([8; 32]);
        let now = 1_700_000_000;
        let (mut old, old_key) = new_signing_key(&master, now - 86_400).unwrap();
        old.retired_at = Some(now - 3_600);
        let old_kid = old.kid.clone();
        // With no active key in the store the retired one is inserted, and no key is active.
        assert!(store
            .insert_signing_key_if_none(old)
            .await
            .unwrap()
            .is_empty());
        let old_token = tokens::sign(&old_kid, &old_key, &claims(now));

        let ring = KeyRing::load_or_create(&*store, &master, now)
            .await
            .unwrap();
        assert_ne!(ring.current_kid(), old_kid);
        assert_eq!(ring.verify(&old_token, now, ISS).unwrap().sub, "user-1");
        let kids: Vec<String> = ring.jwks().keys.into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, vec![ring.current_kid().to_string(), old_kid.clone()]);
        let new_token = ring.sign(&claims(now));
        assert!(
            new_token.starts_with(&URL_SAFE_NO_PAD.encode(protocol::json::to_vec(
                &protocol::token::JwtHeader::eddsa(ring.current_kid())
            )))
        );
    }
}
