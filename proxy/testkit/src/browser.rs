//! A real browser for tests: headless Chromium driven through
//! `chromedriver`'s W3C WebDriver HTTP API, with a client small enough to
//! read (new session, navigate, run a script, type, click, screenshot).
//!
//! Debian's `chromium` and `chromium-driver` packages provide both
//! programs; `scripts/setup.sh` installs them. A test declares them as
//! needs (a visible skip outside CI, a failure under it):
//!
//! ```no_run
//! use rauta_testkit::{browser::Browser, require, Need};
//!
//! #[test]
//! fn page_renders() {
//!     require!(Need::tool("chromium"), Need::tool("chromedriver"));
//!     let browser = Browser::start();
//!     browser.goto("http://127.0.0.1:9901/");
//!     let title = browser.eval("return document.title", &[]);
//!     assert_eq!(title, "rauta status");
//! }
//! ```

use crate::client::Conn;
use crate::need::find_tool;
use crate::wait::patience;
use base64::Engine as _;
use serde_json::{json, Value};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::{NamedTempFile, TempDir};

/// The key of a W3C WebDriver element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long one WebDriver command may take (a page load on a busy machine).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// A headless Chromium session; the browser and its driver end on drop.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    log: NamedTempFile,
    _profile: TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("driver", &self.driver.id())
            .field("addr", &self.addr)
            .field("session", &self.session)
            .finish()
    }
}

/// A failed WebDriver command.
fn failed(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("WebDriver {what}: {e}"))
}

impl Browser {
    /// Starts `chromedriver` on a free port and a headless Chromium
    /// session (window 1400×1000) with a fresh profile. Panics with the
    /// driver's log when that fails.
    pub fn start() -> Browser {
        Browser::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Browser::start`], returning the failure.
    pub fn try_start() -> Result<Browser, String> {
        let chromium = find_tool("chromium").ok_or("chromium is not on PATH")?;
        let driver = find_tool("chromedriver").ok_or("chromedriver is not on PATH")?;
        let port = crate::rauta::free_port();
        let log = tempfile::Builder::new()
            .prefix("chromedriver-")
            .suffix(".log")
            .tempfile()
            .map_err(|e| e.to_string())?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = log.as_file().try_clone().map_err(|e| e.to_string())?;
        let err = log.as_file().try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", driver.display()))?;
        let mut browser = Browser {
            driver: child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            session: String::new(),
            log,
            _profile: profile,
        };
        let deadline = Instant::now() + patience();
        loop {
            let ready = browser
                .call("GET", "/status", None)
                .is_ok_and(|v| v["ready"] == true);
            if ready {
                break;
            }
            if let Ok(Some(status)) = browser.driver.try_wait() {
                return Err(format!(
                    "chromedriver exited with {status}; log:\n{}",
                    browser.log()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "chromedriver not ready within {:?}; log:\n{}",
                    patience(),
                    browser.log()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
        let profile_dir = browser._profile.path().display().to_string();
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium.display().to_string(),
                        "args": [
                            "--headless=new",
                            // Tests run as root in containers.
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--no-default-browser-check",
                            "--window-size=1400,1000",
                            "--hide-scrollbars",
                            format!("--user-data-dir={profile_dir}"),
                        ],
                    },
                    "timeouts": { "script": 60_000, "pageLoad": 60_000 },
                },
            },
        });
        let session = browser
            .call("POST", "/session", Some(&caps))
            .map_err(|e| format!("{e}; chromedriver log:\n{}", browser.log()))?;
        browser.session = session["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {session}"))?
            .to_string();
        Ok(browser)
    }

    /// What chromedriver printed so far.
    pub fn log(&self) -> String {
        std::fs::read(self.log.path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// One WebDriver command; its `value`, or the error it reported.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> io::Result<Value> {
        let mut conn = Conn::open(self.addr)?;
        conn.set_timeout(COMMAND_TIMEOUT)?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut headers = vec![("Connection", "close")];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json; charset=utf-8"));
        }
        let host = self.addr.to_string();
        let resp = conn.request(method, &host, path, &headers, body.as_bytes())?;
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| failed(path, format!("{e}: {}", resp.text())))?;
        if resp.status != 200 {
            let error = &v["value"]["error"];
            let message = &v["value"]["message"];
            return Err(failed(path, format!("{} {error}: {message}", resp.status)));
        }
        Ok(v["value"].clone())
    }

    /// A command of this session.
    fn session_call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        self.call(method, &full, body)
            .unwrap_or_else(|e| panic!("{e}\nchromedriver log:\n{}", self.log()))
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body: `return ...`) in the page with
    /// `args` (`arguments[0]`...) and returns its result.
    pub fn eval(&self, script: &str, args: &[Value]) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// Polls `script` until it returns something other than `null`,
    /// `false`, `0` or `""`, and returns that; panics naming `what` (with
    /// the last result) after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, script: &str, args: &[Value]) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(script, args);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("browser: timed out after {timeout:?} waiting for {what} (last: {v})");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The element matching CSS `selector` (panics when there is none).
    fn find(&self, selector: &str) -> String {
        let v = self.session_call(
            "POST",
            "/element",
            Some(&json!({ "using": "css selector", "value": selector })),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector:?}: {v}"))
            .to_string()
    }

    /// Types `text` into the element matching `selector`, as a user would
    /// (key events; what is there stays unless cleared first).
    pub fn type_into(&self, selector: &str, text: &str) {
        let id = self.find(selector);
        self.session_call(
            "POST",
            &format!("/element/{id}/value"),
            Some(&json!({ "text": text })),
        );
    }

    /// Clears the input matching `selector`.
    pub fn clear(&self, selector: &str) {
        let id = self.find(selector);
        self.session_call("POST", &format!("/element/{id}/clear"), Some(&json!({})));
    }

    /// Clicks the element matching `selector`.
    pub fn click(&self, selector: &str) {
        let id = self.find(selector);
        self.session_call("POST", &format!("/element/{id}/click"), Some(&json!({})));
    }

    /// Resizes the window (e.g. to take a screenshot of a whole page).
    pub fn set_window(&self, width: u32, height: u32) {
        self.session_call(
            "POST",
            "/window/rect",
            Some(&json!({ "width": width, "height": height })),
        );
    }

    /// A PNG screenshot of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        let v = self.session_call("GET", "/screenshot", None);
        let b64 = v.as_str().expect("screenshot is base64 text");
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("screenshot decodes")
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
