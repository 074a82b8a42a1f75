//! The world the tests drive: the REST API and the web UI over a fresh SQLite store, a user
//! of each role, and a client that keeps cookies as a browser does.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use http_body_util::BodyExt;
use tower::ServiceExt;
use updraft_rest_api::auth::{password, Role};
use updraft_rest_api::{RestConfig, RestState};
use updraft_store::{Store, UserRecord};
use updraft_store_sqlite::SqliteStore;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";
pub const PASSWORD: &str = "correct horse battery staple";

/// The UI and the API of one server, over a store in a temporary directory.
pub struct Ui {
    #[allow(dead_code)] // used by the view tests
    pub store: Arc<dyn Store>,
    pub router: Router,
    pub _dir: tempfile::TempDir,
}

/// An answer, with its body as text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// Fails unless the answer is a 200 page.
    pub fn ok(self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self.body
    }
}

pub fn username(role: Role) -> String {
    role.as_str().to_lowercase()
}

impl Ui {
    pub async fn start() -> Ui {
        Ui::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut RestConfig)) -> Ui {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("updraft.db")).expect("open"));
        let mut config = RestConfig::new(JWT_SECRET);
        config.base_log_folder = dir.path().join("logs");
        configure(&mut config);
        let state = RestState::new(store.clone(), config, Arc::new(|| {})).expect("state");
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
        }
        let router = updraft_rest_api::router(state.clone())
            .expect("router")
            .merge(updraft_web_ui::router(state));
        Ui {
            store,
            router,
            _dir: dir,
        }
    }

    /// A browser with no cookies yet.
    pub fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: BTreeMap::new(),
        }
    }

    /// A browser signed in as the user of `role` through the login form.
    pub async fn signed_in(&self, role: Role) -> Browser {
        let mut browser = self.browser();
        let answer = browser
            .sign_in(&[
                ("username", &username(role)),
                ("password", PASSWORD),
                ("next", "/"),
            ])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        browser
    }
}

/// Sends requests to the router with the cookies the answers set.
pub struct Browser {
    router: Router,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub async fn get(&mut self, uri: &str) -> Answer {
        self.send(Method::GET, uri, None, &[]).await
    }

    pub async fn post_form(&mut self, uri: &str, fields: &[(&str, &str)]) -> Answer {
        let body: String = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    updraft_web_ui::links::encode(k),
                    updraft_web_ui::links::encode(v)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Method::POST,
            uri,
            Some(("application/x-www-form-urlencoded", body)),
            &[],
        )
        .await
    }

    /// Submits the sign-in form as a browser does: loads it first, then posts `fields` with
    /// the form's token.
    pub async fn sign_in(&mut self, fields: &[(&str, &str)]) -> Answer {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let token = self
            .cookie("_login_form")
            .expect("the sign-in form's cookie")
            .to_string();
        assert!(
            form.body
                .contains(&format!(r#"name="form_token" value="{token}""#)),
            "the form carries the cookie's token: {}",
            form.body
        );
        let mut fields = fields.to_vec();
        fields.push(("form_token", &token));
        self.post_form("/login", &fields).await
    }

    /// A JSON request as `app.js` sends it: with the CSRF header.
    #[allow(dead_code)] // used by the view tests
    pub async fn api(&mut self, method: Method, uri: &str, json: serde_json::Value) -> Answer {
        let csrf = self.cookie("_csrf").unwrap_or_default().to_string();
        self.send(
            method,
            uri,
            Some(("application/json", json.to_string())),
            &[("x-csrf-token", &csrf)],
        )
        .await
    }

    /// A GET whose answer is left unread (an event stream).
    #[allow(dead_code)] // used by the events test
    pub async fn open(&mut self, uri: &str) -> axum::response::Response {
        let request = self
            .request(Method::GET, uri, &[])
            .body(Body::empty())
            .expect("request");
        self.router.clone().oneshot(request).await.expect("answer")
    }

    fn request(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> axum::http::request::Builder {
        let mut request = Request::builder().method(method).uri(uri);
        if !self.cookies.is_empty() {
            let cookie: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(header::COOKIE, cookie.join("; "));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }

    pub async fn send(
        &mut self,
        method: Method,
        uri: &str,
        body: Option<(&str, String)>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let request = self.request(method, uri, headers);
        let request = match body {
            Some((content_type, body)) => request
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body)),
            None => request.body(Body::empty()),
        }
        .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("answer");
        for set in response.headers().get_all(header::SET_COOKIE) {
            let text = set.to_str().expect("ascii cookie");
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let removed = text.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
                if removed {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}
