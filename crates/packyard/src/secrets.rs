//! The server secret, and the sealing of what must not be stored in plain text: repository
//! signing keys are kept in the database encrypted with AES-256-GCM under this secret.
//!
//! The secret comes from `secret_key` (base64 of 32 bytes; `PACKYARD_SECRET_KEY`) or, on the
//! embedded default, from `DATA_DIR/secret.key`, generated on first start with mode 0600.
//! Every process of a deployment needs the same secret.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use anyhow::{Context, Result};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::Config;

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;

pub struct SecretBox {
    cipher: Aes256Gcm,
    /// Keys the web UI's form tokens; derived from the secret, never the secret itself.
    mac_key: [u8; 32],
}

impl SecretBox {
    pub fn load(config: &Config) -> Result<SecretBox> {
        let key = match &config.secret_key {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .context("secret_key is not base64")?,
            None => file_secret(&config.data_dir.join("secret.key"))?,
        };
        anyhow::ensure!(
            key.len() == 32,
            "the server secret must be 32 bytes, not {}",
            key.len()
        );
        let mut derive = Sha256::new();
        derive.update(b"packyard form tokens\0");
        derive.update(&key);
        Ok(SecretBox {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
            mac_key: derive.finalize().into(),
        })
    }

    /// The 32 bytes of the server secret as configured (or as kept in the data folder), for a
    /// backup that includes it; nothing is created.
    pub fn raw_key(config: &Config) -> Result<Vec<u8>> {
        match &config.secret_key {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .context("secret_key is not base64"),
            None => {
                let path = config.data_dir.join("secret.key");
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
            }
        }
    }

    /// `enc:v1:` and the base64 of a random nonce followed by the ciphertext.
    pub fn seal(&self, plain: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| anyhow::anyhow!("encrypting a secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// HMAC-SHA256 of `message` under a key derived from the secret, as hex.
    pub fn mac(&self, message: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.mac_key)
            .expect("HMAC takes keys of any length");
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `tag` is the MAC of `message`, compared in constant time.
    pub fn verify_mac(&self, message: &[u8], tag: &str) -> bool {
        let Ok(tag) = hex::decode(tag) else {
            return false;
        };
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.mac_key)
            .expect("HMAC takes keys of any length");
        mac.update(message);
        mac.verify_slice(&tag).is_ok()
    }

    pub fn open(&self, stored: &str) -> Result<String> {
        let encoded = stored
            .strip_prefix(PREFIX)
            .context("a stored secret is not sealed")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .context("a sealed secret is not base64")?;
        anyhow::ensure!(bytes.len() > NONCE_LEN, "a sealed secret is cut short");
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), sealed).map_err(|_| {
            anyhow::anyhow!("a sealed secret does not open with this server's secret key; every process needs the same secret_key")
        })?;
        Ok(String::from_utf8(plain)?)
    }
}

/// Reads the secret file, creating it with 32 random bytes and mode 0600 if it is missing.
fn file_secret(path: &Path) -> Result<Vec<u8>> {
    if let Ok(bytes) = std::fs::read(path) {
        return Ok(bytes);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    // On disk before any signing key sealed with it is committed: a secret lost in a power
    // loss would leave every sealed key unreadable.
    match crate::storage::create_private_file(path, &key) {
        Ok(()) => Ok(key.to_vec()),
        // Another process created it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read(path)?),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_another_secret() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let secrets = SecretBox::load(&config).unwrap();
        let mode = std::fs::metadata(dir.path().join("secret.key"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let sealed = secrets
            .seal("-----BEGIN PGP PRIVATE KEY BLOCK-----")
            .unwrap();
        assert!(sealed.starts_with("enc:v1:") && !sealed.contains("PRIVATE"));
        assert_eq!(
            secrets.open(&sealed).unwrap(),
            "-----BEGIN PGP PRIVATE KEY BLOCK-----"
        );
        assert_eq!(
            SecretBox::load(&config).unwrap().open(&sealed).unwrap(),
            "-----BEGIN PGP PRIVATE KEY BLOCK-----"
        );

        let other = Config {
            secret_key: Some(base64::engine::general_purpose::STANDARD.encode([7u8; 32])),
            ..config
        };
        let error = SecretBox::load(&other).unwrap().open(&sealed).unwrap_err();
        assert!(error.to_string().contains("same secret_key"));
        assert!(
            secrets
                .open("-----BEGIN PGP PRIVATE KEY BLOCK-----")
                .is_err()
        );
    }
}
