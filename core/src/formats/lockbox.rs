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

use super::common::{decode, yymmdd};
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
            returned: None,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const ONE: &[u8] =
        include_bytes!("../../../fixtures/lockbox/lockbox_bai_fundersclub_one_check.bai");
    const EMPTY: &[u8] =
        include_bytes!("../../../fixtures/lockbox/lockbox_bai_fundersclub_empty.bai");

    /// A record laid out column by column, padded to the columns given.
    fn rec(parts: &[&str]) -> String {
        parts.concat()
    }

    fn file(checks: &[String], batch_total: &str, lockbox_total: &str, trailer: &str) -> String {
        let mut lines = vec![
            "100ABCDEFGHIJ00999999912401151800".to_string(),
            "2ABCDEFGHIJ0099999991000000000040008000801".to_string(),
            "50010000077777240115ABCDEFGHIJ0099999991".to_string(),
        ];
        lines.extend(checks.iter().cloned());
        lines.push(batch_total.to_string());
        lines.push(lockbox_total.to_string());
        lines.push(trailer.to_string());
        lines.join("\r\n") + "\r\n"
    }

    #[test]
    fn one_check_with_overflow_memo() {
        let p = parse(ONE, "lb.bai").unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.payments.len(), 1);
        let x = &p.payments[0];
        assert_eq!(x.payment_id, "0022222:20160523:001:001");
        assert_eq!(
            (x.direction, x.amount, x.currency),
            (Direction::Credit, dec!(7000.00), Currency::USD)
        );
        assert_eq!(x.amount.to_string(), "7000.00");
        assert_eq!(x.payment_date, NaiveDate::from_ymd_opt(2016, 5, 23));
        assert_eq!(x.payer.name.as_deref(), Some("BOB E SMITH"));
        assert_eq!(x.payer.account.as_deref(), Some("055002707:0012345555"));
        assert_eq!(x.lines.len(), 1);
        assert_eq!(x.lines[0].reference.as_deref(), Some("CE554"));
        assert_eq!(x.lines[0].amount_paid, None);
        // Batch (1 check, 7000.00), lockbox (1, 7000.00) and record count (8) reconcile.
        assert!(x.warnings.is_empty(), "{:?}", x.warnings);
    }

    #[test]
    fn empty_transmission_has_no_payments_and_no_faults() {
        let p = parse(EMPTY, "e.bai").unwrap();
        assert!(p.payments.is_empty());
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }

    #[test]
    fn detection() {
        assert!(looks_like(ONE));
        assert!(looks_like(EMPTY));
        let nacha = b"101 091000019 1234567891801010000A094101FEDERAL RESERVE BANK   MY BANK\n\
                      5200COMPANY NAME                        1234567890PPDPAYROLL\n";
        assert!(!looks_like(nacha));
        assert!(!looks_like(include_bytes!(
            "../../../fixtures/bai2/bai2_moj_citi_gbp.bai2"
        )));
    }

    #[test]
    fn overflow_invoices_totals_and_faults() {
        let check1 = rec(&[
            "6",
            "001",
            "001",
            "0000015000",
            "021000021",
            "0000123456",
            "0000001001",
            "011524",
            "ACME CORP",
        ]);
        let inv1 = rec(&["4", "001", "001", "4", "01", "0", "INV-1001 0000010000"]);
        let inv2 = rec(&["4", "001", "001", "4", "02", "9", "INV-1002 50.00"]);
        let check2 = rec(&["6", "001", "002", "0000000999", "", "", "", "", ""]);
        let memo = rec(&[
            "4",
            "001",
            "002",
            "6",
            "01",
            "9",
            "PAID WITH THANKS FOR JAN",
        ]);
        let stray = rec(&["4", "001", "009", "6", "01", "9", "LOST"]);
        let bad = rec(&["6", "001", "003", "00000X0999"]);
        // The batch total claims 3 checks and 170.00: one check was unreadable.
        let batch = rec(&["7", "001", "000", "0077777", "240115", "003", "0000017000"]);
        let lockbox = rec(&["8", "000", "000", "0077777", "240115", "0002", "0000015999"]);
        let text = file(
            &[check1, inv1, inv2, check2, memo, stray, bad],
            &batch,
            &lockbox,
            "9000099",
        );
        let p = parse(text.as_bytes(), "lb.txt").unwrap();
        assert_eq!(p.payments.len(), 2);
        let a = &p.payments[0];
        assert_eq!(a.payment_id, "0077777:20240115:001:001");
        assert_eq!(a.amount, dec!(150.00));
        assert_eq!(a.payer.name.as_deref(), Some("ACME CORP"));
        let refs: Vec<(Option<&str>, Option<Decimal>)> = a
            .lines
            .iter()
            .map(|l| (l.reference.as_deref(), l.amount_paid))
            .collect();
        assert_eq!(
            refs,
            [
                (Some("INV-1001"), Some(dec!(100.00))),
                (Some("INV-1002"), Some(dec!(50.00)))
            ]
        );
        let b = &p.payments[1];
        assert_eq!((b.amount, b.payer.account.clone()), (dec!(9.99), None));
        assert_eq!(b.free_text, ["PAID WITH THANKS FOR JAN"]);
        assert!(b.lines.is_empty());
        let w = &a.warnings;
        assert!(
            w.iter()
                .any(|w| w.contains("7 batch 001 total counts 3 checks but there are 2")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.contains("gives 170.00 but the checks add up to 159.99")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.contains("9 trailer counts 99 records but the file has 13")),
            "{w:?}"
        );
        // The lockbox total is right.
        assert!(!w.iter().any(|w| w.contains("8 lockbox")), "{w:?}");
        let errors: Vec<String> = p.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            errors[0],
            "lb.txt: line 9, positions 2-7: 4 overflow record for batch 001 item 009 follows no \
             check with that batch and item; the record was skipped"
        );
        assert_eq!(
            errors[1],
            "lb.txt: line 10, positions 8-17: 6 check record: check amount \"00000X0999\" is not \
             a number; the check was skipped"
        );
    }

    #[test]
    fn not_a_lockbox_file_is_rejected() {
        let e = parse(b"\n01,BAI2,file/\n", "x.bai").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.bai: line 2, positions 1-1: not a lockbox transmission"),
            "{e}"
        );
        assert_eq!(parse(b"  \n", "x").unwrap_err().position, Position::File);
    }

    #[test]
    fn structured_memos() {
        assert_eq!(
            structured_memo("CE554").and_then(|l| l.reference),
            Some("CE554".into())
        );
        assert_eq!(
            structured_memo("INV 1001"),
            None,
            "two words without an amount"
        );
        assert_eq!(structured_memo("THANKS"), None, "no digit");
        assert_eq!(
            structured_memo("A1 12.5").and_then(|l| l.amount_paid),
            Some(dec!(12.5))
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics(text in "([1-9][0-9 A-Z.-]{0,60}\r?\n){0,12}") {
                let _ = parse(text.as_bytes(), "p");
            }

            #[test]
            fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
                let _ = parse(&bytes, "p");
            }
        }
    }
}
