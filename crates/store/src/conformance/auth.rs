//! Checks of what API servers share to authenticate: users, revoked tokens, failed logins.

use super::fixture::*;
use super::TestDatabase;
use crate::{StoreError, UserRecord};

fn user(username: &str) -> UserRecord {
    UserRecord {
        username: username.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: "Viewer".into(),
        email: Some(format!("{username}@example.com")),
        first_name: Some("Ada".into()),
        last_name: None,
        active: true,
        created_at: at(0),
        last_login: None,
    }
}

pub async fn users_can_be_created_read_updated_and_deleted(db: &dyn TestDatabase) {
    let store = db.open().await;
    assert_eq!(store.get_user("ada").await.unwrap(), None);
    store.create_user(user("ada")).await.unwrap();
    store.create_user(user("bob")).await.unwrap();
    assert_eq!(store.get_user("ada").await.unwrap(), Some(user("ada")));
    assert!(matches!(
        error(
            store
                .create_user(UserRecord {
                    role: "Admin".into(),
                    ..user("ada")
                })
                .await
        ),
        StoreError::AlreadyExists(_)
    ));
    assert_eq!(
        store.get_user("ada").await.unwrap().unwrap().role,
        "Viewer",
        "a refused creation changes nothing"
    );

    let changed = UserRecord {
        password_hash: "$argon2id$new".into(),
        role: "Admin".into(),
        email: None,
        last_name: Some("Lovelace".into()),
        active: false,
        // Neither the username nor the creation time change.
        created_at: at(50),
        ..user("ada")
    };
    store.update_user(changed.clone()).await.unwrap();
    assert_eq!(
        store.get_user("ada").await.unwrap(),
        Some(UserRecord {
            created_at: at(0),
            ..changed
        })
    );
    assert!(matches!(
        error(store.update_user(user("nobody")).await),
        StoreError::NotFound(_)
    ));

    store.record_login("bob", at(7)).await.unwrap();
    assert_eq!(
        store.get_user("bob").await.unwrap().unwrap().last_login,
        Some(at(7))
    );
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["ada", "bob"]);

    assert!(store.delete_user("ada").await.unwrap());
    assert!(!store.delete_user("ada").await.unwrap());
    assert_eq!(store.get_user("ada").await.unwrap(), None);
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

pub async fn revoked_tokens_are_kept_until_they_expire(db: &dyn TestDatabase) {
    let store = db.open().await;
    assert!(!store.is_token_revoked("t1").await.unwrap());
    store.revoke_token("t1", at(10), at(0)).await.unwrap();
    store.revoke_token("t2", at(30), at(0)).await.unwrap();
    // Revoking again is no error.
    store.revoke_token("t2", at(30), at(1)).await.unwrap();
    assert!(store.is_token_revoked("t1").await.unwrap());
    assert!(store.is_token_revoked("t2").await.unwrap());
    // A later revocation forgets those that expired before it.
    store.revoke_token("t3", at(60), at(20)).await.unwrap();
    assert!(
        !store.is_token_revoked("t1").await.unwrap(),
        "t1 expired at 10"
    );
    assert!(store.is_token_revoked("t2").await.unwrap());
    assert!(store.is_token_revoked("t3").await.unwrap());
}

pub async fn login_failures_are_counted_pruned_and_cleared(db: &dyn TestDatabase) {
    let store = db.open().await;
    let keys = vec!["user:ada".to_string(), "addr:10.0.0.7".to_string()];
    store
        .record_login_failure(&keys, at(1), at(0))
        .await
        .unwrap();
    store
        .record_login_failure(&keys, at(2), at(0))
        .await
        .unwrap();
    store
        .record_login_failure(&["user:bob".to_string()], at(3), at(0))
        .await
        .unwrap();
    assert_eq!(store.login_failures("user:ada", at(0)).await.unwrap(), 2);
    assert_eq!(
        store.login_failures("addr:10.0.0.7", at(0)).await.unwrap(),
        2
    );
    assert_eq!(
        store.login_failures("user:ada", at(2)).await.unwrap(),
        1,
        "only since the given instant"
    );
    assert_eq!(store.login_failures("user:nobody", at(0)).await.unwrap(), 0);

    // Recording forgets what is older than `forget_before`, under every key.
    store
        .record_login_failure(&["addr:10.0.0.7".to_string()], at(10), at(2))
        .await
        .unwrap();
    assert_eq!(store.login_failures("user:ada", at(0)).await.unwrap(), 1);
    assert_eq!(
        store.login_failures("addr:10.0.0.7", at(0)).await.unwrap(),
        2
    );

    store.clear_login_failures("user:ada").await.unwrap();
    assert_eq!(store.login_failures("user:ada", at(0)).await.unwrap(), 0);
    assert_eq!(store.login_failures("user:bob", at(0)).await.unwrap(), 1);
}
