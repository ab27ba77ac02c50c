//! The key-encryption key (KEK) and where it comes from.
//!
//! The KEK only wraps data keys. It is read from a [`KeyProvider`]: a file of base64 (refused
//! if other users may read it), the `keys.kek` setting (`CONCORD_KEYS__KEK`), or, later, a KMS
//! or Vault transit implementation of the trait. Development mode generates a missing key
//! file with a loud warning; production mode refuses to start without one.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::aead::{self, Aad};
use super::CryptoError;
use crate::config::{Config, Mode, Secret};

/// A key-encryption key; zeroized on drop.
pub struct Kek {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Kek {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(bytes);
        let digest = Sha256::new()
            .chain_update(b"concord-kek-id")
            .chain_update(key.as_ref())
            .finalize();
        Kek {
            id: hex::encode(&digest[..8]),
            key,
        }
    }

    /// A fresh random KEK.
    pub fn generate() -> Kek {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Kek::from_bytes(&bytes)
    }

    /// Parses base64 of 32 bytes; `source` names where it came from for the error.
    pub fn parse(text: &str, source: &str) -> Result<Kek, CryptoError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| CryptoError::KekMalformed(source.to_owned()))?,
        );
        let array: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::KekMalformed(source.to_owned()))?;
        Ok(Kek::from_bytes(array))
    }

    /// A public identifier of this KEK (not secret: a truncated hash).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The KEK as base64, for writing a key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.key.as_ref()))
    }

    /// Wraps a data key for `scope` version `version`.
    pub fn wrap(&self, scope: &str, version: u32, dek: &[u8]) -> Result<Vec<u8>, CryptoError> {
        aead::seal(&self.key, scope, version, &wrap_aad(scope), dek)
    }

    /// Unwraps a data key wrapped by [`Kek::wrap`] for the same scope.
    pub fn unwrap(&self, scope: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        aead::open(&self.key, scope, &wrap_aad(scope), wrapped)
    }
}

fn wrap_aad(scope: &str) -> Aad<'_> {
    Aad {
        table: "data_keys",
        row: scope,
        column: "wrapped",
    }
}

/// Where a KEK comes from. Implement it to fetch the KEK from a KMS or Vault transit.
pub trait KeyProvider: Send + Sync {
    /// Where the key comes from, for messages (never the key).
    fn describe(&self) -> String;
    /// Loads the KEK.
    fn load(&self) -> Result<Kek, CryptoError>;
}

/// A KEK in a file of base64; the file must not be readable by group or others.
pub struct FileKeyProvider {
    /// The file.
    pub path: PathBuf,
}

impl KeyProvider for FileKeyProvider {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Kek, CryptoError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.path)
                .map_err(|e| CryptoError::Io(self.path.clone(), e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(CryptoError::KekPermissions(self.path.clone(), mode & 0o777));
            }
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(&self.path)
                .map_err(|e| CryptoError::Io(self.path.clone(), e))?,
        );
        Kek::parse(&text, &self.describe())
    }
}

/// A KEK given in the configuration (usually `CONCORD_KEYS__KEK`).
pub struct EnvKeyProvider {
    /// The base64 value.
    pub value: Secret,
}

impl KeyProvider for EnvKeyProvider {
    fn describe(&self) -> String {
        "keys.kek (CONCORD_KEYS__KEK)".into()
    }

    fn load(&self) -> Result<Kek, CryptoError> {
        Kek::parse(self.value.expose(), &self.describe())
    }
}

/// The provider the configuration names.
pub fn provider(config: &Config) -> Box<dyn KeyProvider> {
    match &config.keys.kek {
        Some(value) => Box::new(EnvKeyProvider {
            value: value.clone(),
        }),
        None => Box::new(FileKeyProvider {
            path: config.kek_file(),
        }),
    }
}

/// Loads the KEK; in development mode a missing key file is generated, and its path is
/// returned so the caller can warn loudly.
pub fn load(config: &Config) -> Result<(Kek, Option<PathBuf>), CryptoError> {
    if config.keys.kek.is_none() {
        let path = config.kek_file();
        if !path.exists() {
            if config.mode == Mode::Production {
                return Err(CryptoError::KekMissing(path));
            }
            let kek = Kek::generate();
            write_key_file(&path, &kek)?;
            return Ok((kek, Some(path)));
        }
    }
    Ok((provider(config).load()?, None))
}

/// Writes a KEK to a new file with mode 0600; refuses to overwrite.
pub fn write_key_file(path: &Path, kek: &Kek) -> Result<(), CryptoError> {
    let io = |e| CryptoError::Io(path.to_owned(), e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    let line = Zeroizing::new(format!("{}\n", kek.to_base64().as_str()));
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::Kek;

    #[test]
    fn wraps_for_one_scope_only() {
        let kek = Kek::generate();
        let wrapped = kek.wrap("user:a", 1, &[9; 32]).unwrap();
        assert_eq!(kek.unwrap("user:a", &wrapped).unwrap().as_slice(), &[9; 32]);
        assert!(kek.unwrap("user:b", &wrapped).is_err());
        assert!(Kek::generate().unwrap("user:a", &wrapped).is_err());
        assert_eq!(Kek::parse(&kek.to_base64(), "t").unwrap().id(), kek.id());
    }
}
