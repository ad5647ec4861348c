//! Login with a bearer token of scope `dashboard:read` or `dashboard:admin`, and logout.
//!
//! The login form is protected by a double-submit token: the page sets it in a cookie scoped to
//! `/dashboard/login` and in a hidden field, and the post must carry both, equal. A successful
//! login starts a new session (a new id, so a planted cookie cannot be fixed in place).

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::DashboardError;
use crate::render::{self, Layout};
use crate::session::{self, Session};
use crate::{DashboardState, csrf};

/// How long the login form's token stays valid.
const LOGIN_FORM_AGE: Duration = Duration::hours(1);

#[derive(Serialize)]
struct LoginPage {
    layout: Layout,
    csrf_token: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf_token: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: Option<String>,
}

/// Shows the login form.
pub async fn show(State(state): State<DashboardState>, headers: HeaderMap) -> Response {
    let form_token = session::read_cookie(&headers, csrf::LOGIN_COOKIE)
        .filter(|token| csrf::is_well_formed(token))
        .map_or_else(csrf::new_token, str::to_owned);
    login_page(&state, StatusCode::OK, form_token, None)
}

/// Checks the token and starts a session; the form is shown again with the reason on failure.
pub async fn submit(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, DashboardError> {
    let form = form.map(|Form(form)| form).ok();
    let cookie_token = session::read_cookie(&headers, csrf::LOGIN_COOKIE)
        .filter(|token| csrf::is_well_formed(token));
    let submitted = form.as_ref().and_then(|form| form.csrf_token.as_deref());
    let Some(cookie_token) =
        cookie_token.filter(|expected| csrf::tokens_match(expected, submitted))
    else {
        info!("dashboard login rejected: the login form's CSRF token is missing or does not match");
        return Err(DashboardError::CsrfRejected);
    };
    let form_token = cookie_token.to_owned();

    let bearer = form
        .as_ref()
        .and_then(|form| form.token.as_deref())
        .map(str::trim)
        .unwrap_or_default();
    if bearer.is_empty() {
        let error = "Paste a token to log in.".to_owned();
        return Ok(login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            form_token,
            Some(error),
        ));
    }
    let verified = match state.inner.verifier.verify(bearer) {
        Ok(verified) => verified,
        Err(reason) => {
            info!(%reason, "dashboard login rejected: invalid token");
            let error = format!("The token is invalid: {reason}.");
            return Ok(login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                form_token,
                Some(error),
            ));
        }
    };
    let Some(access) = verified.access else {
        info!(subject = %verified.subject, "dashboard login rejected: the token lacks a dashboard scope");
        let error = "The token lacks the dashboard:read and dashboard:admin scopes; issue one with `duespark token --scope dashboard:read`.".to_owned();
        return Ok(login_page(
            &state,
            StatusCode::FORBIDDEN,
            form_token,
            Some(error),
        ));
    };

    let (id, session) = session::create(&state, &verified, access).await?;
    info!(subject = %session.subject, scope = access.scope(), "dashboard login");
    let headers = AppendHeaders([
        (header::SET_COOKIE, state.session_cookie(&id, &session)),
        (
            header::SET_COOKIE,
            login_cookie(&state, "", Duration::zero()),
        ),
    ]);
    Ok((headers, Redirect::to("/dashboard")).into_response())
}

/// Ends the session and deletes its cookie.
pub async fn logout(
    State(state): State<DashboardState>,
    session: Session,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, DashboardError> {
    let submitted = form.ok().and_then(|Form(form)| form.csrf_token);
    session.check_csrf(submitted.as_deref())?;

    session::delete(&state, &session).await?;
    info!(subject = %session.subject, "dashboard logout");
    let headers = [(header::SET_COOKIE, state.clear_session_cookie())];
    Ok((headers, Redirect::to("/dashboard/login")).into_response())
}

fn login_page(
    state: &DashboardState,
    status: StatusCode,
    form_token: String,
    error: Option<String>,
) -> Response {
    let cookie = login_cookie(state, &form_token, LOGIN_FORM_AGE);
    let page = LoginPage {
        layout: Layout::bare("Log in"),
        csrf_token: form_token,
        error,
    };
    match render::page("login", &page) {
        Ok(html) => (status, [(header::SET_COOKIE, cookie)], html).into_response(),
        Err(error) => error.into_response(),
    }
}

fn login_cookie(state: &DashboardState, value: &str, max_age: Duration) -> String {
    session::set_cookie(
        csrf::LOGIN_COOKIE,
        value,
        "/dashboard/login",
        max_age,
        state.secure_cookies(),
    )
}
