//! The server under test: where to connect and how to address requests.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::Full;

/// A parsed and resolved `--target` URL (`http://host:port[/prefix]`).
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, without a trailing slash.
    pub url: String,
    /// The `Host` header value.
    pub host: HeaderValue,
    /// The resolved address connections go to.
    pub addr: SocketAddr,
    /// A path prefix put before every API path (empty for a server at the root).
    pub prefix: String,
}

impl Target {
    /// Parses and resolves `url`. Only plain `http://` is spoken: point the bench at an instance,
    /// not at a TLS-terminating load balancer.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let trimmed = url.trim().trim_end_matches('/');
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let uri: http::Uri = with_scheme
            .parse()
            .with_context(|| format!("invalid --target URL {url:?}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!(
                "--target scheme {other:?} is not supported: the bench speaks plain http to one instance"
            ),
            None => bail!("--target {url:?} has no scheme"),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("--target {url:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let host_name = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addr = (host_name, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {}", authority.as_str()))?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", authority.as_str()))?;
        let host = HeaderValue::from_str(authority.as_str())
            .with_context(|| format!("invalid host in {url:?}"))?;
        let prefix = uri.path().trim_end_matches('/').to_string();
        Ok(Target {
            url: with_scheme,
            host,
            addr,
            prefix,
        })
    }

    /// A request for `path` (origin form) with the `Host` header, a JSON body when given, and
    /// `headers`.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        json: Option<Bytes>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Request<Full<Bytes>>, http::Error> {
        let uri = if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}{path}", self.prefix)
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, self.host.clone());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        match json {
            Some(body) => builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(Full::new(body)),
            None => builder.body(Full::new(Bytes::new())),
        }
    }
}
