//! BAI lockbox transmissions: the fixed-width file a bank sends after opening the envelopes
//! that customers mailed to a lockbox, one record per line and a record type in column 1.
//!
//! `1` immediate address header, `2` service record, `5` lockbox (detail) header with the
//! lockbox number and deposit date, `6` check detail (amount in cents, the payer's bank routing
//! and account, check number, remitter name), `4` overflow records that carry what the payer
//! wrote or enclosed (invoice numbers and amounts), `7` batch total, `8` lockbox total and `9`
//! destination trailer with the record count. Each check becomes one payment; docs/formats/
//! lockbox.md gives the column layout and the mapping.
//!
//! Banks trim trailing blanks and leave out filler, so a record may be shorter than the layout;
//! missing columns read as blank. Lockbox files are a day's checks for a few lockboxes, small
//! enough to hold, which lets totals found in a trailer become warnings on the checks they cover.

use super::bai2::{decode, yymmdd};
use super::{FormatError, Parsed, Position};
use crate::domain::{Currency, Direction, Payer, Payment, RemittanceLine};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::HashMap;

const FORMAT: &str = "lockbox";

/// Whether the first bytes look like a lockbox transmission: a `1` header whose priority,
/// origin, date and time columns are digits, followed by a `2` service record. (A NACHA file
/// also opens with `1`, but follows it with a `5` batch header and has a blank in column 4.)
pub fn looks_like(head: &[u8]) -> bool {
    let text = decode(head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head));
    let mut lines = text.lines().map(|l| l.trim_end()).filter(|l| !l.is_empty());
    let (Some(first), Some(second)) = (lines.next(), lines.next()) else {
        return false;
    };
    let digits = |from: usize, to: usize| {
        first
            .get(from..to)
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
    };
    first.starts_with('1')
        && first.len() >= 33
        && digits(1, 3)
        && digits(13, 33)
        && first.get(3..4).is_some_and(|c| c != " ")
        && second.starts_with('2')
}

/// Reads a lockbox transmission: one payment per check (`6` record).
///
/// A check that cannot be read, or an overflow record for a check that is not there, is listed
/// in [`Parsed::errors`]; batch, lockbox and file totals that do not reconcile become warnings
/// on the checks they cover. A file that does not open with a `1` header record is an `Err`.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let text = decode(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes));
    let mut st = State::new(file);
    let mut first = true;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches(['\r', '\x1a']).trim_end();
        if line.trim().is_empty() {
            continue;
        }
        let rec = Record {
            line: line_no,
            text: line,
        };
        if first {
            first = false;
            if !line.starts_with('1') {
                return Err(FormatError::new(
                    file,
                    Position::Record {
                        line: line_no,
                        from: 1,
                        to: 1,
                    },
                    format!(
                        "not a lockbox transmission: the first record is type {:?}, expected \
                         the 1 immediate address header",
                        line.chars().next().unwrap_or(' ')
                    ),
                ));
            }
        }
        st.records += 1;
        match line.as_bytes().first() {
            Some(b'1') => st.header(&rec),
            Some(b'2') => {}
            Some(b'5') => st.lockbox_header(&rec),
            Some(b'6') => st.check(&rec),
            Some(b'4') => st.overflow(&rec),
            Some(b'7') => st.batch_total(&rec),
            Some(b'8') => st.lockbox_total(&rec),
            Some(b'9') => st.trailer(&rec),
            _ => st.errors.push(rec.error(
                1,
                1,
                format!(
                    "unknown lockbox record type {:?}; the record was skipped",
                    clip(line)
                ),
            )),
        }
    }
    if first {
        return Err(FormatError::new(
            file,
            Position::File,
            "empty file: no lockbox records",
        ));
    }
    Ok(st.finish())
}

/// One physical record.
struct Record<'a> {
    line: usize,
    text: &'a str,
}

