//! The hosted sign-in page's second step (`POST /oauth2/login` with an `mfa_token`): the
//! code for the challenge the page's first step started. Only the page's own challenges
//! finish here (see `Auth::mfa_challenge`).

use http::request::Parts;
use store::{Client, Tenant};

use super::common::{self, denied, sign_in_status};
use super::login_page::error_page;
use super::oauth::{login_cookie, login_form, redirect, step_form};
use super::{errors, Ctx, HandlerResult};
use auth::flows::{Denial, Outcome};

/// The page's second step: the code for the challenge its first step started. A wrong code
/// shows the step again; a dead challenge (expired, too many wrong codes) starts over.
pub(super) async fn mfa_step(
    ctx: &Ctx,
    parts: &Parts,
    tenant: &Tenant,
    client: &Client,
    return_to: &str,
    mfa_token: &str,
    code: &str,
) -> HandlerResult {
    let code = code.trim();
    let factor = if code.chars().all(|c| c.is_ascii_digit() || c == ' ') {
        auth::flows::SecondFactor::Code(code.to_string())
    } else {
        auth::flows::SecondFactor::Recovery(code.to_string())
    };
    let outcome = ctx
        .auth()
        .mfa_challenge(
            mfa_token,
            factor,
            true,
            true,
            false,
            &ctx.origin(parts),
            ctx.now,
        )
        .await
        .map_err(|e| errors::store(&e))?;
    match outcome {
        Outcome::Done(passed) => match passed.done {
            auth::flows::ChallengeDone::Session(session) => {
                ctx.shard.metrics.sign_in("hosted", "success");
                let mut resp = redirect(303, return_to);
                common::set_cookie(
                    &mut resp,
                    super::session::session_cookie(ctx, &session.value, session.max_age.as_secs()),
                );
                common::set_cookie(&mut resp, login_cookie(ctx, "", 0));
                Ok(resp)
            }
            auth::flows::ChallengeDone::Tokens(_) => Ok(error_page(
                400,
                protocol::OAuthErrorCode::InvalidRequest,
                "this sign-in was not started on this page",
            )),
        },
        Outcome::Denied(d @ Denial::InvalidMfaCode) => {
            ctx.shard.metrics.sign_in("hosted", sign_in_status(&d));
            Ok(step_form(
                ctx,
                401,
                tenant,
                client,
                return_to,
                "",
                Some("That code did not work. Try again."),
                Some(mfa_token),
            ))
        }
        Outcome::Denied(d @ Denial::MfaTokenInvalid) => {
            ctx.shard.metrics.sign_in("hosted", sign_in_status(&d));
            Ok(login_form(
                ctx,
                401,
                tenant,
                client,
                return_to,
                "",
                Some("Your sign-in expired. Please sign in again."),
            ))
        }
        Outcome::Denied(d) => {
            ctx.shard.metrics.sign_in("hosted", sign_in_status(&d));
            Ok(denied(ctx, &d, false))
        }
    }
}
