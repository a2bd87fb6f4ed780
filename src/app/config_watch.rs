//! Following the config file, so that tokens added or revoked in it, and four-eyes limits
//! changed in it, take effect without a restart.
//!
//! A service started with `--config FILE` reads the file every [`POLL`] and, when its bytes
//! differ from the last read, validates it whole exactly as at start ([`Settings::parse`], with
//! the same command-line flags) and puts in place its `[[tokens]]` and `[[client_certs]]`
//! ([`Auth::replace`]) and its `[four_eyes]` limits ([`Service::set_four_eyes`]). A file that
//! does not parse or validate, or that would turn authentication on or off, is logged as an
//! error and counted (`cashmatch_config_reloads_total{result="error"}`), and nothing of it is
//! applied: the tokens and limits in force stay. The other settings (addresses, request limits,
//! the store) take a restart, and the log says so.
//!
//! New four-eyes limits apply to the resolutions submitted from then on; a resolution already
//! waiting for a second analyst keeps waiting, whatever the new limit.
//!
//! Comparing the bytes rather than the modification time catches every edit, also two within
//! the file system's timestamp resolution and a file replaced by a rename; the file is small.

use super::config::{ConfigFile, Overrides, Settings};
use crate::service::Service;
use crate::service::auth::Auth;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the file is read: a revoked token stops working within this long.
pub const POLL: Duration = Duration::from_secs(2);

/// Follows the config file `started_with` was read from until `stop` resolves (see the module
/// doc).
pub async fn follow(
    started_with: ConfigFile,
    flags: Overrides,
    auth: Arc<Auth>,
    service: Arc<Service>,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ConfigFile { path, text } = started_with;
    // What the service started with: an edit since then is applied at the first poll.
    let mut last = Some(text.into_bytes());
    let mut unreadable: Option<String> = None;
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        let bytes = match read(&path).await {
            Ok(b) => b,
            Err(e) => {
                // An editor replacing the file may leave it missing for a moment; say so once.
                let e = e.to_string();
                if unreadable.as_ref() != Some(&e) {
                    tracing::error!(config = %path.display(), error = %e, "cannot read the config file; the tokens in force stay");
                    unreadable = Some(e);
                }
                continue;
            }
        };
        unreadable = None;
        if last.as_ref() == Some(&bytes) {
            continue;
        }
        let _ = reload(&path, &bytes, &flags, &auth, &service);
        last = Some(bytes);
    }
}

/// The file's bytes, read off the async threads.
async fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(std::io::Error::other)?
}

