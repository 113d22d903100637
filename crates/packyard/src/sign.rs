//! Repository signing keys: generation with an expiry, and the signatures on `InRelease`,
//! `Release.gpg` (and later `repomd.xml.asc`).
//!
//! A repository may have several active keys during a rotation; every signature made here is
//! made by each of them, so clients that trust either key keep verifying.

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
use pgp::types::{Duration, KeyDetails, KeyVersion, Password, SignedUser, Tag, Timestamp};
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

/// A newly generated key, ready to store.
pub struct GeneratedKey {
    pub fingerprint: String,
    pub public_armored: String,
    pub secret_armored: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Generates a certify-and-sign primary key for `user_id` that expires after `validity_secs`.
pub fn generate(
    user_id: &str,
    algorithm: KeyAlgorithm,
    validity_secs: u32,
) -> Result<GeneratedKey> {
    let mut rng = rand::thread_rng();
    let key_type = match algorithm {
        KeyAlgorithm::Rsa4096 => KeyType::Rsa(4096),
        KeyAlgorithm::Ed25519 => KeyType::Ed25519Legacy,
    };
    let (public_params, secret_params) = key_type.generate(&mut rng)?;
    let created = Timestamp::now();
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
    let public_key = SignedPublicKey::from(signed.clone());
    Ok(GeneratedKey {
        fingerprint: hex::encode_upper(signed.fingerprint().as_bytes()),
        public_armored: public_key.to_armored_string(Default::default())?,
        secret_armored: signed.to_armored_string(Default::default())?,
        created_at: i64::from(created.as_secs()),
        expires_at: i64::from(created.as_secs()) + i64::from(validity_secs),
    })
}

/// The user-ID self-signature that carries the key's flags and expiry.
fn self_certification(
    secret: &SecretKey,
    public: &PublicKey,
    user_id: &UserId,
    created: Timestamp,
    validity_secs: u32,
) -> Result<Signature> {
    let mut rng = rand::thread_rng();
    let mut flags = KeyFlags::default();
    flags.set_certify(true);
    flags.set_sign(true);
    let mut config = SignatureConfig::from_key(&mut rng, secret, SignatureType::CertPositive)?;
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(created))?,
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
    keys: Vec<SignedSecretKey>,
}

impl Signer {
    pub fn from_armored(secret_keys: &[String]) -> Result<Signer> {
        anyhow::ensure!(
            !secret_keys.is_empty(),
            "the repository has no active signing key"
        );
        let keys = secret_keys
            .iter()
            .map(|armored| {
                SignedSecretKey::from_string(armored)
                    .map(|(key, _)| key)
                    .context("a stored signing key does not parse")
            })
            .collect::<Result<_>>()?;
        Ok(Signer { keys })
    }

    /// A cleartext-signed copy of `text`, as `InRelease` is.
    pub fn clearsign(&self, text: &str) -> Result<String> {
        let message = CleartextSignedMessage::new_many(text, |normalized| {
            self.keys
                .iter()
                .map(|key| detached(key, normalized.as_bytes(), SignatureType::Text))
                .collect()
        })?;
        Ok(message.to_armored_string(Default::default())?)
    }

    /// An armored detached signature over `data`, as `Release.gpg` is.
    pub fn detached(&self, data: &[u8]) -> Result<String> {
        let signatures = self
            .keys
            .iter()
            .map(|key| detached(key, data, SignatureType::Binary).map(DetachedSignature::new))
            .collect::<pgp::errors::Result<Vec<_>>>()?;
        let mut out = Vec::new();
        pgp::armor::write(&signatures, BlockType::Signature, &mut out, None, true)?;
        Ok(String::from_utf8(out)?)
    }
}

fn detached(
    key: &SignedSecretKey,
    data: &[u8],
    typ: SignatureType,
) -> pgp::errors::Result<Signature> {
    let signing_key = &key.primary_key;
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
}
