//! What payers write, made comparable: invoice and PO references (normalised, reduced to their
//! OCR-folded core, compared, and found in free text) and payer names (normalised and compared).
//!
//! Below everything that reads or indexes what payers write: the ledger keys its indexes with
//! these functions, the matcher looks up with the same ones, so the two agree; the free-text
//! format and the advice linker find references in text with them. It uses no other module.
//!
//! `references` and `names` are the crate's; outside it, [`normalize`], [`similarity`],
//! [`edit_similarity`] and [`normalize_name`] are what the service, the benchmarks and the
//! retraining job use.

pub(crate) mod names;
pub(crate) mod references;

pub use names::normalize_name;
pub use references::{edit_similarity, normalize, similarity};
