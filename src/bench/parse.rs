//! Parse throughput and memory per format: `cashmatch bench parse [--mb N]`.
//!
//! Generated payments are written as X12 820, BAI2, camt.054 and the project CSV, each about
//! N MB, into a temporary directory. Every measurement then runs in a fresh child process (this
//! same binary, told what to measure through [`CHILD_ENV`]), because a heap that earlier work
//! has grown and freed hides new allocations from the peak-RSS figure: in a fresh process the
//! growth of the peak over the resident size before parsing is what the parse itself needed.
//! Each figure is the best of three runs; the memory figure is from the first.

use anyhow::{Context, bail};
use cashmatch::domain::Payment;
use cashmatch::eval::peak_rss_mib;
use cashmatch::formats::{self, Format, bai2, camt, x12};
use cashmatch::synth::{self, SynthConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Set in a child process to `mode,format,path`: what to measure instead of the whole run.
const CHILD_ENV: &str = "CASHMATCH_BENCH_PARSE_CHILD";

const RUNS: usize = 3;

type Writer = fn(&[Payment], &mut Vec<u8>) -> std::io::Result<()>;

/// The formats cashmatch can write, so that files of any size can be made.
const WRITTEN: [(Format, Writer); 4] = [
    (Format::X12_820, |p, w| x12::write_820(p, w)),
    (Format::Bai2, |p, w| bai2::write_bai2(p, w)),
    (Format::Camt054, |p, w| camt::write_camt054(p, w)),
    (Format::Csv, |p, w| cashmatch::io::write_remittances(w, p)),
];

/// How a child reads its file.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The bytes read into memory first (not measured), then `formats::parse` into a `Parsed`.
    Memory,
    /// `formats::for_each_payment` over the file on disk, each payment dropped once counted:
    /// streamed for X12, BAI2 and CSV, read whole for the others.
    File,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Memory => "memory",
            Mode::File => "file",
        }
    }
}

/// What a child measured.
struct Figures {
    secs: f64,
    payments: usize,
    rejected: usize,
    growth_mib: Option<f64>,
}

