//! The postings journal written to a file for ERPs that import files: `cashmatch postings`.
//! CSV with a header row, or JSON Lines (one posting an object, amounts as decimal strings), read
//! from the store a page at a time.

use super::export::ExportError;
use super::{Posting, PostingFilter, PostingRecord, Store};
use std::io::Write;
use std::path::Path;

/// Postings read from the store at a time.
const PAGE: u32 = 1_000;

/// The columns of the CSV file, in order.
pub const CSV_HEADER: [&str; 14] = [
    "sequence",
    "kind",
    "payment_id",
    "invoice_id",
    "customer_id",
    "currency",
    "amount",
    "reason_code",
    "actor_kind",
    "actor",
    "model_version",
    "rules_version",
    "reverses",
    "at",
];

/// How the file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalFormat {
    Csv,
    JsonLines,
}

impl JournalFormat {
    /// The format a file name's extension asks for: `.csv`, or `.jsonl` / `.ndjson`.
    pub fn from_path(path: &Path) -> Option<JournalFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(JournalFormat::Csv),
            "jsonl" | "ndjson" => Some(JournalFormat::JsonLines),
            _ => None,
        }
    }

    /// The format of a `--format` value.
    pub fn parse(s: &str) -> Option<JournalFormat> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Some(JournalFormat::Csv),
            "jsonl" | "json-lines" | "jsonlines" | "ndjson" => Some(JournalFormat::JsonLines),
            _ => None,
        }
    }
}

fn csv_row(p: &Posting) -> [String; 14] {
    let Posting {
        sequence,
        record:
            PostingRecord {
                kind,
                payment_id,
                invoice_id,
                customer_id,
                currency,
                amount,
                reason_code,
                actor_kind,
                actor,
                model_version,
                rules_version,
                reverses,
                at,
            },
    } = p;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        sequence.to_string(),
        kind.name().to_string(),
        payment_id.clone(),
        opt(invoice_id),
        opt(customer_id),
        currency.as_str().to_string(),
        amount.to_string(),
        opt(reason_code),
        actor_kind.name().to_string(),
        actor.clone(),
        opt(model_version),
        opt(rules_version),
        reverses.map(|r| r.to_string()).unwrap_or_default(),
        at.to_rfc3339(),
    ]
}

/// Writes every posting after sequence `after` to `out`; returns how many and the last sequence
/// written (`after` when none), which the next run passes as `after`.
pub async fn export_postings<S: Store + ?Sized>(
    store: &S,
    after: u64,
    format: JournalFormat,
    out: impl Write,
) -> Result<(u64, u64), ExportError> {
    let mut last = after;
    let mut count = 0u64;
    let mut csv = None;
    let mut lines = None;
    match format {
        JournalFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(CSV_HEADER).map_err(csv_error)?;
            csv = Some(w);
        }
        JournalFormat::JsonLines => lines = Some(std::io::BufWriter::new(out)),
    }
    loop {
        let page = store.postings(PostingFilter::All, last, PAGE).await?;
        let n = page.len();
        for p in &page {
            if let Some(w) = csv.as_mut() {
                w.write_record(csv_row(p)).map_err(csv_error)?;
            }
            if let Some(w) = lines.as_mut() {
                serde_json::to_writer(&mut *w, p).map_err(std::io::Error::other)?;
                w.write_all(b"\n")?;
            }
            last = p.sequence;
            count += 1;
        }
        if n < PAGE as usize {
            break;
        }
    }
    if let Some(mut w) = csv {
        w.flush()?;
    }
    if let Some(mut w) = lines {
        w.flush()?;
    }
    Ok((count, last))
}

fn csv_error(e: csv::Error) -> ExportError {
    ExportError::Io(std::io::Error::other(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Customer};
    use crate::store::{ActorKind, LedgerWrite, PostingKind, SqliteStore};
    use rust_decimal_macros::dec;

    fn posting(amount: rust_decimal::Decimal) -> PostingRecord {
        PostingRecord {
            kind: PostingKind::ArAdjustment,
            payment_id: String::new(),
            invoice_id: Some("I-1".into()),
            customer_id: Some("C-1".into()),
            currency: Currency::USD,
            amount,
            reason_code: None,
            actor_kind: ActorKind::ArSystem,
            actor: "erp, \"ops\"".into(),
            model_version: None,
            rules_version: None,
            reverses: None,
            at: crate::store::now(),
        }
    }

    #[test]
    fn the_journal_after_a_sequence_is_written_as_csv_and_json_lines() {
        let dir =
            std::env::temp_dir().join(format!("cashmatch-journal-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir).expect("store");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(store.write_ledger(LedgerWrite {
            customers: vec![Customer {
                id: "C-1".into(),
                name: "C".into(),
                parent_id: None,
                bank_accounts: vec![],
            }],
            invoices: vec![],
            audit: None,
            postings: vec![posting(dec!(10.10)), posting(dec!(-0.10)), posting(dec!(3))],
        }))
        .expect("write");
        let mut csv_out = Vec::new();
        let (n, last) = rt
            .block_on(export_postings(&store, 1, JournalFormat::Csv, &mut csv_out))
            .expect("csv");
        assert_eq!((n, last), (2, 3));
        let text = String::from_utf8(csv_out).expect("utf-8");
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            rows.headers().expect("header").iter().collect::<Vec<_>>(),
            CSV_HEADER
        );
        let amounts: Vec<String> = rows
            .records()
            .map(|r| r.expect("row")[6].to_string())
            .collect();
        assert_eq!(amounts, ["-0.10", "3"]);
        let mut lines_out = Vec::new();
        rt.block_on(export_postings(
            &store,
            0,
            JournalFormat::JsonLines,
            &mut lines_out,
        ))
        .expect("jsonl");
        let lines: Vec<serde_json::Value> = String::from_utf8(lines_out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["sequence"], 1);
        assert_eq!(
            lines[0]["amount"], "10.10",
            "money as decimal text, never a float"
        );
        assert_eq!(lines[0]["kind"], "ar_adjustment");
        assert_eq!(
            JournalFormat::from_path(Path::new("x.JSONL")),
            Some(JournalFormat::JsonLines)
        );
        store.close();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
