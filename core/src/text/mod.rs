//! What payers write, made comparable: invoice and PO references (normalised, reduced to their
//! OCR-folded core, compared, and found in free text) and payer names (normalised and compared).
//!
//! Below everything that reads or indexes what payers write: the ledger keys its indexes with
//! these functions, the matcher looks up with the same ones, so the two agree; the free-text
//! format and the advice linker find references in text with them. It uses no other module.

pub mod names;
pub mod references;
