//! `proxy-next-upstream`, `-tries`, `-timeout`: which failed attempts are
//! tried again on another endpoint.

use super::Reader;
use rauta_shared::policy::{RetryPolicy, RoutePolicy};

/// ingress-nginx's defaults: `error timeout`, 3 tries, no time limit.
fn default_policy() -> RetryPolicy {
    RetryPolicy {
        on_error: true,
        on_timeout: true,
        on_invalid_header: false,
        on_status: Vec::new(),
        non_idempotent: false,
        tries: 3,
        timeout_ms: 0,
    }
}

/// Reads the family; the route gets a [`RetryPolicy`] when any of the
/// three keys is set, ingress-nginx's defaults filling the others.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy) {
    let tokens = r.get("proxy-next-upstream");
    let tries = r.get("proxy-next-upstream-tries");
    let timeout = r.get("proxy-next-upstream-timeout");
    if tokens.is_none() && tries.is_none() && timeout.is_none() {
        return;
    }
    let mut policy = default_policy();
    if let Some(value) = tokens {
        match parse_tokens(value) {
            Ok(p) => {
                policy = RetryPolicy {
                    tries: policy.tries,
                    timeout_ms: policy.timeout_ms,
                    ..p
                }
            }
            Err(e) => r.warn(
                "proxy-next-upstream",
                format!("{e}; the default (error timeout) is used"),
            ),
        }
    }
    if let Some(value) = tries {
        match value.trim().parse::<u32>() {
            Ok(n) => policy.tries = n,
            Err(_) => r.warn(
                "proxy-next-upstream-tries",
                format!("{value:?} is not a whole number; the default (3) is used"),
            ),
        }
    }
    if let Some(value) = timeout {
        match value.trim().parse::<u64>() {
            Ok(s) if s <= 86_400 => policy.timeout_ms = s * 1000,
            _ => r.warn(
                "proxy-next-upstream-timeout",
                format!(
                    "{value:?} is not a whole number of seconds; the default (0, no limit) is used"
                ),
            ),
        }
    }
    route.retry = Some(policy);
}

/// The space-separated tokens of `proxy-next-upstream`.
fn parse_tokens(value: &str) -> Result<RetryPolicy, String> {
    let mut p = RetryPolicy {
        on_error: false,
        on_timeout: false,
        on_invalid_header: false,
        on_status: Vec::new(),
        non_idempotent: false,
        tries: 0,
        timeout_ms: 0,
    };
    let tokens: Vec<&str> = value.split_ascii_whitespace().collect();
    if tokens.is_empty() {
        return Err("no value".to_string());
    }
    if tokens.contains(&"off") {
        return if tokens.len() == 1 {
            Ok(p)
        } else {
            Err("\"off\" cannot be combined with other values".to_string())
        };
    }
    for token in tokens {
        match token {
            "error" => p.on_error = true,
            "timeout" => p.on_timeout = true,
            "invalid_header" => p.on_invalid_header = true,
            "non_idempotent" => p.non_idempotent = true,
            "http_500" | "http_502" | "http_503" | "http_504" | "http_403" | "http_404"
            | "http_429" => {
                let code = token[5..].parse::<u16>().map_err(|e| e.to_string())?;
                if !p.on_status.contains(&code) {
                    p.on_status.push(code);
                }
            }
            other => {
                return Err(format!(
                    "unknown value {other:?} (expected error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_403, http_404, http_429, non_idempotent or off)"
                ))
            }
        }
    }
    p.on_status.sort_unstable();
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let p = parse_tokens("error  http_502 non_idempotent http_502").expect("valid");
        assert!(p.on_error && !p.on_timeout && p.non_idempotent);
        assert_eq!(p.on_status, vec![502]);
        let off = parse_tokens("off").expect("valid");
        assert!(!off.on_error && !off.on_timeout && off.on_status.is_empty());
        assert!(parse_tokens("off error").is_err());
        assert!(parse_tokens("http_501").is_err());
        assert!(parse_tokens(" ").is_err());
    }
}
