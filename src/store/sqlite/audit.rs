//! The audit trail as a hash chain, so that an event edited or deleted by hand in the database
//! file is detected.
//!
//! Each event stores `prev_hash`, the `hash` of the event before it, and its own `hash`: the
//! SHA-256 of its fields and `prev_hash` ([`event_hash`]). The first event's `prev_hash` is the
//! hash of the store's anchor ([`anchor_hash`]), a line written once into `settings` when the
//! chain was made: at the store's creation, or at the migration that chained a store written
//! before the chain, whose events were then chained as they stood. [`verify`] walks the chain and
//! names the first event that does not fit; [`export`] writes it for auditors as JSON Lines.
//!
//! What the chain proves: any change to an event, or the removal of one, breaks it at that event
//! (or at the next one), unless whoever changed it also recomputed every hash after it. The
//! chain itself cannot stop that: the recipe is public and the database is theirs. What stops it
//! is a witness outside the store: `audit verify` prints the head of the chain (the last event's
//! id and hash); kept elsewhere (a ticket, the auditors' files, a log shipped off the machine),
//! `audit verify --expect ID:HASH` later proves every event up to that one is unchanged.
//!
//! The hash of an event is SHA-256 over `cashmatch audit event v1` and a NUL byte, then, for each
//! of `prev_hash`, `id` (decimal), `at`, `actor`, `action`, `subject`, `before_json` and
//! `after_json` as stored, its length in bytes as 8 bytes big-endian followed by its bytes
//! (UTF-8). The anchor's hash is SHA-256 over `cashmatch audit anchor v1`, a NUL byte, the
//! anchor's length and the anchor, the same way. Hashes are written as 64 lower-case hex digits.

use super::{backend, corrupt, existing};
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::io::Write as _;
use std::path::Path;

/// The schema version whose migration chains the audit trail ([`add_chain`]).
pub(super) const AUDIT_CHAIN_VERSION: i64 = 2;

/// The `settings` key of the anchor.
const ANCHOR_KEY: &str = "audit_anchor";

/// SHA-256 of length-prefixed parts after a domain label, as hex.
fn digest(label: &str, parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0u8]);
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash the first event follows.
pub fn anchor_hash(anchor: &str) -> String {
    digest("cashmatch audit anchor v1", &[anchor.as_bytes()])
}

/// One stored event, with the columns its hash covers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChainedEvent {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub before_json: String,
    pub after_json: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an event whose fields are `e` and which follows `prev_hash`.
pub fn event_hash(prev_hash: &str, e: &ChainedEvent) -> String {
    let id = e.id.to_string();
    digest(
        "cashmatch audit event v1",
        &[
            prev_hash.as_bytes(),
            id.as_bytes(),
            e.at.as_bytes(),
            e.actor.as_bytes(),
            e.action.as_bytes(),
            e.subject.as_bytes(),
            e.before_json.as_bytes(),
            e.after_json.as_bytes(),
        ],
    )
}

/// Migration: adds the chain's columns, writes the anchor and chains the events already there, in
/// id order. Runs inside the migration's transaction.
pub(super) fn add_chain(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
         ALTER TABLE audit_events ADD COLUMN hash TEXT;",
    )
    .map_err(backend("adding the audit chain's columns"))?;
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| StoreError::Backend {
        context: "making the audit chain's anchor".into(),
        message: e.to_string(),
    })?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let existing: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))
        .map_err(backend("counting audit events"))?;
    let anchor = format!(
        "cashmatch store {nonce}: audit chain started {} over {existing} earlier events",
        crate::store::now().to_rfc3339()
    );
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)",
        params![ANCHOR_KEY, anchor],
    )
    .map_err(backend("writing the audit chain's anchor"))?;
    let mut prev = anchor_hash(&anchor);
    let mut update = conn
        .prepare("UPDATE audit_events SET prev_hash = ?1, hash = ?2 WHERE id = ?3")
        .map_err(backend("chaining audit events"))?;
    let mut after = 0;
    loop {
        let page = read_events(conn, after, PAGE)?;
        for e in &page {
            let hash = event_hash(&prev, e);
            update
                .execute(params![prev, hash, e.id])
                .map_err(backend("chaining audit events"))?;
            prev = hash;
        }
        match page.last() {
            Some(e) if page.len() == PAGE as usize => after = e.id,
            _ => return Ok(()),
        }
    }
}

