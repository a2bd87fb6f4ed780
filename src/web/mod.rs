//! The analysts' workbench: server-rendered web pages over [`crate::service`], served by
//! `cashmatch serve` on `--ui-addr` beside gRPC, sharing its [`Service`].
//!
//! Every action goes through the same service calls as the gRPC `Review` service
//! ([`Service::resolve`] and friends); this module reads forms, calls the service and renders what
//! it answers, refusals included. It holds no rule of its own about money: what the page checks in
//! JavaScript is a convenience, and the service decides.
//!
//! Analysts sign in with their bearer token (the `[[tokens]]` of the config; only the `analyst`
//! role may) and get a session: an unguessable id in an `HttpOnly`, `SameSite=Strict` cookie,
//! held in memory (a restart signs everyone out). Every form carries the session's CSRF token, and
//! the actor recorded is always the session's principal, never a form field. Without tokens (the
//! loopback demo mode) the analyst types a name and every page says that nothing is
//! authenticated.
//!
//! Pages work without JavaScript (forms post and redirect); `assets/app.js` adds the live balance
//! check and keyboard shortcuts. Only this module names maud or axum's HTML parts.

mod advices;
mod approvals;
mod assign;
mod cash;
mod chart;
mod dashboard;
mod form;
mod item;
mod login;
mod page;
mod payment;
mod queue;
mod session;
#[cfg(test)]
mod tests;

use crate::service::StoreError;
use crate::service::auth::{Auth, Principal, Role};
use crate::service::{Service, ServiceError};
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use std::sync::Arc;

/// What every handler shares.
pub(crate) struct Web {
    pub(crate) service: Arc<Service>,
    pub(crate) auth: Arc<Auth>,
    /// Served over TLS: session cookies are `Secure`.
    pub(crate) secure: bool,
}

pub(crate) type Shared = Arc<Web>;

/// The workbench's routes over a service. Overdue items are marked by the service's SLA
/// limits (`Service::sla`), the ones the gRPC API marks them by.
pub fn router(service: Arc<Service>, auth: Arc<Auth>) -> Router {
    routes(service, auth, false)
}

fn routes(service: Arc<Service>, auth: Arc<Auth>, secure: bool) -> Router {
    let web = Arc::new(Web {
        service,
        auth,
        secure,
    });
    Router::new()
        .route("/", get(|| async { Redirect::to("/queue") }))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/queue", get(queue::page))
        .route("/next", get(queue::next))
        .route("/items/{payment_id}", get(item::page))
        .route("/items/{payment_id}/resolve", post(item::resolve))
        .route("/items/{payment_id}/assign", post(assign::submit))
        .route("/customers", get(cash::find))
        .route("/customers/{customer_id}/cash", get(cash::page))
        .route("/customers/{customer_id}/cash/apply", post(cash::apply))
        .route("/payments", get(payment::find))
        .route("/payments/{payment_id}", get(payment::page))
        .route("/payments/{payment_id}/unapply", post(payment::unapply))
        .route("/payments/{payment_id}/reverse", post(payment::reverse))
        .route("/dashboard", get(dashboard::page))
        .route("/approvals", get(approvals::page))
        .route("/advices", get(advices::page))
        .route("/advices/link", post(advices::link))
        .route("/advices/unlink", post(advices::unlink))
        .route("/approvals/{payment_id}", post(approvals::decide))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .with_state(web)
}

