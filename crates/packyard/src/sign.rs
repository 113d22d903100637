//! Repository signing keys: generation with an expiry, extension, import of keys made
//! elsewhere, and the signatures on `InRelease`, `Release.gpg` and `repomd.xml.asc`.
//!
//! A repository may have several signing keys during a rotation; every signature made here is
//! made by each of them, so clients that trust either key keep verifying (apt 2.6 accepts an
//! InRelease with one good signature and others by keys it does not know; librepo accepts a
//! `repomd.xml.asc` when any of its signatures is valid).

use anyhow::{Context, Result};
use pgp::armor::BlockType;
use pgp::composed::{
    CleartextSignedMessage, Deserializable, DetachedSignature, KeyType, SignedKeyDetails,
    SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{
    KeyFlags, PubKeyInner, PublicKey, SecretKey, Signature, SignatureConfig, SignatureType,
    Subpacket, SubpacketData, UserId,
};
use pgp::ser::Serialize;
use pgp::types::{
    Duration, KeyDetails, KeyVersion, Mpi, Password, PlainSecretParams, PublicParams,
    SignatureBytes, SignedUser, SigningKey, Tag, Timestamp,
};
use serde::Deserialize;

/// The public-key algorithm of new signing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// RSA-4096: accepted by every apt, gpg and rpm in use, old ones included.
    Rsa4096,
    /// Ed25519 (v4 EdDSA): small and fast; rejected by some older rpm builds.
    Ed25519,
}

impl KeyAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa4096 => "rsa4096",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rsa4096" => Ok(KeyAlgorithm::Rsa4096),
            "ed25519" => Ok(KeyAlgorithm::Ed25519),
            other => anyhow::bail!("unknown key algorithm {other:?}: use rsa4096 or ed25519"),
        }
    }
}

/// The `expires_at` of a key that never expires.
pub const NEVER_EXPIRES: i64 = i64::MAX;

/// A key ready to store: generated, extended or imported.
pub struct GeneratedKey {
    pub fingerprint: String,
    pub public_armored: String,
    pub secret_armored: String,
    pub created_at: i64,
    /// Unix seconds, or `NEVER_EXPIRES`.
    pub expires_at: i64,
}

/// Generates a certify-and-sign primary key for `user_id` that expires after `validity_secs`.
pub fn generate(
    user_id: &str,
    algorithm: KeyAlgorithm,
    validity_secs: u32,
) -> Result<GeneratedKey> {
    generate_at(
        user_id,
        algorithm,
        Timestamp::now().as_secs(),
        validity_secs,
    )
}

/// As `generate`, with the key's creation time given (tests make keys that have expired).
pub fn generate_at(
    user_id: &str,
    algorithm: KeyAlgorithm,
    created_secs: u32,
    validity_secs: u32,
) -> Result<GeneratedKey> {
    let mut rng = rand::thread_rng();
    let key_type = match algorithm {
        KeyAlgorithm::Rsa4096 => KeyType::Rsa(4096),
        KeyAlgorithm::Ed25519 => KeyType::Ed25519Legacy,
    };
    let (public_params, secret_params) = key_type.generate(&mut rng)?;
    let created = Timestamp::from_secs(created_secs);
    let inner = PubKeyInner::new(
        KeyVersion::V4,
        key_type.to_alg(),
        created,
        None,
        public_params,
    )?;
    let public = PublicKey::from_inner(inner)?;
    let secret = SecretKey::new(public.clone(), secret_params)?;

    let user_id = UserId::from_str(Default::default(), user_id)?;
    let certification = self_certification(&secret, &public, &user_id, created, validity_secs)?;
    let details = SignedKeyDetails::new(
        vec![],
        vec![],
        vec![SignedUser::new(user_id, vec![certification])],
        vec![],
    );
    let signed = SignedSecretKey::new(secret, details, vec![], vec![]);
    stored(&signed)
}

