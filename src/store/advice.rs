//! Receipts and advices held by the service until they meet (docs/advices.md, "In the service"):
//! a bank receipt without remittance detail waiting for its advice, an advice waiting for its
//! money, and the links made between them.
//!
//! Records of their own, in tables of their own, so that decisions, review items and the journal
//! are stored exactly as before: a link becomes a decision of the receipt's payment id through
//! [`super::Store::record_decision`] like any payment. The item and the link are stored whole as
//! JSON beside the columns they are looked up by.

use super::AuditRecord;
use crate::domain::Payment;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Which side of a link an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldSide {
    /// Bank money without remittance detail.
    Receipt,
    /// Remittance detail without money.
    Advice,
}

impl HeldSide {
    /// The name stored.
    pub fn name(self) -> &'static str {
        match self {
            HeldSide::Receipt => "receipt",
            HeldSide::Advice => "advice",
        }
    }
}

/// Where a held item stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldState {
    /// Within its hold (or unlinked again): its counterpart may yet arrive.
    Waiting,
    /// Part of an active link.
    Linked,
    /// A receipt whose hold ended without an advice: decided on its own.
    Alone,
    /// An advice whose hold ended without money, or a receipt unlinked after it was decided: for
    /// a person.
    Review,
}

impl HeldState {
    /// The name stored.
    pub fn name(self) -> &'static str {
        match self {
            HeldState::Waiting => "waiting",
            HeldState::Linked => "linked",
            HeldState::Alone => "alone",
            HeldState::Review => "review",
        }
    }
}

/// A receipt or an advice as the service holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldItem {
    pub side: HeldSide,
    /// As received: the receipt's bank payment, or the advice as its file read.
    pub payment: Payment,
    pub received_at: DateTime<Utc>,
    /// Who sent it (the token's name, or `engine`).
    pub received_by: String,
    pub state: HeldState,
    /// The active link it is part of.
    pub link_id: Option<String>,
    /// For an item whose hold ended: the ids on the other side it could have been linked to.
    pub candidates: Vec<String>,
}

/// A link between receipts and advices: one side has exactly one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdviceLink {
    /// `link:` and the receipts' payment ids: a receipt is decided once, so it is in one link at
    /// most.
    pub id: String,
    pub receipts: Vec<String>,
    pub advices: Vec<String>,
    /// What the receipts are short of the advices: a bank fee (zero for an exact link).
    pub fee: Decimal,
    /// Why they were linked, in words: the engine's evidence, or the analyst's note.
    pub evidence: Vec<String>,
    /// `engine`, or the analyst who linked them by hand.
    pub linked_by: String,
    pub linked_at: DateTime<Utc>,
    /// Undone by an analyst: who, when and why.
    pub unlinked: Option<Unlink>,
}

/// An undone link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unlink {
    pub by: String,
    pub at: DateTime<Utc>,
    pub note: String,
}

/// Held items and links stored or updated (by side and payment id, by link id), with their audit
/// events, in one transaction.
#[derive(Clone, Debug, Default)]
pub struct AdviceWrite {
    pub items: Vec<HeldItem>,
    pub links: Vec<AdviceLink>,
    pub audit: Vec<AuditRecord>,
    /// What the store must still hold for the write to be made, checked in its transaction:
    /// otherwise nothing of it is written and it is a [`super::StoreError::Conflict`]. Several
    /// replicas on one database link from the same held items; this is what keeps an item that
    /// another replica linked (or decided alone) from being linked a second time.
    pub expect: Vec<HeldExpect>,
}

/// A held item's state as a write expects to find it stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldExpect {
    pub side: HeldSide,
    pub payment_id: String,
    /// The states it may be in; empty: it must not be stored at all (an item newly received).
    pub states: Vec<HeldState>,
}

impl HeldExpect {
    /// Whether `stored` (the state the store holds, `None` for no row) is what was expected.
    pub fn admits(&self, stored: Option<&str>) -> bool {
        match stored {
            None => self.states.is_empty(),
            Some(s) => self.states.iter().any(|e| e.name() == s),
        }
    }

    /// The refusal when it is not.
    pub fn refusal(&self, stored: Option<&str>) -> super::StoreError {
        let expected: Vec<&str> = self.states.iter().map(|s| s.name()).collect();
        super::StoreError::Conflict(format!(
            "held {} {} is {} in the store, not {}: another replica changed it first",
            self.side.name(),
            self.payment_id,
            stored.unwrap_or("absent"),
            if expected.is_empty() {
                "absent".to_string()
            } else {
                expected.join(" or ")
            }
        ))
    }
}

/// What the service restores on start: every held item (whatever its state, in the order first
/// stored) and every link.
#[derive(Clone, Debug, Default)]
pub struct AdviceBook {
    pub items: Vec<HeldItem>,
    pub links: Vec<AdviceLink>,
}
