//! The status page's files, embedded in the binary: one HTML page, its
//! script and its style sheet, in plain JavaScript and CSS (no framework,
//! nothing fetched from elsewhere). The page only reads: it polls
//! `/status.json` and asks `/debug/route`, both GET.

/// `GET /`.
const INDEX: &str = include_str!("page/index.html");
/// `GET /status.js`.
const SCRIPT: &str = include_str!("page/status.js");
/// `GET /status.css`.
const STYLE: &str = include_str!("page/status.css");

/// Headers of every page file: nothing but this listener's own files may
/// run or load, nothing may frame the page, and no referrer leaves it.
pub const HEADERS: &str = "Content-Security-Policy: default-src 'none'; script-src 'self'; \
style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; \
frame-ancestors 'none'; base-uri 'none'\r\n\
X-Content-Type-Options: nosniff\r\n\
Referrer-Policy: no-referrer\r\n\
Cache-Control: no-cache\r\n";

/// The content type and body of the page file at `path`.
pub fn asset(path: &str) -> (&'static str, &'static str) {
    match path {
        "/status.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/status.css" => ("text/css; charset=utf-8", STYLE),
        _ => ("text/html; charset=utf-8", INDEX),
    }
}
