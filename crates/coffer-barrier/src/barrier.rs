//! [`Barrier`]: the encrypting `Storage` implementation and its seal state machine.
//!
//! Locking: the unsealed key material lives in a `parking_lot::RwLock` that is only ever held
//! for in-memory work (encrypting or decrypting one value or batch), never across an `.await`.
//! Operations that read or write the barrier's own records and then change the key state
//! (initialize, unseal, rotate) are serialized by one async mutex, so two rotations cannot
//! race and an unseal cannot interleave with an initialization.
//!
//! Every write through the `Storage` API holds the shared side of `writes` from its
//! encryption until the backend has answered; a restore takes the exclusive side after
//! sealing, so no value encrypted under the keyring being replaced can land after (or in the
//! middle of) the restored data.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_crypto::aead::AeadKey;
use coffer_crypto::{CryptoError, Key256, Keyring, SecretBytes, SecretString, shamir};
use coffer_storage::{
    Entry, EntryStream, PhysicalBackend, PhysicalWrite, Result as StorageResult, Snapshot, Storage, StorageError, Write,
};
use parking_lot::{Mutex, RwLock};

use crate::BarrierError;
use crate::format::{self, DATA_PREFIX, KEYRING_PATH, ROOT_TERM, SEAL_CONFIG_PATH};
use crate::seal::{InitResult, SealConfig, SealStatus};

/// The security barrier over one physical backend. See the crate docs.
pub struct Barrier {
    backend: Arc<dyn PhysicalBackend>,
    /// The key material while unsealed; `None` while sealed.
    keys: RwLock<Option<Unsealed>>,
    /// Unseal keys submitted so far, below the threshold.
    progress: Mutex<Vec<SecretBytes>>,
    /// The seal configuration once read or written; it never changes after initialization.
    config: RwLock<Option<SealConfig>>,
    /// Serializes initialize, unseal, rotate and restore.
    admin: tokio::sync::Mutex<()>,
    /// Shared by every write in flight, exclusive for a restore: see the module docs.
    writes: tokio::sync::RwLock<()>,
}

/// The root key, the keyring, and each term's key prepared for AES-GCM.
///
/// All of it is wiped when dropped: `Key256` zeroizes itself and aws-lc cleanses its
/// prepared key contexts.
struct Unsealed {
    root: Key256,
    keyring: Keyring,
    prepared: BTreeMap<u32, AeadKey>,
}

impl Unsealed {
    fn new(root: Key256, keyring: Keyring) -> Result<Self, CryptoError> {
        let mut prepared = BTreeMap::new();
        for (term, entry) in keyring.terms() {
            prepared.insert(term, AeadKey::new(&entry.key)?);
        }
        Ok(Self {
            root,
            keyring,
            prepared,
        })
    }

    fn active(&self) -> Result<(u32, &AeadKey), CryptoError> {
        let term = self.keyring.active_term();
        let key = self.prepared.get(&term).ok_or(CryptoError::UnknownTerm(term))?;
        Ok((term, key))
    }

    /// Encrypts a value for the physical path `path` under the active term.
    fn seal_value(&self, path: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (term, key) = self.active()?;
        format::seal(term, key, path, plaintext)
    }

    /// Decrypts a value stored at the physical path `path`, with the key its frame names.
    fn open_value(&self, path: &str, frame: &[u8]) -> Result<SecretBytes, CryptoError> {
        let (term, sealed) = format::parse(frame)?;
        let key = self.prepared.get(&term).ok_or(CryptoError::UnknownTerm(term))?;
        key.open(path.as_bytes(), sealed)
    }
}

impl Barrier {
    /// A sealed barrier over `backend`. Nothing is read until it is used.
    pub fn new(backend: Arc<dyn PhysicalBackend>) -> Self {
        Self {
            backend,
            keys: RwLock::new(None),
            progress: Mutex::new(Vec::new()),
            config: RwLock::new(None),
            admin: tokio::sync::Mutex::new(()),
            writes: tokio::sync::RwLock::new(()),
        }
    }

    /// Whether the barrier is sealed (no data access).
    pub fn is_sealed(&self) -> bool {
        self.keys.read().is_none()
    }

