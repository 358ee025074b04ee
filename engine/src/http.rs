//! Request and response helpers shared by every handler.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use protocol::{ApiError, ErrorCode, OAuthError, OAuthErrorCode};
use serde::Serialize;

pub type Resp = Response<Full<Bytes>>;

pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, value: &T) -> Resp {
    bytes(status, JSON, protocol::json::to_vec(value))
}

pub fn bytes(status: u16, content_type: HeaderValue, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    resp
}

pub fn empty(status: u16) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

/// `Retry-After` on a 503: for an unavailable store (nothing was written, a retry in a moment
/// is safe), and for a full hash pool, the wait its answer's `detail.retry_after` names.
pub fn retry_after(resp: &mut Resp, err: &ApiError) {
    if resp.headers().contains_key(RETRY_AFTER) {
        return;
    }
    match err.code {
        ErrorCode::Unavailable => {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("2"));
        }
        ErrorCode::Overloaded => {
            let secs = match err.detail.get("retry_after") {
                Some(protocol::DetailValue::Number(n)) => (*n).max(1),
                _ => 1,
            };
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
        }
        _ => {}
    }
}

/// An error in the body shape of the route: `{code, message, detail}` or RFC 6749.
pub fn error(err: &ApiError, oauth: bool) -> Resp {
    if oauth {
        let e = err.to_oauth();
        let mut resp = oauth_error(&e, false);
        // RFC 6749 errors are 400/401 by default, but transport-level answers keep their own
        // status (a client or proxy acts on 405, 413, 429 and 503 whatever the body says).
        if matches!(
            err.code,
            ErrorCode::MethodNotAllowed
                | ErrorCode::PayloadTooLarge
                | ErrorCode::RateLimitExceeded
                | ErrorCode::Overloaded
                | ErrorCode::Unavailable
        ) {
            *resp.status_mut() =
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        }
        resp
    } else {
        let mut resp = json(err.status(), err);
        retry_after(&mut resp, err);
        resp
    }
}

/// An RFC 6749 error answer of the `/oauth2/*` JSON endpoints, with the status of its code,
/// never cached. A 401 `invalid_client` to a client that authenticated with HTTP Basic says
/// so in `WWW-Authenticate` (RFC 6749 section 5.2); a 503 `temporarily_unavailable` (the
/// store could not answer) carries `Retry-After`, since nothing was decided and a retry in a
/// moment is safe (a full hash pool and a rate limit set their own).
pub fn oauth_error(e: &OAuthError, basic: bool) -> Resp {
    let mut resp = json(e.status(), e);
    let h = resp.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    match e.error {
        OAuthErrorCode::InvalidClient if basic => {
            h.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"hellojohn\""),
            );
        }
        OAuthErrorCode::TemporarilyUnavailable => {
            h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        }
        _ => {}
    }
    resp
}

/// Reads the whole body, refusing more than `limit` bytes with 413 `PAYLOAD_TOO_LARGE`.
///
/// A declared `Content-Length` over four times the limit is refused before reading. A smaller
/// oversized body, declared or not, is read and discarded up to that bound, so the client, still
/// sending, gets the 413 rather than a reset connection.
pub async fn read_body(
    body: Incoming,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body exceeds {limit} bytes"),
        )
        .with("limit", limit)
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A declared length far past the limit is refused unread. One up to four times the limit is
    // read and discarded like an undeclared one, so that the client, still sending, gets the 413
    // rather than a broken pipe.
    if declared.is_some_and(|n| n > limit.saturating_mul(4) as u64) {
        return Err(too_large());
    }
    let mut body = body;
    let mut out = Vec::with_capacity(declared.map_or(256, |n| n as usize));
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|_| ApiError::new(ErrorCode::BadRequest, "request body could not be read"))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > limit {
                if seen > limit.saturating_mul(4) {
                    return Err(too_large());
                }
                out.clear();
                continue;
            }
            out.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(out)
}

/// Parses `application/x-www-form-urlencoded` pairs.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = it.next().unwrap_or_default();
            let v = it.next().unwrap_or_default();
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` as space; invalid escapes are kept as written.
pub fn percent_decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(input[i + 1]), hex(input[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one query-string parameter.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_pairs(query?.as_bytes())
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let pairs = form_pairs(b"grant_type=refresh_token&email=a%40b.c&name=J+D&bad=%zz&end=%4");
        assert_eq!(
            pairs,
            vec![
                ("grant_type".into(), "refresh_token".into()),
                ("email".into(), "a@b.c".into()),
                ("name".into(), "J D".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
        assert_eq!(
            query_param(Some("a=1&tenant_id=acme"), "tenant_id").as_deref(),
            Some("acme")
        );
    }
}
