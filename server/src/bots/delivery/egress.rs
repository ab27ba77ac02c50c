//! Outgoing HTTP to bots' request URLs, which administrators type in: a guarded client.
//!
//! A request URL must be `https` without credentials (plain `http` only to the networks
//! `bots.event_allowed_networks` names: what leaves the server is signed, not encrypted, and
//! may carry people's messages). Its host may not resolve to
//! a loopback, private, link-local, shared, multicast or otherwise non-public address unless
//! `bots.event_allowed_networks` names that network: the check runs on the addresses DNS
//! answered, in the resolver the client connects through ([`GuardedResolver`]), so a name
//! that resolves differently between a check and the connection (DNS rebinding) gains
//! nothing; an address written in the URL is checked before sending. Redirects are never
//! followed, no proxy from the environment is used, and every request has a timeout
//! (connection included).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;

use crate::config::ProxyNet;

/// Why an outgoing request was not made or failed.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The URL is not an `http(s)` URL without credentials, of at most 2048 bytes.
    #[error(
        "the request URL must be an http or https URL without credentials, of at most 2048 bytes"
    )]
    BadUrl,
    /// The host is (or resolves only to) an address the configuration does not allow.
    #[error("{0} is not a public address (bots.event_allowed_networks may allow it)")]
    NotAllowed(String),
    /// The host did not resolve.
    #[error("{0} does not resolve")]
    Unresolved(String),
    /// A plain `http` URL to a host outside the allowed networks.
    #[error("{0} is reached over plain http: use https (plain http is only for bots.event_allowed_networks)")]
    Insecure(String),
    /// The endpoint did not answer in time.
    #[error("no answer within the timeout")]
    Timeout,
    /// The connection failed.
    #[error("connection failed: {0}")]
    Connect(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl EgressError {
    /// Slack's `X-Slack-Retry-Reason` for a failure like this one.
    pub fn retry_reason(&self) -> &'static str {
        match self {
            EgressError::Timeout => "http_timeout",
            EgressError::Connect(_)
            | EgressError::NotAllowed(_)
            | EgressError::Unresolved(_)
            | EgressError::Insecure(_) => "connection_failed",
            EgressError::BadUrl | EgressError::Other(_) => "unknown_error",
        }
    }
}

/// An answer: status, headers and at most the first bytes of the body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// Its headers.
    pub headers: HeaderMap,
    /// The body, cut at the limit the caller gave.
    pub body: Vec<u8>,
}

/// Whether `ip` is a public address, or in one of the `allowed` networks.
pub fn permitted(ip: IpAddr, allowed: &[ProxyNet]) -> bool {
    let ip = ip.to_canonical();
    allowed.iter().any(|net| net.contains(ip)) || is_public(ip)
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier-grade NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))) // benchmarking
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible and other reserved
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves names with the system resolver and keeps only the addresses allowed; none left
/// is an error, so the client never connects to a refused address.
struct GuardedResolver {
    allowed: Arc<Vec<ProxyNet>>,
    /// Only the allowed networks, not public addresses (for plain http).
    allowed_only: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        let allowed_only = self.allowed_only;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => return Err(Box::new(e) as BoxError),
            };
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| {
                    if allowed_only {
                        let ip = a.ip().to_canonical();
                        allowed.iter().any(|net| net.contains(ip))
                    } else {
                        permitted(a.ip(), &allowed)
                    }
                })
                .collect();
            if kept.is_empty() {
                let err = if found.is_empty() {
                    EgressError::Unresolved(host)
                } else {
                    EgressError::NotAllowed(host)
                };
                return Err(Box::new(err) as BoxError);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The guarded client; cheap to clone.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    /// For plain http: connects only to the allowed networks, whatever DNS answers later.
    plain: reqwest::Client,
    allowed: Arc<Vec<ProxyNet>>,
}