impl Record<'_> {
    /// The 1-based, inclusive column range `from..=to`; blank where the record is shorter.
    fn col(&self, from: usize, to: usize) -> &str {
        let len = self.text.len();
        let (a, b) = ((from - 1).min(len), to.min(len));
        self.text.get(a..b).unwrap_or("")
    }

    fn error(&self, from: usize, to: usize, message: String) -> FormatError {
        FormatError {
            file: String::new(),
            position: Position::Record {
                line: self.line,
                from,
                to,
            },
            message,
        }
    }

    /// A numeric column; blank reads as zero when `blank_ok`.
    fn number(
        &self,
        from: usize,
        to: usize,
        what: &str,
        blank_ok: bool,
    ) -> Result<u64, FormatError> {
        let s = self.col(from, to).trim();
        if s.is_empty() && blank_ok {
            return Ok(0);
        }
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(from, to, format!("{what} {s:?} is not a number")));
        }
        s.parse()
            .map_err(|_| self.error(from, to, format!("{what} {s:?} is too large")))
    }
}

/// A check read so far, with the batch it belongs to.
struct Check {
    lockbox: usize,
    batch: String,
    cents: u64,
    payment: Payment,
}

/// The lockbox (`5` to `8`) being read.
struct Lockbox {
    number: String,
    deposit_date: Option<NaiveDate>,
    line: usize,
}

struct State<'f> {
    file: &'f str,
    processing_date: Option<NaiveDate>,
    lockboxes: Vec<Lockbox>,
    /// Whether the last lockbox is still open (no `8` yet).
    open: bool,
    checks: Vec<Check>,
    by_item: HashMap<(usize, String, String), usize>,
    records: u64,
    /// Warnings for the checks from an index on, found in trailers.
    warnings: Vec<(Vec<usize>, String)>,
    errors: Vec<FormatError>,
    trailer_seen: bool,
}

impl<'f> State<'f> {
    fn new(file: &'f str) -> Self {
        State {
            file,
            processing_date: None,
            lockboxes: Vec::new(),
            open: false,
            checks: Vec::new(),
            by_item: HashMap::new(),
            records: 0,
            warnings: Vec::new(),
            errors: Vec::new(),
            trailer_seen: false,
        }
    }

    fn error(&mut self, mut e: FormatError) {
        e.file = self.file.to_string();
        self.errors.push(e);
    }

    fn header(&mut self, r: &Record) {
        self.processing_date = yymmdd(r.col(24, 29));
    }

    fn lockbox_header(&mut self, r: &Record) {
        self.lockboxes.push(Lockbox {
            number: r.col(8, 14).trim().to_string(),
            deposit_date: yymmdd(r.col(15, 20)),
            line: r.line,
        });
        self.open = true;
        if self
            .lockboxes
            .last()
            .is_some_and(|l| l.deposit_date.is_none())
        {
            let e = r.error(
                15,
                20,
                format!(
                    "deposit date {:?} is not YYMMDD; the checks of this lockbox take the \
                 transmission date",
                    r.col(15, 20)
                ),
            );
            self.error(e);
        }
    }

