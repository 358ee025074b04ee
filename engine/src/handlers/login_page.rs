//! The hosted sign-in page of the authorization-code flow: plain server-rendered HTML, no
//! script and no external asset, so the code flow works with nothing else deployed.

use http::header::{HeaderValue, CACHE_CONTROL};

use crate::http::{bytes, Resp};

/// What the page shows.
pub struct LoginPage<'a> {
    /// The tenant's display name, in the heading.
    pub tenant_name: &'a str,
    /// The client's display name.
    pub client_name: &'a str,
    /// Where the form posts back to after sign-in (an authorize URL, path and query).
    pub return_to: &'a str,
    /// The form's CSRF token (bound to the page's cookie).
    pub csrf_token: &'a str,
    /// Pre-filled email (a `login_hint`, or what was typed before a failed attempt).
    pub email: &'a str,
    /// An error line above the form.
    pub error: Option<&'a str>,
    /// The second step of a sign-in with MFA: the page asks for a code instead of the
    /// password, carrying the challenge's token.
    pub mfa_token: Option<&'a str>,
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:1.3rem;margin:0 0 .3rem}\
p.sub{color:#555;margin:0 0 1.5rem}label{display:block;margin:.8rem 0 .3rem;font-weight:600}\
input[type=email],input[type=password],input[type=text]{width:100%;box-sizing:border-box;padding:.6rem;\
border:1px solid #bbb;border-radius:4px;font-size:1rem}button{margin-top:1.4rem;width:100%;\
padding:.7rem;border:0;border-radius:4px;background:#2457d6;color:#fff;font-size:1rem}\
p.error{background:#fdecea;color:#8a1c12;padding:.6rem;border-radius:4px}";

/// The page as HTML.
pub fn render(page: &LoginPage<'_>) -> String {
    let error = page
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>Sign in to {tenant}</title><style>{STYLE}</style></head><body><main>\
<h1>Sign in to {tenant}</h1><p class=\"sub\">to continue to {client}</p>{error}\
<form method=\"post\" action=\"/oauth2/login\">\
<input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\
{fields}</form></main></body></html>\n",
        tenant = escape(page.tenant_name),
        client = escape(page.client_name),
        csrf = escape(page.csrf_token),
        return_to = escape(page.return_to),
        fields = fields(page),
    )
}

/// The form's own fields: email and password, or (second step) a code.
fn fields(page: &LoginPage<'_>) -> String {
    match page.mfa_token {
        Some(token) => format!(
            "<input type=\"hidden\" name=\"mfa_token\" value=\"{token}\">\
<label for=\"code\">Authentication code</label>\
<input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
required maxlength=\"32\">\
<p class=\"sub\">From your authenticator app, or one of your recovery codes.</p>\
<button type=\"submit\">Continue</button>",
            token = escape(token),
        ),
        None => format!(
            "<label for=\"email\">Email</label>\
<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\">\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button>",
            email = escape(page.email),
        ),
    }
}

/// An HTML response with the headers every page of ours carries: no caching, no framing
/// (clickjacking), no script, forms only to ourselves and, for the sign-in page, to the
/// origin its sign-in ends at: browsers apply `form-action` to the whole redirect chain of a
/// form post (ours, then `/oauth2/authorize`, then the client's redirect URI). The referrer
/// goes to our own origin only: with none at all, a browser sends `Origin: null` with the
/// page's own post, which the same-site check must refuse.
pub fn html(status: u16, body: String) -> Resp {
    html_to(status, body, None)
}

/// [`html`], allowing forms to end at `redirect_origin` too (a CSP source: see
/// [`csp_source_of`]).
pub fn html_to(status: u16, body: String, redirect_origin: Option<&str>) -> Resp {
    let mut resp = bytes(
        status,
        HeaderValue::from_static("text/html; charset=utf-8"),
        body.into_bytes(),
    );
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let form_action = match redirect_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_string(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert("content-security-policy", v);
    }
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    resp
}

/// The CSP source of a redirect URI: `scheme://host[:port]` for http(s), `scheme:` for a
/// native app's own scheme; `None` for anything with a character a CSP source cannot hold.
pub fn csp_source_of(redirect_uri: &str) -> Option<String> {
    let (scheme, rest) = redirect_uri.split_once(':')?;
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return None;
    }
    if scheme != "http" && scheme != "https" {
        return Some(format!("{scheme}:"));
    }
    let authority = rest.strip_prefix("//")?.split(['/', '?', '#']).next()?;
    let authority_ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    authority_ok.then(|| format!("{scheme}://{authority}"))
}

/// A page that only says what went wrong (an authorization request that cannot be sent back
/// to its client).
pub fn error_page(status: u16, error: protocol::OAuthErrorCode, description: &str) -> Resp {
    html(
        status,
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Sign-in error</title><style>{STYLE}</style></head><body><main>\
<h1>This sign-in request cannot be completed</h1>\
<p class=\"error\" role=\"alert\"><code>{}</code>: {}</p></main></body></html>\n",
            escape(error.as_str()),
            escape(description)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_sources_of_redirect_uris() {
        assert_eq!(
            csp_source_of("https://app.example:8443/cb?x=1").as_deref(),
            Some("https://app.example:8443")
        );
        assert_eq!(
            csp_source_of("http://[::1]:5173/callback").as_deref(),
            Some("http://[::1]:5173")
        );
        assert_eq!(
            csp_source_of("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        for bad in [
            "https://a b/",
            "https://x;y/",
            "https://'self'/",
            "nocolon",
            "https:no",
        ] {
            assert_eq!(csp_source_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn everything_shown_is_escaped() {
        let page = render(&LoginPage {
            tenant_name: "<script>alert(1)</script>",
            client_name: "a&b",
            return_to: "/oauth2/authorize?x=\"><script>",
            csrf_token: "t'",
            email: "\"onfocus=alert(1)",
            error: Some("<b>"),
            mfa_token: None,
        });
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("\"onfocus"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("a&amp;b"));
        assert!(page.contains("&lt;b&gt;"));
        assert!(page.contains("t&#39;"));
    }
}
