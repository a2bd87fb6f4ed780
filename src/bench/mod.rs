//! Benchmarks that print figures: `cashmatch bench match` (engine throughput and memory on a
//! large ledger), `cashmatch bench parse` (remittance parsing throughput per format), `cashmatch
//! bench strings` and `cashmatch bench advices`. Figures go into docs/benchmarks.md; speed is
//! proved here, never by timed tests. A private module of the binary, outside the library's API;
//! the micro-benchmarks of the hot functions are in benches/ (`cargo bench`).

pub mod advices;
pub mod matching;
pub mod parse;
pub mod strings;