/// Runs the benchmark and prints a Markdown table; with about `mb` MB per file.
pub fn run(mb: usize) -> anyhow::Result<()> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return child(&spec);
    }
    let target = mb.max(1) * 1_000_000;
    let t = Instant::now();
    let world = synth::generate(&SynthConfig {
        seed: 42,
        customers: 500,
        payments: 4_000,
        train_fraction: 0.0,
        ..Default::default()
    });
    let base = world.test.payments;
    let dir = std::env::temp_dir().join(format!("cashmatch-bench-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files: Vec<(Format, usize, PathBuf)> = Vec::new();
    for (format, write) in WRITTEN {
        for size in [target / 4, target] {
            let bytes = build(&base, size, write).with_context(|| format!("writing {format}"))?;
            let path = dir.join(format!("{}-{size}", format.name()));
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            files.push((format, bytes.len(), path));
        }
    }
    eprintln!(
        "generated {} payments and wrote {} files in {:.1}s (not measured)",
        base.len(),
        files.len(),
        t.elapsed().as_secs_f64()
    );

    println!("| format | read | size | MB/s | payments/s | peak RSS growth |");
    println!("|---|---|---:|---:|---:|---:|");
    let full: Vec<&(Format, usize, PathBuf)> = files.iter().skip(1).step_by(2).collect();
    let mut rows: Vec<(Mode, &(Format, usize, PathBuf))> =
        full.iter().map(|f| (Mode::Memory, *f)).collect();
    rows.extend(files.iter().map(|f| (Mode::File, f)));
    for (mode, (format, size, path)) in rows {
        let f = measure_in_child(mode, *format, path)?;
        let how = match (mode, format) {
            (Mode::Memory, _) => "in memory: `parse`",
            (Mode::File, Format::X12_820 | Format::Bai2 | Format::Csv) => {
                "file, streamed: `for_each_payment`"
            }
            (Mode::File, _) => "file, read whole: `for_each_payment`",
        };
        let growth = f
            .growth_mib
            .map_or_else(|| "n/a".to_string(), |g| format!("{g:.1} MiB"));
        println!(
            "| {format} | {how} | {:.1} MB | {:.0} | {:.0} | {growth} |",
            *size as f64 / 1e6,
            *size as f64 / 1e6 / f.secs.max(1e-9),
            f.payments as f64 / f.secs.max(1e-9),
        );
        if f.rejected > 0 {
            eprintln!("warning: {format}: {} transactions rejected", f.rejected);
        }
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(())
}

/// About `size` bytes of `format`: the base payments repeated, each copy with its own id.
fn build(base: &[Payment], size: usize, write: Writer) -> anyhow::Result<Vec<u8>> {
    let mut sample = Vec::new();
    write(base, &mut sample)?;
    let per_payment = (sample.len() / base.len().max(1)).max(1);
    let n = size / per_payment + 1;
    let payments: Vec<Payment> = (0..n)
        .filter_map(|i| {
            let mut p = base.get(i % base.len().max(1))?.clone();
            p.payment_id = format!("{}-{}", p.payment_id, i / base.len().max(1));
            Some(p)
        })
        .collect();
    let mut bytes = Vec::with_capacity(size + size / 8);
    write(&payments, &mut bytes)?;
    Ok(bytes)
}

fn measure_in_child(mode: Mode, format: Format, path: &Path) -> anyhow::Result<Figures> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let spec = format!("{},{},{}", mode.name(), format.name(), path.display());
    let out = std::process::Command::new(exe)
        .args(["bench", "parse"])
        .env(CHILD_ENV, &spec)
        .output()
        .context("running the measuring child")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "measuring {spec} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    let [secs, payments, rejected, growth] = fields.as_slice() else {
        bail!("the measuring child for {spec} printed {stdout:?}");
    };
    Ok(Figures {
        secs: secs.parse()?,
        payments: payments.parse()?,
        rejected: rejected.parse()?,
        growth_mib: growth.parse().ok(),
    })
}

/// In the child: measure one file and print `secs payments rejected growth_mib`.
fn child(spec: &str) -> anyhow::Result<()> {
    let mut parts = spec.splitn(3, ',');
    let (Some(mode), Some(format), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("{CHILD_ENV} must be mode,format,path; got {spec:?}");
    };
    let format: Format = format.parse().map_err(anyhow::Error::msg)?;
    let path = Path::new(path);
    let bytes = match mode {
        "memory" => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        _ => Vec::new(),
    };
    let name = path.display().to_string();
    let mut best = f64::MAX;
    let (mut payments, mut rejected, mut growth) = (0, 0, None);
    for run in 0..RUNS {
        let before = reset_peak_rss();
        let t = Instant::now();
        let (n, bad) = if mode == "memory" {
            let parsed = formats::parse(&bytes, &name, Some(format))?;
            let secs = t.elapsed();
            let counts = (parsed.payments.len(), parsed.errors.len());
            // Measured with the payments still held, as a caller of `parse` holds them.
            if run == 0 {
                growth = before.map(|b| peak_rss_mib() - b);
            }
            drop(parsed);
            best = best.min(secs.as_secs_f64());
            counts
        } else {
            let (mut n, mut bad) = (0, 0);
            formats::for_each_payment(path, Some(format), &mut |r| match r {
                Ok(_) => n += 1,
                Err(_) => bad += 1,
            })?;
            best = best.min(t.elapsed().as_secs_f64());
            if run == 0 {
                growth = before.map(|b| peak_rss_mib() - b);
            }
            (n, bad)
        };
        (payments, rejected) = (n, bad);
    }
    let growth = growth.map_or_else(|| "n/a".to_string(), |g| format!("{g:.2}"));
    println!("{best} {payments} {rejected} {growth}");
    Ok(())
}

/// Resets the peak resident size to the current one (Linux: `5` to `/proc/self/clear_refs`)
/// and returns the current one in MiB; `None` where that is not possible.
fn reset_peak_rss() -> Option<f64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
