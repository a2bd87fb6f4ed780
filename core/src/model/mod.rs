//! The model core: a histogram gradient-boosted tree classifier ([`gbdt`]) scoring candidate
//! allocations, the calibration of its scores into probabilities (`calibration`), the choice of
//! the auto-apply threshold with a finite-sample precision guarantee (`threshold`, of which
//! [`labels_needed`] is public), and the envelope of the training rows that keeps the engine
//! from auto-applying what the model never saw ([`Envelope`]).
//!
//! Scores flow `gbdt` -> `calibration` -> `threshold`: the calibration and the per-stratum
//! thresholds are chosen on two later, disjoint slices of labelled history and ship in the
//! model artifact beside the trees and the envelope.

pub mod artifact;
pub(crate) mod calibration;
pub(crate) mod envelope;
pub mod gbdt;
pub(crate) mod threshold;

pub use envelope::Envelope;
pub use threshold::labels_needed;
