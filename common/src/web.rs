//! The two pieces of browser-facing HTTP every page-serving mock needs (Entra's sign-in page,
//! the case-search app, the harness's dashboard): escaping text into HTML, and reading one
//! cookie of a request.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

/// Escapes text for HTML content and quoted attribute values (`&`, `<`, `>`, `"`, `'`), so a
/// name such as `<script>` renders as text.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The value of cookie `name` among the request's cookies (`Cookie: a=1; b=2`, in one header
/// or several, as HTTP/2 clients send them).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The headers of a page that shows live state or secrets: its content security policy, no
/// caching, no MIME sniffing, no framing, and no referrer (a URL carrying a one-time ticket or
/// an authorization code must not travel on to another site).
pub fn hardened(mut response: Response, csp: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_text() {
        assert_eq!(
            escape_html(r#"<script>alert('x') & "y"</script>"#),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn a_cookie_is_found_in_any_of_several_headers_and_only_by_its_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "theme=dark; sid_x=1".parse().unwrap());
        headers.append(header::COOKIE, "sid=abc=; other=2".parse().unwrap());
        assert_eq!(cookie(&headers, "sid"), Some("abc="));
        assert_eq!(cookie(&headers, "sid_x"), Some("1"));
        assert_eq!(cookie(&headers, "si"), None);
    }
}
