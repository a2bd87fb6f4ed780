//! Who may call what: bearer tokens mapped to roles by the config file.
//!
//! The AR system keeps the ledger and sends payments, analysts work the review queue, admins
//! manage models. A token may hold several roles. Without a config the service runs without
//! authentication and binds only to loopback (see `crate::app::config`).
//!
//! The config holds no token, only its SHA-256 ([`TokenHash`]): someone who reads the file (a
//! backup, a support bundle, a config repository) learns nothing they can call with. Tokens are
//! 256 random bits made by `cashmatch token new` ([`new_token`]), so a fast hash is enough: there
//! is no dictionary to try, and a slow password hash would only cost every call time. A presented
//! token is hashed and compared with every entry in constant time.
//!
//! The table can be replaced while the service runs ([`Auth::replace`], from the config watcher
//! of `crate::app::config_watch`): tokens added or revoked in the file work, or stop working,
//! without a restart. Failed attempts are counted per client address and, past
//! [`MAX_FAILURES`] in [`FAILURE_WINDOW`], that address is refused without looking at its token
//! until the window has passed ([`AuthError::TooMany`]).
//!
//! Beside tokens, a client certificate presented over mutual TLS (`crate::tls`) may carry roles:
//! the config's `[[client_certs]]` names certificates by their SHA-256 fingerprint, their
//! subject's common name or a subject alternative name ([`client_cert`]) — the AR system's
//! machine identity, issued by the CA the TLS layer checks it against. A certificate not in the
//! table gives no role (the caller then needs a token), and the table is replaced with the
//! tokens when the config changes.

mod client_cert;

use client_cert::Found;
pub use client_cert::{CertEntry, CertFingerprint, CertMatch, ClientCerts, PeerCert, San};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

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

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "ar_system" => Ok(Role::ArSystem),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: ar_system, analyst or admin"
            )),
        }
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

/// `ar_system`, or `ar_system or analyst`.
fn role_list(roles: &[Role]) -> String {
    let names: Vec<String> = roles.iter().map(Role::to_string).collect();
    names.join(" or ")
}

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send the header `authorization: Bearer <token>`")]
    Missing,
    #[error("unknown or malformed bearer token")]
    Unknown,
    /// `needed`: the roles any of which would do.
    #[error("{name} may not call this: it needs the {} role", role_list(.needed))]
    Forbidden { name: String, needed: Vec<Role> },
    #[error("too many failed authentications from this address: try again in {retry_after_secs} s")]
    TooMany { retry_after_secs: u64 },
}

/// The SHA-256 of a bearer token: what the config stores (`token_sha256`, 64 hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of a token as presented (surrounding white space is not part of it).
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.trim().as_bytes()).into())
    }

    /// Reads 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Result<TokenHash, String> {
        let hex = hex.trim();
        hex32(hex).map(TokenHash).ok_or_else(|| {
            format!(
                "a token_sha256 is 64 hex digits, not {} characters",
                hex.len()
            )
        })
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Equality in time independent of where the two differ.
    fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", self.to_hex())
    }
}

/// 32 bytes of 64 hex digits (either case), or `None`.
fn hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets (tokens, CSRF tokens) in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Prefix of every token `cashmatch token new` makes, so that a leaked one is recognisable
/// (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "cm_";

/// 32 bytes from the operating system's generator, as hex: session ids, CSRF tokens, bearer
/// tokens.
pub fn random_hex() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A new bearer token: [`TOKEN_PREFIX`] and [`random_hex`] (256 bits: nothing to guess).
pub fn new_token() -> Result<String, getrandom::Error> {
    Ok(format!("{TOKEN_PREFIX}{}", random_hex()?))
}

/// One token of the table: its hash and whom it admits.
#[derive(Clone)]
pub struct TokenEntry {
    pub hash: TokenHash,
    pub name: String,
    pub roles: Vec<Role>,
}

/// The token table of a config: empty means no authentication.
#[derive(Clone, Default)]
pub struct Tokens(Vec<TokenEntry>);

impl Tokens {
    pub fn new(entries: Vec<TokenEntry>) -> Tokens {
        Tokens(entries)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The entry whose hash is `hash`. Every entry is compared, in constant time, whatever
    /// matches: how long the lookup takes says nothing about the table.
    fn find(&self, hash: &TokenHash) -> Option<&TokenEntry> {
        let mut found = None;
        for e in &self.0 {
            if e.hash.ct_eq(hash) {
                found = Some(e);
            }
        }
        found
    }
}

/// Names only: hashes stay out of logs.
impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|e| &e.name))
            .finish()
    }
}

