//! The ledger through the service: bulk upserts, open-amount changes by the AR system, and the
//! ledger's view of customers and invoices as it holds them now.

use super::api::*;
use super::commit::*;
use super::{AuditRecord, Service};
use crate::domain::{Customer, Invoice};
use crate::ledger::Ledger;
use crate::store::{ActorKind, LedgerWrite, PostingKind, PostingRecord};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The journal entry for the AR system moving an invoice's open amount outside any payment: what
/// it relieved beyond what was relieved before (`relieved_before`: amount less open amount as
/// the ledger held it, zero for a new invoice). `None` when nothing moved.
fn ar_adjustment(inv: &Invoice, relieved_before: Decimal, actor: &str) -> Option<PostingRecord> {
    let delta = (inv.amount - inv.open_amount) - relieved_before;
    (!delta.is_zero()).then(|| PostingRecord {
        kind: PostingKind::ArAdjustment,
        payment_id: String::new(),
        invoice_id: Some(inv.id.clone()),
        customer_id: Some(inv.customer_id.clone()),
        currency: inv.currency,
        amount: delta,
        reason_code: None,
        actor_kind: ActorKind::ArSystem,
        actor: actor.to_string(),
        model_version: None,
        rules_version: None,
        reverses: None,
        at: crate::store::now(),
    })
}

/// Open amounts of a ledger's invoices, for the audit trail.
pub(super) fn open_amounts(ledger: &Ledger, ids: &[&str]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = ids
        .iter()
        .filter_map(|id| {
            let idx = ledger.invoice_idx(id)?;
            Some((
                id.to_string(),
                json!(ledger.invoice(idx).open_amount.to_string()),
            ))
        })
        .collect();
    serde_json::Value::Object(map)
}

impl Service {
    /// Adds or replaces customers and invoices (each with its position in the request, for
    /// rejections); what the ledger refuses is listed, the rest stored.
    pub async fn upsert(
        self: &Arc<Self>,
        customers: Vec<(u64, Customer)>,
        invoices: Vec<(u64, Invoice)>,
    ) -> Result<UpsertOutcome, ServiceError> {
        let this = Arc::clone(self);
        let (mut outcome, commit, added_for) =
            tokio::task::spawn_blocking(move || this.upsert_blocking(customers, invoices))
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Self::commit(commit).await?;
        outcome.rematched = self.rematch_waiting(&added_for).await;
        Ok(outcome)
    }

    pub(super) fn upsert_blocking(
        self: &Arc<Self>,
        customers: Vec<(u64, Customer)>,
        invoices: Vec<(u64, Invoice)>,
    ) -> Result<(UpsertOutcome, Commit, BTreeSet<String>), ServiceError> {
        let mut core = self.write()?;
        // Customers given open invoices they did not have: their waiting cash may now match.
        let mut added_for = BTreeSet::new();
        let mut outcome = UpsertOutcome::default();
        let mut write = LedgerWrite::default();
        let ledger = core.engine.ledger_mut();
        for (_, c) in customers {
            ledger.upsert_customer(c.clone());
            write.customers.push(c);
        }
        if !write.customers.is_empty() {
            ledger.link_parents();
        }
        for (index, inv) in invoices {
            let id = inv.id.clone();
            let relieved_before = ledger
                .invoice_idx(&id)
                .map(|i| {
                    let old = ledger.invoice(i);
                    old.amount - old.open_amount
                })
                .unwrap_or_default();
            let new = ledger.invoice_idx(&id).is_none();
            match ledger.upsert_invoice(inv.clone()) {
                Ok(_) => {
                    if new && !inv.open_amount.is_zero() {
                        added_for.insert(inv.customer_id.clone());
                    }
                    write
                        .postings
                        .extend(ar_adjustment(&inv, relieved_before, "ar_system"));
                    write.invoices.push(inv)
                }
                Err(e) => outcome.rejected.push(Rejected {
                    index,
                    id,
                    message: e.to_string(),
                }),
            }
        }
        outcome.accepted = (write.customers.len() + write.invoices.len()) as u64;
        core.epoch += 1;
        let commit = self.spawn_commit(self.store.write_ledger(write), |_, _| {});
        Ok((outcome, commit, added_for))
    }

