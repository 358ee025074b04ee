//! Wire types of access tokens (JWT header and claims) and of the JWKS document.
//!
//! These are plain serde types; signing and verification live in the auth crate. Field order is
//! the order of the JSON the engine emits, so tokens look the same on every instance.

use serde::{Deserialize, Serialize};

/// Ed25519: the algorithm of every access token, and of ID tokens on request.
pub const ALG_EDDSA: &str = "EdDSA";
/// RSASSA-PKCS1-v1_5 with SHA-256: the default algorithm of ID tokens (OpenID Connect requires
/// it).
pub const ALG_RS256: &str = "RS256";
/// The `typ` of ID tokens (and of every token signed before RFC 9068 typing).
pub const TYP_JWT: &str = "JWT";
/// The `typ` of access tokens (RFC 9068 section 2.1), so that neither kind of token can pass
/// for the other.
pub const TYP_AT_JWT: &str = "at+jwt";
/// The `typ` of an admin access token: never a tenant user's Bearer token, and a user's token
/// is never one (their `typ` differs, and so does their audience, [`ADMIN_AUDIENCE`]).
pub const TYP_ADMIN_JWT: &str = "hj-admin+jwt";
/// The audience of every admin access token.
pub const ADMIN_AUDIENCE: &str = "hellojohn-admin";

/// Whether a header's `typ` names an RFC 9068 access token: `at+jwt`, or its full media type
/// `application/at+jwt`, in any case (media types are case-insensitive, RFC 7515 4.1.9).
pub fn is_access_token_typ(typ: &str) -> bool {
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    typ.eq_ignore_ascii_case(TYP_AT_JWT)
}

/// The protected header of a signed token (access or ID token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtHeader {
    pub alg: String,
    /// Optional in RFC 7519, so a header without it still parses; ours always carries it.
    #[serde(default)]
    pub typ: String,
    /// Absent `kid` parses as empty, which matches no key.
    #[serde(default)]
    pub kid: String,
}

impl JwtHeader {
    /// The header of an EdDSA-signed JWT made with the key `kid`.
    pub fn eddsa(kid: impl Into<String>) -> JwtHeader {
        JwtHeader::new(ALG_EDDSA, kid)
    }

    /// The header of an RS256-signed JWT made with the key `kid`.
    pub fn rs256(kid: impl Into<String>) -> JwtHeader {
        JwtHeader::new(ALG_RS256, kid)
    }

    /// The header of a JWT (an ID token) signed with `alg` by the key `kid`.
    pub fn new(alg: &str, kid: impl Into<String>) -> JwtHeader {
        JwtHeader {
            alg: alg.to_string(),
            typ: TYP_JWT.to_string(),
            kid: kid.into(),
        }
    }

    /// The header of an access token (`typ: at+jwt`) signed with `alg` by the key `kid`.
    pub fn access(alg: &str, kid: impl Into<String>) -> JwtHeader {
        JwtHeader {
            typ: TYP_AT_JWT.to_string(),
            ..JwtHeader::new(alg, kid)
        }
    }

    /// The header of an admin access token.
    pub fn admin(alg: &str, kid: impl Into<String>) -> JwtHeader {
        JwtHeader {
            typ: TYP_ADMIN_JWT.to_string(),
            ..JwtHeader::new(alg, kid)
        }
    }
}

/// The claims of an admin access token (see [`TYP_ADMIN_JWT`]). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminClaims {
    pub iss: String,
    /// The admin account's id.
    pub sub: String,
    /// Always [`ADMIN_AUDIENCE`].
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub email: String,
    /// `admin`, `readonly` or `tenant:{slug}` at sign-in (the account's current scope is
    /// what the server checks).
    pub scope: String,
    /// `["pwd"]`, or `["pwd", "otp"]` after a second factor.
    #[serde(default)]
    pub amr: Vec<String>,
}

/// The claims of an access token. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer: the server's base URL.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The `client_id` the token was issued to.
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The tenant id.
    pub tid: String,
    /// Authentication methods, e.g. `["pwd"]`.
    #[serde(default)]
    pub amr: Vec<String>,
    /// Granted scopes, space separated (RFC 8693 style); omitted when there are none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scp: String,
    /// The user's app metadata (set by an operator, never by the user); omitted when null.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub custom: serde_json::Value,
    /// The cookie session the token came from, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The token's own id (RFC 7519 `jti`): random, so two tokens signed for the same user in
    /// the same second still differ (Ed25519 is deterministic), and one token can be revoked
    /// by it. Empty (and omitted) only for claims that are never signed (a cookie session's)
    /// and for tokens signed before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// When the user signed in (OpenID Connect's `auth_time`), for changes that need a recent
    /// sign-in; absent from tokens minted by a refresh (and from machine tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// The `custom` claim of a user's tokens: their app metadata, which only an operator sets