/// The hash a new event follows: the last event's, or the anchor's for the first.
fn head_hash(conn: &Connection) -> Result<String, StoreError> {
    // A hash emptied by hand is followed as it is: writes go on, and `audit verify` names the
    // event.
    let last: Option<String> = conn
        .prepare_cached("SELECT COALESCE(hash, '') FROM audit_events ORDER BY id DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(backend("reading the audit chain's head"))?;
    match last {
        Some(hash) => Ok(hash),
        None => Ok(anchor_hash(&anchor(conn)?)),
    }
}

fn anchor(conn: &Connection) -> Result<String, StoreError> {
    conn.query_row(
        "SELECT value FROM settings WHERE key = ?1",
        params![ANCHOR_KEY],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend("reading the audit chain's anchor"))?
    .ok_or_else(|| {
        corrupt(
            "the audit chain",
            "the store has no anchor (settings.audit_anchor)",
        )
    })
}

/// Appends an event to the chain, in the caller's transaction.
pub(super) fn append(
    conn: &Connection,
    at: String,
    actor: &str,
    action: &str,
    subject: &str,
    before_json: String,
    after_json: String,
) -> Result<(), StoreError> {
    let prev_hash = head_hash(conn)?;
    conn.prepare_cached(
        "INSERT INTO audit_events (at, actor, action, subject, before_json, after_json, prev_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            at,
            actor,
            action,
            subject,
            before_json,
            after_json,
            prev_hash
        ])
    })
    .map_err(backend("storing an audit event"))?;
    // The id is part of what is hashed, and SQLite gives it on insert.
    let mut e = ChainedEvent {
        id: conn.last_insert_rowid(),
        at,
        actor: actor.to_string(),
        action: action.to_string(),
        subject: subject.to_string(),
        before_json,
        after_json,
        prev_hash,
        hash: String::new(),
    };
    e.hash = event_hash(&e.prev_hash, &e);
    conn.prepare_cached("UPDATE audit_events SET hash = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![e.hash, e.id]))
        .map_err(backend("chaining an audit event"))?;
    Ok(())
}

/// Events are read in pages of this many, so that a long trail is not held in memory.
const PAGE: i64 = 10_000;

/// At most `limit` events after id `after`, in id order, chain columns as stored (empty when
/// missing).
fn read_events(conn: &Connection, after: i64, limit: i64) -> Result<Vec<ChainedEvent>, StoreError> {
    let mut s = conn
        .prepare_cached(
            "SELECT id, at, actor, action, subject, before_json, after_json,
                    COALESCE(prev_hash, ''), COALESCE(hash, '')
             FROM audit_events WHERE id > ?1 ORDER BY id LIMIT ?2",
        )
        .map_err(backend("reading the audit chain"))?;
    let rows = s
        .query_map(params![after, limit], |r| {
            Ok(ChainedEvent {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                subject: r.get(4)?,
                before_json: r.get(5)?,
                after_json: r.get(6)?,
                prev_hash: r.get(7)?,
                hash: r.get(8)?,
            })
        })
        .map_err(backend("reading the audit chain"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(backend("reading the audit chain"))
}

/// Where the chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first event that does not fit.
    pub id: i64,
    pub reason: String,
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub anchor: String,
    /// Events read.
    pub events: u64,
    /// The last event's id and hash (as stored).
    pub head: Option<(i64, String)>,
    pub broken: Option<ChainBreak>,
}

/// A head of the chain seen earlier and kept outside the store: `ID:HASH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    pub id: i64,
    pub hash: String,
}

impl std::str::FromStr for Witness {
    type Err = String;

    fn from_str(s: &str) -> Result<Witness, String> {
        let (id, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not ID:HASH (what `audit verify` printed)"))?;
        let id = id
            .trim()
            .parse()
            .map_err(|e| format!("the id of {s:?}: {e}"))?;
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("the hash of {s:?} is not 64 hex digits"));
        }
        Ok(Witness { id, hash })
    }
}

