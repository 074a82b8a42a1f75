//! `core.fernet_key`: Fernet keys, as Airflow uses them, behind the store's [`Cipher`].

use fernet::{Fernet, MultiFernet};
use updraft_store::{Cipher, CipherError};

/// Why `core.fernet_key` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FernetKeyError {
    #[error("core.fernet_key is empty")]
    Empty,
    /// Names the key by its position, never by its text.
    #[error("core.fernet_key: key {position} of {count} is not a Fernet key (32 bytes, url-safe base64)")]
    Invalid { position: usize, count: usize },
}

/// Encrypts with the first key of `core.fernet_key` and decrypts with any of them, like
/// Airflow's `MultiFernet`: to rotate, put a new key first, run `updraft rotate-fernet-key`,
/// then drop the old key.
#[derive(Clone)]
pub struct FernetCipher {
    keys: MultiFernet,
    count: usize,
}

impl FernetCipher {
    /// Reads `core.fernet_key`: one key or a comma-separated list.
    pub fn new(fernet_key: &str) -> Result<FernetCipher, FernetKeyError> {
        let parts: Vec<&str> = fernet_key
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect();
        if parts.is_empty() {
            return Err(FernetKeyError::Empty);
        }
        let count = parts.len();
        let keys = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                Fernet::new(part).ok_or(FernetKeyError::Invalid {
                    position: i + 1,
                    count,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FernetCipher {
            keys: MultiFernet::new(keys),
            count,
        })
    }

    /// How many keys decrypt (the first also encrypts).
    pub fn key_count(&self) -> usize {
        self.count
    }
}

impl std::fmt::Debug for FernetCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FernetCipher")
            .field("keys", &self.count)
            .finish_non_exhaustive()
    }
}

impl Cipher for FernetCipher {
    fn encrypt(&self, plain: &str) -> String {
        self.keys.encrypt(plain.as_bytes())
    }

    fn decrypt(&self, token: &str) -> Result<String, CipherError> {
        let plain = self.keys.decrypt(token.trim()).map_err(|_| {
            CipherError(
                "no key of core.fernet_key decrypts it (a wrong key, or one rotated out)".into(),
            )
        })?;
        String::from_utf8(plain)
            .map_err(|_| CipherError("the decrypted value is not UTF-8 text".into()))
    }
}

/// A new random Fernet key, for `core.fernet_key`.
pub fn generate_fernet_key() -> String {
    Fernet::generate_key()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Produced by Python's `cryptography.fernet` (the library Airflow encrypts with), with
    // key bytes 0..32 and 32..64, a fixed time and IV:
    // `Fernet(K1)._encrypt_from_parts("pässword with spaces & symbols!".encode(), 1700000000,
    // bytes(range(100, 116)))`.
    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    const TOKEN_K1: &str = "gAAAAABlU_EAZGVmZ2hpamtsbW5vcHFycy7UMM_ceSCWE4Le8JymmcdniIt5PGr5-mRQcfCZOILt5_5Ayl9orlPBSkwT8yBtInJuCzLuzgeDe9TK_arTvqmWBEj2sRvVoRsihNyfhmb1";
    const TOKEN_K2: &str = "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD48sCFs3Z0_pDKrUVsoZJdDXSfT2OdmCC0nRbGug9WlNWYNhb0Tf7lSIAQ2cJYeGTE3DIsKfZGYMgutOJSIDW7Q=";

    #[test]
    fn reads_tokens_python_cryptography_wrote() {
        let cipher = FernetCipher::new(K1).unwrap();
        assert_eq!(
            cipher.decrypt(TOKEN_K1).unwrap(),
            "pässword with spaces & symbols!"
        );
        // Not the key it was made with.
        assert!(cipher.decrypt(TOKEN_K2).is_err());
    }

    #[test]
    fn rotation_encrypts_with_the_first_key_and_decrypts_with_any() {
        let rotated = FernetCipher::new(&format!("{K2}, {K1}")).unwrap();
        assert_eq!(rotated.key_count(), 2);
        assert_eq!(
            rotated.decrypt(TOKEN_K1).unwrap(),
            "pässword with spaces & symbols!"
        );
        assert_eq!(rotated.decrypt(TOKEN_K2).unwrap(), r#"{"api_key": "abc"}"#);
        let fresh = rotated.encrypt("new value");
        assert_ne!(fresh, "new value");
        // Only the new key is needed for what was written after the rotation.
        let only_new = FernetCipher::new(K2).unwrap();
        assert_eq!(only_new.decrypt(&fresh).unwrap(), "new value");
        assert!(FernetCipher::new(K1).unwrap().decrypt(&fresh).is_err());
    }

    #[test]
    fn invalid_keys_are_named_by_position_without_their_text() {
        assert_eq!(FernetCipher::new(" , ").unwrap_err(), FernetKeyError::Empty);
        let err = FernetCipher::new(&format!("{K1},not-a-key")).unwrap_err();
        assert_eq!(
            err,
            FernetKeyError::Invalid {
                position: 2,
                count: 2
            }
        );
        assert!(!err.to_string().contains("not-a-key"));
        // 31 bytes is not a key either.
        assert!(FernetCipher::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==").is_err());
    }

    #[test]
    fn generated_keys_work_and_differ() {
        let a = generate_fernet_key();
        let b = generate_fernet_key();
        assert_ne!(a, b);
        let cipher = FernetCipher::new(&a).unwrap();
        assert_eq!(cipher.decrypt(&cipher.encrypt("x")).unwrap(), "x");
        assert!(cipher.decrypt("garbage").is_err());
    }
}
