//! The rules in force (`crate::rules`): which version decisions are made under, and putting new
//! rules in place while requests are in flight, recorded in the audit trail.

use super::api::*;
use super::commit::*;
use super::{AuditRecord, Service};
use crate::rules::Rules;
use crate::store::LedgerWrite;
use serde_json::json;
use std::sync::Arc;

impl Service {
    /// The version of the rules in force.
    pub fn rules_version(&self) -> String {
        self.read().engine.rules().version().to_string()
    }

    /// Puts `rules`, read from `source`, in force. Decisions under way finish under the old
    /// rules (they hold the read lock the swap waits for); one made under them but not yet
    /// applied is made again under the new. The audit trail records the versions before and
    /// after, where the rules came from and what they say.
    pub async fn load_rules(
        self: &Arc<Self>,
        rules: Rules,
        source: String,
        actor: String,
    ) -> Result<(), ServiceError> {
        let this = Arc::clone(self);
        let commit = tokio::task::spawn_blocking(move || this.swap_rules(rules, source, actor))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Self::commit(commit).await
    }

    fn swap_rules(
        self: &Arc<Self>,
        rules: Rules,
        source: String,
        actor: String,
    ) -> Result<Commit, ServiceError> {
        let mut core = self.write()?;
        let before = json!({ "version": core.engine.rules().version() });
        let after = json!({
            "version": rules.version(),
            "source": source,
            "summary": rules.summary(),
        });
        core.engine.set_rules(Arc::new(rules));
        core.epoch += 1;
        let audit = AuditRecord {
            at: crate::store::now(),
            actor,
            action: "load_rules".into(),
            subject: source,
            before,
            after,
        };
        // An audit event alone: a ledger write with no rows is one.
        let write = self.store.write_ledger(LedgerWrite {
            customers: Vec::new(),
            invoices: Vec::new(),
            audit: Some(audit),
            postings: Vec::new(),
        });
        Ok(self.spawn_commit(write, |_, _| {}))
    }
}
