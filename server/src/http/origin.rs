//! Which web pages may open a WebSocket that is authenticated by a cookie.
//!
//! Browsers attach cookies to a WebSocket handshake whatever page starts it, and WebSockets
//! are outside CORS, so without a check any site a signed-in person visits could open a
//! socket as them (cross-site WebSocket hijacking). A handshake that authenticates by cookie
//! must therefore carry an `Origin` that is `public_url`'s origin or one of
//! `http.allowed_origins`; when `public_url` is not set, the origin must name the host the
//! request was addressed to (`Host`). A token passed explicitly (subprotocol header, query)
//! is not ambient, so it needs no such check.

use axum::http::{header, HeaderMap};

/// The origins allowed to open cookie-authenticated WebSockets.
#[derive(Clone, Debug)]
pub struct AllowedOrigins {
    listed: Vec<String>,
    same_host: bool,
}

impl AllowedOrigins {
    /// `public_url`'s origin (or, without it, the request's own host) and `extra`.
    pub fn new(public_url: Option<&str>, extra: &[String]) -> AllowedOrigins {
        let mut listed: Vec<String> = extra.iter().filter_map(|o| serialize(o)).collect();
        listed.extend(public_url.and_then(serialize));
        AllowedOrigins {
            listed,
            same_host: public_url.is_none(),
        }
    }

    /// Whether the request's `Origin` header names an allowed page.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .and_then(|o| url::Url::parse(o).ok())
        else {
            return false;
        };
        let serialized = origin.origin().ascii_serialization();
        if self.listed.contains(&serialized) {
            return true;
        }
        if !self.same_host {
            return false;
        }
        // The request's own host, read with the origin's scheme so default ports compare equal.
        headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(|host| url::Url::parse(&format!("{}://{host}", origin.scheme())).ok())
            .is_some_and(|own| {
                own.path() == "/" && own.origin().ascii_serialization() == serialized
            })
    }
}

/// `scheme://host[:port]` of an http(s) URL; `None` for anything else (including `null`).
fn serialize(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_public_origin_and_listed_ones_are_allowed_and_nothing_else() {
        let allowed = AllowedOrigins::new(
            Some("https://chat.example.org/"),
            &["http://localhost:5173".to_owned()],
        );
        let host = "chat.example.org";
        assert!(allowed.allows(&headers(Some("https://chat.example.org"), host)));
        assert!(allowed.allows(&headers(Some("https://chat.example.org:443"), host)));
        assert!(allowed.allows(&headers(Some("http://localhost:5173"), host)));
        for bad in [
            "http://chat.example.org",
            "https://chat.example.org.evil.example",
            "https://evil.example",
            "null",
        ] {
            assert!(!allowed.allows(&headers(Some(bad), host)), "{bad}");
        }
        assert!(!allowed.allows(&headers(None, host)));
        // With a public URL, the Host header does not widen the list.
        assert!(!allowed.allows(&headers(Some("https://evil.example"), "evil.example")));
    }

    #[test]
    fn without_a_public_url_the_origin_must_be_the_requested_host() {
        let allowed = AllowedOrigins::new(None, &[]);
        assert!(allowed.allows(&headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080")));
        assert!(allowed.allows(&headers(
            Some("https://chat.example.org"),
            "chat.example.org:443"
        )));
        assert!(!allowed.allows(&headers(Some("http://127.0.0.1:9999"), "127.0.0.1:8080")));
        assert!(!allowed.allows(&headers(Some("https://evil.example"), "127.0.0.1:8080")));
        assert!(!allowed.allows(&headers(
            Some("http://a@127.0.0.1:8080"),
            "127.0.0.1:8080/x"
        )));
    }
}
