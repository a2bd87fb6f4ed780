//! Following a models directory, so that a model the retraining job publishes goes live without
//! a restart.
//!
//! `cashmatch-train retrain --publish MODELS` writes `MODELS/<version>/` and then replaces
//! `MODELS/ACTIVE` (one line naming the version) by a rename, so the pointer never names a half
//! written directory. A service started with `--models-dir MODELS` reads the pointer every few
//! seconds and, when it names another directory than it did, activates that directory exactly
//! as `Models/ActivateModel` would: loaded and checked against the feature schema, swapped in
//! while requests in flight finish on the old model, recorded in the audit trail (actor
//! `models/ACTIVE`) and remembered across restarts. A version that cannot be loaded is logged
//! and the running model stays. Only a change of the pointer acts, so an administrator's
//! `ActivateModel` (a rollback, say) holds until the next publish, across restarts too.

use crate::model::artifact::active_dir;
use crate::service::Service;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the pointer is read: a file of one line, so often is cheap.
pub const POLL: Duration = Duration::from_secs(5);

/// The actor recorded for an activation made by following the pointer.
pub const ACTOR: &str = "models/ACTIVE";

/// Follows `models/ACTIVE` until `stop` resolves (see the module doc).
pub async fn follow(
    service: Arc<Service>,
    models: PathBuf,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The directory the pointer named when last read. A pointer this service already followed
    // before a restart is not followed again, so a restart does not undo an administrator's
    // `ActivateModel` since; one published while the service was down is followed.
    let mut seen = already_followed(&service, &models).await;
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        let Some(dir) = pointer(&models).await else {
            continue;
        };
        if seen.as_ref() == Some(&dir) {
            continue;
        }
        seen = Some(dir.clone());
        // Already running it: restarted after it was activated.
        if service.model_info().source == dir.display().to_string() {
            continue;
        }
        match service.activate_model(dir.clone(), ACTOR.to_string()).await {
            Ok(info) => tracing::info!(
                directory = %dir.display(),
                version = %info.version,
                "activated the model models/ACTIVE names"
            ),
            Err(e) => tracing::warn!(
                directory = %dir.display(),
                error = %e,
                "models/ACTIVE names a model that cannot be activated; the running model stays"
            ),
        }
    }
}

/// The directory `models/ACTIVE` names, read off the async threads.
async fn pointer(models: &Path) -> Option<PathBuf> {
    let models = models.to_path_buf();
    tokio::task::spawn_blocking(move || active_dir(&models))
        .await
        .ok()
        .flatten()
}

/// The directory `models/ACTIVE` names, if the audit trail shows this service activated it by
/// following the pointer.
async fn already_followed(service: &Service, models: &Path) -> Option<PathBuf> {
    let dir = pointer(models).await?;
    let trail = service
        .audit_events(Some(dir.display().to_string()), 0, 1000)
        .await
        .ok()?;
    trail.iter().any(|e| e.record.actor == ACTOR).then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::model::artifact::{ACTIVE_FILE, Model};
    use crate::service::Limits;
    use crate::store::SqliteStore;
    use std::path::Path;

    fn publish(models: &Path, version: &str, model: &Model) {
        model.save(&models.join(version), "card").expect("save");
        std::fs::write(models.join(ACTIVE_FILE), format!("{version}\n")).expect("pointer");
    }

    async fn running(service: &Service, version: &str) -> bool {
        // Up to 5 s: the follower polls every 20 ms, but a loaded CI machine can be slow.
        for _ in 0..500 {
            if service.model_info().version == version {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Follows `models` every 20 ms until the sender is used or dropped.
    fn start(
        service: &Arc<Service>,
        models: &Path,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let follower = tokio::spawn(follow(
            Arc::clone(service),
            models.to_path_buf(),
            Duration::from_millis(20),
            async {
                let _ = stop_rx.await;
            },
        ));
        (stop_tx, follower)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_published_model_goes_live_an_unusable_one_is_refused_and_a_rollback_outlasts_a_restart()
     {
        let root = std::env::temp_dir().join(format!("cashmatch-follow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let models = root.join("models");
        std::fs::create_dir_all(&models).expect("models dir");
        let store = SqliteStore::open(&root.join("data")).expect("store");
        let service = Arc::new(
            Service::open(store, None, EngineConfig::default(), Limits::default())
                .await
                .expect("service"),
        );
        let base = Model::embedded_default().expect("built-in model");
        let (stop_tx, follower) = start(&service, &models);

        let v1 = Model {
            version: "retrain-v1".into(),
            ..base.clone()
        };
        publish(&models, "v1", &v1);
        assert!(running(&service, "retrain-v1").await);
        assert_eq!(
            service.model_info().source,
            models.join("v1").display().to_string()
        );

        // A model trained on another feature schema is refused; v1 keeps deciding.
        let mut other = Model {
            version: "retrain-v2".into(),
            ..base.clone()
        };
        other.feature_names.pop();
        publish(&models, "v2", &other);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(service.model_info().version, "retrain-v1");

        let v3 = Model {
            version: "retrain-v3".into(),
            ..base.clone()
        };
        publish(&models, "v3", &v3);
        assert!(running(&service, "retrain-v3").await);
        // The swap is visible before its audit record is committed; wait for the commit.
        let mut trail = Vec::new();
        for _ in 0..500 {
            trail = service
                .audit_events(Some(models.join("v3").display().to_string()), 0, 10)
                .await
                .expect("audit");
            if !trail.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].record.actor, ACTOR);

        let _ = stop_tx.send(());
        follower.await.expect("follower stops");

        // An administrator rolls back to v1; a restart of the follower (as of the service)
        // leaves it there, since the pointer still names the v3 it already followed.
        service
            .activate_model(models.join("v1"), "ops".into())
            .await
            .expect("rollback");
        let (stop_tx, follower) = start(&service, &models);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(service.model_info().version, "retrain-v1");
        // The next publish is followed.
        let v4 = Model {
            version: "retrain-v4".into(),
            ..v3
        };
        publish(&models, "v4", &v4);
        assert!(running(&service, "retrain-v4").await);
        let _ = stop_tx.send(());
        follower.await.expect("follower stops");
        service.store().close();
        let _ = std::fs::remove_dir_all(&root);
    }
}
