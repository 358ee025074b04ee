//! Admin tokens: signed by the global EdDSA keys, each kind with its own `typ`, so none of them
//! passes where a user's token (`at+jwt`) or an ID token (`JWT`) is expected, nor the reverse.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::tokens::TokenError;
use protocol::token::{AdminClaims, JwtHeader, ADMIN_AUDIENCE, TYP_ADMIN_JWT};
use store::SigningAlg;

impl super::KeyRing {
    /// Signs `claims` with the global EdDSA key active at `iat`, with header `typ`.
    pub fn sign_typed<T: Serialize>(&self, typ: &str, claims: &T, iat: i64) -> String {
        let claims_json = protocol::json::to_vec(claims);
        let keys = self.keys.load();
        let (entry, key) = keys.global.signer(SigningAlg::EdDsa, iat);
        let header = JwtHeader {
            typ: typ.to_string(),
            ..JwtHeader::new(SigningAlg::EdDsa.as_str(), &entry.kid)
        };
        crate::tokens::compact(&header, &claims_json, |m| key.sign(m))
    }

    /// The claims of a token [`Self::sign_typed`] made with `typ`: a global key's signature
    /// and exactly that `typ`; the caller checks the claims.
    pub fn verify_typed<T: DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
        typ: &str,
    ) -> Result<T, TokenError> {
        let keys = self.keys.load();
        let (jws, owner) = keys.verify_signature(token, now)?;
        if !jws.header.typ.eq_ignore_ascii_case(typ) || owner != super::Owner::Global {
            return Err(TokenError::WrongType);
        }
        jws.claims()
    }

    /// Signs an admin access token (`typ: hj-admin+jwt`).
    pub fn sign_admin(&self, claims: &AdminClaims) -> String {
        self.sign_typed(TYP_ADMIN_JWT, claims, claims.iat)
    }

    /// Verifies an admin access token: a global key's signature, `typ: hj-admin+jwt`, the
    /// admin audience, `iss` the server's, `exp`. A user's access token, an ID token or a
    /// tenant key's token is refused.
    pub fn verify_admin(
        &self,
        token: &str,
        now: i64,
        issuer: &str,
    ) -> Result<AdminClaims, TokenError> {
        let claims: AdminClaims = self.verify_typed(token, now, TYP_ADMIN_JWT)?;
        if claims.aud != ADMIN_AUDIENCE || claims.iss != issuer {
            return Err(TokenError::WrongIssuer);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}