/// The key as it is stored: fingerprint, both armors, and its lifetime from its newest
/// self-signature.
fn stored(key: &SignedSecretKey) -> Result<GeneratedKey> {
    let public_key = SignedPublicKey::from(key.clone());
    let created_at = i64::from(key.primary_key.created_at().as_secs());
    let expires_at = match expiry(&key.details) {
        Some(validity) if validity.as_secs() > 0 => created_at + i64::from(validity.as_secs()),
        _ => NEVER_EXPIRES,
    };
    Ok(GeneratedKey {
        fingerprint: hex::encode_upper(key.fingerprint().as_bytes()),
        public_armored: public_key.to_armored_string(Default::default())?,
        secret_armored: key.to_armored_string(Default::default())?,
        created_at,
        expires_at,
    })
}

/// The key expiration time of the newest self-signature: what gpg and gpgv go by.
fn expiry(details: &SignedKeyDetails) -> Option<Duration> {
    details
        .users
        .iter()
        .flat_map(|user| &user.signatures)
        .chain(&details.direct_signatures)
        .max_by_key(|signature| signature.created().map(Timestamp::as_secs))
        .and_then(Signature::key_expiration_time)
}

/// The same key with a new self-signature on each user ID that moves its expiry to
/// `expires_at` (Unix seconds); its fingerprint does not change.
pub fn extend(secret_armored: &str, expires_at: i64) -> Result<GeneratedKey> {
    let (mut key, _) = SignedSecretKey::from_string(secret_armored)
        .context("a stored signing key does not parse")?;
    let created = key.primary_key.created_at();
    let validity = expires_at - i64::from(created.as_secs());
    anyhow::ensure!(validity > 0, "the new expiry is before the key was made");
    let validity = u32::try_from(validity).context("the new expiry is too far away")?;
    let public = key.primary_key.public_key().clone();
    let now = Timestamp::now();
    for user in &mut key.details.users {
        let signature = self_certification(&key.primary_key, &public, &user.id, now, validity)?;
        user.signatures = vec![signature];
    }
    anyhow::ensure!(
        !key.details.users.is_empty(),
        "the key has no user ID to sign again"
    );
    stored(&key)
}

/// Why an armored private key cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "this is a public key; import needs the private key (gpg --export-secret-keys --armor FINGERPRINT)"
    )]
    PublicOnly,
    #[error("not an armored OpenPGP private key: {0}")]
    Malformed(String),
    #[error(
        "the private key is protected by a passphrase; remove the passphrase first \
         (gpg --pinentry-mode loopback --passwd FINGERPRINT, with an empty new passphrase) and export it again"
    )]
    Passphrase,
    #[error("the key's primary key cannot make signatures; import a key whose primary key signs")]
    CannotSign,
    #[error("the key's self-signatures do not verify: {0}")]
    BadSelfSignature(String),
    #[error("the key expired on {0}; extend it before importing it")]
    Expired(String),
}

/// An armored private key made elsewhere (such as with `gpg --quick-gen-key`), checked and
/// ready to store: unprotected, able to sign, not expired.
pub fn import(armored: &str) -> Result<GeneratedKey, ImportError> {
    let armored = armored.trim();
    let key = match SignedSecretKey::from_string(armored) {
        Ok((key, _)) => key,
        Err(e) => {
            if SignedPublicKey::from_string(armored).is_ok() {
                return Err(ImportError::PublicOnly);
            }
            return Err(ImportError::Malformed(e.to_string()));
        }
    };
    if key.primary_key.secret_params().is_encrypted() {
        return Err(ImportError::Passphrase);
    }
    key.verify_bindings()
        .map_err(|e| ImportError::BadSelfSignature(e.to_string()))?;
    let newest = key
        .details
        .users
        .iter()
        .flat_map(|user| &user.signatures)
        .max_by_key(|signature| signature.created().map(Timestamp::as_secs));
    if newest.is_some_and(|signature| !signature.key_flags().sign()) {
        return Err(ImportError::CannotSign);
    }
    let stored = stored(&key).map_err(|e| ImportError::Malformed(format!("{e:#}")))?;
    if stored.expires_at <= Timestamp::now().as_secs().into() {
        return Err(ImportError::Expired(crate::keys::date(stored.expires_at)));
    }
    Ok(stored)
}

