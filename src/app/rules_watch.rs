//! Following the rules file, so that new write-off limits, overpayment treatments and grace days
//! take effect without a restart.
//!
//! A service started with `--rules FILE` (or `rules = "FILE"` in its config) reads the file every
//! [`POLL`] and, when its bytes differ from the last read, validates it whole exactly as
//! `cashmatch rules check` does and puts it in force ([`Service::load_rules`]: audited, actor
//! [`ACTOR`], with the versions before and after). A file that does not parse or validate is
//! logged with its line, column and field, and the rules in force stay. As for the config file,
//! the bytes are compared rather than the modification time, which catches every edit.

use crate::rules::{Rules, RulesError};
use crate::service::Service;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the file is read.
pub const POLL: Duration = Duration::from_secs(2);

/// The actor recorded for rules loaded from the file.
pub const ACTOR: &str = "rules-file";

/// Reads and validates the rules file at `path`: the rules and the bytes they were read from,
/// which the follower compares with what it reads later.
pub fn read(path: &Path) -> Result<(Rules, Vec<u8>), RulesError> {
    let bytes = std::fs::read(path).map_err(|e| RulesError {
        file: Some(path.display().to_string()),
        line: None,
        column: None,
        field: None,
        message: e.to_string(),
    })?;
    Ok((Rules::from_bytes(path, &bytes)?, bytes))
}

/// Follows the rules file at `path`, whose text `started_with` the service started with, until
/// `stop` resolves (see the module doc).
pub async fn follow(
    service: Arc<Service>,
    path: PathBuf,
    started_with: Vec<u8>,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = started_with;
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        let read = {
            let p = path.clone();
            tokio::task::spawn_blocking(move || std::fs::read(p)).await
        };
        let Ok(Ok(bytes)) = read else {
            // An editor replacing the file may leave it missing for a moment.
            continue;
        };
        if bytes == last {
            continue;
        }
        last = bytes;
        let _ = reload(&service, &path, &last).await;
    }
}

/// Puts the rules text `bytes` read from `path` in force, or keeps the rules in force and says
/// why.
pub async fn reload(service: &Arc<Service>, path: &Path, bytes: &[u8]) -> Result<(), String> {
    let shown = path.display().to_string();
    let rules = Rules::from_bytes(path, bytes).map_err(|e| e.to_string());
    let applied = match rules {
        Ok(rules) => {
            let version = rules.version().to_string();
            service
                .load_rules(rules, shown.clone(), ACTOR.to_string())
                .await
                .map(|()| version)
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    match applied {
        Ok(version) => {
            tracing::warn!(rules = %shown, version = %version, "rules changed: in force for the payments decided from now on");
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "the rules file changed but cannot be used; the rules in force stay");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tests::cases_service;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_changed_file_is_put_in_force_and_audited_and_a_bad_one_keeps_the_rules_in_force() {
        let (service, dir) = cases_service("rules-watch").await;
        let path = dir.join("rules.toml");
        let good = b"version = \"w-2\"\n[default]\noverpayment = \"on_account\"\n";
        reload(&service, &path, good).await.expect("good rules");
        assert_eq!(service.rules_version(), "w-2");
        let trail = service
            .audit_events(Some(path.display().to_string()), 0, 10)
            .await
            .expect("audit");
        assert!(
            trail
                .iter()
                .any(|e| e.record.action == "load_rules" && e.record.actor == ACTOR),
            "{trail:?}"
        );

        let bad = b"version = \"w-3\"\n[default]\noverpayment = \"refund\"\n";
        let e = reload(&service, &path, bad).await.expect_err("bad rules");
        assert!(
            e.contains("line 3") && e.contains("default.overpayment"),
            "{e}"
        );
        assert_eq!(service.rules_version(), "w-2");
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
