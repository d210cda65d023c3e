//! `custom-http-errors` + `default-backend`: upstream answers with the
//! listed statuses are replaced by the error backend's answer to a
//! `GET /` that says what happened (X-Code, X-Original-URI, ...), and a
//! route whose backend has no endpoint asks it with X-Code 503.

use super::Request;
use std::io::Write;

/// A route's error pages, compiled.
#[derive(Debug)]
pub struct ErrorPages {
    codes: Box<[u16]>,
    /// The error backend (index into the table's backends).
    pub backend: usize,
    /// `X-Namespace` .. `X-Service-Port` lines: fixed per route.
    origin: Box<[u8]>,
}

impl ErrorPages {
    /// Compiles the route's error pages; `origin` names the route's
    /// Ingress and Service for the error backend.
    pub fn compile(
        pages: &rauta_shared::policy::ErrorPages,
        namespace: &str,
        ingress: &str,
        service: &str,
        port: &str,
    ) -> ErrorPages {
        let mut origin = Vec::new();
        let _ = write!(
            origin,
            "X-Namespace: {namespace}\r\nX-Ingress-Name: {ingress}\r\nX-Service-Name: {service}\r\nX-Service-Port: {port}\r\n"
        );
        ErrorPages {
            codes: pages.codes.as_slice().into(),
            backend: pages.backend,
            origin: origin.into(),
        }
    }

    /// Whether an upstream answer with `status` is replaced.
    #[inline]
    pub fn intercepts(&self, status: u16) -> bool {
        self.codes.contains(&status)
    }

    /// The error request's head for `req`, all but its `X-Code` line and
    /// the blank line ([`finish`] adds them): prepared in the request
    /// phase, since the client's head is gone when an answer is replaced.
    pub fn head(&self, req: &Request<'_, '_, '_>, client_ip: &[u8], request_id: &[u8]) -> Vec<u8> {
        let head = req.head;
        let mut out = Vec::with_capacity(256 + head.origin_target.len());
        // HEAD stays HEAD, so that the answer's framing is the one the client expects.
        let method: &[u8] = if head.is_head() { b"HEAD" } else { b"GET" };
        out.extend_from_slice(method);
        out.extend_from_slice(b" / HTTP/1.1\r\nHost: ");
        out.extend_from_slice(req.http_host().as_bytes());
        out.extend_from_slice(b"\r\nX-Format: ");
        out.extend_from_slice(head.header("accept").unwrap_or(b""));
        out.extend_from_slice(b"\r\nX-Original-URI: ");
        out.extend_from_slice(head.origin_target.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.origin);
        out.extend_from_slice(b"X-Request-ID: ");
        let id = head
            .header("x-request-id")
            .filter(|v| !v.is_empty())
            .unwrap_or(request_id);
        out.extend_from_slice(id);
        out.extend_from_slice(b"\r\nX-Forwarded-For: ");
        out.extend_from_slice(client_ip);
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// `out` = the prepared `head` with `X-Code: code` and the blank line.
pub fn finish(head: &[u8], code: u16, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(head);
    let _ = write!(out, "X-Code: {code}\r\n\r\n");
}
