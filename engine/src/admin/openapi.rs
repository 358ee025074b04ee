//! Not written yet.

use protocol::{ApiError, ErrorCode};

use super::Call;
use crate::handlers::HandlerResult;

pub fn document(_call: &Call<'_>) -> HandlerResult {
    Err(ApiError::new(ErrorCode::NotFound, "not served yet"))
}
