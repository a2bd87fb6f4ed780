//! The model core: a histogram gradient-boosted tree classifier ([`gbdt`]) scoring candidate
//! allocations, the calibration of its scores into probabilities ([`calibration`]), and the
//! choice of the auto-apply threshold with a finite-sample precision guarantee ([`threshold`]).
//!
//! Scores flow `gbdt` -> `calibration` -> `threshold`: the threshold is chosen on a labelled
//! calibration holdout and ships in the model artifact beside the trees and the calibrator.

pub mod artifact;
pub mod calibration;
pub mod gbdt;
pub mod threshold;
