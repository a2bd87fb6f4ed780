//! Four-eyes approvals as stored: a resolution an analyst proposed that moves more money than
//! one person may alone, waiting for a second analyst (`crate::service` decides which).
//!
//! A record of its own, in a table of its own, so that the review items, resolutions and
//! journal are stored exactly as before: an item awaiting approval is still an open review item,
//! and the resolution is written only once it is approved, through [`super::Store::resolve`].
//! A rejected request stays as a record (who, when, why) and the item is open again.

use super::{AuditRecord, Resolution};
use crate::domain::Currency;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
}

impl ApprovalState {
    /// The name stored.
    pub fn name(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalState> {
        [
            ApprovalState::Pending,
            ApprovalState::Approved,
            ApprovalState::Rejected,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// One request for a second analyst's approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Unique: the payment id and the instant of the request (a payment may be requested again
    /// after a rejection).
    pub id: String,
    pub payment_id: String,
    /// The resolution as proposed: its `analyst` asked, at its `resolved_at`. Checked again
    /// against the ledger as it is when approved.
    pub proposed: Resolution,
    pub currency: Currency,
    /// Why it needs a second analyst: each amount above the limit, in words.
    pub reasons: Vec<String>,
    /// The limit in force when it was asked.
    pub limit: Decimal,
    pub state: ApprovalState,
    /// The second analyst, once decided.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The second analyst's note (required for a rejection).
    pub decision_note: String,
}

/// An approval stored or updated, with its audit event (none when the event is the
/// resolution's own), in one transaction.
#[derive(Clone, Debug)]
pub struct ApprovalWrite {
    pub approval: Approval,
    pub audit: Option<AuditRecord>,
}
