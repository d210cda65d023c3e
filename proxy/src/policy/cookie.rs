//! Request cookies, read in place from the `Cookie` headers.

use crate::http::request::RequestHead;

/// The value of cookie `name` in the request's `Cookie` headers, if any.
pub fn get<'b>(head: &RequestHead<'_, 'b>, name: &str) -> Option<&'b [u8]> {
    head.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
        .flat_map(|h| h.value.split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
        })
}