    /// Whether the backend holds a seal configuration, that is, whether `initialize` ran.
    pub async fn is_initialized(&self) -> Result<bool, BarrierError> {
        Ok(self.seal_config().await?.is_some())
    }

    /// The seal configuration, or `None` before initialization.
    pub async fn seal_config(&self) -> Result<Option<SealConfig>, BarrierError> {
        if let Some(config) = *self.config.read() {
            return Ok(Some(config));
        }
        let Some(bytes) = self.backend.get(SEAL_CONFIG_PATH).await? else {
            return Ok(None);
        };
        let config = SealConfig::from_json(&bytes, SEAL_CONFIG_PATH)?;
        *self.config.write() = Some(config);
        Ok(Some(config))
    }

    /// The current seal status.
    pub async fn status(&self) -> Result<SealStatus, BarrierError> {
        let config = self.seal_config().await?;
        let key_term = self.keys.read().as_ref().map(|k| k.keyring.active_term());
        let progress = u8::try_from(self.progress.lock().len()).unwrap_or(u8::MAX);
        Ok(SealStatus {
            initialized: config.is_some(),
            sealed: key_term.is_none(),
            t: config.map_or(0, |c| c.threshold),
            n: config.map_or(0, |c| c.shares),
            progress,
            key_term,
        })
    }

    /// The active key term and when it was installed (seconds since the Unix epoch), while
    /// unsealed.
    pub fn active_term_installed(&self) -> Option<(u32, u64)> {
        let keys = self.keys.read();
        let keyring = &keys.as_ref()?.keyring;
        let term = keyring.active_term();
        let installed = keyring.terms().find(|(t, _)| *t == term).map(|(_, k)| k.installed)?;
        Some((term, installed))
    }

    /// Creates a random root key and keyring, stores the keyring (encrypted under the root
    /// key) and the seal configuration in one atomic batch, and returns the root key split
    /// into `shares` unseal keys with threshold `threshold`.
    ///
    /// The barrier stays sealed. Fails with [`BarrierError::AlreadyInitialized`] if the
    /// backend already holds a keyring or seal configuration.
    pub async fn initialize(&self, shares: u8, threshold: u8) -> Result<InitResult, BarrierError> {
        let config = SealConfig::new(shares, threshold)?;
        let _admin = self.admin.lock().await;
        if self.seal_config().await?.is_some() || self.backend.get(KEYRING_PATH).await?.is_some() {
            return Err(BarrierError::AlreadyInitialized);
        }
        let root = Key256::generate()?;
        let keyring = Keyring::new_random()?;
        let sealed_keyring = seal_keyring(&root, &keyring)?;
        let unseal_keys = shamir::split(&root, shares, threshold)?
            .iter()
            .map(shamir::encode_share)
            .collect();
        self.backend
            .batch(vec![
                PhysicalWrite {
                    key: KEYRING_PATH.to_string(),
                    value: Some(sealed_keyring),
                },
                PhysicalWrite {
                    key: SEAL_CONFIG_PATH.to_string(),
                    value: Some(config.to_json()?),
                },
            ])
            .await?;
        *self.config.write() = Some(config);
        self.progress.lock().clear();
        tracing::info!(shares, threshold, "barrier initialized");
        Ok(InitResult { unseal_keys, config })
    }

    /// Initializes with a single unseal key and unseals at once, for `server --dev`.
    /// Returns the one unseal key.
    pub async fn initialize_dev(&self) -> Result<SecretString, BarrierError> {
        let mut init = self.initialize(1, 1).await?;
        let key = init
            .unseal_keys
            .pop()
            .ok_or(BarrierError::InvalidConfig("no unseal key".into()))?;
        let status = self.submit_unseal_key(&key).await?;
        if status.sealed {
            return Err(BarrierError::Sealed);
        }
        Ok(key)
    }

