//! Benchmarks that print figures: `cashmatch bench match` (engine throughput and memory on a
//! large ledger) and `cashmatch bench parse` (remittance parsing throughput per format).
//! Figures go into docs/benchmarks.md; speed is proved here, never by timed tests.

pub mod advices;
pub mod matching;
pub mod parse;
pub mod strings;

use crate::synth;

/// Ledger items per customer a first guess at the world's size starts from.
const ITEMS_PER_CUSTOMER: usize = 25;

/// A seeded world, all in one period (so the ledger the engine sees is the one its payments
/// pay), whose ledger holds at least `invoices` items: a world's items per customer depend on
/// how many payments it has, so when the first guess falls short the customers are scaled up
/// once. Deterministic for the same arguments.
pub fn world_with_ledger(
    invoices: usize,
    payments: usize,
    seed: u64,
    sizes: synth::CustomerSizes,
) -> synth::World {
    let generate = |customers: usize| {
        synth::generate(&synth::SynthConfig {
            seed,
            customers,
            payments,
            train_fraction: 0.0,
            sizes,
            ..Default::default()
        })
    };
    let guess = (invoices / ITEMS_PER_CUSTOMER).max(10);
    let world = generate(guess);
    let got = world.test.invoices.len().max(1);
    if got >= invoices {
        return world;
    }
    // 2% over, so that the second draw's own spread does not fall short again.
    let scaled = (guess as f64 * invoices as f64 / got as f64 * 1.02).ceil() as usize;
    drop(world);
    generate(scaled)
}

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
