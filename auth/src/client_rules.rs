//! The client rules `hj client create|update` and the admin API share: redirect URIs, origins, grant types, scopes, names.
//! Each check returns the value as stored (origins lower-cased, lists without duplicates) or
//! a message for the operator.

use protocol::GrantType;
use store::ClientType;

const GRANT_TYPES: [&str; 3] = GrantType::NAMES;

/// Longest redirect URI or origin accepted.
const MAX_URI_LEN: usize = 2048;
/// Longest token lifetime override accepted: ten years, in seconds.
pub const MAX_TTL_SECS: i64 = 10 * 365 * 24 * 3600;

/// A tenant slug: 1-63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`.
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 63
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// `items` in their first order, without repeats.
fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// An RFC 3986 scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn valid_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Host and port of an authority (`host[:port]`, `[v6][:port]`), with no user info.
fn host_of(authority: &str) -> Result<&str, String> {
    if authority.contains('@') {
        return Err("must not carry user information (user@host)".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or_else(|| "has an unclosed IPv6 bracket".to_string())?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| "has text after its IPv6 address".to_string())?,
            ),
        };
        (&authority[..inside.len() + 2], port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("has no host".into());
    }
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !ok {
            return Err(format!("has an invalid port {port:?}"));
        }
    }
    Ok(host)
}

/// A loopback host: `localhost`, 127.0.0.0/8 or `[::1]` (RFC 8252 section 7.3).
fn loopback(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn printable(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_URI_LEN
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// One redirect URI: absolute, no fragment; `https://`, `http://` only to a loopback host
/// (a native app's local server), or a private-use scheme in reverse-domain form such as
/// `com.example.app:/callback` (RFC 8252 section 7.1; the dot keeps out `javascript:`,
/// `data:` and the like).
pub fn redirect_uri(uri: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("redirect URI {uri:?} {why}"));
    if !printable(uri) {
        return bad("must be 1-2048 characters without spaces or control characters");
    }
    if uri.contains('#') {
        return bad("must not have a fragment (#...)");
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return bad("must be absolute (scheme:...)");
    };
    if !valid_scheme(scheme) {
        return bad("must be absolute (scheme:...)");
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "http" || scheme == "https" {
        let Some(after) = rest.strip_prefix("//") else {
            return bad("must be scheme://host/...");
        };
        let authority = after.split(['/', '?']).next().unwrap_or_default();
        let host = match host_of(authority) {
            Ok(host) => host,
            Err(why) => return bad(&why),
        };
        if scheme == "http" && !loopback(host) {
            return bad("must use https (http only for localhost, 127.0.0.1 or [::1])");
        }
    } else if !scheme.contains('.') {
        return bad(
            "must use https, http to a loopback host, or a reverse-domain private scheme \
             such as com.example.app:/callback",
        );
    } else if rest.is_empty() {
        return bad("has nothing after its scheme");
    }
    Ok(uri.to_string())
}

/// One browser origin: `http(s)://host[:port]`, nothing after (one trailing `/` is dropped).
/// Lower-cased, as browsers send the `Origin` header.
pub fn origin(text: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("origin {text:?} {why}"));
    if !printable(text) {
        return bad("must be 1-2048 characters without spaces or control characters");
    }
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.strip_suffix('/').unwrap_or(&lower);
    let Some((scheme, authority)) = trimmed.split_once("://") else {
        return bad("must be scheme://host[:port]");
    };
    if scheme != "http" && scheme != "https" {
        return bad("must use http or https");
    }
    if authority.contains(['/', '?', '#']) {
        return bad("must be scheme://host[:port] with no path, query or fragment");
    }
    if let Err(why) = host_of(authority) {
        return bad(&why);
    }
    Ok(trimmed.to_string())
}

/// Every redirect URI, checked, without repeats.
pub fn redirect_uris(uris: Vec<String>) -> Result<Vec<String>, String> {
    Ok(dedup(
        uris.iter()
            .map(|u| redirect_uri(u))
            .collect::<Result<_, _>>()?,
    ))
}

/// Every origin, checked and lower-cased, without repeats.
pub fn origins(origins: Vec<String>) -> Result<Vec<String>, String> {
    Ok(dedup(
        origins
            .iter()
            .map(|o| origin(o))
            .collect::<Result<_, _>>()?,
    ))
}

/// A comma-separated list, items trimmed, empty items dropped.
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// Grant types (comma-separated) of [`GRANT_TYPES`], at least one, without repeats.
pub fn grant_types(text: &str) -> Result<Vec<String>, String> {
    let list = dedup(comma_list(text));
    if list.is_empty() {
        return Err(format!(
            "--grant-types needs at least one of {}",
            GRANT_TYPES.join(", ")
        ));
    }
    for g in &list {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(format!(
                "unknown grant type {g:?} (known: {})",
                GRANT_TYPES.join(", ")
            ));
        }
    }
    Ok(list)
}

/// Scopes (comma-separated): RFC 6749 scope tokens (printable ASCII without space, `"` or
/// `\`), without repeats. An empty list is allowed.
pub fn scopes(text: &str) -> Result<Vec<String>, String> {
    let list = dedup(comma_list(text));
    for s in &list {
        let ok = s.len() <= 128
            && s.bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
        if !ok {
            return Err(format!(
                "scope {s:?} must be up to 128 printable ASCII characters without spaces, '\"' \
                 or '\\'"
            ));
        }
    }
    Ok(list)
}

