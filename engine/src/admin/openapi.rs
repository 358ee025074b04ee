//! `GET /v2/admin/openapi.json`: the OpenAPI 3.1 document of the admin API and the public API.
//!
//! The document is `openapi.json` beside this file, written by hand and served as it is.
//! `engine/tests/it/admin_openapi.rs` holds it to the code: every route of
//! [`AdminRoute::ALL`](super::AdminRoute::ALL) with each of its methods is an operation and
//! every `/v2/admin` operation is a route, the public paths are routes, and the wire types
//! answered validate against their schemas. `scripts/admin-fuzz.sh` validates it with an
//! independent validator and fuzzes a live server against it.

use http::header::{HeaderValue, CACHE_CONTROL};

use super::Call;
use crate::handlers::HandlerResult;
use crate::http::{bytes, JSON};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub fn document(_call: &Call<'_>) -> HandlerResult {
    let mut resp = bytes(200, JSON, DOCUMENT.as_bytes());
    // It changes only with the binary.
    resp.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
