//! Not written yet: every route here answers 501.

use protocol::{ApiError, ErrorCode};

use super::Call;
use crate::handlers::HandlerResult;

pub async fn handle(call: &Call<'_>) -> HandlerResult {
    Err(ApiError::new(
        ErrorCode::Internal,
        format!("{} is not served yet", call.route.template()),
    ))
}