/// A display name: 1-200 characters without control characters (it is printed in a
/// tab-separated column).
pub fn name(text: &str) -> Result<String, String> {
    if text.trim().is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(format!(
            "name {text:?} must be 1-200 characters without tabs, newlines or other control \
             characters"
        ));
    }
    Ok(text.to_string())
}

/// A client id: 1-128 characters without spaces or control characters.
pub fn client_id(text: &str) -> Result<String, String> {
    if text.is_empty()
        || text.len() > 128
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("client id must be 1-128 characters without spaces".into());
    }
    Ok(text.to_string())
}

/// A token lifetime override: seconds in 1..=[`MAX_TTL_SECS`], or `default` (the server's
/// setting).
pub fn ttl(text: &str) -> Result<Option<i64>, String> {
    if text == "default" {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(secs) if (1..=MAX_TTL_SECS).contains(&secs) => Ok(Some(secs)),
        _ => Err(format!(
            "must be seconds from 1 to {MAX_TTL_SECS}, or 'default' (the server's setting)"
        )),
    }
}

/// The rules across fields, on the client as it would be stored.
pub fn consistent(client_type: ClientType, grant_types: &[String]) -> Result<(), String> {
    if client_type == ClientType::Public && grant_types.iter().any(|g| g == "client_credentials") {
        return Err(
            "the client_credentials grant needs a confidential client (--confidential)".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_accepted() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "HTTPS://App.Example.com/cb",
            "http://localhost:3000/callback",
            "http://127.0.0.1:51234/cb",
            "http://127.1.2.3/cb",
            "http://[::1]:8080/cb",
            "https://[2001:db8::1]/cb",
            "com.example.app:/oauth2redirect",
            "com.example.app://callback",
        ] {
            assert_eq!(redirect_uri(ok).as_deref(), Ok(ok), "{ok}");
        }
    }

    #[test]
    fn redirect_uris_refused() {
        for (bad, why) in [
            ("", "1-2048"),
            ("/callback", "absolute"),
            ("callback", "absolute"),
            ("://x", "absolute"),
            ("1http://x", "absolute"),
            ("https://app.example.com/cb#frag", "fragment"),
            ("https://app.example.com/a b", "spaces"),
            ("https://app.example.com/\n", "spaces"),
            ("http://app.example.com/cb", "https"),
            ("http://localhost.evil.com/cb", "https"),
            ("http://127.0.0.1.nip.io/cb", "https"),
            ("https:/app.example.com/cb", "scheme://host"),
            ("https:///cb", "no host"),
            ("https://user:pw@app.example.com/cb", "user information"),
            ("https://app.example.com:0/cb", "port"),
            ("https://app.example.com:99999/cb", "port"),
            ("https://app.example.com:x/cb", "port"),
            ("https://[::1/cb", "bracket"),
            ("javascript:alert(1)", "reverse-domain"),
            ("data:text/html,x", "reverse-domain"),
            ("file:///etc/passwd", "reverse-domain"),
            ("myapp:/cb", "reverse-domain"),
            ("com.example.app:", "nothing after"),
        ] {
            let err = redirect_uri(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(redirect_uri(&format!("https://a.example/{}", "x".repeat(2048))).is_err());
    }

    #[test]
    fn origins_are_checked_and_lower_cased() {
        assert_eq!(
            origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            origin("http://localhost:3000/").unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(origin("https://[::1]:8443").unwrap(), "https://[::1]:8443");
        for (bad, why) in [
            ("https://app.example.com/path", "no path"),
            ("https://app.example.com?x", "no path"),
            ("https://app.example.com#x", "no path"),
            ("app.example.com", "scheme://host"),
            ("ftp://app.example.com", "http or https"),
            ("https://", "scheme://host"),
            ("https:///", "no host"),
            ("https://:443", "no host"),
            ("https://a@app.example.com", "user information"),
            ("https://app.example.com:", "port"),
            ("null", "scheme://host"),
            ("*", "scheme://host"),
        ] {
            let err = origin(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert_eq!(
            origins(vec![
                "https://a.example".into(),
                "https://A.example/".into()
            ])
            .unwrap(),
            vec!["https://a.example"]
        );
    }

    #[test]
    fn grant_types_scopes_and_ttls() {
        assert_eq!(
            grant_types("authorization_code, refresh_token,authorization_code").unwrap(),
            vec!["authorization_code", "refresh_token"]
        );
        assert!(grant_types("password")
            .unwrap_err()
            .contains("unknown grant type"));
        assert!(grant_types("implicit").is_err());
        assert!(grant_types(" , ").unwrap_err().contains("at least one"));
        assert_eq!(scopes("openid,email").unwrap(), vec!["openid", "email"]);
        assert_eq!(scopes("").unwrap(), Vec::<String>::new());
        assert!(scopes("a\"b").is_err());
        assert_eq!(ttl("60"), Ok(Some(60)));
        assert_eq!(ttl("default"), Ok(None));
        for bad in ["0", "-5", "1.5", "", "forever", "315360001"] {
            assert!(ttl(bad).is_err(), "{bad}");
        }
        assert!(name("Web app").is_ok());
        assert!(name("a\tb").is_err());
        assert!(name(" ").is_err());
        assert!(client_id("web app").is_err());
        let cc = vec!["client_credentials".to_string()];
        assert!(consistent(ClientType::Public, &cc).is_err());
        assert!(consistent(ClientType::Confidential, &cc).is_ok());
        assert!(consistent(ClientType::Public, &["authorization_code".to_string()]).is_ok());
    }
}
