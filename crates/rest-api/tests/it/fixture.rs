//! The world the tests drive: a REST API server on 127.0.0.1 over a fresh SQLite store, a
//! user of each role with a token, and requests to it.

use std::sync::Arc;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use updraft_rest_api::auth::{password, Role};
use updraft_rest_api::{router, RestConfig, RestState};
use updraft_store::{Store, UserRecord};
use updraft_store_sqlite::SqliteStore;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";
/// The store's `core.fernet_key`.
pub const FERNET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery staple";

/// A REST API server with one user per role (`viewer`, `user`, `op`, `admin`).
pub struct Server {
    pub store: Arc<dyn Store>,
    pub url: String,
    pub client: reqwest::Client,
    /// Tokens by role.
    pub tokens: Vec<(Role, String)>,
    pub dir: tempfile::TempDir,
    serving: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

pub fn username(role: Role) -> String {
    role.as_str().to_lowercase()
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// A server whose configuration `configure` adjusts.
    pub async fn start_with(configure: impl FnOnce(&mut RestConfig)) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        // With a cipher, as `standalone` runs: secrets are encrypted at rest.
        let cipher = updraft_secrets::FernetCipher::new(FERNET_KEY).expect("fernet key");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("updraft.db"))
                .expect("open")
                .with_cipher(Arc::new(cipher)),
        );
        let mut config = RestConfig::new(JWT_SECRET);
        config.base_log_folder = dir.path().join("logs");
        configure(&mut config);
        let state = RestState::new(store.clone(), config, Arc::new(|| {})).expect("state");
        let tokens = {
            let mut tokens = Vec::new();
            for role in Role::ALL {
                store
                    .create_user(UserRecord {
                        username: username(role),
                        password_hash: password::hash(PASSWORD).expect("hash"),
                        role: role.as_str().into(),
                        email: None,
                        first_name: None,
                        last_name: None,
                        active: true,
                        created_at: Utc::now(),
                        last_login: None,
                    })
                    .await
                    .expect("create user");
                let (token, _) = state.issue_token(&username(role), role).expect("token");
                tokens.push((role, token));
            }
            tokens
        };
        let app = router(state).expect("router");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let serving = tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, app).await;
        });
        Server {
            store,
            url,
            client: reqwest::Client::new(),
            tokens,
            dir,
            serving,
        }
    }

    pub fn token(&self, role: Role) -> &str {
        self.tokens
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, t)| t.as_str())
            .expect("a token per role")
    }

    /// A request as `role` (or without a token), with an optional JSON body; answers the
    /// status and the JSON body (`Value::Null` when the body is not JSON).
    pub async fn call(
        &self,
        role: Option<Role>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(role) = role {
            request = request.bearer_auth(self.token(role));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, role: Role, path: &str) -> (StatusCode, Value) {
        self.call(Some(role), Method::GET, path, None).await
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(Some(Role::Admin), method, path, body).await
    }
}
