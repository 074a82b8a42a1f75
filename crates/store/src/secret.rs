//! How backends keep secrets at rest: sealed with the store's [`Cipher`] when it has one, and
//! opened on reading according to the row's "encrypted" flag. Shared by the backends so that
//! both store and refuse secrets the same way.

use std::sync::Arc;

use crate::{Cipher, Result, StoreError};

/// A backend's optional cipher. Without one, secrets are stored as they are (flag 0) and an
/// encrypted row cannot be read.
#[derive(Clone, Default)]
pub struct Secrets(Option<Arc<dyn Cipher>>);

impl Secrets {
    pub fn new(cipher: Option<Arc<dyn Cipher>>) -> Self {
        Secrets(cipher)
    }

    /// Whether values written through this are encrypted.
    pub fn encrypts(&self) -> bool {
        self.0.is_some()
    }

    /// The value to store and its "encrypted" flag.
    pub fn seal(&self, plain: &str) -> (String, bool) {
        match &self.0 {
            Some(cipher) => (cipher.encrypt(plain), true),
            None => (plain.to_string(), false),
        }
    }

    /// [`seal`](Self::seal) of an optional value; `None` stays `None`, unencrypted.
    pub fn seal_opt(&self, plain: Option<&str>) -> (Option<String>, bool) {
        match plain {
            Some(plain) => {
                let (stored, encrypted) = self.seal(plain);
                (Some(stored), encrypted)
            }
            None => (None, false),
        }
    }

    /// The plain value of a stored one. `what` names it for the error ("variable `k`").
    pub fn open(
        &self,
        stored: String,
        encrypted: bool,
        what: &dyn Fn() -> String,
    ) -> Result<String> {
        if !encrypted {
            return Ok(stored);
        }
        match &self.0 {
            Some(cipher) => cipher
                .decrypt(&stored)
                .map_err(|e| StoreError::Secret(format!("{}: {e}", what()))),
            None => Err(StoreError::Secret(format!(
                "{} is encrypted and no fernet key is configured (core.fernet_key)",
                what()
            ))),
        }
    }

    pub fn open_opt(
        &self,
        stored: Option<String>,
        encrypted: bool,
        what: &dyn Fn() -> String,
    ) -> Result<Option<String>> {
        stored.map(|s| self.open(s, encrypted, what)).transpose()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key: only whether there is one.
        f.debug_tuple("Secrets").field(&self.encrypts()).finish()
    }
}