/// The public-key algorithm of an armored public key, as `key list` shows it: `rsa4096`,
/// `ed25519`, ...
pub fn algorithm(public_armored: &str) -> Result<String> {
    use rsa::traits::PublicKeyParts;
    let (key, _) = SignedPublicKey::from_string(public_armored)?;
    Ok(match key.primary_key.public_params() {
        PublicParams::RSA(rsa) => format!("rsa{}", rsa.key.size() * 8),
        PublicParams::EdDSALegacy(_) | PublicParams::Ed25519(_) => "ed25519".to_owned(),
        PublicParams::Ed448(_) => "ed448".to_owned(),
        PublicParams::ECDSA(_) => "ecdsa".to_owned(),
        PublicParams::DSA(_) => "dsa".to_owned(),
        _ => format!("{:?}", key.primary_key.algorithm()).to_lowercase(),
    })
}

/// The user-ID self-signature that carries the key's flags and expiry, made at `signed_at`.
fn self_certification(
    secret: &SecretKey,
    public: &PublicKey,
    user_id: &UserId,
    signed_at: Timestamp,
    validity_secs: u32,
) -> Result<Signature> {
    let mut rng = rand::thread_rng();
    let mut flags = KeyFlags::default();
    flags.set_certify(true);
    flags.set_sign(true);
    let mut config = SignatureConfig::from_key(&mut rng, secret, SignatureType::CertPositive)?;
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(signed_at))?,
        Subpacket::regular(SubpacketData::IssuerFingerprint(secret.fingerprint()))?,
        Subpacket::regular(SubpacketData::KeyFlags(flags))?,
        Subpacket::regular(SubpacketData::KeyExpirationTime(Duration::from_secs(
            validity_secs,
        )))?,
        Subpacket::regular(SubpacketData::PreferredHashAlgorithms(smallvec::smallvec![
            HashAlgorithm::Sha512,
            HashAlgorithm::Sha256
        ]))?,
        Subpacket::regular(SubpacketData::IsPrimary(true))?,
    ];
    config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
        secret.legacy_key_id(),
    ))?];
    Ok(config.sign_certification(secret, public, &Password::empty(), Tag::UserId, user_id)?)
}

/// The keys that sign a repository's metadata, parsed once per publish.
pub struct Signer {
    keys: Vec<SigningKeyPair>,
}

/// A signing key, and for RSA its private key loaded into aws-lc: an RSA-4096 signature there
/// takes a fraction of the time the OpenPGP crate's own arithmetic does (`packyard bench`'s
/// end-to-end scenario signs twice per APT publish).
struct SigningKeyPair {
    key: SignedSecretKey,
    rsa: Option<aws_lc_rs::rsa::KeyPair>,
}

impl Signer {
    pub fn from_armored(secret_keys: &[String]) -> Result<Signer> {
        let keys = secret_keys
            .iter()
            .map(|armored| {
                let (key, _) = SignedSecretKey::from_string(armored)
                    .context("a stored signing key does not parse")?;
                let rsa = aws_lc_rsa_key(&key.primary_key)?;
                Ok(SigningKeyPair { key, rsa })
            })
            .collect::<Result<_>>()?;
        Ok(Signer { keys })
    }

    /// A cleartext-signed copy of `text`, as `InRelease` is.
    pub fn clearsign(&self, text: &str) -> Result<String> {
        let message = CleartextSignedMessage::new_many(text, |normalized| {
            self.keys
                .iter()
                .map(|pair| pair.sign(normalized.as_bytes(), SignatureType::Text))
                .collect()
        })?;
        Ok(message.to_armored_string(Default::default())?)
    }

