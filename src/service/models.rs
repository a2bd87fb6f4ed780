//! The active model: what it is, and activating another while requests are in flight.

use super::api::*;
use super::commit::*;
use super::state::*;
use super::{AuditRecord, Service};
use crate::model::artifact::Model;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

impl Service {
    /// The active model.
    pub fn model_info(&self) -> ModelInfo {
        let core = self.read();
        let m = core.engine.model();
        let active = lock(&self.active).clone();
        ModelInfo {
            version: m.version.clone(),
            threshold: core.engine.threshold(),
            model_threshold: m.threshold,
            rules_version: core.engine.rules().version().to_string(),
            metrics: m.metrics.clone(),
            training_data: m.training_data.clone(),
            source: active.source,
            activated_at: active.activated_at,
        }
    }

    /// Loads a model directory and makes it active. Decisions under way finish on the old model
    /// (they hold the read lock the swap waits for); a decision made on the old model but not yet
    /// applied is made again on the new one.
    pub async fn activate_model(
        self: &Arc<Self>,
        dir: PathBuf,
        actor: String,
    ) -> Result<ModelInfo, ServiceError> {
        let model = load_model(dir.clone()).await?;
        let this = Arc::clone(self);
        let commit = tokio::task::spawn_blocking(move || this.swap_model(model, dir, actor))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Self::commit(commit).await?;
        Ok(self.model_info())
    }

    pub(super) fn swap_model(
        self: &Arc<Self>,
        model: Model,
        dir: PathBuf,
        actor: String,
    ) -> Result<Commit, ServiceError> {
        let source = dir.display().to_string();
        let mut core = self.write()?;
        let before =
            json!({ "version": core.engine.model().version, "source": lock(&self.active).source });
        let after = json!({ "version": model.version, "source": source });
        core.engine.set_model(Arc::new(model));
        core.epoch += 1;
        let at = crate::store::now();
        *lock(&self.active) = ActiveModel {
            source: source.clone(),
            activated_at: at,
        };
        let audit = AuditRecord {
            at,
            actor,
            action: "activate_model".into(),
            subject: source.clone(),
            before,
            after,
        };
        Ok(self.spawn_commit(self.store.set_active_model(source, audit), |_, _| {}))
    }
}

pub(super) async fn load_model(dir: PathBuf) -> Result<Model, ServiceError> {
    let shown = dir.display().to_string();
    tokio::task::spawn_blocking(move || Model::load(&dir))
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(|e| ServiceError::FailedPrecondition(format!("model directory {shown}: {e}")))
}
