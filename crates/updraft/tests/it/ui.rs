//! Browser tests of the web UI: headless Chromium driven through WebDriver (chromedriver)
//! against a real `updraft standalone`.

mod dag;
