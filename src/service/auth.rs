//! Who may call what: bearer tokens mapped to roles by the config file.
//!
//! The AR system keeps the ledger and sends payments, analysts work the review queue, admins
//! manage models. A token may hold several roles. Without a config the service runs without
//! authentication and binds only to loopback (see [`crate::service::config`]).

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;

/// A group of calls a token may make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Ledger sync and matching.
    ArSystem,
    /// The review queue.
    Analyst,
    /// Model management.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::ArSystem => "ar_system",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        })
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Recorded as the actor of what the caller does (the analyst of a resolution).
    pub name: String,
    pub roles: Vec<Role>,
    /// False when the service runs without authentication.
    pub authenticated: bool,
}

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send the header `authorization: Bearer <token>`")]
    Missing,
    #[error("unknown or malformed bearer token")]
    Unknown,
    #[error("{name} may not call this: it needs the {needed} role")]
    Forbidden { name: String, needed: Role },
}

/// The token table, or none at all.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// `None`: no authentication; every call is allowed.
    tokens: Option<HashMap<String, Principal>>,
}

impl Auth {
    /// Every call allowed, as the anonymous caller.
    pub fn disabled() -> Auth {
        Auth { tokens: None }
    }

    /// Checks tokens against this table of `token -> (name, roles)`.
    pub fn with_tokens(tokens: impl IntoIterator<Item = (String, String, Vec<Role>)>) -> Auth {
        let map = tokens
            .into_iter()
            .map(|(token, name, roles)| {
                (
                    token,
                    Principal {
                        name,
                        roles,
                        authenticated: true,
                    },
                )
            })
            .collect();
        Auth { tokens: Some(map) }
    }

    /// Whether tokens are checked.
    pub fn enabled(&self) -> bool {
        self.tokens.is_some()
    }

    /// The caller of an `authorization` header value, if it may act in `role`.
    pub fn check(&self, header: Option<&str>, role: Role) -> Result<Principal, AuthError> {
        let Some(tokens) = &self.tokens else {
            return Ok(Principal {
                name: "anonymous".into(),
                roles: vec![Role::ArSystem, Role::Analyst, Role::Admin],
                authenticated: false,
            });
        };
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Unknown)?
            .trim();
        let p = tokens.get(token).ok_or(AuthError::Unknown)?;
        if !p.roles.contains(&role) {
            return Err(AuthError::Forbidden {
                name: p.name.clone(),
                needed: role,
            });
        }
        Ok(p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_bound_what_a_token_may_call() {
        let auth = Auth::with_tokens([
            ("t-erp".to_string(), "erp".to_string(), vec![Role::ArSystem]),
            (
                "t-ana".to_string(),
                "alice".to_string(),
                vec![Role::Analyst, Role::Admin],
            ),
        ]);
        assert_eq!(
            auth.check(Some("Bearer t-erp"), Role::ArSystem)
                .map(|p| p.name),
            Ok("erp".into())
        );
        assert!(matches!(
            auth.check(Some("Bearer t-erp"), Role::Analyst),
            Err(AuthError::Forbidden { .. })
        ));
        assert_eq!(
            auth.check(Some("Bearer t-ana"), Role::Admin)
                .map(|p| p.name),
            Ok("alice".into())
        );
        assert_eq!(auth.check(None, Role::Admin), Err(AuthError::Missing));
        assert_eq!(
            auth.check(Some("t-erp"), Role::ArSystem),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            auth.check(Some("Bearer nope"), Role::ArSystem),
            Err(AuthError::Unknown)
        );
        assert!(Auth::disabled().check(None, Role::Admin).is_ok());
    }
}
