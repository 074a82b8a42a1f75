//! Checks of secrets at rest: variable values and connection passwords and extras are stored
//! encrypted by a store with a cipher, read back in plain text, and refused (not returned
//! scrambled) by a store without the key. Also the variable records of the API.

use std::sync::Arc;

use super::TestDatabase;
use crate::{Cipher, CipherError, ConnectionRecord, StoreError, VariableRecord, Window};

/// A reversible toy cipher, for tests only: the bytes XORed with `key`, in hex, behind a
/// prefix naming the key, so that another key cannot "decrypt" it.
pub struct ToyCipher(pub u8);

impl Cipher for ToyCipher {
    fn encrypt(&self, plain: &str) -> String {
        let hex: String = plain
            .bytes()
            .map(|b| format!("{:02x}", b ^ self.0))
            .collect();
        format!("toy{}:{hex}", self.0)
    }

    fn decrypt(&self, token: &str) -> Result<String, CipherError> {
        let hex = token
            .strip_prefix(&format!("toy{}:", self.0))
            .ok_or_else(|| CipherError("not encrypted with this key".into()))?;
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .map(|b| b ^ self.0)
                    .ok_or_else(|| CipherError("bad token".into()))
            })
            .collect::<Result<Vec<u8>, _>>()?;
        String::from_utf8(bytes).map_err(|e| CipherError(e.to_string()))
    }
}

fn cipher(key: u8) -> Arc<dyn Cipher> {
    Arc::new(ToyCipher(key))
}

fn secret_error(e: StoreError, names: &str) {
    match e {
        StoreError::Secret(message) => {
            assert!(message.contains(names), "{message:?} should name {names:?}")
        }
        other => panic!("expected a secret error naming {names:?}, got {other:?}"),
    }
}

pub async fn variables_are_encrypted_at_rest_with_a_cipher(db: &dyn TestDatabase) {
    let encrypting = db.open_with_cipher(cipher(7)).await;
    let plain = db.open().await;
    encrypting
        .set_variable("secret", "hunter2 ✓")
        .await
        .unwrap();
    encrypting
        .put_variable(VariableRecord {
            key: "described".into(),
            value: "s3cret".into(),
            description: Some("the password".into()),
            is_encrypted: false,
        })
        .await
        .unwrap();
    plain.set_variable("open", "visible").await.unwrap();

    // Read back in plain text by the store with the key, on every path.
    assert_eq!(
        encrypting.get_variable("secret").await.unwrap().as_deref(),
        Some("hunter2 ✓")
    );
    assert_eq!(
        encrypting.list_variables().await.unwrap(),
        vec![
            ("described".to_string(), "s3cret".to_string()),
            ("open".to_string(), "visible".to_string()),
            ("secret".to_string(), "hunter2 ✓".to_string()),
        ],
        "plain rows stay readable next to encrypted ones"
    );
    let record = encrypting
        .get_variable_record("secret")
        .await
        .unwrap()
        .unwrap();
    assert!(record.is_encrypted);
    assert_eq!(record.value, "hunter2 ✓");
    let described = encrypting
        .get_variable_record("described")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (described.value.as_str(), described.is_encrypted),
        ("s3cret", true)
    );
    assert_eq!(described.description.as_deref(), Some("the password"));
    let page = encrypting
        .query_variables(None, false, Window::default())
        .await
        .unwrap();
    assert_eq!(page.items[2].value, "hunter2 ✓");
    let open = plain.get_variable_record("open").await.unwrap().unwrap();
    assert!(
        !open.is_encrypted,
        "without a cipher values are stored plain"
    );

    // What is stored is not the value: copy the stored text where it is read as is.
    db.execute(
        "INSERT INTO variable (key, val, description) \
         SELECT 'raw', 'x', val FROM variable WHERE key = 'secret'",
    )
    .await;
    let raw = plain
        .get_variable_record("raw")
        .await
        .unwrap()
        .unwrap()
        .description
        .unwrap();
    assert!(!raw.contains("hunter2"), "stored as {raw:?}");
    assert_eq!(ToyCipher(7).decrypt(&raw).unwrap(), "hunter2 ✓");

    // A store without the key refuses to read it (and names it), on every path.
    secret_error(error(plain.get_variable("secret").await), "secret");
    secret_error(error(plain.get_variable_record("secret").await), "secret");
    secret_error(error(plain.list_variables().await), "`described`");
    secret_error(
        error(plain.query_variables(None, false, Window::default()).await),
        "`described`",
    );
    // A wrong key too.
    let wrong = db.open_with_cipher(cipher(9)).await;
    secret_error(error(wrong.get_variable("secret").await), "secret");
    assert_eq!(
        wrong.get_variable("open").await.unwrap().as_deref(),
        Some("visible")
    );
}

