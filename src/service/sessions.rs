//! Workbench sign-ins. Sessions live in the store, not in one process's memory: on PostgreSQL a
//! sign-in on one replica is valid on every other (a load balancer may send the next page
//! anywhere), sign-out on one ends it on all, and on either store a restart signs no one out.
//!
//! The store keys a session by the SHA-256 of its id; the id itself exists only in the analyst's
//! cookie. Each use reads the row (one primary-key lookup); the time of last use is written back
//! only when it has moved by [`TOUCH_EVERY`], so browsing the queue does not write on every page.

use super::auth::{Principal, Role, TokenHash, random_hex};
use super::{Service, ServiceError};
use crate::store::{SessionRecord, SessionWrite};
use chrono::{DateTime, Duration, Utc};

/// A session unused for this long is gone: a workbench left open overnight signs in again.
pub const IDLE: Duration = Duration::hours(12);

/// Sessions kept at most; beyond, the least recently used go first. Sign-in needs a token when
/// authentication is on, but without it anyone can sign in, so the store's share is bounded.
const MAX_SESSIONS: u32 = 10_000;

/// How stale the stored time of last use may get before a page writes it again: small against
/// [`IDLE`], large against the time between an analyst's pages.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// A live session.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub principal: Principal,
    /// The token signed in with, if any: the session lasts only while the config still has it.
    pub token: Option<TokenHash>,
    /// The CSRF token of the session's forms.
    pub csrf: String,
}

/// The store's key of a session id.
fn key(id: &str) -> String {
    TokenHash::of(id).to_hex()
}

fn no_randomness(e: getrandom::Error) -> ServiceError {
    ServiceError::Internal(format!("the system's random number source failed: {e}"))
}

impl Service {
    /// Starts a session for `principal`, signed in with the token of `token` (if any); returns
    /// its id, for the cookie.
    pub async fn start_session(
        &self,
        principal: Principal,
        token: Option<TokenHash>,
    ) -> Result<String, ServiceError> {
        self.start_session_at(principal, token, crate::store::now())
            .await
    }

    async fn start_session_at(
        &self,
        principal: Principal,
        token: Option<TokenHash>,
        now: DateTime<Utc>,
    ) -> Result<String, ServiceError> {
        let id = random_hex().map_err(no_randomness)?;
        let csrf = random_hex().map_err(no_randomness)?;
        let record = SessionRecord {
            id_hash: key(&id),
            analyst: principal.name,
            roles: principal.roles.iter().map(Role::to_string).collect(),
            authenticated: principal.authenticated,
            token_hash: token.map(|t| t.to_hex()),
            csrf,
            created_at: now,
            last_seen: now,
        };
        self.store()
            .write_session(SessionWrite::Start {
                record,
                expired_before: now - IDLE,
                keep: MAX_SESSIONS,
            })
            .await?;
        Ok(id)
    }

    /// The live session of a cookie's id, marking it used; `None` for an id never started,
    /// signed out, or idle for [`IDLE`].
    pub async fn session(&self, id: &str) -> Result<Option<SignedIn>, ServiceError> {
        self.session_at(id, crate::store::now()).await
    }

    async fn session_at(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SignedIn>, ServiceError> {
        let id_hash = key(id);
        let Some(row) = self.store().session(id_hash.clone()).await? else {
            return Ok(None);
        };
        if now - row.last_seen >= IDLE {
            self.store()
                .write_session(SessionWrite::End { id_hash })
                .await?;
            return Ok(None);
        }
        if now - row.last_seen >= TOUCH_EVERY {
            self.store()
                .write_session(SessionWrite::Touch { id_hash, at: now })
                .await?;
        }
        let roles = row.roles.iter().filter_map(|r| r.parse().ok()).collect();
        // A row this build cannot read (a token hash of another shape) is no session at all.
        let token = match row.token_hash.as_deref().map(TokenHash::from_hex) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => return Ok(None),
        };
        Ok(Some(SignedIn {
            principal: Principal {
                name: row.analyst,
                roles,
                authenticated: row.authenticated,
            },
            token,
            csrf: row.csrf,
        }))
    }

    /// Ends a session (sign-out, or a token revoked); ending one already gone is no error.
    pub async fn end_session(&self, id: &str) -> Result<(), ServiceError> {
        self.store()
            .write_session(SessionWrite::End { id_hash: key(id) })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tests::{TestStore, runtime};

    fn analyst(name: &str) -> Principal {
        Principal {
            name: name.to_string(),
            roles: vec![Role::Analyst],
            authenticated: true,
        }
    }

    #[test]
    fn a_sign_in_on_one_replica_is_valid_on_the_other_and_sign_out_on_either_ends_it() {
        for store in TestStore::each("sessions-shared") {
            runtime().block_on(async {
                let a = store.service().await;
                let b = store.service().await;
                let token = TokenHash::of("cm_some-token");
                let id = a
                    .start_session(analyst("Ana"), Some(token))
                    .await
                    .expect("sign-in");
                let on_b = b.session(&id).await.expect("read").expect("signed in on b");
                assert_eq!(on_b.principal.name, "Ana");
                assert_eq!(on_b.principal.roles, vec![Role::Analyst]);
                assert!(on_b.principal.authenticated);
                assert_eq!(on_b.token, Some(token));
                let on_a = a.session(&id).await.expect("read").expect("signed in on a");
                assert_eq!(
                    on_a.csrf, on_b.csrf,
                    "one CSRF token for the session's forms"
                );
                assert!(b.session("0123").await.expect("read").is_none());
                b.end_session(&id).await.expect("sign-out");
                assert!(
                    a.session(&id).await.expect("read").is_none(),
                    "signed out on a"
                );
            });
        }
    }

    #[test]
    fn a_session_survives_a_restart_but_not_twelve_idle_hours() {
        for store in TestStore::each("sessions-restart") {
            runtime().block_on(async {
                let start = crate::store::now();
                let first = store.service().await;
                let id = first
                    .start_session_at(analyst("Bo"), None, start)
                    .await
                    .expect("sign-in");
                first.store().close();
                drop(first);
                let again = store.service().await;
                let later = start + Duration::hours(11);
                let s = again.session_at(&id, later).await.expect("read");
                assert_eq!(s.expect("still signed in").principal.name, "Bo");
                // Used at 11 h: idle is counted from then, not from the sign-in.
                let s = again
                    .session_at(&id, later + IDLE - Duration::minutes(1))
                    .await
                    .expect("read");
                assert!(s.is_some(), "used within the idle time");
                let s = again
                    .session_at(&id, later + IDLE + IDLE)
                    .await
                    .expect("read");
                assert!(s.is_none(), "idle twelve hours");
                assert!(
                    again.session_at(&id, later).await.expect("read").is_none(),
                    "an expired session is gone, not only hidden"
                );
            });
        }
    }
}