/// Applies the tokens, client certificates and four-eyes limits of the config text `bytes` read
/// from `path`, or keeps those in force and says why; logs and counts either way.
pub fn reload(
    path: &Path,
    bytes: &[u8],
    flags: &Overrides,
    auth: &Auth,
    service: &Service,
) -> Result<(), String> {
    let applied = std::str::from_utf8(bytes)
        .map_err(|e| format!("{}: not UTF-8: {e}", path.display()))
        .and_then(|text| Settings::parse(path, text, flags.clone()).map_err(|e| e.to_string()))
        .and_then(|s| {
            auth.replace(s.tokens, s.client_certs)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let before = service.four_eyes();
            if before != s.four_eyes {
                // A control auditors ask about: said at warning level, with both sides.
                tracing::warn!(
                    config = %path.display(),
                    above = %s.four_eyes.above,
                    currencies = ?s.four_eyes.per_currency,
                    was_above = %before.above,
                    was_currencies = ?before.per_currency,
                    "four-eyes limits changed: in force for the resolutions submitted from now on"
                );
                service.set_four_eyes(s.four_eyes);
            }
            Ok(())
        });
    let c = auth.counters();
    match &applied {
        Ok(()) => {
            c.reloads_ok.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                config = %path.display(),
                tokens = ?auth.names(),
                "config changed: its [[tokens]], [[client_certs]] and [four_eyes] are in force (other settings apply at the next start)"
            );
        }
        Err(e) => {
            c.reloads_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "config changed but cannot be used; the tokens and limits in force stay");
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::auth::{AuthError, Role, TokenHash};
    use crate::service::tests::{cases_service, open_items_with_customer};
    use crate::service::{ResolveAction, ResolveOutcome, ResolveRequest};
    use rust_decimal::Decimal;

    fn entry(name: &str, token: &str, role: &str) -> String {
        format!(
            "[[tokens]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nroles = [\"{role}\"]\n",
            TokenHash::of(token).to_hex()
        )
    }

    /// A service on the fixture cases following the config file it started with, written in
    /// `dir`; the sender stops the follower.
    struct Following {
        path: std::path::PathBuf,
        dir: std::path::PathBuf,
        auth: Arc<Auth>,
        service: Arc<Service>,
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn follow_file(name: &str, text: &str) -> Following {
        let (service, dir) = cases_service(name).await;
        let path = dir.join("config.toml");
        std::fs::write(&path, text).expect("write");
        let settings = Settings::load(Some(&path), Overrides::default()).expect("settings");
        let auth = Arc::new(Auth::new(settings.tokens));
        service.set_four_eyes(settings.four_eyes);
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(follow(
            settings.config.clone().expect("read from a file"),
            Overrides::default(),
            Arc::clone(&auth),
            Arc::clone(&service),
            Duration::from_millis(20),
            async move {
                let _ = rx.await;
            },
        ));
        Following {
            path,
            dir,
            auth,
            service,
            stop,
            task,
        }
    }

    impl Following {
        async fn end(self) {
            let _ = self.stop.send(());
            self.task.await.expect("watcher");
            self.service.store().close();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_added_and_revoked_in_the_file_apply_and_a_bad_file_keeps_the_old_ones() {
        let f = follow_file("config-watch", &entry("erp", "t-erp", "ar_system")).await;
        let (path, auth) = (&f.path, &f.auth);
        let check = |t: &str| auth.check(Some(&format!("Bearer {t}")), Role::ArSystem, None);
        assert!(check("t-erp").is_ok());

        // Revoke one token, add another: both apply within a few polls.
        std::fs::write(path, entry("erp2", "t-erp2", "ar_system")).expect("write");
        let waited = wait_until(|| check("t-erp").is_err()).await;
        assert!(waited, "the revoked token still works");
        assert_eq!(check("t-erp2").map(|p| p.name), Ok("erp2".into()));

        // A file that does not parse, then one without tokens: the tokens in force stay.
        let failed = |a: &Auth| a.counters().reloads_failed.load(Ordering::Relaxed);
        std::fs::write(path, "[[tokens]\nname = ").expect("write");
        assert!(wait_until(|| failed(auth) == 1).await);
        std::fs::write(path, "").expect("write");
        assert!(wait_until(|| failed(auth) == 2).await);
        assert_eq!(check("t-erp2").map(|p| p.name), Ok("erp2".into()));
        assert_eq!(check("t-erp"), Err(AuthError::Unknown));
        assert_eq!(auth.counters().reloads_ok.load(Ordering::Relaxed), 1);
        f.end().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn four_eyes_limits_changed_in_the_file_apply_to_the_next_resolution() {
        let tokens = entry("alice", "t-alice", "analyst");
        let f = follow_file(
            "config-watch-four-eyes",
            &format!("[four_eyes]\nabove = \"1000000000.00\"\n{tokens}"),
        )
        .await;
        let items = open_items_with_customer(&f.service).await;
        assert!(items.len() >= 2, "{items:?}");
        let on_account = |(id, customer, _): &(String, String, Decimal)| ResolveRequest {
            payment_id: id.clone(),
            analyst: "alice".into(),
            action: ResolveAction::PutOnAccount(customer.clone()),
            note: "customer asked to keep it".into(),
        };
        // Below the limit the service started with: posts.
        let r = f
            .service
            .resolve(on_account(&items[0]))
            .await
            .expect("resolve");
        assert!(r.resolved().is_some(), "posted below the limit");

        // The limit lowered in the file: the next resolution waits for a second analyst.
        std::fs::write(&f.path, format!("[four_eyes]\nabove = \"0.00\"\n{tokens}")).expect("write");
        assert!(
            wait_until(|| f.service.four_eyes().above == Decimal::ZERO).await,
            "the new limit is not in force"
        );
        let r = f
            .service
            .resolve(on_account(&items[1]))
            .await
            .expect("resolve");
        assert!(
            matches!(r, ResolveOutcome::AwaitingApproval(_)),
            "posted above the new limit: {r:?}"
        );

        // A limit that is not money leaves the one in force, and the tokens.
        std::fs::write(&f.path, format!("[four_eyes]\nabove = \"-5\"\n{tokens}")).expect("write");
        assert!(wait_until(|| f.auth.counters().reloads_failed.load(Ordering::Relaxed) == 1).await);
        assert_eq!(f.service.four_eyes().above, Decimal::ZERO);
        assert!(
            f.auth
                .check(Some("Bearer t-alice"), Role::Analyst, None)
                .is_ok()
        );
        f.end().await;
    }

    async fn wait_until(mut done: impl FnMut() -> bool) -> bool {
        for _ in 0..200 {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}