/// Opens the store of `data_dir` for reading only: checking the chain changes nothing, not even
/// the schema.
fn open_read_only(data_dir: &Path) -> Result<Connection, StoreError> {
    let file = existing(data_dir)?;
    let conn = Connection::open_with_flags(
        &file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend("opening the store to read its audit trail"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend("opening the store to read its audit trail"))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend("reading the schema version"))?;
    if version < AUDIT_CHAIN_VERSION {
        return Err(StoreError::Backend {
            context: data_dir.display().to_string(),
            message: format!(
                "the store (schema version {version}) predates the audit chain: start this \
                 release on it once (`cashmatch serve`), which chains its events"
            ),
        });
    }
    Ok(conn)
}

/// What [`walk`] shows its visitor: the anchor first, then each event.
pub(in crate::store) enum Item<'a> {
    Anchor(&'a str),
    Event(&'a ChainedEvent),
}

/// Where a chain is read from: one read transaction of a store, so that the chain is seen as of
/// one instant beside a running service. The SQLite store's is here; the PostgreSQL store's is
/// `store::postgres::audit`.
pub(in crate::store) trait ChainSource {
    /// The anchor the first event follows.
    fn anchor(&mut self) -> Result<String, StoreError>;
    /// At most `limit` events after id `after`, in id order, chain columns as stored.
    fn events(&mut self, after: i64, limit: i64) -> Result<Vec<ChainedEvent>, StoreError>;
    /// The largest event id the store ever handed out, where it remembers one apart from the
    /// events (SQLite's sequence): events deleted from the end of the trail then show.
    fn issued(&mut self) -> Result<Option<i64>, StoreError>;
}

struct SqliteChain<'a>(&'a Connection);

impl ChainSource for SqliteChain<'_> {
    fn anchor(&mut self) -> Result<String, StoreError> {
        anchor(self.0)
    }

    fn events(&mut self, after: i64, limit: i64) -> Result<Vec<ChainedEvent>, StoreError> {
        read_events(self.0, after, limit)
    }

    fn issued(&mut self) -> Result<Option<i64>, StoreError> {
        self.0
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend("reading the audit events' sequence"))
    }
}