impl Egress {
    /// A client that reaches public addresses and `allowed` networks, giving each request
    /// `timeout` in all.
    pub fn new(allowed: Vec<ProxyNet>, timeout: Duration) -> Result<Egress, EgressError> {
        let allowed = Arc::new(allowed);
        let build = |allowed_only: bool| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(timeout)
                .connect_timeout(timeout)
                .user_agent(concat!("Concord-Events/", env!("CARGO_PKG_VERSION")))
                .dns_resolver(Arc::new(GuardedResolver {
                    allowed: allowed.clone(),
                    allowed_only,
                }))
                .build()
                .map_err(|e| EgressError::Other(e.to_string()))
        };
        let client = build(false)?;
        let plain = build(true)?;
        Ok(Egress {
            client,
            plain,
            allowed,
        })
    }

    /// Parses a request URL and checks what can be checked before connecting: its form, and
    /// its host's addresses (resolved now; the connection checks them again). Plain `http`
    /// is accepted only when every address is in an allowed network.
    pub async fn vet(&self, raw: &str) -> Result<url::Url, EgressError> {
        let url = parse(raw)?;
        let insecure = url.scheme() == "http";
        match url.host() {
            Some(url::Host::Domain(name)) => {
                let port = url.port_or_known_default().unwrap_or(443);
                let found: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|_| EgressError::Unresolved(name.to_owned()))?
                    .collect();
                if found.is_empty() {
                    return Err(EgressError::Unresolved(name.to_owned()));
                }
                if !found.iter().any(|a| permitted(a.ip(), &self.allowed)) {
                    return Err(EgressError::NotAllowed(name.to_owned()));
                }
                if insecure && !found.iter().all(|a| self.explicitly_allowed(a.ip())) {
                    return Err(EgressError::Insecure(name.to_owned()));
                }
            }
            _ => self.check_literal(&url)?,
        }
        Ok(url)
    }

    fn explicitly_allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed.iter().any(|net| net.contains(ip))
    }

    fn check_literal(&self, url: &url::Url) -> Result<(), EgressError> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(EgressError::BadUrl),
        };
        if !permitted(ip, &self.allowed) {
            Err(EgressError::NotAllowed(ip.to_string()))
        } else if url.scheme() == "http" && !self.explicitly_allowed(ip) {
            Err(EgressError::Insecure(ip.to_string()))
        } else {
            Ok(())
        }
    }

    /// POSTs `body` as JSON with `headers` to `url`, reading at most `max_body` bytes of the
    /// answer.
    pub async fn post_json(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
        max_body: usize,
    ) -> Result<Answer, EgressError> {
        self.post(url, headers, "application/json", body, max_body)
            .await
    }

    /// POSTs `body` of `content_type` with `headers` to `url`, reading at most `max_body`
    /// bytes of the answer.
    pub async fn post(
        &self,
        url: &str,
        mut headers: HeaderMap,
        content_type: &'static str,
        body: Vec<u8>,
        max_body: usize,
    ) -> Result<Answer, EgressError> {
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static(content_type),
        );
        self.send(reqwest::Method::POST, url, headers, Some(body), max_body)
            .await
    }

    /// Sends a `method` request with `headers` (and `body`, if any) to `url`, reading at most
    /// `max_body` bytes of the answer.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        max_body: usize,
    ) -> Result<Answer, EgressError> {
        let url = parse(url)?;
        self.check_literal(&url)?;
        // Plain http goes through a client whose resolver keeps only the allowed networks, so
        // a name that answers differently when connecting (DNS rebinding) cannot send it to a
        // public address; a URL stored before the rule is held to it too.
        let client = if url.scheme() == "http" {
            &self.plain
        } else {
            &self.client
        };
        let mut request = client.request(method, url).headers(headers);
        if let Some(body) = body {
            request = request.body(body);
        }
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut out = Vec::new();
        while out.len() < max_body {
            match response.chunk().await.map_err(classify)? {
                Some(chunk) => {
                    out.extend_from_slice(&chunk[..chunk.len().min(max_body - out.len())])
                }
                None => break,
            }
        }
        Ok(Answer {
            status,
            headers,
            body: out,
        })
    }
}

/// The longest URL accepted (as browsers and most servers do).
pub const MAX_URL_BYTES: usize = 2048;

fn parse(raw: &str) -> Result<url::Url, EgressError> {
    if raw.len() > MAX_URL_BYTES {
        return Err(EgressError::BadUrl);
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| EgressError::BadUrl)?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none();
    if ok {
        Ok(url)
    } else {
        Err(EgressError::BadUrl)
    }
}

/// Names a client error: a refused address found by the resolver stays one.
fn classify(err: reqwest::Error) -> EgressError {
    use std::error::Error as _;
    let mut source = err.source();
    while let Some(s) = source {
        if let Some(egress) = s.downcast_ref::<EgressError>() {
            return match egress {
                EgressError::NotAllowed(h) => EgressError::NotAllowed(h.clone()),
                EgressError::Unresolved(h) => EgressError::Unresolved(h.clone()),
                other => EgressError::Connect(other.to_string()),
            };
        }
        source = s.source();
    }
    if err.is_timeout() {
        EgressError::Timeout
    } else if err.is_connect() {
        EgressError::Connect(err.to_string())
    } else {
        EgressError::Other(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_unless_allowed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!permitted(ip(private), &[]), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(permitted(ip(public), &[]), "{public}");
        }
        let loopback: Vec<ProxyNet> = vec!["127.0.0.1/32".parse().unwrap()];
        assert!(permitted(ip("127.0.0.1"), &loopback));
        assert!(permitted(ip("::ffff:127.0.0.1"), &loopback));
        assert!(!permitted(ip("127.0.0.2"), &loopback));
        assert!(!permitted(ip("10.0.0.1"), &loopback));
    }

    #[test]
    fn request_urls_are_http_without_credentials() {
        assert!(parse("https://bot.example.org/slack/events").is_ok());
        assert!(parse("http://bot.example.org:8080/").is_ok());
        for bad in [
            "ftp://bot.example.org/",
            "https://user:pw@bot.example.org/",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn plain_http_only_to_allowed_networks() {
        let loopback: Vec<ProxyNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let open = Egress::new(Vec::new(), Duration::from_secs(1)).unwrap();
        let guarded = Egress::new(loopback, Duration::from_secs(1)).unwrap();
        assert!(open.vet("https://93.184.216.34/events").await.is_ok());
        assert!(matches!(
            open.vet("http://93.184.216.34/events").await,
            Err(EgressError::Insecure(_))
        ));
        assert!(guarded.vet("http://127.0.0.1:8080/events").await.is_ok());
        assert!(matches!(
            guarded.vet("http://93.184.216.34/events").await,
            Err(EgressError::Insecure(_))
        ));
    }
}