    /// Sets an invoice's open amount (zero to close it), recording who and why.
    pub async fn set_open_amount(
        self: &Arc<Self>,
        invoice_id: String,
        open_amount: Decimal,
        action: &'static str,
        reason: String,
        actor: String,
    ) -> Result<Invoice, ServiceError> {
        let this = Arc::clone(self);
        let (inv, commit) = tokio::task::spawn_blocking(move || {
            this.set_open_amount_blocking(invoice_id, open_amount, action, reason, actor)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Self::commit(commit).await?;
        Ok(inv)
    }

    pub(super) fn set_open_amount_blocking(
        self: &Arc<Self>,
        invoice_id: String,
        open_amount: Decimal,
        action: &'static str,
        reason: String,
        actor: String,
    ) -> Result<(Invoice, Commit), ServiceError> {
        let mut core = self.write()?;
        let ledger = core.engine.ledger_mut();
        let idx = ledger.invoice_idx(&invoice_id).ok_or_else(|| {
            ServiceError::NotFound(format!("invoice {invoice_id} is not in the ledger"))
        })?;
        let mut inv = ledger.invoice(idx).clone();
        let before = inv.open_amount;
        let relieved_before = inv.amount - inv.open_amount;
        inv.open_amount = open_amount;
        ledger
            .upsert_invoice(inv.clone())
            .map_err(|e| ServiceError::invalid("open_amount", e.to_string()))?;
        core.epoch += 1;
        let audit = AuditRecord {
            at: crate::store::now(),
            actor,
            action: action.to_string(),
            subject: invoice_id,
            before: json!({ "open_amount": before.to_string() }),
            after: json!({ "open_amount": open_amount.to_string(), "reason": reason }),
        };
        let postings = ar_adjustment(&inv, relieved_before, &audit.actor)
            .into_iter()
            .collect();
        let write = LedgerWrite {
            customers: vec![],
            invoices: vec![inv.clone()],
            audit: Some(audit),
            postings,
        };
        Ok((
            inv,
            self.spawn_commit(self.store.write_ledger(write), |_, _| {}),
        ))
    }

    /// An invoice with its committed open amount.
    pub async fn invoice(&self, invoice_id: String) -> Result<Invoice, ServiceError> {
        self.store
            .invoice(invoice_id.clone())
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("invoice {invoice_id} is not in the ledger"))
            })
    }

    /// A customer and its open items as the ledger holds them now, oldest due first.
    pub fn customer_open_items(&self, customer_id: &str) -> Option<(Customer, Vec<Invoice>)> {
        let core = self.read();
        let ledger = core.engine.ledger();
        let c = ledger.customer_idx(customer_id)?;
        let mut open: Vec<Invoice> = ledger
            .customer_open_invoices(c)
            .iter()
            .map(|&i| ledger.invoice(i).clone())
            .filter(|i| !i.open_amount.is_zero())
            .collect();
        open.sort_by(|a, b| (a.due_date, &a.number).cmp(&(b.due_date, &b.number)));
        Some((ledger.customer(c).clone(), open))
    }

    /// Invoices as the ledger holds them now; ids it does not hold are left out.
    pub fn invoices_now<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<Invoice> {
        let core = self.read();
        let ledger = core.engine.ledger();
        ids.into_iter()
            .filter_map(|id| ledger.invoice_idx(id).map(|i| ledger.invoice(i).clone()))
            .collect()
    }

    /// A customer's name, if the ledger holds the customer.
    pub fn customer_name(&self, customer_id: &str) -> Option<String> {
        let core = self.read();
        let ledger = core.engine.ledger();
        ledger
            .customer_idx(customer_id)
            .map(|c| ledger.customer(c).name.clone())
    }
}