    /// `InRelease` (cleartext-signed) and `Release.gpg` (a detached signature) of one `Release`
    /// text, made at the same time on two threads: with RSA-4096 each takes milliseconds.
    pub fn release_signatures(&self, release: &str) -> Result<(String, String)> {
        std::thread::scope(|scope| {
            let detached = scope.spawn(|| self.detached(release.as_bytes()));
            let clearsigned = self.clearsign(release);
            let detached = detached
                .join()
                .map_err(|_| anyhow::anyhow!("the signing thread panicked"))?;
            Ok((clearsigned?, detached?))
        })
    }

    /// An armored detached signature over `data`, as `Release.gpg` is.
    pub fn detached(&self, data: &[u8]) -> Result<String> {
        let signatures = self
            .keys
            .iter()
            .map(|pair| {
                pair.sign(data, SignatureType::Binary)
                    .map(DetachedSignature::new)
            })
            .collect::<pgp::errors::Result<Vec<_>>>()?;
        let mut out = Vec::new();
        pgp::armor::write(&signatures, BlockType::Signature, &mut out, None, true)?;
        Ok(String::from_utf8(out)?)
    }
}

impl SigningKeyPair {
    fn sign(&self, data: &[u8], typ: SignatureType) -> pgp::errors::Result<Signature> {
        match &self.rsa {
            Some(rsa) => {
                let key = AwsLcRsa {
                    key: &self.key.primary_key,
                    rsa,
                };
                signature(&key, data, typ)
            }
            None => signature(&self.key.primary_key, data, typ),
        }
    }
}

/// The RSA private key of `key` as aws-lc takes it, or `None` when `key` is not RSA or has a
/// size aws-lc does not sign with (the OpenPGP crate then signs).
fn aws_lc_rsa_key(key: &SecretKey) -> Result<Option<aws_lc_rs::rsa::KeyPair>> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;

    let PublicParams::RSA(public) = key.public_params() else {
        return Ok(None);
    };
    let secret = key.unlock(&Password::empty(), |_, secret| match secret {
        PlainSecretParams::RSA(secret) => Ok(Some(secret.to_bytes())),
        _ => Ok(None),
    })??;
    let Some((d, p, q, _)) = secret else {
        return Ok(None);
    };
    let private = rsa::RsaPrivateKey::from_components(
        public.key.n().clone(),
        public.key.e().clone(),
        rsa::BigUint::from_bytes_be(&d),
        vec![
            rsa::BigUint::from_bytes_be(&p),
            rsa::BigUint::from_bytes_be(&q),
        ],
    )
    .context("a stored RSA signing key is inconsistent")?;
    let der = private
        .to_pkcs1_der()
        .context("a stored RSA signing key does not encode")?;
    Ok(aws_lc_rs::rsa::KeyPair::from_der(der.as_bytes()).ok())
}

/// An RSA signing key whose signatures aws-lc makes over the digest the OpenPGP crate computed.
#[derive(Debug)]
struct AwsLcRsa<'a> {
    key: &'a SecretKey,
    rsa: &'a aws_lc_rs::rsa::KeyPair,
}

impl SigningKey for AwsLcRsa<'_> {
    fn sign(
        &self,
        key_pw: &Password,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> pgp::errors::Result<SignatureBytes> {
        use aws_lc_rs::{digest, signature};

        let (algorithm, encoding): (_, &'static dyn signature::RsaEncoding) = match hash {
            HashAlgorithm::Sha256 => (&digest::SHA256, &signature::RSA_PKCS1_SHA256),
            HashAlgorithm::Sha384 => (&digest::SHA384, &signature::RSA_PKCS1_SHA384),
            HashAlgorithm::Sha512 => (&digest::SHA512, &signature::RSA_PKCS1_SHA512),
            _ => return self.key.sign(key_pw, hash, digest),
        };
        let mut signature = vec![0; self.rsa.public_modulus_len()];
        digest::Digest::import_less_safe(digest, algorithm)
            .and_then(|digest| self.rsa.sign_digest(encoding, &digest, &mut signature))
            .map_err(|_| {
                pgp::errors::Error::from("aws-lc could not make an RSA signature".to_string())
            })?;
        Ok(SignatureBytes::Mpis(vec![Mpi::from_slice(&signature)]))
    }

    fn hash_alg(&self) -> HashAlgorithm {
        self.key.hash_alg()
    }
}