/// Failed authentications from one address allowed within [`FAILURE_WINDOW`]; the next attempt
/// is refused without looking at its token until the window has passed. Ten is plenty for an
/// analyst mistyping and nothing for someone guessing 256-bit tokens.
pub const MAX_FAILURES: u32 = 10;

/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Addresses tracked at most; past this, expired ones are dropped, then the oldest.
const MAX_TRACKED: usize = 65_536;

/// Why authentications failed, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    Missing,
    Unknown,
    Forbidden,
    Limited,
}

impl FailureReason {
    pub const ALL: [FailureReason; 4] = [
        FailureReason::Missing,
        FailureReason::Unknown,
        FailureReason::Forbidden,
        FailureReason::Limited,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureReason::Missing => "missing",
            FailureReason::Unknown => "unknown",
            FailureReason::Forbidden => "forbidden",
            FailureReason::Limited => "rate_limited",
        }
    }
}

/// What the metrics read: failures by reason, and reloads of the table.
#[derive(Debug, Default)]
pub struct AuthCounters {
    failures: [AtomicU64; 4],
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
}

impl AuthCounters {
    pub fn failures(&self, reason: FailureReason) -> u64 {
        self.failures[reason as usize].load(Ordering::Relaxed)
    }

    fn fail(&self, reason: FailureReason) {
        self.failures[reason as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The rate limiter's key of an address: IPv4 as is (and IPv4-mapped IPv6 as IPv4), IPv6 by its
/// /64, which one client usually holds whole. `None`: the address is unknown (one bucket).
fn client_key(ip: Option<IpAddr>) -> Option<IpAddr> {
    match ip? {
        IpAddr::V4(v4) => Some(IpAddr::V4(v4)),
        IpAddr::V6(v6) => Some(match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        }),
    }
}

struct Window {
    started: Instant,
    failures: u32,
}

/// Failed authentications per client address within a fixed window.
#[derive(Default)]
struct Limiter {
    map: Mutex<HashMap<Option<IpAddr>, Window>>,
}

impl Limiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Option<IpAddr>, Window>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds until `key` may try again, if it is limited now.
    fn limited(&self, key: Option<IpAddr>, now: Instant) -> Option<u64> {
        let map = self.lock();
        let w = map.get(&key)?;
        let elapsed = now.duration_since(w.started);
        (w.failures >= MAX_FAILURES && elapsed < FAILURE_WINDOW)
            .then(|| (FAILURE_WINDOW - elapsed).as_secs().max(1))
    }

    /// Counts a failure; true when it is the one that reaches the limit.
    fn fail(&self, key: Option<IpAddr>, now: Instant) -> bool {
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            map.retain(|_, w| now.duration_since(w.started) < FAILURE_WINDOW);
            if map.len() >= MAX_TRACKED {
                if let Some(oldest) = map.iter().min_by_key(|(_, w)| w.started).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let w = map.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(w.started) >= FAILURE_WINDOW {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures += 1;
        w.failures == MAX_FAILURES
    }
}

/// The live token table, the failure limiter and their counters; one per service, shared by the
/// gRPC interceptors and the workbench.
pub struct Auth {
    /// Fixed at start: a service started without tokens listens on loopback only, and one
    /// started with them must not lose them to an edited file.
    enabled: bool,
    tokens: RwLock<Arc<Tokens>>,
    certs: RwLock<Arc<ClientCerts>>,
    limiter: Limiter,
    counters: AuthCounters,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled)
            .field("tokens", &self.current())
            .field("client_certs", &self.current_certs())
            .finish()
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth::disabled()
    }
}

impl Auth {
    /// Checks tokens against `tokens`; none at all means no authentication.
    pub fn new(tokens: Tokens) -> Auth {
        Auth::with_client_certs(tokens, ClientCerts::default())
    }

    /// Checks tokens against `tokens` and client certificates against `certs`; neither at all
    /// means no authentication.
    pub fn with_client_certs(tokens: Tokens, certs: ClientCerts) -> Auth {
        Auth {
            enabled: !tokens.is_empty() || !certs.is_empty(),
            tokens: RwLock::new(Arc::new(tokens)),
            certs: RwLock::new(Arc::new(certs)),
            limiter: Limiter::default(),
            counters: AuthCounters::default(),
        }
    }

