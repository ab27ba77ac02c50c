//! The keyring: data keys per scope, unwrapped once and cached, and the operations on them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;
use zeroize::Zeroizing;

use super::aead::{self, Aad};
use super::blind_index::IndexKey;
use super::kek::Kek;
use super::CryptoError;
use crate::domain::{UserId, WorkspaceId};
use crate::store::audit::CheckpointSigner;
use crate::store::keys::{self, DataKeyRecord};
use crate::store::{Conn, Store, StoreError, Tx};

/// Encryptions reserved in the database per round trip, so the counter costs one update per batch.
const RESERVE_BATCH: u64 = 1024;
/// The check value: a known key wrapped by the KEK, so a wrong KEK is detected at start.
const CHECK_SCOPE: &str = "system:kek-check";
/// The secret blind indexes derive their keys from.
const INDEX_SCOPE: &str = "system:index";
/// The Ed25519 seed that signs audit checkpoints.
const SIGNING_SCOPE: &str = keys::AUDIT_SIGNING_SCOPE;

/// Whose key encrypts a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A user's personal data.
    User(UserId),
    /// A workspace's content.
    Workspace(WorkspaceId),
    /// Deployment-wide data with no better owner (such as audit details of unknown users).
    System(&'static str),
}

impl Scope {
    /// Parses the stored form back (system scopes Concord knows only).
    pub fn parse(stored: &str) -> Option<Scope> {
        let (kind, rest) = stored.split_once(':')?;
        match kind {
            "user" => rest.parse().ok().map(Scope::User),
            "workspace" => rest.parse().ok().map(Scope::Workspace),
            "system" if rest == "audit" => Some(Scope::System("audit")),
            _ => None,
        }
    }

    /// The stored form: `user:<id>`, `workspace:<id>`, `system:<name>`.
    pub fn as_key(&self) -> String {
        match self {
            Scope::User(id) => format!("user:{id}"),
            Scope::Workspace(id) => format!("workspace:{id}"),
            Scope::System(name) => format!("system:{name}"),
        }
    }
}

struct Dek {
    key: Zeroizing<[u8; 32]>,
    used: AtomicU64,
    reserved: AtomicU64,
}

struct Inner {
    kek: Kek,
    // Read on every encryption by many writers at once, written only when a key is loaded
    // or rotated: read-write locks keep concurrent encryptions from queueing on each other.
    deks: RwLock<HashMap<(String, u32), Arc<Dek>>>,
    current: RwLock<HashMap<String, u32>>,
    /// Scopes whose keys were destroyed (erased people's): no key is made for them again.
    destroyed: RwLock<HashSet<String>>,
    email_index: IndexKey,
    /// The secret every other blind index derives its per-purpose key from.
    index_secret: Zeroizing<[u8; 32]>,
    /// Unwrapped checkpoint signing keys by version (the writer names the version to use).
    signing: Mutex<HashMap<i64, Arc<SigningKey>>>,
    rotate_after: u64,
}

/// The deployment's keys; cheap to clone.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

/// One key version, for `concord keys status`.
#[derive(Clone, Debug)]
pub struct KeyStatus {
    /// Its scope.
    pub scope: String,
    /// Its version.
    pub version: i64,
    /// The KEK wrapping it.
    pub kek_id: String,
    /// Encryptions reserved so far.
    pub encryptions: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Whether new writes still use it.
    pub retired: bool,
}

/// A value encrypted before its write reached the group-commit writer
/// ([`Keyring::seal_ahead`]); [`Keyring::finish`] turns it into the stored ciphertext inside
/// the write.
pub struct Sealed {
    scope: Scope,
    scope_key: String,
    table: &'static str,
    column: &'static str,
    row: String,
    plaintext: Zeroizing<Vec<u8>>,
    /// The version used, the ciphertext and the key (whose use the write's transaction may
    /// have to reserve), if the scope's current key was cached.
    ahead: Option<(u32, Vec<u8>, Arc<Dek>)>,
}

