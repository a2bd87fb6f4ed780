//! The subcommands over a service's store, a data directory or a PostgreSQL database (labels
//! and postings exported, the audit chain verified and exported), and over its API tokens.

use super::args::{StoreAt, Which};
use anyhow::{Context, Result, bail};
use cashmatch::store::Store;
use std::path::Path;

/// Opens the store `at` names, as the service would (an existing data directory only: opening
/// creates one, and a mistyped directory would read as an empty store).
fn open_store(at: &StoreAt) -> Result<Box<dyn Store>> {
    use cashmatch::store::{PgStore, SqliteStore, sqlite::existing};
    Ok(match at.which()? {
        Which::Postgres(url) => Box::new(PgStore::open(url.as_str())?),
        Which::Dir(dir) => {
            existing(dir)?;
            Box::new(
                SqliteStore::open(dir)
                    .with_context(|| format!("opening the store in {}", dir.display()))?,
            )
        }
    })
}

/// `cashmatch export-labels`: the store's labels (and payments) to files, written under a
/// temporary name and renamed, so a failed export leaves no half file to train on.
pub(super) fn export_labels(
    at: &StoreAt,
    out: &Path,
    remittances: Option<&Path>,
    settle_days: u32,
    no_auto: bool,
) -> Result<()> {
    use cashmatch::store::export::{ExportOptions, export_labels};
    use cashmatch::store::now;
    let store = open_store(at)?;
    let options = ExportOptions {
        include_auto: !no_auto,
        auto_decided_before: Some(now() - chrono::Duration::days(i64::from(settle_days))),
    };
    let tmp = |p: &Path| {
        let mut name = p.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        p.with_file_name(name)
    };
    let create = |p: &Path| {
        std::fs::File::create(p)
            .map(std::io::BufWriter::new)
            .with_context(|| format!("creating {}", p.display()))
    };
    let labels_tmp = tmp(out);
    let remittances_tmp = remittances.map(tmp);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let counts = rt.block_on(export_labels(
        store.as_ref(),
        &options,
        create(&labels_tmp)?,
        remittances_tmp.as_deref().map(create).transpose()?,
    ))?;
    store.close();
    std::fs::rename(&labels_tmp, out).with_context(|| format!("writing {}", out.display()))?;
    if let (Some(from), Some(to)) = (remittances_tmp, remittances) {
        std::fs::rename(&from, to).with_context(|| format!("writing {}", to.display()))?;
    }
    eprintln!(
        "{} label rows for {} payments ({} resolved by analysts, {} auto-applied at least {settle_days} days ago) written to {}",
        counts.rows,
        counts.analyst + counts.auto,
        counts.analyst,
        counts.auto,
        out.display()
    );
    Ok(())
}

pub(super) fn export_journal(
    at: &StoreAt,
    after: u64,
    out: &Path,
    format: Option<&str>,
) -> Result<()> {
    use cashmatch::store::journal::{JournalFormat, export_postings};
    let format = match format {
        Some(f) => {
            JournalFormat::parse(f).with_context(|| format!("--format {f}: give csv or jsonl"))?
        }
        None => JournalFormat::from_path(out).with_context(|| {
            format!(
                "--out {}: name it .csv or .jsonl, or give --format",
                out.display()
            )
        })?,
    };
    let store = open_store(at)?;
    // Written beside the target and renamed: an importer never reads half a file.
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = out.with_file_name(name);
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (count, last) = rt.block_on(export_postings(store.as_ref(), after, format, file))?;
    store.close();
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "{count} postings after sequence {after} written to {} (last sequence {last}; pass --after {last} next time)",
        out.display()
    );
    Ok(())
}

/// `cashmatch audit verify`: the chain of the store `at` names.
pub(super) fn verify_audit(
    at: &StoreAt,
    expect: Option<&cashmatch::store::sqlite::audit::Witness>,
) -> Result<cashmatch::store::sqlite::audit::ChainReport> {
    Ok(match at.which()? {
        Which::Postgres(url) => cashmatch::store::postgres::audit::verify(url, expect)?,
        Which::Dir(dir) => cashmatch::store::sqlite::audit::verify(dir, expect)?,
    })
}

/// `cashmatch audit export`: the trail of the store `at` names, to `out`.
pub(super) fn export_audit(
    at: &StoreAt,
    out: &Path,
) -> Result<cashmatch::store::sqlite::audit::ChainReport> {
    Ok(match at.which()? {
        Which::Postgres(url) => cashmatch::store::postgres::audit::export(url, out)?,
        Which::Dir(dir) => cashmatch::store::sqlite::audit::export(dir, out)?,
    })
}

/// Prints what verifying the audit chain found; an error when it is broken.
pub(super) fn audit_outcome(r: &cashmatch::store::sqlite::audit::ChainReport) -> Result<()> {
    if let Some(b) = &r.broken {
        bail!(
            "audit chain broken at event {}: {} ({} events read)",
            b.id,
            b.reason,
            r.events
        );
    }
    match &r.head {
        Some((id, hash)) => println!("audit chain intact: {} events; head {id}:{hash}", r.events),
        None => println!("audit chain intact: no events yet"),
    }
    Ok(())
}

/// `cashmatch token new`: a new token on standard output once, with the config lines that hold
/// its hash.
pub(super) fn new_token(name: &str, roles: &[cashmatch::service::auth::Role]) -> Result<()> {
    use cashmatch::service::auth::{TokenHash, new_token};
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        bail!(
            "--name must be 1 to 64 characters without control characters: it is recorded as the actor"
        );
    }
    let mut unique: Vec<String> = Vec::new();
    for r in roles.iter().map(ToString::to_string) {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    let roles = unique;
    let token = new_token().context("reading the operating system's random generator")?;
    // TOML strings, quoted and escaped by the toml crate.
    let quote = |v: &str| toml::Value::String(v.to_string()).to_string();
    println!("# The token of {name}. It is shown this once: cashmatch keeps only its hash.");
    println!("{token}");
    println!();
    println!("# Add to the service's config (a running service applies it within seconds):");
    println!("[[tokens]]");
    println!("name = {}", quote(name));
    println!("token_sha256 = \"{}\"", TokenHash::of(&token).to_hex());
    println!(
        "roles = [{}]",
        roles
            .iter()
            .map(|r| quote(r))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
