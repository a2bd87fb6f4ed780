//! Benchmarks that print figures: `cashmatch bench match` (engine throughput and memory on a
//! large ledger) and `cashmatch bench parse` (remittance parsing throughput per format).
//! Figures go into docs/benchmarks.md; speed is proved here, never by timed tests.

pub mod matching;
pub mod parse;
pub mod strings;

/// Peak resident memory of this process so far, in MiB, from `/proc/self/status` (Linux); 0
/// where that is not available.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
