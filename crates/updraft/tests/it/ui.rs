//! The web UI in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! which `.ci/run` installs), driven over WebDriver against a real `updraft standalone`
//! serving the example DAGs. With `UPDATE_SCREENSHOTS=1` the tests also save screenshots of
//! the main views into `docs/screenshots/`.

mod backfill;
mod dag;
mod shell;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::fixture::{eventually, Home, Standalone};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what a step waits for (a bound, not a measurement).
const PATIENCE: Duration = Duration::from_secs(60);

/// A `chromedriver` on a free port, killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start() -> Driver {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "the browser tests need {CHROMIUM} and {CHROMEDRIVER}: \
             apt-get install -y chromium chromium-driver"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        eventually(PATIENCE, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("chromedriver listens");
        Driver { child, url }
    }

    /// A new browser session (its own profile, so its own cookies).
    pub async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,800", "--force-prefers-reduced-motion"],
            }),
        );
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A standalone serving a copy of the example DAGs.
pub fn standalone_with_examples(home: &Home) -> (Standalone, String) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dags");
    for entry in std::fs::read_dir(&examples).expect("examples/dags") {
        let path = entry.expect("entry").path();
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            std::fs::copy(&path, home.dags().join(name)).expect("copy an example");
        }
    }
    let standalone = home.standalone();
    let base = standalone
        .health_url
        .strip_suffix("/api/v2/monitor/health")
        .expect("the health address")
        .to_string();
    (standalone, base)
}

/// The password standalone generated for `admin`.
pub fn admin_password(home: &Home) -> String {
    let path = home.path().join("standalone_admin_password.txt");
    eventually(PATIENCE, || {
        std::fs::read_to_string(&path)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    })
    .expect("standalone wrote the admin password")
}

/// Signs in through the login form and waits for Home.
pub async fn sign_in(browser: &Client, base: &str, username: &str, password: &str) {
    browser
        .goto(&format!("{base}/login"))
        .await
        .expect("login page");
    browser
        .find(Locator::Id("username"))
        .await
        .expect("username field")
        .send_keys(username)
        .await
        .expect("type");
    browser
        .find(Locator::Id("password"))
        .await
        .expect("password field")
        .send_keys(password)
        .await
        .expect("type");
    browser
        .find(Locator::Css("form button[type=submit]"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("submit");
    // The login page has a heading too: wait until the browser has left it, signed in.
    wait_until(
        browser,
        "the signed-in page",
        "location.pathname !== '/login' && document.readyState === 'complete' \
         && document.querySelector('form[action=\"/logout\"]') !== null",
    )
    .await;
}

/// Waits until `css` matches an element. A lookup that fails while the page navigates (a
/// form's submit, a reload) is tried again, not taken as an answer.
pub async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    find_eventually(browser, Locator::Css(css)).await
}

/// Waits until `locator` matches an element, trying again after any failure until
/// [`PATIENCE`] runs out.
pub async fn find_eventually(
    browser: &Client,
    locator: Locator<'_>,
) -> fantoccini::elements::Element {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        match browser.find(locator).await {
            Ok(element) => return element,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("nothing matches {locator:?} on the page: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until the JavaScript expression `condition` is true in the page (errors while the
/// page navigates count as not yet).
pub async fn wait_until(client: &Client, what: &str, condition: &str) {
    let script = format!("return !!({condition});");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(value) = client.execute(&script, vec![]).await {
            if value == serde_json::json!(true) {
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

/// Clicks the first element `css` finds. A region redrawn in place (the grid, as a run changes)
/// may replace the element between finding and clicking it: then it is found again.
pub async fn click_current(client: &Client, css: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let element = client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match element.click().await {
            Ok(_) => return,
            Err(e) if e.is_stale_element_reference() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("clicking {css}: {e}"),
        }
    }
}

/// Saves a screenshot of the page as `docs/screenshots/<name>.png` when
/// `UPDATE_SCREENSHOTS=1`.
pub async fn screenshot(browser: &Client, name: &str) {
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let png = browser.screenshot().await.expect("screenshot");
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
}
