//! Parse throughput per format: `cashmatch bench parse`.

/// Placeholder until the benchmark is written.
pub fn run(_mb: usize) -> anyhow::Result<()> {
    Ok(())
}
