//! Reading what the subcommands take (ledger, remittances in any format, advices, labels, a
//! model) with the bad rows reported and the good ones kept, and writing what they give
//! (decisions and links as JSON Lines, Markdown tables).

use anyhow::{Context, Result};
use cashmatch::domain::{Customer, Decision, Invoice, Payment};
use cashmatch::formats::{self, Format};
use cashmatch::io;
use cashmatch::ledger::Ledger;
use cashmatch::model::artifact::Model;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Prints the rows a reader rejected, with their positions, and keeps the good ones.
pub(super) fn report_bad<T>(loaded: io::Loaded<T>) -> Result<Vec<T>> {
    for e in &loaded.errors {
        eprintln!("cashmatch: skipped: {e}");
    }
    Ok(loaded.rows)
}

pub(super) fn load_model(dir: Option<&Path>) -> Result<Arc<Model>> {
    let m = match dir {
        Some(d) => Model::load(d)?,
        None => Model::embedded_default()?,
    };
    Ok(Arc::new(m))
}

pub(super) fn load_ledger(customers: Option<&Path>, invoices: &Path) -> Result<Ledger> {
    let invoices: Vec<Invoice> = report_bad(io::read_invoices(invoices)?)?;
    let customers: Vec<Customer> = match customers {
        Some(p) => report_bad(io::read_customers(p)?)?,
        // Without a customer file, the invoices' customer ids are the customers, nameless.
        None => {
            let mut ids: Vec<&str> = invoices.iter().map(|i| i.customer_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .map(|id| Customer {
                    id: id.to_string(),
                    name: String::new(),
                    parent_id: None,
                    bank_accounts: vec![],
                })
                .collect()
        }
    };
    let (ledger, errors) = Ledger::new(customers, invoices);
    for e in &errors {
        eprintln!("cashmatch: skipped: {e}");
    }
    Ok(ledger)
}

/// Reads remittances in any format (detected unless `format` is given), reporting the
/// transactions that could not be read.
pub(super) fn load_payments(path: &Path, format: Option<Format>) -> Result<Vec<Payment>> {
    let parsed = formats::parse_path(path, format)?;
    for e in &parsed.errors {
        eprintln!("cashmatch: skipped: {e}");
    }
    Ok(parsed.payments)
}

/// Reads the advices of `--advices` (files, or directories of files, in name order); `None`
/// when none were given. Files that cannot be read at all are errors; transactions that cannot
/// be read are reported and the rest go on.
pub(super) fn load_advices(paths: &[PathBuf]) -> Result<Option<Vec<Payment>>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading the directory {}", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()
                .with_context(|| format!("reading the directory {}", path.display()))?;
            files.retain(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            });
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        for f in files {
            out.extend(load_payments(&f, None)?);
        }
    }
    Ok(Some(out))
}

/// Writes one JSON object per line.
pub(super) fn write_json_lines<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    use std::io::Write;
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    for r in rows {
        serde_json::to_writer(&mut w, r).with_context(|| format!("writing {}", path.display()))?;
        w.write_all(b"\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `cashmatch parse`: each payment as one JSON object per line on stdout, as it is read; each
/// transaction that could not be read on stderr. Succeeds when the file itself could be read.
pub(super) fn parse_to_json_lines(file: &Path, format: Option<Format>) -> Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut payments, mut rejected) = (0usize, 0usize);
    let mut write_error: Option<std::io::Error> = None;
    let format = formats::for_each_payment(file, format, &mut |r| match r {
        Ok(p) if write_error.is_none() => {
            payments += 1;
            let written = serde_json::to_writer(&mut out, &p)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            write_error = written.err();
        }
        Ok(_) => {}
        Err(e) => {
            rejected += 1;
            eprintln!("cashmatch: rejected: {e}");
        }
    })?;
    if let Some(e) = write_error {
        return Err(e).context("writing to stdout");
    }
    out.flush().context("writing to stdout")?;
    eprintln!(
        "{}: {format}: {payments} payments, {rejected} rejected",
        file.display()
    );
    Ok(())
}

pub(super) fn load_cases(cases: Option<&Path>, labels: &Path) -> Result<HashMap<String, String>> {
    let path = match cases {
        Some(p) => p.to_path_buf(),
        None => {
            let beside = labels.with_file_name("cases.csv");
            if !beside.exists() {
                return Ok(HashMap::new());
            }
            beside
        }
    };
    Ok(report_bad(io::read_cases(&path)?)?.into_iter().collect())
}

/// Writes a Markdown table to `dir/name` and to stdout.
pub(super) fn write_table(dir: &Path, name: &str, table: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, table).with_context(|| format!("writing {}", path.display()))?;
    print!("{table}");
    eprintln!("written to {}", path.display());
    Ok(())
}

pub(super) fn write_decisions(path: &Path, decisions: &[Decision]) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    io::write_decisions(&mut w, decisions)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