/// Serves the workbench on `listener` until `shutdown` resolves, then lets requests in flight
/// finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    service: Arc<Service>,
    auth: Arc<Auth>,
) -> std::io::Result<()> {
    // The client's address: failed sign-ins are counted by it.
    let app = router(service, auth).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// [`run`] over TLS (`crate::tls`): each connection is served once its handshake is done.
pub async fn run_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<crate::tls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    service: Arc<Service>,
    auth: Arc<Auth>,
) -> std::io::Result<()> {
    let app =
        routes(service, auth, true).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let listener = Handshaken(crate::tls::TlsListener::new(listener, tls)?);
    // axum gives a `SocketAddr` connect info to a listener of its own or one wrapped by
    // `tap_io`; the empty tap is how a listener of ours gets it too.
    axum::serve(listener.tap_io(|_| {}), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The TLS listener as axum sees one.
struct Handshaken(crate::tls::TlsListener);

impl axum::serve::Listener for Handshaken {
    type Io = crate::tls::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.0.next().await {
            Some(c) => c,
            // The accept loop ends only when this listener is dropped: nothing more to serve.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.0.local_addr())
    }
}

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Small and part of the binary: an hour is enough for a session of work.
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A rendered page with the headers every page gets.
pub(crate) fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut r = (status, axum::response::Html(markup.into_string())).into_response();
    let h = r.headers_mut();
    // Our own scripts and styles only; no frames; no referrer leaking payment ids.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The signed-in analyst of a request, if any.
pub(crate) struct Analyst {
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
}

impl Web {
    /// The analyst of the request's session. A session signed in with a token lasts only while
    /// the config still gives that token the analyst role: a revoked token signs its sessions
    /// out at their next page, and a renamed one shows the new name.
    pub(crate) async fn analyst(&self, headers: &HeaderMap) -> Option<Analyst> {
        let id = session::cookie(headers)?;
        let signed_in = match self.service.session(&id).await {
            Ok(s) => s?,
            Err(e) => {
                tracing::warn!(error = %e, "workbench session could not be read: signed out");
                return None;
            }
        };
        let (principal, csrf) = (signed_in.principal, signed_in.csrf);
        let principal = match signed_in.token {
            None => principal,
            Some(hash) => match self.auth.principal_of(&hash) {
                Some(p) if p.roles.contains(&Role::Analyst) => p,
                _ => {
                    tracing::info!(analyst = %principal.name, "workbench session ended: its token was revoked");
                    if let Err(e) = self.service.end_session(&id).await {
                        tracing::warn!(error = %e, "a revoked token's session could not be ended");
                    }
                    return None;
                }
            },
        };
        Some(Analyst { principal, csrf })
    }
}

/// The analyst of a form post that changes something, or the page refusing it: the post must
/// come from this site, from a live session, carry that session's CSRF token, and be made by an
/// analyst; `doing` completes "Only analysts may ...".
pub(crate) async fn checked_post(
    web: &Web,
    headers: &HeaderMap,
    csrf: &str,
    doing: &str,
) -> Result<Analyst, Response> {
    let auth = web.auth.enabled();
    let refuse = |status, who: Option<&Analyst>, message: &str| {
        error_page(status, who, auth, "Refused", message)
    };
    if !session::same_origin(headers) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            None,
            "This form was posted from another site. Nothing was changed.",
        ));
    }
    let Some(who) = web.analyst(headers).await else {
        return Err(error_page(
            StatusCode::UNAUTHORIZED,
            None,
            auth,
            "Not signed in",
            "Your session has ended or you are not signed in. Sign in again; nothing was changed.",
        ));
    };
    if !session::same_token(&who.csrf, csrf) {
        tracing::warn!(analyst = %who.principal.name, "workbench post without this session's CSRF token refused");
        return Err(refuse(
            StatusCode::FORBIDDEN,
            Some(&who),
            "The form's security token does not match your session (an old page, or a post from \
             elsewhere). Reload the page and try again. Nothing was changed.",
        ));
    }
    if !who.principal.roles.contains(&Role::Analyst) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            Some(&who),
            &format!("Only analysts may {doing}. Nothing was changed."),
        ));
    }
    Ok(who)
}

/// The query of a find box's target (the id typed), and of the page it leads to (what was just
/// done there, to confirm).
#[derive(serde::Deserialize, Default)]
pub(crate) struct FindQuery {
    #[serde(default)]
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) done: String,
}

/// A find box's target: the page `to` names for the id typed, or a page saying what to type.
pub(crate) async fn find_page(
    web: &Web,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    id: &str,
    what: &str,
    to: impl FnOnce(&str) -> String,
) -> Response {
    let Some(who) = web.analyst(headers).await else {
        return to_login(&uri.to_string());
    };
    let id = id.trim();
    if id.is_empty() {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(&who),
            web.auth.enabled(),
            &format!("No {what} id"),
            &format!("Type the id of a {what} to open it."),
        );
    }
    Redirect::to(&to(&url_encode(id))).into_response()
}

/// Where a page asks to go when no one is signed in.
pub(crate) fn to_login(path_and_query: &str) -> Response {
    let next: String = url_encode(path_and_query);
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// Percent-encodes a query value.
pub(crate) fn url_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The status and the analyst's wording of a service refusal.
pub(crate) fn refusal(e: &ServiceError) -> (StatusCode, String) {
    refusal_for(e, &[])
}

/// [`refusal`] for a resolution whose allocations named `invoices`, in order.
pub(crate) fn refusal_for(e: &ServiceError, invoices: &[String]) -> (StatusCode, String) {
    match e {
        ServiceError::InvalidArgument { field, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{}: {message}", form::field_label(field, invoices)),
        ),
        ServiceError::Input(_) | ServiceError::TooLarge(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        ServiceError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
        ServiceError::PermissionDenied(m) => (StatusCode::FORBIDDEN, m.clone()),
        ServiceError::FailedPrecondition(m) | ServiceError::AlreadyExists(m) => {
            (StatusCode::CONFLICT, m.clone())
        }
        ServiceError::Store(StoreError::Conflict(m)) => (StatusCode::CONFLICT, m.clone()),
        ServiceError::Stopped | ServiceError::Store(StoreError::Closed) => {
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        ServiceError::Store(_) | ServiceError::Internal(_) => {
            tracing::error!(error = %e, "workbench request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

/// A page that only says what went wrong.
pub(crate) fn error_page(
    status: StatusCode,
    who: Option<&Analyst>,
    auth_enabled: bool,
    title: &str,
    message: &str,
) -> Response {
    let body = maud::html! {
        div.card.error-card {
            h1 { (title) }
            p.error { (message) }
            p { a href="/queue" { "Back to the queue" } }
        }
    };
    html(
        status,
        page::layout(title, page::Nav::None, who, auth_enabled, body),
    )
}
