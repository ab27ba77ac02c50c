//! Access-token signing keys, with key ids so keys can be rotated.
//!
//! Keys come from `auth.signing_key` (environment or file) or from `<data_dir>/keys/access-token.keys`,
//! one `kid base64-secret` per line, the first line signing and every line verifying. In
//! development mode a missing file is generated with a loud warning; production refuses.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::{Config, Mode};

/// Why the signing keys cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Production mode with no key configured.
    #[error("no access-token signing key: set auth.signing_key (CONCORD_AUTH__SIGNING_KEY) or create {0}")]
    Missing(PathBuf),
    /// The key file can be read by others.
    #[error("{0} is readable by other users (mode {1:o}); run chmod 600 on it")]
    Permissions(PathBuf, u32),
    /// The key file is malformed.
    #[error(
        "{path}: line {line}: expected `kid base64-secret` with a secret of at least 32 bytes"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
    },
    /// Reading or writing the file failed.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The key that signs new access tokens and every key that still verifies them.
pub struct SigningKeys {
    active: (String, Zeroizing<Vec<u8>>),
    all: HashMap<String, Zeroizing<Vec<u8>>>,
    /// Whether the key was generated just now (for a warning at start).
    pub generated: Option<PathBuf>,
}

impl SigningKeys {
    /// Loads keys as the configuration says.
    pub fn load(config: &Config) -> Result<SigningKeys, KeyError> {
        if let Some(secret) = &config.auth.signing_key {
            let bytes = Zeroizing::new(secret.expose().as_bytes().to_vec());
            let kid = hex::encode(&Sha256::digest(&bytes)[..8]);
            return Ok(Self::from_list(vec![(kid, bytes)], None));
        }
        let path = config.data_dir.join("keys").join("access-token.keys");
        if !path.exists() {
            if config.mode == Mode::Production {
                return Err(KeyError::Missing(path));
            }
            generate(&path)?;
            let mut keys = read(&path)?;
            keys.generated = Some(path);
            return Ok(keys);
        }
        read(&path)
    }

    fn from_list(
        list: Vec<(String, Zeroizing<Vec<u8>>)>,
        generated: Option<PathBuf>,
    ) -> SigningKeys {
        let active = list[0].clone();
        SigningKeys {
            active,
            all: list.into_iter().collect(),
            generated,
        }
    }

    /// The key id and secret that sign new tokens.
    pub fn active(&self) -> (&str, &[u8]) {
        (&self.active.0, &self.active.1)
    }

    /// The secret for a key id, if it still verifies.
    pub fn verifying(&self, kid: &str) -> Option<&[u8]> {
        self.all.get(kid).map(|k| k.as_slice())
    }
}

fn generate(path: &Path) -> Result<(), KeyError> {
    let io = |e| KeyError::Io(path.to_owned(), e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(secret.as_mut());
    let kid = hex::encode(&Sha256::digest(secret.as_ref())[..8]);
    let line = Zeroizing::new(format!("{kid} {}\n", STANDARD.encode(secret.as_ref())));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

fn read(path: &Path) -> Result<SigningKeys, KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| KeyError::Io(path.to_owned(), e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions(path.to_owned(), mode & 0o777));
        }
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| KeyError::Io(path.to_owned(), e))?,
    );
    let mut list = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let malformed = || KeyError::Malformed {
            path: path.to_owned(),
            line: i + 1,
        };
        let (kid, secret) = line.trim().split_once(' ').ok_or_else(malformed)?;
        let bytes = Zeroizing::new(STANDARD.decode(secret.trim()).map_err(|_| malformed())?);
        if bytes.len() < 32 || kid.is_empty() {
            return Err(malformed());
        }
        list.push((kid.to_owned(), bytes));
    }
    if list.is_empty() {
        return Err(KeyError::Malformed {
            path: path.to_owned(),
            line: 1,
        });
    }
    Ok(SigningKeys::from_list(list, None))
}