    fn check(&mut self, r: &Record) {
        if !self.open {
            // Checks outside a 5 ... 8 lockbox still go into the file's totals; give them a
            // lockbox without a number so that they are not lost.
            self.lockboxes.push(Lockbox {
                number: String::new(),
                deposit_date: None,
                line: r.line,
            });
            self.open = true;
        }
        let lockbox_index = self.lockboxes.len() - 1;
        let read = || -> Result<(String, String, u64), FormatError> {
            let batch = r.number(2, 4, "batch number", false)?;
            let item = r.number(5, 7, "item number", false)?;
            let cents = r.number(8, 17, "check amount", false)?;
            Ok((format!("{batch:03}"), format!("{item:03}"), cents))
        };
        let (batch, item, cents) = match read() {
            Ok(v) => v,
            Err(mut e) => {
                e.message = format!("6 check record: {}; the check was skipped", e.message);
                self.error(e);
                return;
            }
        };
        let lockbox = &self.lockboxes[lockbox_index];
        let date = lockbox.deposit_date.or(self.processing_date);
        let routing = r.col(18, 26).trim();
        let account = r.col(27, 36).trim();
        let payer_account = match (routing.is_empty(), account.is_empty()) {
            (_, true) => None,
            (true, false) => Some(account.to_string()),
            (false, false) => Some(format!("{routing}:{account}")),
        };
        let name = r.col(53, 82).trim();
        let date_key = date
            .map(|d| d.format("%Y%m%d").to_string())
            .unwrap_or_default();
        let payment_id = format!("{}:{date_key}:{batch}:{item}", lockbox.number);
        let mut payment = Payment {
            payment_id,
            format: FORMAT.to_string(),
            direction: Direction::Credit,
            payment_date: date,
            amount: Decimal::new(cents as i64, 2),
            currency: Currency::USD,
            payer: Payer {
                name: (!name.is_empty()).then(|| name.to_string()),
                account: payer_account,
            },
            lines: Vec::new(),
            free_text: Vec::new(),
            warnings: Vec::new(),
        };
        if cents > i64::MAX as u64 {
            payment.amount = Decimal::ZERO;
        }
        let key = (lockbox_index, batch.clone(), item.clone());
        if self.by_item.contains_key(&key) {
            payment.warnings.push(format!(
                "batch {batch} item {item} appears twice in lockbox {}; overflow records \
                 attach to the first",
                lockbox.number
            ));
            payment.payment_id = format!("{}#{}", payment.payment_id, r.line);
        } else {
            self.by_item.insert(key, self.checks.len());
        }
        self.checks.push(Check {
            lockbox: lockbox_index,
            batch,
            cents,
            payment,
        });
    }

    fn overflow(&mut self, r: &Record) {
        let key = match (
            r.number(2, 4, "batch number", false),
            r.number(5, 7, "item number", false),
        ) {
            (Ok(b), Ok(i)) => (
                self.lockboxes.len().saturating_sub(1),
                format!("{b:03}"),
                format!("{i:03}"),
            ),
            (Err(mut e), _) | (_, Err(mut e)) => {
                e.message = format!("4 overflow record: {}; the record was skipped", e.message);
                self.error(e);
                return;
            }
        };
        let Some(&index) = self.by_item.get(&key) else {
            let e = r.error(
                2,
                7,
                format!(
                    "4 overflow record for batch {} item {} follows no check with that batch and \
                 item; the record was skipped",
                    key.1, key.2
                ),
            );
            self.error(e);
            return;
        };
        let memo = r.col(12, r.text.len().max(12)).trim();
        if memo.is_empty() {
            return;
        }
        let Some(check) = self.checks.get_mut(index) else {
            return;
        };
        match structured_memo(memo) {
            Some(line) => check.payment.lines.push(line),
            None => check.payment.free_text.push(memo.to_string()),
        }
    }

    fn covered(&self, pred: impl Fn(&Check) -> bool) -> Vec<usize> {
        self.checks
            .iter()
            .enumerate()
            .filter(|(_, c)| pred(c))
            .map(|(i, _)| i)
            .collect()
    }

    fn batch_total(&mut self, r: &Record) {
        let lockbox = self.lockboxes.len().saturating_sub(1);
        let batch = match r.number(2, 4, "batch number", false) {
            Ok(b) => format!("{b:03}"),
            Err(mut e) => {
                e.message = format!("7 batch total: {}", e.message);
                self.error(e);
                return;
            }
        };
        let in_batch = |c: &Check| c.lockbox == lockbox && c.batch == batch;
        let covered = self.covered(in_batch);
        let (count, total) = (covered.len() as u64, self.sum(&covered));
        self.compare(
            r,
            covered,
            (21, 23),
            (24, 33),
            count,
            total,
            &format!("7 batch {batch} total"),
        );
    }

    fn lockbox_total(&mut self, r: &Record) {
        let lockbox = self.lockboxes.len().saturating_sub(1);
        let covered = self.covered(|c| c.lockbox == lockbox);
        let (count, total) = (covered.len() as u64, self.sum(&covered));
        let number = self
            .lockboxes
            .last()
            .map(|l| l.number.clone())
            .unwrap_or_default();
        self.compare(
            r,
            covered,
            (21, 24),
            (25, 34),
            count,
            total,
            &format!("8 lockbox {number} total"),
        );
        self.open = false;
    }

