//! From a payment to scored candidate allocations.
//!
//! `payer` finds who paid; `candidates` proposes complete allocations with `amounts` explaining
//! every difference, reading references the way each customer writes them (`habits`, learnt in
//! training); `features` turns each candidate into the row the model scores; `strata` names the
//! kind of evidence a candidate rests on, which the auto-apply threshold is certified per. What
//! payers write is normalised and compared by [`crate::text`] and an invoice's terms discount
//! computed by [`crate::terms`], both below this module, so that the ledger's indexes agree with
//! the lookups made here.

pub(crate) mod amounts;
pub mod candidates;
pub mod features;
pub(crate) mod habits;
pub(crate) mod payer;
pub(crate) mod strata;

pub use habits::{ReferenceHabits, Truncation};
pub use strata::Stratum;
