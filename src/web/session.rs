//! Signed-in analysts: sessions in memory, keyed by an unguessable id sent in an `HttpOnly`
//! cookie, each with its own CSRF token for the forms it is shown.

use crate::service::auth::{Principal, TokenHash, random_hex};
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie.
pub(crate) const COOKIE: &str = "cashmatch_session";

/// A session unused for this long is gone: a workbench left open overnight signs in again.
const IDLE: Duration = Duration::from_secs(12 * 3600);

/// Sessions kept at most; beyond, the least recently used go first.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    principal: Principal,
    /// The hash of the token signed in with: the session lasts only as long as the config
    /// still has it.
    token: Option<TokenHash>,
    csrf: String,
    last_seen: Instant,
}

/// The signed-in analysts.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

pub(crate) use crate::service::auth::same_secret as same_token;

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for `principal`, signed in with the token of `token` (if any); returns
    /// its id.
    pub(crate) fn create(
        &self,
        principal: Principal,
        token: Option<TokenHash>,
    ) -> Result<String, getrandom::Error> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| now.duration_since(s.last_seen) < IDLE);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session {
                principal,
                token,
                csrf,
                last_seen: now,
            },
        );
        Ok(id)
    }

    /// The principal, token hash and CSRF token of a live session, marking it used.
    pub(crate) fn get(&self, id: &str) -> Option<(Principal, Option<TokenHash>, String)> {
        let now = Instant::now();
        let mut map = self.lock();
        let s = map.get_mut(id)?;
        if now.duration_since(s.last_seen) >= IDLE {
            map.remove(id);
            return None;
        }
        s.last_seen = now;
        Some((s.principal.clone(), s.token, s.csrf.clone()))
    }

    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The session id the request's cookie carries.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that starts a session; `secure` (served over TLS): the browser sends
/// it back over TLS only.
pub(crate) fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        IDLE.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends one.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a form post comes from a page of this site. Browsers send `Origin` with every form
/// post; a post whose origin names another host is refused before its fields are read.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or(origin);
    !host.is_empty() && origin_host == host
}
