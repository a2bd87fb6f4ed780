//! The gRPC adapter over [`crate::service`]: the only module that names tonic or prost.
//!
//! Each handler authenticates (an interceptor per service checks the bearer token against the
//! service's role), converts the request with `TryFrom`, calls the service core, and converts the
//! answer back. One `From<ServiceError> for Status` picks the status code for every failure.

mod advices;
pub(crate) mod bus;
mod convert;
mod ledger;
mod matching;
mod models;
mod postings;
mod reversals;
mod review;
pub mod server;

pub use convert::FieldError;
pub use server::{DRAIN_TIMEOUT, ServeError, run, run_tls};

use crate::metrics::Metrics;
use crate::service::auth::{Auth, PeerCert, Principal, Role};
use crate::service::{ServiceError, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Code, Request, Response, Status};

/// Code generated from `proto/cashmatch/v1/cashmatch.proto`: messages, clients and servers.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("cashmatch.v1");
}

/// The encoded descriptor set of the proto, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/cashmatch_descriptor.bin"));

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let msg = e.to_string();
        match e {
            ServiceError::InvalidArgument { .. }
            | ServiceError::Input(_)
            | ServiceError::TooLarge(_) => Status::invalid_argument(msg),
            ServiceError::NotFound(_) => Status::not_found(msg),
            ServiceError::FailedPrecondition(_) => Status::failed_precondition(msg),
            ServiceError::AlreadyExists(_) => Status::already_exists(msg),
            ServiceError::PermissionDenied(_) => Status::permission_denied(msg),
            ServiceError::Stopped | ServiceError::Store(StoreError::Closed) => {
                Status::unavailable(msg)
            }
            ServiceError::Store(StoreError::Conflict(_)) => Status::aborted(msg),
            ServiceError::Store(_) | ServiceError::Internal(_) => Status::internal(msg),
        }
    }
}

impl From<convert::FieldError> for Status {
    fn from(e: convert::FieldError) -> Self {
        Status::invalid_argument(e.to_string())
    }
}

/// The interceptor of a service: the caller must hold `role`. The caller is left in the
/// request's extensions for the handler.
fn require(
    auth: Arc<Auth>,
    role: Role,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    require_any(auth, vec![role])
}

/// The interceptor of a service that callers in any of `roles` may use.
fn require_any(
    auth: Arc<Auth>,
    roles: Vec<Role>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut req: Request<()>| {
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        // Failed authentications are counted, and limited, by the client's address.
        let peer = req.remote_addr().map(|a| a.ip());
        // The handshake verified the chain to the client CA; the leaf names the caller.
        let cert = req
            .peer_certs()
            .and_then(|c| c.first().map(|der| PeerCert::from_der(der.as_ref())));
        match auth.check_caller(header, cert.as_ref(), &roles, peer) {
            Ok(p) => {
                req.extensions_mut().insert(p);
                Ok(req)
            }
            Err(e @ crate::service::auth::AuthError::Forbidden { .. }) => {
                Err(Status::permission_denied(e.to_string()))
            }
            Err(e @ crate::service::auth::AuthError::TooMany { .. }) => {
                Err(Status::resource_exhausted(e.to_string()))
            }
            Err(e) => Err(Status::unauthenticated(e.to_string())),
        }
    }
}

/// The caller the interceptor admitted.
fn principal<T>(req: &Request<T>) -> Principal {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or(Principal {
            name: "anonymous".into(),
            roles: Vec::new(),
            authenticated: false,
        })
}

/// Runs a handler body, logging and measuring it.
async fn observe<T>(
    metrics: &Metrics,
    method: &'static str,
    body: impl Future<Output = Result<T, Status>>,
) -> Result<Response<T>, Status> {
    let started = Instant::now();
    let r = body.await;
    let elapsed = started.elapsed();
    let code = match &r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    };
    metrics.request(method, code, elapsed);
    let ms = elapsed.as_secs_f64() * 1e3;
    match &r {
        Err(s)
            if matches!(
                s.code(),
                Code::Internal | Code::Unavailable | Code::Unknown | Code::DataLoss
            ) =>
        {
            tracing::error!(method, code = ?s.code(), ms, message = s.message(), "request failed")
        }
        Err(s) => {
            tracing::info!(method, code = ?s.code(), ms, message = s.message(), "request refused")
        }
        Ok(_) => tracing::debug!(method, ms, "request"),
    }
    r.map(Response::new)
}
