//! `cashmatch backup`: a consistent copy of a running store into a new data directory.

use super::{DB_FILE, backend, corrupt, existing};
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags, params};
use std::path::{Path, PathBuf};

/// What [`backup`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    /// The backup's database file.
    pub file: PathBuf,
    pub bytes: u64,
    pub invoices: u64,
    pub decisions: u64,
    pub open_reviews: u64,
}

/// Copies the store in `data_dir` into `out`, a new data directory that `cashmatch serve
/// --data-dir OUT` can start from. The copy is one consistent snapshot (`VACUUM INTO` in a read
/// transaction), taken beside a running service without stopping its writes: what was committed
/// before the snapshot began is in it, what came after is not. It is written under a temporary
/// name, checked (`quick_check`), and only then renamed into place, so a backup that exists is
/// whole. `out` must not exist yet or be empty.
pub fn backup(data_dir: &Path, out: &Path) -> Result<BackupSummary, StoreError> {
    let fail = |context: String| {
        move |e: std::io::Error| StoreError::Backend {
            context,
            message: e.to_string(),
        }
    };
    let source = existing(data_dir)?;
    if out.exists() {
        let mut entries =
            std::fs::read_dir(out).map_err(fail(format!("reading {}", out.display())))?;
        if entries.next().is_some() {
            return Err(StoreError::Backend {
                context: format!("backing up into {}", out.display()),
                message: "the directory is not empty; a backup never overwrites".into(),
            });
        }
    }
    std::fs::create_dir_all(out).map_err(fail(format!("creating {}", out.display())))?;
    let file = out.join(DB_FILE);
    let partial = out.join(format!("{DB_FILE}.partial"));
    let _ = std::fs::remove_file(&partial);
    let conn = Connection::open_with_flags(
        &source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend("opening the store to back it up"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend("setting up the backup"))?;
    let target = partial.to_str().ok_or_else(|| StoreError::Backend {
        context: format!("backing up into {}", out.display()),
        message: "the path is not UTF-8".into(),
    })?;
    conn.execute("VACUUM INTO ?1", params![target])
        .map_err(backend("copying the store"))?;
    drop(conn);
    let copy = Connection::open(&partial).map_err(backend("opening the copy"))?;
    let check: String = copy
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(backend("checking the copy"))?;
    if check != "ok" {
        return Err(corrupt("backup copy", check));
    }
    let count = |sql: &str| -> Result<u64, StoreError> {
        copy.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(backend("counting the copy's rows"))
    };
    let invoices = count("SELECT COUNT(*) FROM invoices")?;
    let decisions = count("SELECT COUNT(*) FROM decisions")?;
    let open_reviews = count("SELECT COUNT(*) FROM review_items WHERE state = 'open'")?;
    drop(copy);
    std::fs::rename(&partial, &file).map_err(fail(format!("renaming {}", partial.display())))?;
    // The rename is only durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(out) {
        let _ = d.sync_all();
    }
    let bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
    Ok(BackupSummary {
        file,
        bytes,
        invoices,
        decisions,
        open_reviews,
    })
}