    /// Adds one unseal key (base64 text) towards the threshold.
    ///
    /// Below the threshold the key is remembered and the status shows the progress; a key
    /// that was already submitted is ignored. At the threshold the keys are combined and the
    /// keyring is opened with the result. Keys that do not open it reset the progress and
    /// yield [`BarrierError::InvalidUnsealKeys`]; a malformed key yields
    /// [`BarrierError::InvalidUnsealKey`] and keeps the progress. On an unsealed barrier this
    /// does nothing and returns the status.
    pub async fn submit_unseal_key(&self, key: &SecretString) -> Result<SealStatus, BarrierError> {
        let _admin = self.admin.lock().await;
        let config = self.seal_config().await?.ok_or(BarrierError::NotInitialized)?;
        if !self.is_sealed() {
            return self.status().await;
        }
        let share = shamir::decode_share(key.expose()).map_err(BarrierError::InvalidUnsealKey)?;
        if shamir::share_threshold(&share).map_err(BarrierError::InvalidUnsealKey)? != config.threshold {
            return Err(BarrierError::InvalidUnsealKey(CryptoError::Shares(
                "the unseal key was made for a different seal configuration".into(),
            )));
        }
        let shares = {
            let mut progress = self.progress.lock();
            if !progress.iter().any(|s| s.ct_eq(share.expose())) {
                progress.push(share);
            }
            if progress.len() < usize::from(config.threshold) {
                None
            } else {
                // Taking the shares out resets the progress, whatever the outcome.
                Some(std::mem::take(&mut *progress))
            }
        };
        let Some(shares) = shares else {
            return self.status().await;
        };
        // Shares that disagree (duplicates or mixed splits) are as invalid as a wrong result.
        let root = shamir::combine(&shares).map_err(|_| BarrierError::InvalidUnsealKeys)?;
        drop(shares);
        self.unseal_locked(root).await?;
        self.status().await
    }

    /// Forgets the unseal keys submitted so far.
    pub fn reset_unseal_progress(&self) {
        self.progress.lock().clear();
    }

    /// Unseals with the root key itself (for tests, and for a future auto-unseal that
    /// unwraps the root key with a KMS). A wrong key is [`BarrierError::InvalidUnsealKeys`].
    pub async fn unseal_with_root_key(&self, root: &Key256) -> Result<SealStatus, BarrierError> {
        let _admin = self.admin.lock().await;
        if self.seal_config().await?.is_none() {
            return Err(BarrierError::NotInitialized);
        }
        if self.is_sealed() {
            self.unseal_locked(root.clone()).await?;
        }
        self.status().await
    }

    /// Seals: drops (and so wipes) the root key and the keyring, and forgets any unseal
    /// progress. Data access fails with `Sealed` from now on.
    pub fn seal(&self) {
        let was_unsealed = self.keys.write().take().is_some();
        self.progress.lock().clear();
        if was_unsealed {
            tracing::info!("barrier sealed");
        }
    }

    /// Every physical key and value as of one moment, for a backup: the ciphertext of every
    /// record and the barrier's own records (the keyring stays encrypted under the root key).
    /// Nothing is decrypted, so restoring it needs this barrier's unseal keys.
    pub async fn snapshot(&self) -> Result<Snapshot, BarrierError> {
        if self.seal_config().await?.is_none() {
            return Err(BarrierError::NotInitialized);
        }
        Ok(self.backend.snapshot().await?)
    }

    /// Replaces everything stored with the entries of a snapshot, atomically, and leaves the
    /// barrier sealed with the snapshot's seal configuration: it unseals with the unseal keys
    /// of the store the snapshot came from.
    ///
    /// Seals first, then waits for the writes in flight. Refuses an initialized barrier unless
    /// `replace_initialized` (checked under the lock that initialization takes, so a restore
    /// meant for a fresh node cannot land on one initialized meanwhile). A snapshot without
    /// the keyring and a valid seal configuration, or with keys outside `core/` and `data/`,
    /// is [`BarrierError::InvalidSnapshot`]; if `source` fails, nothing has changed.
    pub async fn restore(&self, source: &mut dyn EntryStream, replace_initialized: bool) -> Result<u64, BarrierError> {
        let _admin = self.admin.lock().await;
        if !replace_initialized && self.seal_config().await?.is_some() {
            return Err(BarrierError::AlreadyInitialized);
        }
        self.seal();
        let _writes = self.writes.write().await;
        let mut checked = BarrierRecords {
            inner: source,
            keyring: false,
            seal_config: false,
            problem: None,
        };
        let restored = self.backend.restore(&mut checked).await;
        // Whatever happened, read the seal configuration again from the store.
        *self.config.write() = None;
        self.progress.lock().clear();
        match (restored, checked.problem) {
            (Err(_), Some(problem)) => Err(BarrierError::InvalidSnapshot(problem)),
            (Err(e), None) => Err(e.into()),
            (Ok(n), _) => {
                tracing::info!(entries = n, "storage restored from a snapshot; sealed");
                Ok(n)
            }
        }
    }

