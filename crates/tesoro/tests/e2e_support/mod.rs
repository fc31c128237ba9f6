//! Shared by the end-to-end tests: a real headless Chromium driven over WebDriver
//! (chromedriver on loopback, through fantoccini), screenshots kept as test artifacts.
//!
//! Chromium and chromedriver come from Debian's `chromium` and `chromium-driver` packages,
//! which ./test.sh installs; their paths come from TESORO_CHROMIUM / TESORO_CHROMEDRIVER or
//! the usual places. Missing, the tests fail saying so, unless TESORO_SKIP_BROWSER=1.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// Chromium's flags for a headless run in a container (no sandbox, no GPU, no /dev/shm,
/// no traffic of its own).
pub const CHROMIUM_FLAGS: [&str; 7] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--window-size=1280,1024",
];

fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Where the screenshots go: `<target dir>/e2e-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp` for integration tests.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("e2e-screenshots"))
        .unwrap_or_else(|| PathBuf::from("e2e-screenshots"));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A chromedriver process and a WebDriver session on it; both end on drop.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or `None` when the browser is
    /// missing and TESORO_SKIP_BROWSER=1 says that is fine. Missing without it: panics
    /// telling the reader to run ./test.sh, which installs both.
    pub async fn start() -> Option<Browser> {
        let chromium = find(
            "TESORO_CHROMIUM",
            &[
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ],
        );
        let driver = find(
            "TESORO_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        );
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            if std::env::var("TESORO_SKIP_BROWSER").as_deref() == Ok("1") {
                eprintln!("TESORO_SKIP_BROWSER=1: skipping the browser test");
                return None;
            }
            panic!(
                "headless Chromium is not installed (chromium and chromedriver were not found; \
                 set TESORO_CHROMIUM and TESORO_CHROMEDRIVER or run ./test.sh, which installs \
                 Debian's chromium and chromium-driver). Set TESORO_SKIP_BROWSER=1 to skip."
            );
        };
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium.display().to_string(),
                "args": CHROMIUM_FLAGS,
            }),
        );
        let spawn = |port: u16| {
            Command::new(&driver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()))
        };
        // The port is free when asked but not reserved: another test's server or chromedriver
        // may take it before ours binds, and ours then exits while the session below would be
        // opened with (and later die with) someone else's. A driver that exited is replaced
        // on a new port, and a session counts only if our driver is still the one running.
        let mut port = free_port();
        let mut child = spawn(port);
        let started = Instant::now();
        let client = loop {
            if started.elapsed() > Duration::from_secs(30) {
                panic!("chromedriver did not start a session in 30 s (last port {port})");
            }
            if let Ok(Some(_)) = child.try_wait() {
                port = free_port();
                child = spawn(port);
                continue;
            }
            let conn =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await;
            match conn {
                Ok(c) => {
                    // Give a driver that lost the port race the moment it needs to exit.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Ok(None) = child.try_wait() {
                        break c;
                    }
                    let _ = c.close().await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Some(Browser {
            client,
            driver: child,
        })
    }

    /// Opens `url` and waits for the document.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} on {url}: {e}"))
            .text()
            .await
            .unwrap_or_else(|e| panic!("cannot read the text of {css}: {e}"))
    }

    /// An attribute of the element `css` selects.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .attr(name)
            .await
            .unwrap_or_else(|e| panic!("cannot read {name} of {css}: {e}"))
    }

    /// Types `text` into the field `css` selects.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no field {css}: {e}"));
        el.clear()
            .await
            .unwrap_or_else(|e| panic!("cannot clear {css}: {e}"));
        el.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    /// Chooses the local file `path` in the file input `css` selects.
    pub async fn choose_file(&self, css: &str, path: &Path) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no file input {css}: {e}"))
            .send_keys(&path.display().to_string())
            .await
            .unwrap_or_else(|e| panic!("cannot choose {} in {css}: {e}", path.display()));
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Clicks the element `css` selects and waits until the page it leads to has loaded.
    ///
    /// WebDriver's click returns once the click is dispatched; a form post (above all a
    /// multipart upload) may start its navigation after that, and reading the URL then
    /// still gives the old page. The old document's root going stale marks the new one.
    pub async fn submit(&self, css: &str) {
        let old = self.document_root().await;
        self.click(css).await;
        self.wait_for_new_document(old, css).await;
    }

    /// Sends `keys` to the focused element and waits for the page that leads to.
    pub async fn press_and_wait(&self, keys: &str) {
        let old = self.document_root().await;
        self.client
            .active_element()
            .await
            .unwrap_or_else(|e| panic!("no focused element: {e}"))
            .send_keys(keys)
            .await
            .unwrap_or_else(|e| panic!("cannot press a key: {e}"));
        self.wait_for_new_document(old, "a key press").await;
    }

    /// The current document's root element: it goes stale when the next page replaces it.
    async fn document_root(&self) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css("html"))
            .await
            .unwrap_or_else(|e| panic!("no document: {e}"))
    }

    async fn wait_for_new_document(&self, old: fantoccini::elements::Element, what: &str) {
        let started = Instant::now();
        loop {
            if old.is_displayed().await.is_err() {
                let ready = self
                    .client
                    .execute("return document.readyState", vec![])
                    .await
                    .ok();
                if ready.as_ref().and_then(|v| v.as_str()) == Some("complete") {
                    return;
                }
            }
            if started.elapsed() > Duration::from_secs(15) {
                panic!(
                    "{what} did not lead to a new page in 15 s (still on {})",
                    self.path().await
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let u = self
            .client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("no current URL: {e}"));
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// The whole page's visible text.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// The page's HTML as the browser holds it (hidden fields and attributes included).
    pub async fn source(&self) -> String {
        self.client
            .source()
            .await
            .unwrap_or_else(|e| panic!("cannot read the page source: {e}"))
    }

    /// Saves a PNG of the window as `<screenshot dir>/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, &png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        path
    }

    /// Ends the session (the driver is killed on drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