    fn trailer(&mut self, r: &Record) {
        self.trailer_seen = true;
        match r.number(2, 7, "record count", false) {
            Ok(n) if n == self.records => {}
            Ok(n) => {
                let all = (0..self.checks.len()).collect();
                self.warnings.push((
                    all,
                    format!(
                        "line {}: 9 trailer counts {n} records but the file has {}",
                        r.line, self.records
                    ),
                ));
            }
            Err(mut e) => {
                e.message = format!("9 trailer: {}", e.message);
                self.error(e);
            }
        }
    }

    fn sum(&self, covered: &[usize]) -> u128 {
        covered
            .iter()
            .filter_map(|&i| self.checks.get(i))
            .map(|c| u128::from(c.cents))
            .sum()
    }

    #[allow(clippy::too_many_arguments)]
    fn compare(
        &mut self,
        r: &Record,
        covered: Vec<usize>,
        count_cols: (usize, usize),
        total_cols: (usize, usize),
        count: u64,
        total: u128,
        what: &str,
    ) {
        let declared_count = r.number(count_cols.0, count_cols.1, "check count", true);
        let declared_total = r.number(total_cols.0, total_cols.1, "dollar total", true);
        let mut problems = Vec::new();
        match declared_count {
            Ok(n) if n == count => {}
            Ok(n) => problems.push(format!("counts {n} checks but there are {count}")),
            Err(e) => problems.push(e.message),
        }
        match declared_total {
            Ok(t) if u128::from(t) == total => {}
            Ok(t) => problems.push(format!(
                "gives {} but the checks add up to {}",
                Decimal::new(t as i64, 2),
                Decimal::from_i128_with_scale(total as i128, 2)
            )),
            Err(e) => problems.push(e.message),
        }
        for p in problems {
            self.warnings
                .push((covered.clone(), format!("line {}: {what} {p}", r.line)));
        }
    }

    fn finish(mut self) -> Parsed {
        if !self.trailer_seen {
            let all = (0..self.checks.len()).collect();
            self.warnings.push((
                all,
                "the file has no 9 trailer record; it may be truncated".into(),
            ));
        }
        if self.open {
            if let Some(l) = self.lockboxes.last() {
                let lockbox = self.lockboxes.len() - 1;
                let covered = self.covered(|c| c.lockbox == lockbox);
                let w = format!(
                    "lockbox {} (5 record at line {}) has no 8 lockbox total record",
                    l.number, l.line
                );
                self.warnings.push((covered, w));
            }
        }
        for (covered, w) in &self.warnings {
            for &i in covered {
                if let Some(c) = self.checks.get_mut(i) {
                    c.payment.warnings.push(w.clone());
                }
            }
        }
        Parsed {
            payments: self.checks.into_iter().map(|c| c.payment).collect(),
            errors: self.errors,
        }
    }
}

/// An overflow memo that is clearly a remittance item: a single reference token holding a
/// digit (`INV10023`, `CE554`), optionally followed by an amount, in cents like the rest of the
/// file (`0000012550`) or with a decimal point (`125.50`). Anything else stays free text.
fn structured_memo(memo: &str) -> Option<RemittanceLine> {
    let mut tokens = memo.split_whitespace();
    let reference = tokens.next()?;
    let amount = tokens.next();
    if tokens.next().is_some()
        || !reference.bytes().any(|b| b.is_ascii_digit())
        || !reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/.#_".contains(&b))
    {
        return None;
    }
    let amount_paid = match amount {
        None => None,
        Some(a) if a.bytes().all(|b| b.is_ascii_digit()) && a.len() <= 18 => {
            Some(Decimal::new(a.parse().ok()?, 2))
        }
        Some(a) => Some(a.parse::<Decimal>().ok()?),
    };
    Some(RemittanceLine {
        reference: Some(reference.to_string()),
        amount_paid,
        ..Default::default()
    })
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}
