//! Regression micro-benchmarks of the hot functions (`cargo bench`): reference similarity, each
//! format's parser on the files of fixtures/, the shipped model's prediction on generated
//! candidate rows, and candidate generation on a generated ledger. Inputs are seeded, so two
//! runs measure the same work. The end-to-end figures (`cashmatch bench match|parse|serve`) are
//! the CLI's; docs/benchmarks.md says which figure comes from where.

use cashmatch::formats::{self, Format};
use cashmatch::ledger::Ledger;
use cashmatch::matching::candidates::{self, CandidateLimits};
use cashmatch::matching::features;
use cashmatch::model::artifact::Model;
use cashmatch::text;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;

/// Seed of the generated world; the ledger and payments are the same on every run.
const SEED: u64 = 20_261_204;

/// Invoice-number cores as the matcher compares them, each with a typo, a transposition or a
/// stranger beside it (the pairs of `cashmatch bench strings`).
fn reference_pairs(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let core = format!("{}", 20_260_000_000u64 + (i as u64 * 7_919) % 1_000_000);
            let mut other = core.clone().into_bytes();
            let len = other.len();
            match i % 3 {
                0 => other.swap(len - 1, len - 2),
                1 => other[len - 3] = b'0' + ((other[len - 3] - b'0' + 1) % 10),
                _ => other.reverse(),
            }
            (core, String::from_utf8(other).unwrap_or_default())
        })
        .collect()
}

fn similarity(c: &mut Criterion) {
    let pairs = reference_pairs(1_000);
    let mut g = c.benchmark_group("reference_similarity");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("references::similarity", |b| {
        b.iter(|| {
            pairs
                .iter()
                .map(|(x, y)| text::similarity(black_box(x), black_box(y)))
                .sum::<f64>()
        })
    });
    g.bench_function("references::edit_similarity", |b| {
        b.iter(|| {
            pairs
                .iter()
                .map(|(x, y)| text::edit_similarity(black_box(x), black_box(y)))
                .sum::<f64>()
        })
    });
    g.finish();
}

/// Files by name, with their bytes.
type Files = Vec<(String, Vec<u8>)>;

/// Every fixture file of a format, read once.
fn fixture_files(dir: &str) -> Files {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect()
}

fn parsers(c: &mut Criterion) {
    let cases_csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cases/remittances.csv");
    let memo = b"Please apply $1,250.00 to INV-20260117 and INV-20260142 (less 2% discount); \
                 remaining $75.10 against PO 88123. Thanks, Acme Corp AP"
        .to_vec();
    let inputs: Vec<(Format, Files)> = vec![
        (Format::X12_820, fixture_files("x12")),
        (Format::Nacha, fixture_files("nacha")),
        (Format::Camt053, fixture_files("camt")),
        (Format::Remt001, fixture_files("remt")),
        (Format::Bai2, fixture_files("bai2")),
        (Format::Lockbox, fixture_files("lockbox")),
        (Format::Mt940, fixture_files("mt940")),
        (Format::BankCsv, fixture_files("bank_csv")),
        (
            Format::Csv,
            vec![(
                cases_csv.display().to_string(),
                std::fs::read(&cases_csv).expect("fixtures/cases/remittances.csv"),
            )],
        ),
        (Format::FreeText, vec![("memo.txt".to_string(), memo)]),
    ];
    let mut g = c.benchmark_group("parse");
    for (format, files) in &inputs {
        let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        // camt.053 and camt.054 share a reader, which tells them apart itself.
        let forced = (*format != Format::Camt053).then_some(*format);
        g.bench_function(format.name(), |b| {
            b.iter(|| {
                for (name, bytes) in files {
                    let parsed = formats::parse(black_box(bytes), name, forced);
                    black_box(parsed.map(|p| p.payments.len()).unwrap_or(0));
                }
            })
        });
    }
    g.finish();
}

/// A generated ledger of about `invoices` items with 300 of its payments, and the shipped model.
fn world(
    invoices: usize,
    sizes: cashmatch::synth::CustomerSizes,
) -> (Ledger, Vec<cashmatch::domain::Payment>, Model) {
    let world = cashmatch::synth::world_with_ledger(invoices, 300, SEED, sizes);
    let (ledger, errors) = Ledger::new(world.customers, world.test.invoices);
    assert!(
        errors.is_empty(),
        "generated ledger rejected: {}",
        errors[0]
    );
    let model = Model::embedded_default().expect("the shipped model loads");
    (ledger, world.test.payments, model)
}

fn matching(c: &mut Criterion) {
    let (ledger, payments, model) = world(10_000, cashmatch::synth::CustomerSizes::Typical);
    let limits = CandidateLimits::default();
    let mut g = c.benchmark_group("matching");
    g.sample_size(20);
    g.throughput(Throughput::Elements(payments.len() as u64));
    g.bench_function("candidates::generate", |b| {
        b.iter(|| {
            payments
                .iter()
                .map(|p| candidates::generate(&ledger, black_box(p), &model.habits, &limits))
                .map(|pc| pc.candidates.len())
                .sum::<usize>()
        })
    });
    // The rows the model scores in production: every candidate of every payment.
    let rows: Vec<Vec<f32>> = payments
        .iter()
        .flat_map(|p| {
            let pc = candidates::generate(&ledger, p, &model.habits, &limits);
            let x = features::matrix(&ledger, p, &pc);
            x.rows().into_iter().map(|r| r.to_vec()).collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !rows.is_empty(),
        "the generated payments have no candidates"
    );
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("gbdt::predict_proba_row", |b| {
        b.iter(|| {
            rows.iter()
                .map(|r| model.gbdt.predict_proba_row(black_box(r)))
                .sum::<f32>()
        })
    });
    g.finish();
}

/// Candidate generation where the payers include a key account (the heavy-tailed profile holds
/// at least one customer with 10,000 or more open items): the per-payer reads (`lookup`'s fuzzy
/// fallback, `complete_lists`) must not make these payments slow.
fn matching_key_accounts(c: &mut Criterion) {
    let (ledger, payments, model) = world(30_000, cashmatch::synth::CustomerSizes::HeavyTailed);
    let limits = CandidateLimits::default();
    let mut g = c.benchmark_group("matching_key_accounts");
    g.sample_size(20);
    g.throughput(Throughput::Elements(payments.len() as u64));
    g.bench_function("candidates::generate", |b| {
        b.iter(|| {
            payments
                .iter()
                .map(|p| candidates::generate(&ledger, black_box(p), &model.habits, &limits))
                .map(|pc| pc.candidates.len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    similarity,
    parsers,
    matching,
    matching_key_accounts
);
criterion_main!(benches);