pub async fn variable_records_are_queried_by_pattern_sorted_and_paged(db: &dyn TestDatabase) {
    let store = db.open().await;
    for key in ["alpha_KEY", "beta", "Gamma_key", "delta", "keyless", "kez"] {
        store
            .put_variable(VariableRecord {
                key: key.into(),
                value: format!("value of {key}"),
                description: None,
                is_encrypted: false,
            })
            .await
            .unwrap();
    }
    // put_variable replaces, description included.
    store
        .put_variable(VariableRecord {
            key: "beta".into(),
            value: "b2".into(),
            description: Some("second".into()),
            is_encrypted: false,
        })
        .await
        .unwrap();
    let beta = store.get_variable_record("beta").await.unwrap().unwrap();
    assert_eq!(
        (beta.value.as_str(), beta.description.as_deref()),
        ("b2", Some("second"))
    );
    // set_variable keeps the description.
    store.set_variable("beta", "b3").await.unwrap();
    let beta = store.get_variable_record("beta").await.unwrap().unwrap();
    assert_eq!(
        (beta.value.as_str(), beta.description.as_deref()),
        ("b3", Some("second"))
    );
    assert_eq!(store.get_variable_record("nope").await.unwrap(), None);

    let keys = |page: crate::Page<VariableRecord>| -> (u64, Vec<String>) {
        (page.total, page.items.into_iter().map(|v| v.key).collect())
    };
    let all = Window::default();
    assert_eq!(
        keys(
            store
                .query_variables(Some("key".into()), false, all)
                .await
                .unwrap()
        ),
        (
            3,
            vec!["Gamma_key".into(), "alpha_KEY".into(), "keyless".into()]
        ),
        "a case-insensitive substring, sorted by key (bytewise)"
    );
    assert_eq!(
        keys(
            store
                .query_variables(Some("k_y".into()), true, all)
                .await
                .unwrap()
        ),
        (
            3,
            vec!["keyless".into(), "alpha_KEY".into(), "Gamma_key".into()]
        ),
        "`_` matches one character; descending"
    );
    assert_eq!(
        keys(
            store
                .query_variables(Some("a%y".into()), false, all)
                .await
                .unwrap()
        ),
        (2, vec!["Gamma_key".into(), "alpha_KEY".into()]),
        "`%` matches any run"
    );
    let page = Window {
        limit: 2,
        offset: 2,
    };
    assert_eq!(
        keys(store.query_variables(None, false, page).await.unwrap()),
        (6, vec!["beta".into(), "delta".into()])
    );
    assert_eq!(
        keys(
            store
                .query_variables(Some("nothing".into()), false, all)
                .await
                .unwrap()
        ),
        (0, vec![])
    );
}

fn connection(conn_id: &str) -> ConnectionRecord {
    ConnectionRecord {
        conn_id: conn_id.into(),
        conn_type: "postgres".into(),
        description: Some("the warehouse".into()),
        host: Some("db.example".into()),
        schema: Some("public".into()),
        login: Some("etl".into()),
        password: Some("pa55word".into()),
        port: Some(5432),
        extra: Some(r#"{"sslmode": "require"}"#.into()),
    }
}

pub async fn connection_secrets_are_encrypted_at_rest_with_a_cipher(db: &dyn TestDatabase) {
    let encrypting = db.open_with_cipher(cipher(3)).await;
    let plain = db.open().await;
    encrypting.put_connection(connection("c")).await.unwrap();
    let no_secrets = ConnectionRecord {
        password: None,
        extra: None,
        ..connection("bare")
    };
    encrypting.put_connection(no_secrets.clone()).await.unwrap();
    assert_eq!(
        encrypting.get_connection("c").await.unwrap(),
        Some(connection("c"))
    );
    assert_eq!(
        plain.get_connection("bare").await.unwrap(),
        Some(no_secrets),
        "absent secrets stay absent"
    );
    let page = encrypting
        .query_connections(None, false, Window::default())
        .await
        .unwrap();
    assert_eq!(page.items[1], connection("c"));

    db.execute(
        "INSERT INTO connection (conn_id, conn_type, description, extra) \
         SELECT 'raw', 'x', password, extra FROM connection WHERE conn_id = 'c'",
    )
    .await;
    let raw = plain.get_connection("raw").await.unwrap().unwrap();
    let (password, extra) = (raw.description.unwrap(), raw.extra.unwrap());
    assert!(!password.contains("pa55word"), "stored as {password:?}");
    assert!(!extra.contains("sslmode"), "stored as {extra:?}");
    assert_eq!(ToyCipher(3).decrypt(&password).unwrap(), "pa55word");

    secret_error(error(plain.get_connection("c").await), "`c`");
    secret_error(
        error(
            plain
                .query_connections(None, false, Window::default())
                .await,
        ),
        "`c`",
    );
    let wrong = db.open_with_cipher(cipher(4)).await;
    secret_error(error(wrong.get_connection("c").await), "`c`");

    // Written without a cipher: plain, and readable by any store.
    plain.put_connection(connection("p")).await.unwrap();
    assert_eq!(
        encrypting.get_connection("p").await.unwrap(),
        Some(connection("p"))
    );
}

fn error<T: std::fmt::Debug>(result: crate::Result<T>) -> StoreError {
    super::fixture::error(result)
}