impl KeyDetails for AwsLcRsa<'_> {
    fn version(&self) -> KeyVersion {
        self.key.version()
    }
    fn legacy_key_id(&self) -> pgp::types::KeyId {
        self.key.legacy_key_id()
    }
    fn fingerprint(&self) -> pgp::types::Fingerprint {
        self.key.fingerprint()
    }
    fn algorithm(&self) -> pgp::crypto::public_key::PublicKeyAlgorithm {
        self.key.algorithm()
    }
    fn created_at(&self) -> Timestamp {
        self.key.created_at()
    }
    fn legacy_v3_expiration_days(&self) -> Option<u16> {
        self.key.legacy_v3_expiration_days()
    }
    fn public_params(&self) -> &PublicParams {
        self.key.public_params()
    }
}

/// A signature of `typ` by `signing_key` over `data`: SHA-512, with its creation time and issuer.
fn signature(
    signing_key: &impl SigningKey,
    data: &[u8],
    typ: SignatureType,
) -> pgp::errors::Result<Signature> {
    let mut config = SignatureConfig::from_key(rand::thread_rng(), signing_key, typ)?;
    config.hash_alg = HashAlgorithm::Sha512;
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))?,
        Subpacket::regular(SubpacketData::IssuerFingerprint(signing_key.fingerprint()))?,
    ];
    config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
        signing_key.legacy_key_id(),
    ))?];
    config.sign(signing_key, &Password::empty(), data)
}

/// An uploaded public key: its fingerprint (upper-case hex) and its normalized armor.
pub fn inspect_public_key(armored: &str) -> Result<(String, String)> {
    let (key, _) = SignedPublicKey::from_string(armored.trim())
        .context("not an armored OpenPGP public key")?;
    key.verify_bindings()
        .context("the key's self-signatures do not verify")?;
    let fingerprint = hex::encode_upper(key.fingerprint().as_bytes());
    Ok((fingerprint, key.to_armored_string(Default::default())?))
}

/// The binary keyring of several public keys, as apt's `signed-by` reads it from a `.gpg` file.
pub fn binary_keyring(public_armored: &[String]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for armored in public_armored {
        let (key, _) = SignedPublicKey::from_string(armored)?;
        key.to_writer(&mut out)?;
    }
    Ok(out)
}

/// The armored keyring of several public keys, as `/OWNER/REPO/gpgkey` serves it.
pub fn keyring(public_armored: &[String]) -> Result<String> {
    let keys = public_armored
        .iter()
        .map(|armored| SignedPublicKey::from_string(armored).map(|(key, _)| key))
        .collect::<pgp::errors::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    pgp::armor::write(&keys, BlockType::PublicKey, &mut out, None, true)?;
    Ok(String::from_utf8(out)?)
}

/// The fingerprints of those of `public_keys` (armored) that made a valid signature on the
/// cleartext-signed `signed` (an `InRelease`).
/// The text of a cleartext-signed message, dash-escaping undone, with `\n` line ends.
pub fn cleartext_body(signed: &str) -> Result<String> {
    let (message, _) =
        CleartextSignedMessage::from_string(signed).context("not a cleartext-signed message")?;
    Ok(message.signed_text().replace("\r\n", "\n") + "\n")
}

