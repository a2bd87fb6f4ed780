//! From a payment to scored candidate allocations.
//!
//! `references` and `names` normalise what payers write; `payer` finds who paid; `candidates`
//! proposes complete allocations with `amounts` explaining every difference; `features` turns
//! each candidate into the row the model scores.

pub mod amounts;
pub mod candidates;
pub mod features;
pub mod names;
pub mod payer;
pub mod references;
