//! Signing in and out. With tokens configured, an analyst signs in with the bearer token the
//! config gives them, and only a token with the `analyst` role opens a session. Without tokens
//! (loopback only), the analyst types the name to be recorded.

use super::page::{Nav, layout};
use super::session::{self, clear_cookie, same_origin, same_token, set_cookie};
use super::{Shared, html};
use crate::service::auth::{AuthError, Principal, Role, TokenHash};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html as m;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Only a path of this site: never `//host` or a full URL, which would make the login page an
/// open redirect.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/queue",
    }
}

fn render(
    status: StatusCode,
    auth_enabled: bool,
    next: &str,
    error: Option<&str>,
    name: &str,
) -> Response {
    let body = m! {
        div.login {
            div.card {
                h1 { "Sign in" }
                p.muted { "The review workbench: payments the engine would not apply on its own." }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    @if auth_enabled {
                        label for="token" { "Your analyst token" }
                        input #token type="password" name="token" autocomplete="current-password" autofocus;
                        p.hint { "The token your administrator configured for you (the same one the review API takes)." }
                    } @else {
                        label for="name" { "Your name" }
                        input #name type="text" name="name" value=(name) maxlength="64" autofocus;
                        p.hint { "Recorded as the analyst of everything you do. Nothing checks it: this service runs without tokens." }
                    }
                    button.primary type="submit" { "Sign in" }
                }
            }
        }
    };
    html(
        status,
        layout("Sign in", Nav::None, None, auth_enabled, body),
    )
}

pub(crate) async fn page(State(web): State<Shared>, Query(q): Query<Next>) -> Response {
    render(
        StatusCode::OK,
        web.auth.enabled(),
        safe_next(q.next.as_deref()),
        None,
        "",
    )
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    next: Option<String>,
}

pub(crate) async fn submit(
    State(web): State<Shared>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
    let enabled = web.auth.enabled();
    let next = safe_next(f.next.as_deref()).to_string();
    if !same_origin(&headers) {
        return render(
            StatusCode::FORBIDDEN,
            enabled,
            &next,
            Some("This sign-in came from another site and was refused."),
            "",
        );
    }
    let (principal, token) = if enabled {
        let bearer = format!("Bearer {}", f.token.trim());
        match web.auth.check(Some(&bearer), Role::Analyst, peer) {
            Ok(p) => (p, Some(TokenHash::of(&f.token))),
            Err(AuthError::Forbidden { name, .. }) => {
                tracing::info!(name = %name, "workbench sign-in refused: not an analyst");
                return render(
                    StatusCode::FORBIDDEN,
                    enabled,
                    &next,
                    Some(&format!(
                        "The token of {name} does not have the analyst role, so it cannot work \
                         the review queue."
                    )),
                    "",
                );
            }
            Err(AuthError::TooMany { retry_after_secs }) => {
                return render(
                    StatusCode::TOO_MANY_REQUESTS,
                    enabled,
                    &next,
                    Some(&format!(
                        "Too many failed sign-ins from your address. Try again in \
                         {retry_after_secs} seconds."
                    )),
                    "",
                );
            }
            Err(_) => {
                return render(
                    StatusCode::UNAUTHORIZED,
                    enabled,
                    &next,
                    Some("Unknown token."),
                    "",
                );
            }
        }
    } else {
        let name = f.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return render(
                StatusCode::UNPROCESSABLE_ENTITY,
                enabled,
                &next,
                Some("Give your name (at most 64 characters): it is recorded with what you do."),
                name,
            );
        }
        (
            Principal {
                name: name.to_string(),
                roles: vec![Role::Analyst],
                authenticated: false,
            },
            None,
        )
    };
    let name = principal.name.clone();
    match web.service.start_session(principal, token).await {
        Ok(id) => {
            tracing::info!(analyst = %name, "workbench sign-in");
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&set_cookie(&id, web.secure)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => render(
            StatusCode::SERVICE_UNAVAILABLE,
            enabled,
            &next,
            Some(&format!("No session could be started: {e}")),
            "",
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout(
    State(web): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let (Some(id), Some(a)) = (session::cookie(&headers), web.analyst(&headers).await) {
        if same_token(&a.csrf, &f.csrf) {
            if let Err(e) = web.service.end_session(&id).await {
                tracing::warn!(error = %e, "a session could not be ended at sign-out");
            }
        }
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