    /// Every call allowed, as the anonymous caller.
    pub fn disabled() -> Auth {
        Auth::new(Tokens::default())
    }

    /// A table of `(hash, name, roles)` (tests, tools).
    pub fn with_tokens(tokens: impl IntoIterator<Item = (TokenHash, String, Vec<Role>)>) -> Auth {
        Auth::new(Tokens(
            tokens
                .into_iter()
                .map(|(hash, name, roles)| TokenEntry { hash, name, roles })
                .collect(),
        ))
    }

    /// Whether tokens are checked.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Failures and reloads, for the metrics.
    pub fn counters(&self) -> &AuthCounters {
        &self.counters
    }

    fn current(&self) -> Arc<Tokens> {
        Arc::clone(&self.tokens.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn current_certs(&self) -> Arc<ClientCerts> {
        Arc::clone(&self.certs.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts new tables in place for the calls that follow (a reloaded config). Refused when it
    /// would turn authentication on or off: that changes which addresses the service may listen
    /// on, so it takes a restart.
    pub fn replace(&self, tokens: Tokens, certs: ClientCerts) -> Result<(), String> {
        if (tokens.is_empty() && certs.is_empty()) == self.enabled {
            return Err(if self.enabled {
                "the config has no [[tokens]] or [[client_certs]] left; turning authentication \
                 off takes a restart (the old ones stay in force)"
                    .into()
            } else {
                "the config now has [[tokens]] or [[client_certs]]; turning authentication on \
                 takes a restart"
                    .into()
            });
        }
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tokens);
        *self.certs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(certs);
        Ok(())
    }

    /// The names in the table now.
    pub fn names(&self) -> Vec<String> {
        self.current().0.iter().map(|e| e.name.clone()).collect()
    }

    /// The caller holding the token of `hash` now, if the table still has it (a workbench
    /// session checks this on every page, so that a revoked token ends its sessions too).
    pub fn principal_of(&self, hash: &TokenHash) -> Option<Principal> {
        let tokens = self.current();
        tokens.find(hash).map(|e| Principal {
            name: e.name.clone(),
            roles: e.roles.clone(),
            authenticated: true,
        })
    }

    /// The caller of an `authorization` header value, if it may act in `role`. `peer` is the
    /// client's address: failures are counted by it and too many refuse it for a while.
    pub fn check(
        &self,
        header: Option<&str>,
        role: Role,
        peer: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        self.check_any(header, &[role], peer)
    }

    /// [`Auth::check`] for a call that callers in any of `roles` may make.
    pub fn check_any(
        &self,
        header: Option<&str>,
        roles: &[Role],
        peer: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        self.check_caller(header, None, roles, peer)
    }

    /// [`Auth::check_any`] for a caller that may also have presented a client certificate
    /// (already verified against the client CA by the TLS layer). A certificate in the table
    /// with one of `roles` admits the call without a token; otherwise the token decides.
    pub fn check_caller(
        &self,
        header: Option<&str>,
        cert: Option<&PeerCert>,
        roles: &[Role],
        peer: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        if !self.enabled {
            return Ok(Principal {
                name: "anonymous".into(),
                roles: vec![Role::ArSystem, Role::Analyst, Role::Admin],
                authenticated: false,
            });
        }
        let key = client_key(peer);
        let now = Instant::now();
        if let Some(retry_after_secs) = self.limiter.limited(key, now) {
            self.counters.fail(FailureReason::Limited);
            return Err(AuthError::TooMany { retry_after_secs });
        }
        if let Some(c) = cert {
            match self.current_certs().find(c) {
                Found::One(e) if roles.iter().any(|r| e.roles.contains(r)) => {
                    return Ok(Principal {
                        name: e.name.clone(),
                        roles: e.roles.clone(),
                        authenticated: true,
                    });
                }
                Found::One(e) if header.is_none() => {
                    self.counters.fail(FailureReason::Forbidden);
                    return Err(AuthError::Forbidden {
                        name: e.name.clone(),
                        needed: roles.to_vec(),
                    });
                }
                Found::One(_) => {}
                Found::None => tracing::info!(
                    client = ?peer,
                    fingerprint = %c.fingerprint.to_hex(),
                    subject_cn = ?c.subject_cn,
                    dns = ?c.dns_names,
                    uri = ?c.uris,
                    "client certificate not in [[client_certs]]: it gives no role"
                ),
                Found::Several(names) => tracing::warn!(
                    client = ?peer,
                    fingerprint = %c.fingerprint.to_hex(),
                    subject_cn = ?c.subject_cn,
                    entries = ?names,
                    "client certificate fits several [[client_certs]] entries: it gives no role \
                     until the config names it once"
                ),
            }
        }
        let Some(header) = header else {
            self.counters.fail(FailureReason::Missing);
            return Err(AuthError::Missing);
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "));
        let tokens = self.current();
        let Some(entry) = token.and_then(|t| tokens.find(&TokenHash::of(t))) else {
            self.counters.fail(FailureReason::Unknown);
            if self.limiter.fail(key, now) {
                tracing::warn!(
                    client = ?peer,
                    failures = MAX_FAILURES,
                    window_secs = FAILURE_WINDOW.as_secs(),
                    "too many unknown tokens from this client: refusing it for the rest of the window"
                );
            } else {
                tracing::info!(client = ?peer, "unknown bearer token");
            }
            return Err(AuthError::Unknown);
        };
        if !roles.iter().any(|r| entry.roles.contains(r)) {
            self.counters.fail(FailureReason::Forbidden);
            return Err(AuthError::Forbidden {
                name: entry.name.clone(),
                needed: roles.to_vec(),
            });
        }
        Ok(Principal {
            name: entry.name.clone(),
            roles: entry.roles.clone(),
            authenticated: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Auth {
        Auth::with_tokens([
            (
                TokenHash::of("t-erp"),
                "erp".to_string(),
                vec![Role::ArSystem],
            ),
            (
                TokenHash::of("t-ana"),
                "alice".to_string(),
                vec![Role::Analyst, Role::Admin],
            ),
        ])
    }

    #[test]
    fn roles_bound_what_a_token_may_call() {
        let auth = table();
        let check = |h: Option<&str>, r| auth.check(h, r, None);
        assert_eq!(
            check(Some("Bearer t-erp"), Role::ArSystem).map(|p| p.name),
            Ok("erp".into())
        );
        assert!(matches!(
            check(Some("Bearer t-erp"), Role::Analyst),
            Err(AuthError::Forbidden { .. })
        ));
        assert_eq!(
            check(Some("Bearer t-ana"), Role::Admin).map(|p| p.name),
            Ok("alice".into())
        );
        assert_eq!(check(None, Role::Admin), Err(AuthError::Missing));
        assert_eq!(
            check(Some("t-erp"), Role::ArSystem),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            check(Some("Bearer nope"), Role::ArSystem),
            Err(AuthError::Unknown)
        );
        assert!(Auth::disabled().check(None, Role::Admin, None).is_ok());
    }

    #[test]
    fn the_table_holds_hashes_and_a_token_matches_only_its_own() {
        let h = TokenHash::of("t-erp");
        // The SHA-256 test vector of "abc".
        assert_eq!(
            TokenHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(
            TokenHash::from_hex(&h.to_hex().to_uppercase()),
            Ok(h),
            "hex in either case"
        );
        assert!(TokenHash::from_hex("abc").is_err());
        assert!(TokenHash::from_hex(&"g".repeat(64)).is_err());
        let auth = table();
        // The hash itself is not a token.
        assert_eq!(
            auth.check(
                Some(&format!("Bearer {}", h.to_hex())),
                Role::ArSystem,
                None
            ),
            Err(AuthError::Unknown)
        );
        assert_eq!(auth.principal_of(&h).map(|p| p.name), Some("erp".into()));
        assert!(auth.principal_of(&TokenHash::of("t-other")).is_none());
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("ab", "abc")
        );
    }

    #[test]
    fn new_tokens_are_256_random_bits_with_a_recognisable_prefix() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_ne!(a, b);
        let hex = a.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_replaced_table_takes_effect_and_cannot_switch_authentication_off() {
        let auth = table();
        auth.replace(
            Tokens(vec![TokenEntry {
                hash: TokenHash::of("t-new"),
                name: "bob".into(),
                roles: vec![Role::Analyst],
            }]),
            ClientCerts::default(),
        )
        .expect("replace");
        assert_eq!(
            auth.check(Some("Bearer t-erp"), Role::ArSystem, None),
            Err(AuthError::Unknown),
            "revoked"
        );
        assert_eq!(
            auth.check(Some("Bearer t-new"), Role::Analyst, None)
                .map(|p| p.name),
            Ok("bob".into())
        );
        let e = auth
            .replace(Tokens::default(), ClientCerts::default())
            .expect_err("no tokens");
        assert!(e.contains("restart"), "{e}");
        assert_eq!(auth.names(), vec!["bob".to_string()]);
        assert!(
            Auth::disabled()
                .replace(table().current().as_ref().clone(), ClientCerts::default())
                .is_err()
        );
    }

    #[test]
    fn too_many_failures_from_one_address_refuse_it_and_no_other() {
        let auth = table();
        let a: IpAddr = "192.0.2.7".parse().expect("ip");
        let b: IpAddr = "192.0.2.8".parse().expect("ip");
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                auth.check(Some("Bearer guess"), Role::ArSystem, Some(a)),
                Err(AuthError::Unknown)
            );
        }
        // Even the right token is refused while the address is limited.
        assert!(matches!(
            auth.check(Some("Bearer t-erp"), Role::ArSystem, Some(a)),
            Err(AuthError::TooMany { retry_after_secs }) if (1..=60).contains(&retry_after_secs)
        ));
        assert!(
            auth.check(Some("Bearer t-erp"), Role::ArSystem, Some(b))
                .is_ok()
        );
        // A forbidden role or a missing header is not a guess and does not count.
        for _ in 0..2 * MAX_FAILURES {
            let _ = auth.check(Some("Bearer t-erp"), Role::Admin, Some(b));
            let _ = auth.check(None, Role::Admin, Some(b));
        }
        assert!(
            auth.check(Some("Bearer t-erp"), Role::ArSystem, Some(b))
                .is_ok()
        );
        let c = auth.counters();
        assert_eq!(c.failures(FailureReason::Unknown), u64::from(MAX_FAILURES));
        assert_eq!(c.failures(FailureReason::Limited), 1);
        assert_eq!(
            c.failures(FailureReason::Forbidden),
            u64::from(2 * MAX_FAILURES)
        );
        assert_eq!(
            c.failures(FailureReason::Missing),
            u64::from(2 * MAX_FAILURES)
        );
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(Some(a)), client_key(Some(b)));
        assert_ne!(client_key(Some(a)), client_key(Some(c)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(
            client_key(Some(mapped)),
            Some("192.0.2.7".parse().expect("ip"))
        );
    }

    #[test]
    fn a_listed_client_certificate_admits_its_roles_and_an_unlisted_one_none() {
        let peer = |der: &[u8], cn: &str| PeerCert {
            fingerprint: CertFingerprint::of(der),
            subject_cn: Some(cn.into()),
            dns_names: Vec::new(),
            uris: Vec::new(),
        };
        let erp = peer(b"erp certificate", "erp");
        let auth = Auth::with_client_certs(
            Tokens::default(),
            ClientCerts::new(vec![
                CertEntry {
                    matches: CertMatch::fingerprint(erp.fingerprint),
                    name: "erp-cert".into(),
                    roles: vec![Role::ArSystem],
                },
                CertEntry {
                    matches: CertMatch::new(None, Some("bank-feed".into()), None).expect("cn"),
                    name: "bank".into(),
                    roles: vec![Role::ArSystem],
                },
            ]),
        );
        assert!(auth.enabled(), "certificates alone turn authentication on");
        assert_eq!(
            auth.check_caller(None, Some(&erp), &[Role::ArSystem], None)
                .map(|p| p.name),
            Ok("erp-cert".into())
        );
        assert!(matches!(
            auth.check_caller(None, Some(&erp), &[Role::Admin], None),
            Err(AuthError::Forbidden { .. })
        ));
        // Any certificate of the CA with that common name: a renewal keeps working.
        let bank = peer(b"bank certificate, renewed", "bank-feed");
        assert_eq!(
            auth.check_caller(None, Some(&bank), &[Role::ArSystem], None)
                .map(|p| p.name),
            Ok("bank".into())
        );
        let stranger = peer(b"another certificate", "someone");
        assert_eq!(
            auth.check_caller(None, Some(&stranger), &[Role::ArSystem], None),
            Err(AuthError::Missing)
        );
        // The erp certificate renamed bank-feed fits both entries, so neither.
        let both = peer(b"erp certificate", "bank-feed");
        assert_eq!(
            auth.check_caller(None, Some(&both), &[Role::ArSystem], None),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn the_window_passes() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            l.fail(None, t0);
        }
        assert!(l.limited(None, t0).is_some());
        assert!(l.limited(None, t0 + FAILURE_WINDOW).is_none());
        assert!(
            !l.fail(None, t0 + FAILURE_WINDOW),
            "a new window starts at one"
        );
    }
}