    /// Adds a new key term, persists the keyring, and encrypts new writes under it. Data
    /// written under earlier terms stays readable. Returns the new term.
    pub async fn rotate(&self) -> Result<u32, BarrierError> {
        let _admin = self.admin.lock().await;
        let (root, mut keyring) = {
            let guard = self.keys.read();
            let unsealed = guard.as_ref().ok_or(BarrierError::Sealed)?;
            (unsealed.root.clone(), unsealed.keyring.clone())
        };
        let term = keyring.rotate()?;
        let sealed_keyring = seal_keyring(&root, &keyring)?;
        let next = Unsealed::new(root, keyring)?;
        // Persist first: nothing may be encrypted under a term that is not yet durable.
        self.backend.put(KEYRING_PATH, sealed_keyring).await?;
        let mut guard = self.keys.write();
        match guard.as_mut() {
            Some(current) => *current = next,
            // Sealed while persisting: the new term is stored and will load at next unseal.
            None => return Err(BarrierError::Sealed),
        }
        tracing::info!(term, "barrier key rotated");
        Ok(term)
    }

    /// Opens the stored keyring with `root` and installs it. The caller holds `admin`.
    async fn unseal_locked(&self, root: Key256) -> Result<(), BarrierError> {
        let frame = self
            .backend
            .get(KEYRING_PATH)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let corrupt = || BarrierError::Corrupt(KEYRING_PATH.to_string());
        let (term, sealed) = format::parse(&frame).map_err(|_| corrupt())?;
        if term != ROOT_TERM {
            return Err(corrupt());
        }
        let plain = AeadKey::new(&root)?
            .open(KEYRING_PATH.as_bytes(), sealed)
            .map_err(|e| match e {
                CryptoError::Decrypt => BarrierError::InvalidUnsealKeys,
                _ => corrupt(),
            })?;
        let keyring = Keyring::from_bytes(plain.expose()).map_err(|_| corrupt())?;
        let active = keyring.active_term();
        *self.keys.write() = Some(Unsealed::new(root, keyring)?);
        self.progress.lock().clear();
        tracing::info!(term = active, "barrier unsealed");
        Ok(())
    }

    /// Encrypts `value` for the physical path `path` with the active key, or `Sealed`.
    fn encrypt(&self, path: &str, value: &[u8]) -> StorageResult<Vec<u8>> {
        let guard = self.keys.read();
        let unsealed = guard.as_ref().ok_or(StorageError::Sealed)?;
        unsealed
            .seal_value(path, value)
            .map_err(|e| StorageError::Backend(format!("encryption failed: {e}")))
    }

    /// Decrypts the frame stored at the physical path `path` for the caller's `key`, or
    /// `Sealed`. A frame that does not authenticate is `Corrupt(key)`.
    fn decrypt(&self, key: &str, path: &str, frame: &[u8]) -> StorageResult<SecretBytes> {
        let guard = self.keys.read();
        let unsealed = guard.as_ref().ok_or(StorageError::Sealed)?;
        unsealed
            .open_value(path, frame)
            .map_err(|_| StorageError::Corrupt(key.to_string()))
    }