pub fn cleartext_signers(signed: &str, public_keys: &[String]) -> Result<Vec<String>> {
    let (message, _) =
        CleartextSignedMessage::from_string(signed).context("not a cleartext-signed message")?;
    let mut signers = Vec::new();
    for armored in public_keys {
        let (key, _) = SignedPublicKey::from_string(armored)?;
        if message.verify(&key).is_ok() {
            signers.push(hex::encode_upper(key.fingerprint().as_bytes()));
        }
    }
    Ok(signers)
}

/// The fingerprints of those of `public_keys` that made one of the detached signatures in
/// `armored` (a `Release.gpg` or `repomd.xml.asc`) over `data`.
pub fn detached_signers(armored: &str, data: &[u8], public_keys: &[String]) -> Result<Vec<String>> {
    let (signatures, _) = DetachedSignature::from_string_many(armored)
        .context("not an armored detached signature")?;
    let signatures: Vec<DetachedSignature> = signatures.collect::<pgp::errors::Result<_>>()?;
    let mut signers = Vec::new();
    for armored_key in public_keys {
        let (key, _) = SignedPublicKey::from_string(armored_key)?;
        if signatures.iter().any(|s| s.verify(&key, data).is_ok()) {
            signers.push(hex::encode_upper(key.fingerprint().as_bytes()));
        }
    }
    Ok(signers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_public_key() {
        let key = generate("Test <test@example.invalid>", KeyAlgorithm::Ed25519, 86400).unwrap();
        assert_eq!(key.expires_at - key.created_at, 86400);
        let signer = Signer::from_armored(std::slice::from_ref(&key.secret_armored)).unwrap();
        let (public, _) = SignedPublicKey::from_string(&key.public_armored).unwrap();
        public.verify_bindings().unwrap();

        let text = "Origin: x\nLabel: y\n";
        let signed = signer.clearsign(text).unwrap();
        let (message, _) = CleartextSignedMessage::from_string(&signed).unwrap();
        message.verify(&public).unwrap();
        assert!(signed.contains(text), "{signed}");

        let armored = signer.detached(text.as_bytes()).unwrap();
        let (signature, _) = DetachedSignature::from_string(&armored).unwrap();
        signature.verify(&public, text.as_bytes()).unwrap();
        assert!(signature.verify(&public, b"something else").is_err());
    }

    #[test]
    fn rsa_signatures_are_made_by_aws_lc_and_verify() {
        let key = generate("Test <test@example.invalid>", KeyAlgorithm::Rsa4096, 86400).unwrap();
        let signer = Signer::from_armored(std::slice::from_ref(&key.secret_armored)).unwrap();
        assert!(
            signer.keys[0].rsa.is_some(),
            "RSA-4096 is signed with aws-lc"
        );
        let (public, _) = SignedPublicKey::from_string(&key.public_armored).unwrap();

        let text = "Origin: x\nLabel: y\n";
        let (clearsigned, detached) = signer.release_signatures(text).unwrap();
        let (message, _) = CleartextSignedMessage::from_string(&clearsigned).unwrap();
        message.verify(&public).unwrap();
        let (signature, _) = DetachedSignature::from_string(&detached).unwrap();
        signature.verify(&public, text.as_bytes()).unwrap();
        assert!(signature.verify(&public, b"Origin: y\n").is_err());

        // The same digest signed by the OpenPGP crate's own arithmetic gives the same bytes:
        // PKCS #1 v1.5 is deterministic.
        let primary = &signer.keys[0].key.primary_key;
        let rsa = signer.keys[0].rsa.as_ref().unwrap();
        let digest = [7u8; 64];
        let ours = AwsLcRsa { key: primary, rsa }
            .sign(&Password::empty(), HashAlgorithm::Sha512, &digest)
            .unwrap();
        let theirs = primary
            .sign(&Password::empty(), HashAlgorithm::Sha512, &digest)
            .unwrap();
        assert_eq!(ours, theirs);
    }
}
