//! A headless Chromium for the DAG view tests: chromedriver on a free port, a WebDriver
//! session signed in to a `standalone`, waits for page conditions, and screenshots into
//! `docs/screenshots/` when `UPDATE_SCREENSHOTS=1`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::fixture::{eventually, Home, Standalone};

pub const USER: &str = "ui-admin";
pub const PASSWORD: &str = "correct horse battery staple";
/// The longest a page condition is waited for (an upper bound, not a measurement).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// chromedriver, killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// Starts `/usr/bin/chromedriver` (Debian's `chromium-driver`, which `.ci/run` installs).
pub fn chromedriver() -> Driver {
    let port = free_port();
    let child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian package chromium-driver) must be installed");
    let url = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("chromedriver did not listen");
    Driver { child, url }
}

/// The UI's base URL of a standalone (its health address without the path).
pub fn base_url(standalone: &Standalone) -> String {
    let url = &standalone.health_url;
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url[..after_scheme + i].to_string(),
        None => url.clone(),
    }
}

/// A home with an Admin user for the browser.
pub fn home_with_user() -> Home {
    let home = Home::new();
    home.ok(&["users", "create", "-u", USER, "-r", "Admin", "-p", PASSWORD]);
    home
}

/// A headless Chromium session, signed in at `base`.
pub async fn signed_in(driver: &Driver, base: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_string(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900"],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in headless Chromium");
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("login page");
    client
        .find(Locator::Css("input[name=username]"))
        .await
        .expect("user name field")
        .send_keys(USER)
        .await
        .expect("typing");
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys(PASSWORD)
        .await
        .expect("typing");
    client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .expect("the login button")
        .click()
        .await
        .expect("click");
    wait_until(
        &client,
        "signed in",
        "!location.pathname.startsWith('/login')",
    )
    .await;
    client
}

/// Waits until the JavaScript expression `condition` is true in the page.
pub async fn wait_until(client: &Client, what: &str, condition: &str) {
    let script = format!("return !!({condition});");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(value) = client.execute(&script, vec![]).await {
            if value == json!(true) {
                return;
            }
        }
        if std::time::Instant::now() > deadline {
            let source = client.source().await.unwrap_or_default();
            panic!("waited in vain for {what} ({condition}); the page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Marks the page, to tell later that it was not reloaded.
pub async fn mark_page(client: &Client) {
    client
        .execute("window.__notReloaded = true; return true;", vec![])
        .await
        .expect("marking the page");
}

pub async fn page_was_not_reloaded(client: &Client) -> bool {
    client
        .execute("return window.__notReloaded === true;", vec![])
        .await
        .map(|v| v == json!(true))
        .unwrap_or(false)
}

/// Saves a screenshot of the page as `docs/screenshots/<view>.png` when
/// `UPDATE_SCREENSHOTS=1`.
pub async fn screenshot(client: &Client, view: &str) {
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let png = client.screenshot().await.expect("a screenshot");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    std::fs::write(dir.join(format!("{view}.png")), png).expect("writing the screenshot");
}
