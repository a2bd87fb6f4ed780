//! Third-party sample files for the format tests, read where they lie: their licences (CDDL,
//! GPL, AGPL) keep them out of the repository. `CASHMATCH_SAMPLES` names the folder; otherwise
//! `../shared/samples` beside the checkout, or two levels up for a worktree under `wt/`.
//!
//! On a developer's machine without the folder a sample test is skipped (with a note). Under CI
//! (`CI=true`) a missing sample is a failure: a test that silently passes without its input
//! would let a parser regression through while CI stays green.

use std::path::PathBuf;

/// The bytes of sample `rel` and where they were read, or `None` (with a note) when the folder
/// is absent outside CI. Panics under CI, where the samples must be present.
pub(crate) fn read(rel: &str) -> Option<(Vec<u8>, PathBuf)> {
    // The checkout is the core crate's parent.
    let checkout = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs = [
        std::env::var_os("CASHMATCH_SAMPLES").map(PathBuf::from),
        Some(checkout.join("../shared/samples")),
        Some(checkout.join("../../shared/samples")),
    ];
    for dir in dirs.into_iter().flatten() {
        let path = dir.join(rel);
        if let Ok(b) = std::fs::read(&path) {
            return Some((b, path));
        }
    }
    missing(rel, under_ci());
    None
}

/// Whether the tests run under CI, as CI systems announce it.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A missing sample: a skip with a note, or under CI a failure naming where to put it.
fn missing(rel: &str, ci: bool) {
    assert!(
        !ci,
        "sample {rel} not found under CASHMATCH_SAMPLES or ../shared/samples; under CI the \
         sample tests must run, not pass without their input"
    );
    eprintln!("note: sample {rel} not found; test skipped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_sample_is_skipped_off_ci() {
        missing("nowhere/none.txt", false);
    }

    #[test]
    #[should_panic(expected = "under CI the sample tests must run")]
    fn a_missing_sample_fails_under_ci() {
        missing("nowhere/none.txt", true);
    }
}
