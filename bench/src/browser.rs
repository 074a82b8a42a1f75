//! Headless Chromium driven over WebDriver (`chromedriver`), with the harness's own HTTP
//! client: what W14 needs to time how long a page takes to render in a real browser, without
//! a WebDriver crate or an async runtime in the harness.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::http::Connection;

/// Where Debian's packages `chromium` and `chromium-driver` put them.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `chromedriver` process and one browser session of it; both end when it is dropped.
pub struct Browser {
    driver: Child,
    connection: Connection,
    session: String,
    /// Removed once the driver (and its browser) are gone.
    _profile: tempfile::TempDir,
}

/// The navigation timing of the page in the browser, in milliseconds since its navigation
/// started (the W3C Navigation Timing and Paint Timing entries).
#[derive(Debug, Clone, Copy)]
pub struct PageTiming {
    pub response_end: f64,
    pub dom_content_loaded: f64,
    pub load_end: f64,
    pub first_contentful_paint: Option<f64>,
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session at 1280×720.
    pub fn start() -> Result<Browser> {
        for program in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(program).is_file() {
                bail!("{program} is missing (Debian packages chromium and chromium-driver)");
            }
        }
        let port = crate::standalone::free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {CHROMEDRIVER}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let connection = wait_for_driver(&base)?;
        let profile = tempfile::tempdir().context("cannot make a browser profile")?;
        let profile_dir = profile.path().display().to_string();
        let mut browser = Browser {
            driver,
            connection,
            session: String::new(),
            _profile: profile,
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,720",
                         format!("--user-data-dir={profile_dir}")],
            },
        }}});
        let answer = browser.call("POST", "/session", Some(capabilities))?;
        browser.session = answer["sessionId"]
            .as_str()
            .with_context(|| format!("no sessionId in {answer}"))?
            .to_owned();
        Ok(browser)
    }

    /// Loads `url` and waits for its load event (the session's page load strategy).
    pub fn navigate(&mut self, url: &str) -> Result<()> {
        let path = format!("/session/{}/url", self.session);
        self.call("POST", &path, Some(json!({ "url": url })))
            .map(|_| ())
    }

    /// Adds a cookie for the current page's host (navigate there first).
    pub fn add_cookie(&mut self, name: &str, value: &str) -> Result<()> {
        let path = format!("/session/{}/cookie", self.session);
        let cookie =
            json!({"cookie": {"name": name, "value": value, "path": "/", "httpOnly": true}});
        self.call("POST", &path, Some(cookie)).map(|_| ())
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub fn execute(&mut self, script: &str) -> Result<Value> {
        let path = format!("/session/{}/execute/sync", self.session);
        self.call("POST", &path, Some(json!({"script": script, "args": []})))
    }

    /// Runs `script` (a function body whose last argument is the callback it answers with)
    /// in the page and returns what it answered.
    pub fn execute_async(&mut self, script: &str) -> Result<Value> {
        let path = format!("/session/{}/execute/async", self.session);
        self.call("POST", &path, Some(json!({"script": script, "args": []})))
    }

    /// The current page's navigation and paint timing.
    pub fn timing(&mut self) -> Result<PageTiming> {
        let v = self.execute(
            "const n = performance.getEntriesByType('navigation')[0];\n\
             const p = performance.getEntriesByName('first-contentful-paint')[0];\n\
             return {response_end: n.responseEnd, dcl: n.domContentLoadedEventEnd,\n\
                     load: n.loadEventEnd, fcp: p ? p.startTime : null};",
        )?;
        let number = |key: &str| {
            v[key]
                .as_f64()
                .with_context(|| format!("no {key} in the page's timing {v}"))
        };
        Ok(PageTiming {
            response_end: number("response_end")?,
            dom_content_loaded: number("dcl")?,
            load_end: number("load")?,
            first_contentful_paint: v["fcp"].as_f64(),
        })
    }

    /// One WebDriver command; its `value`, or an error with the driver's message.
    fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let text = body.map(|b| b.to_string());
        let answer = self.connection.request(
            method,
            path,
            &[],
            text.as_deref()
                .map(|t| ("application/json; charset=utf-8", t.as_bytes())),
        )?;
        let value: Value = serde_json::from_slice(&answer.body)
            .with_context(|| format!("chromedriver: {method} {path} answered no JSON"))?;
        if answer.status != 200 {
            bail!(
                "chromedriver: {method} {path} answered {}: {}",
                answer.status,
                value["value"]["message"]
            );
        }
        Ok(value["value"].clone())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = self.call("DELETE", &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn wait_for_driver(base: &str) -> Result<Connection> {
    let started = Instant::now();
    loop {
        if let Ok(mut c) = Connection::open(base) {
            if c.get("/status", &[]).is_ok_and(|a| a.status == 200) {
                return Ok(c);
            }
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("{CHROMEDRIVER} did not answer on {base} within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