    fn ensure_unsealed(&self) -> StorageResult<()> {
        if self.is_sealed() {
            Err(StorageError::Sealed)
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for Barrier {
    /// Prints the seal state only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let term = self.keys.read().as_ref().map(|k| k.keyring.active_term());
        f.debug_struct("Barrier")
            .field("sealed", &term.is_none())
            .field("key_term", &term)
            .finish()
    }
}

/// A snapshot's entries on their way into the backend, checked for what a barrier needs: the
/// stream fails (so the restore changes nothing) on a key no barrier writes, or at its end if
/// the keyring or a valid seal configuration was missing.
struct BarrierRecords<'a> {
    inner: &'a mut dyn EntryStream,
    keyring: bool,
    seal_config: bool,
    problem: Option<String>,
}

impl BarrierRecords<'_> {
    fn check(&mut self, chunk: &[Entry]) -> Result<(), String> {
        for e in chunk {
            if e.key == KEYRING_PATH {
                self.keyring = true;
            } else if e.key == SEAL_CONFIG_PATH {
                SealConfig::from_json(&e.value, SEAL_CONFIG_PATH)
                    .map_err(|_| "the snapshot's seal configuration is not valid".to_string())?;
                self.seal_config = true;
            } else if !e.key.starts_with(DATA_PREFIX) && !e.key.starts_with("core/") {
                return Err("the snapshot holds keys that Coffer does not store".into());
            }
        }
        if chunk.is_empty() && !(self.keyring && self.seal_config) {
            return Err(
                "the snapshot holds no keyring or seal configuration: it is not of an initialized Coffer".into(),
            );
        }
        Ok(())
    }
}

#[async_trait]
impl EntryStream for BarrierRecords<'_> {
    async fn next_chunk(&mut self) -> StorageResult<Vec<Entry>> {
        let chunk = self.inner.next_chunk().await?;
        if let Err(problem) = self.check(&chunk) {
            self.problem = Some(problem.clone());
            return Err(StorageError::Corrupt(problem));
        }
        Ok(chunk)
    }
}

/// The keyring's stored frame: encrypted under the root key, term 0, its path as AAD.
fn seal_keyring(root: &Key256, keyring: &Keyring) -> Result<Vec<u8>, BarrierError> {
    let plain = keyring.to_bytes();
    Ok(format::seal(
        ROOT_TERM,
        &AeadKey::new(root)?,
        KEYRING_PATH,
        plain.expose(),
    )?)
}

#[async_trait]
impl Storage for Barrier {
    async fn get(&self, key: &str) -> StorageResult<Option<SecretBytes>> {
        self.ensure_unsealed()?;
        let path = format::data_path(key);
        match self.backend.get(&path).await? {
            Some(frame) => self.decrypt(key, &path, &frame).map(Some),
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: SecretBytes) -> StorageResult<()> {
        let _writing = self.writes.read().await;
        let path = format::data_path(key);
        let frame = self.encrypt(&path, value.expose())?;
        self.backend.put(&path, frame).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let _writing = self.writes.read().await;
        self.ensure_unsealed()?;
        self.backend.delete(&format::data_path(key)).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        self.ensure_unsealed()?;
        self.backend.list(&format::data_path(prefix)).await
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> StorageResult<Vec<String>> {
        self.ensure_unsealed()?;
        let after = after.map(format::data_path);
        let keys = self
            .backend
            .scan(&format::data_path(prefix), after.as_deref(), limit)
            .await?;
        Ok(data_keys(keys))
    }

    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> StorageResult<Vec<String>> {
        self.ensure_unsealed()?;
        let before = before.map(format::data_path);
        let keys = self
            .backend
            .scan_back(&format::data_path(prefix), before.as_deref(), limit)
            .await?;
        Ok(data_keys(keys))
    }

    async fn batch(&self, writes: Vec<Write>) -> StorageResult<()> {
        let _writing = self.writes.read().await;
        let physical = {
            let guard = self.keys.read();
            let unsealed = guard.as_ref().ok_or(StorageError::Sealed)?;
            let mut out = Vec::with_capacity(writes.len());
            for w in writes {
                let path = format::data_path(&w.key);
                let value = match &w.value {
                    Some(v) => Some(
                        unsealed
                            .seal_value(&path, v.expose())
                            .map_err(|e| StorageError::Backend(format!("encryption failed: {e}")))?,
                    ),
                    None => None,
                };
                out.push(PhysicalWrite { key: path, value });
            }
            out
        };
        self.backend.batch(physical).await
    }
}

/// Physical keys of the data area, as the engines name them.
fn data_keys(keys: Vec<String>) -> Vec<String> {
    keys.into_iter()
        .filter_map(|k| k.strip_prefix(DATA_PREFIX).map(str::to_string))
        .collect()
}
