//! One HTTP POST to a webhook endpoint: plain HTTP, or HTTPS through rustls with the system's
//! root certificates. A fresh connection per attempt, to an address [`super::ssrf`] checked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// A parsed endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// The host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// `Host` header value: the URL's authority.
    pub authority: String,
    pub path_and_query: String,
}

/// Parses and checks an endpoint URL: `http` or `https`, a host, no user info, no fragment.
pub fn parse_url(url: &str) -> Result<Target, String> {
    if url.contains('#') {
        return Err("a webhook URL may not have a fragment".to_string());
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("{url:?} is not a valid URL"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("a webhook URL must start with http:// or https://".to_string()),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| "a webhook URL needs a host".to_string())?;
    if authority.as_str().contains('@') {
        return Err("a webhook URL may not carry credentials".to_string());
    }
    let host = authority.host().trim_matches(['[', ']']).to_string();
    if host.is_empty() {
        return Err("a webhook URL needs a host".to_string());
    }
    Ok(Target {
        https,
        port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        authority: authority.as_str().to_string(),
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
        host,
    })
}

/// The TLS client for `https` endpoints: rustls (ring) with the system's root certificates.
pub fn tls_connector() -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_native_certs::load_native_certs()
        .map_err(|e| format!("cannot load the system's root certificates: {e}"))?;
    for cert in certs {
        // A malformed system certificate is skipped, not fatal.
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS set-up: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// POSTs `body` to `target` at the first of `addrs` that accepts a connection. Returns the
/// response status, or why there was none. The caller bounds the time.
pub async fn post(
    target: &Target,
    addrs: &[SocketAddr],
    tls: Option<&TlsConnector>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    connect_timeout: Duration,
) -> Result<u16, String> {
    let mut last = String::from("no address");
    let mut stream = None;
    for addr in addrs {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last = format!("connect {addr}: {e}"),
            Err(_) => last = format!("connect {addr}: timed out"),
        }
    }
    let stream = stream.ok_or(last)?;
    let _ = stream.set_nodelay(true);
    let request = build_request(target, headers, body)?;
    if target.https {
        let tls = tls.ok_or_else(|| "https is unavailable (no TLS set-up)".to_string())?;
        let name = ServerName::try_from(target.host.clone())
            .map_err(|_| format!("{} is not a valid TLS server name", target.host))?;
        let stream = tls
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        exchange(stream, request).await
    } else {
        exchange(stream, request).await
    }
}

fn build_request(
    target: &Target,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, String> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(target.path_and_query.as_str())
        .header(HOST, target.authority.as_str())
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("HelloJohn-Webhooks/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))
}

async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    // The connection is driven beside the request; it ends when the response (and this
    // attempt) is dropped.
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = sender
        .send_request(request)
        .await
        .map(|resp| resp.status().as_u16())
        .map_err(|e| format!("HTTP: {e}"));
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("https://hooks.example.com/in?x=1").unwrap();
        assert_eq!(
            t,
            Target {
                https: true,
                host: "hooks.example.com".into(),
                port: 443,
                authority: "hooks.example.com".into(),
                path_and_query: "/in?x=1".into(),
            }
        );
        let t = parse_url("http://[::1]:8080").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path_and_query.as_str()),
            ("::1", 8080, "/")
        );
        assert_eq!(t.authority, "[::1]:8080");
        for bad in [
            "ftp://example.com/",
            "example.com/hook",
            "http://user:pw@example.com/",
            "https://example.com/#frag",
            "not a url",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
