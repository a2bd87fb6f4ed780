//! From a payment to scored candidate allocations.
//!
//! `references` and `names` normalise what payers write; `payer` finds who paid; `candidates`
//! proposes complete allocations with `amounts` explaining every difference, reading references
//! the way each customer writes them (`habits`, learnt in training); `features` turns each
//! candidate into the row the model scores; `strata` names the kind of evidence a candidate
//! rests on, which the auto-apply threshold is certified per.

pub mod amounts;
pub mod candidates;
pub mod features;
pub mod habits;
pub mod names;
pub mod payer;
pub mod references;
pub mod strata;