/// One version of the audit checkpoint signing key.
#[derive(Clone, Debug)]
pub struct SigningKeyInfo {
    /// The version, as named by checkpoints.
    pub version: i64,
    /// The Ed25519 public key.
    pub public_key: Vec<u8>,
    /// Since when.
    pub created_at: DateTime<Utc>,
}

fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    key
}

fn to_array(bytes: &[u8], scope: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(CryptoError::Decrypt(format!("data key {scope}")));
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

fn new_record(
    kek: &Kek,
    scope: &str,
    version: i64,
    key: &[u8; 32],
    public_key: Option<Vec<u8>>,
) -> Result<DataKeyRecord, CryptoError> {
    Ok(DataKeyRecord {
        scope: scope.to_owned(),
        version,
        kek_id: kek.id().to_owned(),
        wrapped: kek.wrap(scope, version as u32, key)?,
        public_key,
        encryptions: 0,
        created_at: Utc::now(),
        retired_at: None,
    })
}

/// Creates the system keys that do not exist yet (first start).
async fn ensure_system_keys(conn: &mut Conn<'_>, kek: &Kek) -> Result<(), CryptoError> {
    for scope in [CHECK_SCOPE, INDEX_SCOPE, SIGNING_SCOPE, "system:audit"] {
        if keys::latest(conn, scope).await?.is_some() {
            continue;
        }
        if scope == CHECK_SCOPE && keys::count(conn).await? > 0 {
            return Err(CryptoError::CheckMissing);
        }
        let key = random_key();
        let public = (scope == SIGNING_SCOPE).then(|| {
            SigningKey::from_bytes(&key)
                .verifying_key()
                .to_bytes()
                .to_vec()
        });
        keys::insert(conn, &new_record(kek, scope, 1, &key, public)?).await?;
    }
    Ok(())
}

/// Fails with [`CryptoError::WrongKek`] unless `kek` unwraps the stored check value.
async fn check_kek(conn: &mut Conn<'_>, kek: &Kek) -> Result<(), CryptoError> {
    let Some(check) = keys::latest(conn, CHECK_SCOPE).await? else {
        return Ok(());
    };
    if check.kek_id != kek.id() || kek.unwrap(CHECK_SCOPE, &check.wrapped).is_err() {
        return Err(CryptoError::WrongKek {
            configured: kek.id().to_owned(),
            expected: check.kek_id,
        });
    }
    Ok(())
}

async fn load_system_key(
    conn: &mut Conn<'_>,
    kek: &Kek,
    scope: &str,
) -> Result<(i64, Zeroizing<[u8; 32]>), CryptoError> {
    let rec = keys::latest(conn, scope)
        .await?
        .ok_or(CryptoError::CheckMissing)?;
    let key = kek.unwrap(scope, &rec.wrapped)?;
    Ok((rec.version, to_array(&key, scope)?))
}

impl Keyring {
    /// Opens the keyring: checks that `kek` is the database's KEK (refusing to go on
    /// otherwise), creates missing system keys, and loads the index and signing keys.
    pub async fn open(store: &Store, kek: Kek, rotate_after: u64) -> Result<Keyring, CryptoError> {
        let mut conn = store.reader().await?;
        check_kek(&mut conn.conn(), &kek).await?;
        drop(conn);
        let kek = Arc::new(kek);
        let k = kek.clone();
        store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    check_kek(&mut tx.conn(), &k).await?;
                    ensure_system_keys(&mut tx.conn(), &k).await
                })
            })
            .await?;
        let kek = Arc::try_unwrap(kek).map_err(|_| CryptoError::Malformed("kek still shared"))?;
        let mut conn = store.reader().await?;
        let (_, index_secret) = load_system_key(&mut conn.conn(), &kek, INDEX_SCOPE).await?;
        let (signing_version, seed) =
            load_system_key(&mut conn.conn(), &kek, SIGNING_SCOPE).await?;
        let signing = HashMap::from([(signing_version, Arc::new(SigningKey::from_bytes(&seed)))]);
        let destroyed = keys::erased_user_scopes(&mut conn.conn()).await?;
        Ok(Keyring {
            inner: Arc::new(Inner {
                email_index: IndexKey::derive(index_secret.as_ref(), "email"),
                index_secret,
                signing: Mutex::new(signing),
                kek,
                deks: RwLock::new(HashMap::new()),
                current: RwLock::new(HashMap::new()),
                destroyed: RwLock::new(destroyed.into_iter().collect()),
                rotate_after: rotate_after.max(1),
            }),
        })
    }

    /// The id of the KEK in use.
    pub fn kek_id(&self) -> &str {
        self.inner.kek.id()
    }

    /// The blind index of a case-folded email.
    pub fn email_index(&self, email_lookup: &str) -> String {
        self.inner.email_index.index(email_lookup)
    }

    /// The keyed blind index of a normalised value for `purpose` (such as `workspace-slug`):
    /// equal values give equal indexes within a purpose, and nothing else can be learnt
    /// without the deployment's index secret. Callers put the owning ids into `normalised`
    /// when uniqueness is per owner, so equal names in two workspaces do not match.
    pub fn blind_index(&self, purpose: &str, normalised: &str) -> String {
        IndexKey::derive(self.inner.index_secret.as_ref(), purpose).index(normalised)
    }

    fn cached(&self, scope: &str, version: u32) -> Option<Arc<Dek>> {
        self.inner
            .deks
            .read()
            .ok()?
            .get(&(scope.to_owned(), version))
            .cloned()
    }

    fn cache(&self, scope: &str, version: u32, dek: Arc<Dek>, current: bool) {
        if let Ok(mut deks) = self.inner.deks.write() {
            deks.insert((scope.to_owned(), version), dek);
        }
        if current {
            if let Ok(mut cur) = self.inner.current.write() {
                cur.insert(scope.to_owned(), version);
            }
        }
    }

    fn evict(inner: &Inner, scope: &str, version: u32) {
        if let Ok(mut deks) = inner.deks.write() {
            deks.remove(&(scope.to_owned(), version));
        }
        if let Ok(mut cur) = inner.current.write() {
            if cur.get(scope) == Some(&version) {
                cur.remove(scope);
            }
        }
    }

    fn unwrap_record(&self, rec: &DataKeyRecord) -> Result<Arc<Dek>, CryptoError> {
        let key = self.inner.kek.unwrap(&rec.scope, &rec.wrapped)?;
        let used = rec.encryptions.max(0) as u64;
        Ok(Arc::new(Dek {
            key: to_array(&key, &rec.scope)?,
            used: AtomicU64::new(used),
            reserved: AtomicU64::new(used),
        }))
    }

    /// Makes a new version of `scope`'s key the one new writes use (retiring the current
    /// one) inside the write `tx`; returns it.
    async fn start_version(
        &self,
        tx: &mut Tx,
        scope: &str,
    ) -> Result<(u32, Arc<Dek>), CryptoError> {
        // An erased person's key stays destroyed: checked in this process, and in the
        // database for an erasure another process finished.
        if self.scope_destroyed(scope) || keys::scope_erased(&mut tx.conn(), scope).await? {
            return Err(CryptoError::Destroyed(scope.to_owned()));
        }
        let now = Utc::now();
        let next = match keys::latest(&mut tx.conn(), scope).await? {
            Some(rec) => {
                keys::retire(&mut tx.conn(), scope, rec.version, now).await?;
                rec.version + 1
            }
            None => 1,
        };
        let key = random_key();
        keys::insert(
            &mut tx.conn(),
            &new_record(&self.inner.kek, scope, next, &key, None)?,
        )
        .await?;
        let version = next as u32;
        let dek = Arc::new(Dek {
            key,
            used: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
        });
        self.cache(scope, version, dek.clone(), true);
        let inner = self.inner.clone();
        let owned = scope.to_owned();
        tx.on_rollback(move || Keyring::evict(&inner, &owned, version));
        Ok((version, dek))
    }

    /// The scope's current key version in this process, if known.
    fn current_cached(&self, scope_key: &str) -> Option<u32> {
        self.inner
            .current
            .read()
            .ok()
            .and_then(|c| c.get(scope_key).copied())
    }

    async fn write_key(&self, tx: &mut Tx, scope: &str) -> Result<(u32, Arc<Dek>), CryptoError> {
        let current = self.current_cached(scope);
        if let Some(version) = current {
            if let Some(dek) = self.cached(scope, version) {
                return Ok((version, dek));
            }
        }
        match keys::latest(&mut tx.conn(), scope).await? {
            Some(rec) if rec.retired_at.is_none() => {
                let version = rec.version as u32;
                let dek = match self.cached(scope, version) {
                    Some(d) => d,
                    None => self.unwrap_record(&rec)?,
                };
                self.cache(scope, version, dek.clone(), true);
                Ok((version, dek))
            }
            _ => self.start_version(tx, scope).await,
        }
    }

    /// Reserves the next uses of `scope`'s key `version` in the write `tx`; if that write does
    /// not commit, the uses it reserved are not counted as reserved.
    async fn reserve(
        &self,
        tx: &mut Tx,
        scope: &str,
        version: u32,
        dek: &Arc<Dek>,
    ) -> Result<(), CryptoError> {
        let batch = RESERVE_BATCH.min(self.inner.rotate_after) as i64;
        let total = keys::reserve(&mut tx.conn(), scope, version as i64, batch).await?;
        let previous = dek.reserved.swap(total.max(0) as u64, Ordering::Relaxed);
        let dek = dek.clone();
        tx.on_rollback(move || dek.reserved.store(previous, Ordering::Relaxed));
        Ok(())
    }

    /// Encrypts `plaintext` for the place `aad` under `scope`'s current key, inside the write
    /// `tx` (which creates the key on first use and counts its use).
    pub async fn encrypt(
        &self,
        tx: &mut Tx,
        scope: &Scope,
        aad: Aad<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        super::note_place(aad.table, aad.column);
        let scope = scope.as_key();
        let (mut version, mut dek) = self.write_key(tx, &scope).await?;
        let mut n = dek.used.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.inner.rotate_after {
            (version, dek) = self.start_version(tx, &scope).await?;
            n = dek.used.fetch_add(1, Ordering::Relaxed) + 1;
        }
        if n > dek.reserved.load(Ordering::Relaxed) {
            self.reserve(tx, &scope, version, &dek).await?;
        }
        aead::seal(&dek.key, &scope, version, &aad, plaintext)
    }

    /// Encrypts `plaintext` for the place `aad` under `scope`'s current key before the write
    /// it belongs to reaches the writer, so the writer's single task does not spend its time
    /// on it: concurrent writers encrypt in parallel. Needs no transaction; when the scope's
    /// current key is not cached yet, the encryption is left to [`Keyring::finish`].
    pub fn seal_ahead(
        &self,
        scope: &Scope,
        table: &'static str,
        row: String,
        column: &'static str,
        plaintext: &[u8],
    ) -> Result<Sealed, CryptoError> {
        super::note_place(table, column);
        let scope_key = scope.as_key();
        let current = self.current_cached(&scope_key);
        let ahead = match current.and_then(|v| self.cached(&scope_key, v).map(|d| (v, d))) {
            Some((version, dek)) => {
                let n = dek.used.fetch_add(1, Ordering::Relaxed) + 1;
                if n > self.inner.rotate_after {
                    None
                } else {
                    let aad = Aad {
                        table,
                        row: &row,
                        column,
                    };
                    let sealed = aead::seal(&dek.key, &scope_key, version, &aad, plaintext)?;
                    Some((version, sealed, dek))
                }
            }
            None => None,
        };
        Ok(Sealed {
            scope: scope.clone(),
            scope_key,
            table,
            column,
            row,
            plaintext: Zeroizing::new(plaintext.to_vec()),
            ahead,
        })
    }

    /// The ciphertext of a [`Sealed`] value, inside the write `tx`: the one made ahead if its
    /// key version is still the scope's current one in this process (after a rotation it is
    /// not, and the value is encrypted again under the new version), with its use counted
    /// against the key's reserved encryptions.
    pub async fn finish(&self, tx: &mut Tx, sealed: Sealed) -> Result<Vec<u8>, CryptoError> {
        if let Some((version, ciphertext, dek)) = sealed.ahead {
            let current = self.current_cached(&sealed.scope_key);
            if current == Some(version) {
                if dek.used.load(Ordering::Relaxed) > dek.reserved.load(Ordering::Relaxed) {
                    self.reserve(tx, &sealed.scope_key, version, &dek).await?;
                }
                return Ok(ciphertext);
            }
        }
        let aad = Aad {
            table: sealed.table,
            row: &sealed.row,
            column: sealed.column,
        };
        self.encrypt(tx, &sealed.scope, aad, &sealed.plaintext)
            .await
    }

    /// The ciphertext of `sealed` if [`Keyring::finish`] would need no transaction: it was
    /// sealed ahead under the scope's current key and its use is already reserved.
    pub fn finish_ready(&self, sealed: &Sealed) -> Option<Vec<u8>> {
        let (version, ciphertext, dek) = sealed.ahead.as_ref()?;
        let current = self.current_cached(&sealed.scope_key);
        let reserved = dek.used.load(Ordering::Relaxed) <= dek.reserved.load(Ordering::Relaxed);
        (current == Some(*version) && reserved).then(|| ciphertext.clone())
    }

    /// Decrypts a value stored at `aad` under `scope`.
    pub async fn decrypt(
        &self,
        conn: &mut Conn<'_>,
        scope: &Scope,
        aad: Aad<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let scope = scope.as_key();
        let version = aead::key_version(ciphertext)?;
        let dek = match self.cached(&scope, version) {
            Some(d) => d,
            None => {
                let rec = keys::get(conn, &scope, version as i64)
                    .await?
                    .ok_or_else(|| CryptoError::UnknownKey {
                        scope: scope.clone(),
                        version,
                    })?;
                let dek = self.unwrap_record(&rec)?;
                self.cache(&scope, version, dek.clone(), false);
                dek
            }
        };
        aead::open(&dek.key, &scope, &aad, ciphertext)
    }

    /// Decrypts a value that was UTF-8 text.
    pub async fn decrypt_text(
        &self,
        conn: &mut Conn<'_>,
        scope: &Scope,
        aad: Aad<'_>,
        ciphertext: &[u8],
    ) -> Result<String, CryptoError> {
        let bytes = self.decrypt(conn, scope, aad, ciphertext).await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CryptoError::Malformed("not UTF-8"))
    }

    fn scope_destroyed(&self, scope: &str) -> bool {
        self.inner
            .destroyed
            .read()
            .map(|d| d.contains(scope))
            .unwrap_or(false)
    }

    /// Whether `scope`'s key was destroyed (its person erased) as far as this process knows.
    /// Asked for every audit entry with a subject: where no one was erased, it costs a read
    /// lock and no allocation.
    pub fn is_destroyed(&self, scope: &Scope) -> bool {
        let Ok(destroyed) = self.inner.destroyed.read() else {
            return false;
        };
        !destroyed.is_empty() && destroyed.contains(&scope.as_key())
    }

    /// Destroys every version of `scope`'s data key inside the write `tx` (crypto-shredding:
    /// whatever is still sealed under it can no longer be read, here or in any copy of the
    /// database made from now on); how many versions went. The cached keys are forgotten at
    /// once, whether or not the write commits (a later read unwraps them again if it did not).
    pub async fn destroy(&self, tx: &mut Tx, scope: &Scope) -> Result<u64, CryptoError> {
        let scope = scope.as_key();
        let n = keys::destroy(&mut tx.conn(), &scope).await?;
        if let Ok(mut destroyed) = self.inner.destroyed.write() {
            destroyed.insert(scope.clone());
        }
        if let Ok(mut deks) = self.inner.deks.write() {
            deks.retain(|(s, _), _| *s != scope);
        }
        if let Ok(mut cur) = self.inner.current.write() {
            cur.remove(&scope);
        }
        Ok(n)
    }

    /// The key version a ciphertext was made with.
    pub fn version_of(ciphertext: &[u8]) -> Result<u32, CryptoError> {
        aead::key_version(ciphertext)
    }

    /// The version new writes under `scope` use, if the scope has a live key.
    pub async fn current_version(
        &self,
        conn: &mut Conn<'_>,
        scope: &Scope,
    ) -> Result<Option<u32>, CryptoError> {
        Ok(keys::latest(conn, &scope.as_key())
            .await?
            .filter(|r| r.retired_at.is_none())
            .map(|r| r.version as u32))
    }

    /// Forgets which versions are current, so the next write under each scope reads the
    /// newest version from the database (after another process rotated keys). Cached keys
    /// stay cached: old data keeps decrypting without unwrapping.
    pub fn refresh_current(&self) {
        if let Ok(mut cur) = self.inner.current.write() {
            cur.clear();
        }
    }

    /// Starts a new version for each of `scopes` (new writes use it; old data still decrypts).
    pub async fn rotate(&self, tx: &mut Tx, scopes: &[String]) -> Result<usize, CryptoError> {
        for scope in scopes {
            self.start_version(tx, scope).await?;
        }
        Ok(scopes.len())
    }

    /// Every version of `workspace`'s search index key, unwrapped, and the version new index
    /// files use; the first call creates version 1 (in a write of its own). The index key is a
    /// data key of its own scope (`search:<workspace>`), wrapped by the KEK like every other:
    /// `concord keys rotate` starts a new version (new files use it, old ones still open), and
    /// deleting the scope's keys makes the workspace's index unreadable.
    pub async fn search_keys(
        &self,
        store: &Store,
        workspace: WorkspaceId,
    ) -> Result<(u32, HashMap<u32, Zeroizing<[u8; 32]>>), CryptoError> {
        let scope = format!("search:{workspace}");
        let mut records = {
            let mut conn = store.reader().await?;
            keys::versions(&mut conn.conn(), &scope).await?
        };
        if records.iter().all(|r| r.retired_at.is_some()) {
            let me = self.clone();
            let s = scope.clone();
            store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        let live = keys::latest(&mut tx.conn(), &s)
                            .await?
                            .is_some_and(|r| r.retired_at.is_none());
                        if !live {
                            me.start_version(tx, &s).await?;
                        }
                        Ok::<(), CryptoError>(())
                    })
                })
                .await?;
            let mut conn = store.reader().await?;
            records = keys::versions(&mut conn.conn(), &scope).await?;
        }
        let mut out = HashMap::new();
        let mut current = 0;
        for rec in &records {
            let key = self.inner.kek.unwrap(&rec.scope, &rec.wrapped)?;
            out.insert(rec.version as u32, to_array(&key, &rec.scope)?);
            if rec.retired_at.is_none() {
                current = current.max(rec.version as u32);
            }
        }
        if current == 0 {
            return Err(CryptoError::UnknownKey { scope, version: 0 });
        }
        Ok((current, out))
    }

    /// Every key scope that holds user or workspace data.
    pub async fn data_scopes(conn: &mut Conn<'_>) -> Result<Vec<String>, StoreError> {
        let mut scopes: Vec<String> = keys::all(conn)
            .await?
            .into_iter()
            .map(|r| r.scope)
            .filter(|s| !s.starts_with("system:") || s == "system:audit")
            .collect();
        scopes.dedup();
        Ok(scopes)
    }

    /// Every key version, for status.
    pub async fn status(conn: &mut Conn<'_>) -> Result<Vec<KeyStatus>, StoreError> {
        Ok(keys::all(conn)
            .await?
            .into_iter()
            .map(|r| KeyStatus {
                retired: r.retired_at.is_some(),
                scope: r.scope,
                version: r.version,
                kek_id: r.kek_id,
                encryptions: r.encryptions,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Every version of the audit checkpoint signing key, oldest first.
    pub async fn signing_keys(conn: &mut Conn<'_>) -> Result<Vec<SigningKeyInfo>, StoreError> {
        Ok(keys::versions(conn, SIGNING_SCOPE)
            .await?
            .into_iter()
            .filter_map(|r| {
                Some(SigningKeyInfo {
                    version: r.version,
                    public_key: r.public_key?,
                    created_at: r.created_at,
                })
            })
            .collect())
    }

    /// Starts a new version of the audit checkpoint signing key inside the write `tx`,
    /// retiring the current one (its public key stays in the history, so checkpoints it
    /// signed still verify); returns the new version. Checkpoints signed after the write
    /// commits use it.
    pub async fn rotate_signing_key(&self, tx: &mut Tx) -> Result<SigningKeyInfo, CryptoError> {
        let now = Utc::now();
        let next = match keys::latest(&mut tx.conn(), SIGNING_SCOPE).await? {
            Some(rec) => {
                keys::retire(&mut tx.conn(), SIGNING_SCOPE, rec.version, now).await?;
                rec.version + 1
            }
            None => 1,
        };
        let seed = random_key();
        let public_key = SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes()
            .to_vec();
        let record = new_record(
            &self.inner.kek,
            SIGNING_SCOPE,
            next,
            &seed,
            Some(public_key.clone()),
        )?;
        keys::insert(&mut tx.conn(), &record).await?;
        Ok(SigningKeyInfo {
            version: next,
            public_key,
            created_at: record.created_at,
        })
    }

    fn signing_key(&self, rec: &DataKeyRecord) -> Result<Arc<SigningKey>, CryptoError> {
        if let Some(key) = self
            .inner
            .signing
            .lock()
            .ok()
            .and_then(|m| m.get(&rec.version).cloned())
        {
            return Ok(key);
        }
        let seed = self.inner.kek.unwrap(&rec.scope, &rec.wrapped)?;
        let key = Arc::new(SigningKey::from_bytes(&*to_array(&seed, &rec.scope)?));
        if let Ok(mut m) = self.inner.signing.lock() {
            m.insert(rec.version, key.clone());
        }
        Ok(key)
    }

    /// Rewraps every data key from `old` to `new` inside the write `tx`: until it commits the
    /// old KEK stays the valid one, afterwards only the new one is. Data is not touched.
    pub async fn rewrap_all(tx: &mut Tx, old: &Kek, new: &Kek) -> Result<usize, CryptoError> {
        check_kek(&mut tx.conn(), old).await?;
        let all = keys::all(&mut tx.conn()).await?;
        for rec in &all {
            let key = old.unwrap(&rec.scope, &rec.wrapped)?;
            let wrapped = new.wrap(&rec.scope, rec.version as u32, &key)?;
            keys::rewrap(&mut tx.conn(), &rec.scope, rec.version, new.id(), &wrapped).await?;
        }
        Ok(all.len())
    }
}

impl CheckpointSigner for Keyring {
    fn sign(&self, key: &DataKeyRecord, message: &[u8]) -> Result<Vec<u8>, String> {
        let signing = self.signing_key(key).map_err(|e| e.to_string())?;
        Ok(signing.sign(message).to_bytes().to_vec())
    }
}