/// Walks the chain of the store in `data_dir` in one read transaction (beside a running service
/// too), calling `visit` with each event, and says where it first breaks. `expect`: a head seen
/// earlier, which must still be in the chain with the same hash.
fn walk(
    data_dir: &Path,
    expect: Option<&Witness>,
    visit: impl FnMut(Item<'_>) -> Result<(), StoreError>,
) -> Result<ChainReport, StoreError> {
    let mut conn = open_read_only(data_dir)?;
    let tx = conn
        .transaction()
        .map_err(backend("reading the audit chain"))?;
    walk_source(&mut SqliteChain(&tx), expect, visit)
}

/// [`walk`] over any store's chain.
pub(in crate::store) fn walk_source(
    src: &mut dyn ChainSource,
    expect: Option<&Witness>,
    mut visit: impl FnMut(Item<'_>) -> Result<(), StoreError>,
) -> Result<ChainReport, StoreError> {
    let anchor = src.anchor()?;
    visit(Item::Anchor(&anchor))?;
    let mut report = ChainReport {
        anchor: anchor.clone(),
        events: 0,
        head: None,
        broken: None,
    };
    let mut prev = anchor_hash(&anchor);
    let mut prev_id: Option<i64> = None;
    let mut witnessed = false;
    let mut after = 0;
    loop {
        let page = src.events(after, PAGE)?;
        for e in &page {
            visit(Item::Event(e))?;
            report.events += 1;
            report.head = Some((e.id, e.hash.clone()));
            if report.broken.is_some() {
                continue;
            }
            let reason = if e.prev_hash != prev {
                Some(match prev_id {
                    None => "it does not follow the store's anchor: an earlier event was \
                             deleted, or the anchor was changed"
                        .to_string(),
                    Some(p) => format!(
                        "it does not follow event {p}: an event between them was deleted, or \
                         event {p} was changed"
                    ),
                })
            } else if event_hash(&e.prev_hash, e) != e.hash {
                Some(
                    "its contents do not match its hash: it was changed after it was recorded"
                        .to_string(),
                )
            } else {
                expect
                    .filter(|w| w.id == e.id && w.hash != e.hash)
                    .map(|w| {
                        format!(
                            "its hash is not the {} witnessed earlier: the chain up to it was \
                             rewritten",
                            w.hash
                        )
                    })
            };
            if let Some(reason) = reason {
                report.broken = Some(ChainBreak { id: e.id, reason });
            }
            if expect.is_some_and(|w| w.id == e.id) {
                witnessed = true;
            }
            prev = e.hash.clone();
            prev_id = Some(e.id);
        }
        match page.last() {
            Some(e) if page.len() == PAGE as usize => after = e.id,
            _ => break,
        }
    }
    if report.broken.is_none() {
        // Events deleted from the end leave the chain before them whole; a sequence of issued
        // ids (SQLite's) still remembers them.
        let issued = src.issued()?;
        let last = prev_id.unwrap_or(0);
        if let Some(issued) = issued.filter(|&i| i > last) {
            report.broken = Some(ChainBreak {
                id: last + 1,
                reason: format!(
                    "events {} to {issued} were recorded and are gone: deleted from the end of \
                     the trail",
                    last + 1
                ),
            });
        }
    }
    if report.broken.is_none() {
        if let Some(w) = expect.filter(|_| !witnessed) {
            report.broken = Some(ChainBreak {
                id: w.id,
                reason: format!("event {} witnessed earlier is not in the trail", w.id),
            });
        }
    }
    Ok(report)
}

/// `cashmatch audit verify`: checks the chain of the store in `data_dir`.
pub fn verify(data_dir: &Path, expect: Option<&Witness>) -> Result<ChainReport, StoreError> {
    walk(data_dir, expect, |_| Ok(()))
}

/// `cashmatch audit export`: writes the trail of the store in `data_dir` to `out` as JSON Lines:
/// first `{"anchor": ..., "anchor_hash": ...}`, then one object per event with every column its
/// hash covers, as stored, and `prev_hash` and `hash`; an auditor can recompute the chain from
/// the file alone (see the module doc for the recipe). Written under a temporary name and
/// renamed. Returns what verifying the chain found while writing it.
pub fn export(data_dir: &Path, out: &Path) -> Result<ChainReport, StoreError> {
    export_with(out, |visit| walk(data_dir, None, visit))
}

/// Writes the trail that `walk` visits to `out` (see [`export`]).
pub(in crate::store) fn export_with(
    out: &Path,
    walk: impl FnOnce(
        &mut dyn FnMut(Item<'_>) -> Result<(), StoreError>,
    ) -> Result<ChainReport, StoreError>,
) -> Result<ChainReport, StoreError> {
    let io = |context: String| {
        move |e: std::io::Error| StoreError::Backend {
            context,
            message: e.to_string(),
        }
    };
    let partial = out.with_extension("partial");
    let file =
        std::fs::File::create(&partial).map_err(io(format!("creating {}", partial.display())))?;
    let mut w = std::io::BufWriter::new(file);
    let report = walk(&mut |item| {
        let v = match item {
            Item::Anchor(a) => serde_json::json!({ "anchor": a, "anchor_hash": anchor_hash(a) }),
            Item::Event(e) => serde_json::to_value(e)
                .map_err(|err| corrupt(format!("audit event {}", e.id), err))?,
        };
        serde_json::to_writer(&mut w, &v)
            .map_err(|e| corrupt(format!("writing {}", partial.display()), e))?;
        w.write_all(b"\n")
            .map_err(io(format!("writing {}", partial.display())))
    })?;
    let file = w
        .into_inner()
        .map_err(|e| io(format!("writing {}", partial.display()))(e.into_error()))?;
    file.sync_all()
        .map_err(io(format!("syncing {}", partial.display())))?;
    std::fs::rename(&partial, out).map_err(io(format!("renaming {}", partial.display())))?;
    Ok(report)
}
