//! `custom-http-errors` and `default-backend`: upstream answers with the
//! listed codes, and requests to a backend without endpoints, are answered
//! by a Service of the Ingress's namespace (its first port).

use super::Reader;
use rauta_shared::policy::{ErrorPages, RoutePolicy};

/// Reads the family; returns the error Service's name when the route gets
/// error pages (its backend index is filled in when rules are merged).
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy) -> Option<String> {
    let codes = r
        .get("custom-http-errors")
        .and_then(|v| match parse_codes(v) {
            Ok(codes) => Some(codes),
            Err(e) => {
                r.warn(
                    "custom-http-errors",
                    format!("{e}; no codes are intercepted"),
                );
                None
            }
        });
    let service = r.get("default-backend").and_then(|v| {
        let v = v.trim();
        let valid = !v.is_empty()
            && v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !v.starts_with('-');
        if valid {
            Some(v.to_string())
        } else {
            r.warn(
                "default-backend",
                format!("{v:?} is not a Service name; ignored"),
            );
            None
        }
    });
    let Some(service) = service else {
        if codes.is_some() {
            r.warn(
                "custom-http-errors",
                "rauta has no global error backend: set default-backend on the Ingress; no codes are intercepted",
            );
        }
        return None;
    };
    route.error_pages = Some(ErrorPages {
        codes: codes.unwrap_or_default(),
        backend: 0,
    });
    Some(service)
}

/// `404,503, 500`: statuses from 300 to 599.
fn parse_codes(value: &str) -> Result<Vec<u16>, String> {
    let mut codes = Vec::new();
    for code in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match code.parse::<u16>() {
            Ok(n) if (300..=599).contains(&n) => {
                if !codes.contains(&n) {
                    codes.push(n);
                }
            }
            _ => return Err(format!("{code:?} is not a status code from 300 to 599")),
        }
    }
    codes.sort_unstable();
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(parse_codes("503, 404,,404").expect("valid"), vec![404, 503]);
        assert!(parse_codes("404,abc").is_err());
        assert!(parse_codes("200").is_err());
    }
}