/// (null, so omitted, when it is an empty object). Never the user metadata: anyone can write that
/// at sign-up, and a claim is something the token's audience trusts.
pub fn custom_claim(app_metadata: &serde_json::Value) -> serde_json::Value {
    match app_metadata {
        serde_json::Value::Object(m) if m.is_empty() => serde_json::Value::Null,
        v => v.clone(),
    }
}

impl AccessClaims {
    /// The scopes as a list.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scp.split_ascii_whitespace()
    }
}

/// One public key in the JWKS: an Ed25519 key (RFC 8037: `kty` `OKP`, `crv`, `x`) or an RSA
/// key (RFC 7518: `kty` `RSA`, `n`, `e`). The members a key type lacks are empty here and
/// absent from the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub crv: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub kid: String,
    /// The 32-byte Ed25519 public key, base64url without padding.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub x: String,
    /// The RSA modulus, big-endian, base64url without padding.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub n: String,
    /// The RSA public exponent, big-endian, base64url without padding (`AQAB` for 65537).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub e: String,
}

impl Jwk {
    /// An Ed25519 signature-verification key.
    pub fn ed25519(kid: impl Into<String>, x: impl Into<String>) -> Jwk {
        Jwk {
            kty: "OKP".to_string(),
            crv: "Ed25519".to_string(),
            alg: ALG_EDDSA.to_string(),
            use_: "sig".to_string(),
            kid: kid.into(),
            x: x.into(),
            n: String::new(),
            e: String::new(),
        }
    }

    /// An RS256 signature-verification key: modulus `n` and exponent `e`, each big-endian
    /// base64url without padding.
    pub fn rsa(kid: impl Into<String>, n: impl Into<String>, e: impl Into<String>) -> Jwk {
        Jwk {
            kty: "RSA".to_string(),
            crv: String::new(),
            alg: ALG_RS256.to_string(),
            use_: "sig".to_string(),
            kid: kid.into(),
            x: String::new(),
            n: n.into(),
            e: e.into(),
        }
    }
}

/// The document served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://id.example.com".into(),
            sub: "u1".into(),
            aud: "app".into(),
            iat: 100,
            nbf: 100,
            exp: 1000,
            tid: "t1".into(),
            amr: vec!["pwd".into()],
            scp: String::new(),
            custom: serde_json::Value::Null,
            sid: None,
            jti: String::new(),
            auth_time: None,
        }
    }

    #[test]
    fn header_json() {
        let v = serde_json::to_value(JwtHeader::eddsa("k1")).unwrap();
        assert_eq!(v, json!({"alg":"EdDSA","typ":"JWT","kid":"k1"}));
    }

    #[test]
    fn access_token_typ() {
        let v = serde_json::to_value(JwtHeader::access(ALG_EDDSA, "k1")).unwrap();
        assert_eq!(v, json!({"alg":"EdDSA","typ":"at+jwt","kid":"k1"}));
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+JWT",
        ] {
            assert!(is_access_token_typ(typ), "{typ}");
        }
        for typ in [
            "JWT",
            "",
            "jwt",
            "at+jw",
            "application/jwt",
            "application/",
            "xat+jwt",
        ] {
            assert!(!is_access_token_typ(typ), "{typ}");
        }
        // Multi-byte input never splits a character.
        assert!(!is_access_token_typ("applicationé/at+jwt"));
    }

    #[test]
    fn empty_scope_custom_and_sid_are_omitted() {
        let text = serde_json::to_string(&claims()).unwrap();
        assert_eq!(
            text,
            r#"{"iss":"https://id.example.com","sub":"u1","aud":"app","iat":100,"nbf":100,"exp":1000,"tid":"t1","amr":["pwd"]}"#
        );
        let back: AccessClaims = crate::json::from_body(text.into_bytes()).unwrap();
        assert_eq!(back, claims());
    }

    #[test]
    fn full_claims_round_trip() {
        let mut c = claims();
        c.scp = "openid profile".into();
        c.custom = json!({"plan":"pro","seats":3});
        c.sid = Some("s1".into());
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["scp"], "openid profile");
        assert_eq!(v["custom"]["seats"], 3);
        assert_eq!(v["sid"], "s1");
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["openid", "profile"]);
        let back: AccessClaims = crate::json::from_body(serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn jwks_json() {
        let jwks = Jwks {
            keys: vec![Jwk::ed25519("k1", "AAAA"), Jwk::rsa("k2", "nnnn", "AQAB")],
        };
        let text = String::from_utf8(crate::json::to_vec(&jwks)).unwrap();
        assert_eq!(
            text,
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"k1","x":"AAAA"},"#.to_string()
                + r#"{"kty":"RSA","alg":"RS256","use":"sig","kid":"k2","n":"nnnn","e":"AQAB"}]}"#
        );
        let back: Jwks = crate::json::from_slice(text.as_bytes()).unwrap();
        assert_eq!(back, jwks);
        assert_eq!(
            serde_json::to_value(JwtHeader::rs256("k2")).unwrap(),
            json!({"alg":"RS256","typ":"JWT","kid":"k2"})
        );
    }
}
