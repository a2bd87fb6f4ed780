//! NACHA ACH files: file header (1), batch header (5), entry detail (6), addenda (7), batch
//! control (8), file control (9), each a 94-character record.
//!
//! Every entry becomes one payment, keyed by its trace number. CCD+ (and PPD+) addenda carry
//! one 80-character payment-related field that is either X12-style segments (`RMR*IV*...\`) or
//! free text; CTX entries carry up to 9,999 addenda whose fields concatenate into a full X12 820
//! interchange, which [`super::x12`] reads for the remittance lines and the payer.
//!
//! Real files bend the layout: records not padded to 94 characters, CR LF line ends, no final
//! line end, UTF-8 multi-byte characters that make a record longer than 94 bytes, 9-filled
//! padding records, and control records whose counts and totals do not agree. Records are read
//! by character, so a UTF-8 `¦` is one position as in Latin-1; the layout faults and control
//! mismatches become warnings on the payments they concern. The field mapping is documented in
//! `docs/formats/nacha.md`.

use super::x12::{self, Elements};
use crate::domain::{
    Adjustment, Currency, Direction, Payer, Payment, ReferenceKind, RemittanceLine, ReturnedItem,
};
use crate::formats::{FormatError, Parsed, Position};
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// The name this module gives in `Payment::format`.
const FORMAT: &str = "nacha";
const RECORD: usize = 94;

/// Whether the first bytes of a file look like a NACHA ACH file: a file header record.
pub fn looks_like(head: &[u8]) -> bool {
    let h = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first = h.split(|&b| b == b'\n').next().unwrap_or_default();
    let digits = |r: std::ops::Range<usize>| {
        first
            .get(r)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    if first.first() != Some(&b'1') || !digits(1..3) {
        return false;
    }
    // The record size field, or failing that a batch header on the next line.
    let sized = first.get(34..37) == Some(b"094".as_slice());
    let batch_next = h
        .split(|&b| b == b'\n')
        .nth(1)
        .is_some_and(|l| l.first() == Some(&b'5'));
    sized || batch_next
}

/// One physical record, decoded to characters so that positions count characters.
struct Record {
    line: usize,
    chars: Vec<char>,
}

impl Record {
    /// The 1-based inclusive character range, as the NACHA layouts number positions; short
    /// records read as if padded with spaces.
    fn raw(&self, from: usize, to: usize) -> String {
        (from..=to)
            .map(|i| self.chars.get(i - 1).copied().unwrap_or(' '))
            .collect()
    }

    fn field(&self, from: usize, to: usize) -> String {
        self.raw(from, to).trim().to_string()
    }

    fn kind(&self) -> char {
        self.chars.first().copied().unwrap_or(' ')
    }

    fn position(&self, from: usize, to: usize) -> Position {
        Position::Record {
            line: self.line,
            from,
            to,
        }
    }

    /// A numeric field; `None` when it holds anything but digits (spaces around them allowed).
    fn number(&self, from: usize, to: usize) -> Option<u64> {
        let f = self.field(from, to);
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        f.parse().ok()
    }
}

/// Splits the file into records. Valid UTF-8 is read as characters; anything else as Latin-1,
/// the encoding of the non-ASCII bytes that do turn up in ACH files.
fn records(bytes: &[u8]) -> Vec<Record> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let chars: Vec<char> = match std::str::from_utf8(bytes) {
        Ok(s) => s.chars().collect(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    };
    let mut lines: Vec<Vec<char>> = chars
        .split(|&c| c == '\n')
        .map(|l| l.strip_suffix(&['\r']).unwrap_or(l).to_vec())
        .collect();
    // Some systems write the records back to back with no line ends at all.
    if lines.len() == 1 && chars.len() >= 2 * RECORD {
        lines = chars.chunks(RECORD).map(<[char]>::to_vec).collect();
    }
    lines
        .into_iter()
        .enumerate()
        .filter(|(_, l)| l.iter().any(|c| !c.is_whitespace()))
        .map(|(i, chars)| Record { line: i + 1, chars })
        .collect()
}

fn is_padding(r: &Record) -> bool {
    r.chars.iter().all(|&c| c == '9')
}

fn cents(c: u64) -> Decimal {
    // Ten digits of cents always fit.
    Decimal::new(i64::try_from(c).unwrap_or(i64::MAX), 2)
}

/// YYMMDD as the batch header's effective entry date holds it.
fn yymmdd(s: &str) -> Option<NaiveDate> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(&format!("20{s}"), "%Y%m%d").ok()
}

/// Whether a transaction code moves money to the receiver (credit) or from it (debit), and
/// what else the code says about the entry.
fn transaction_code(code: &str) -> Option<(Direction, Option<&'static str>)> {
    let &[account, kind] = code.as_bytes() else {
        return None;
    };
    if !(b'2'..=b'5').contains(&account) {
        return None;
    }
    let direction = match kind {
        b'1'..=b'4' => Direction::Credit,
        b'5'..=b'9' => Direction::Debit,
        _ => return None,
    };
    let note = match kind {
        b'1' | b'6' => Some("automated return or notification of change"),
        b'3' | b'8' => Some("prenotification: no funds move"),
        b'4' | b'9' => Some("zero-dollar entry carrying remittance data"),
        _ => None,
    };
    Some((direction, note))
}

struct BatchHeader {
    company_name: String,
    company_id: String,
    sec: String,
    service_class: String,
    batch_number: String,
    effective_date: Option<NaiveDate>,
}

#[derive(Default)]
struct Totals {
    records: u64,
    hash: u64,
    debit: u64,
    credit: u64,
}

struct Batch {
    header: BatchHeader,
    line: usize,
    first_payment: usize,
    totals: Totals,
    warnings: Vec<String>,
    unsupported: bool,
}

struct Entry {
    line: usize,
    payment: Payment,
    /// The embedded identification or individual id, offered as free text.
    identification: Option<String>,
    addenda_flag: bool,
    declared_addenda: Option<usize>,
    addenda: Vec<Record>,
    trace: String,
}

/// The state of one file (a concatenation of files is read one after the other).
struct FileState {
    first_payment: usize,
    warnings: Vec<String>,
    batches: u64,
    totals: Totals,
    physical_records: u64,
    control_seen: bool,
    /// Checked at the end, once the padding records after the file control have been counted.
    declared_blocks: Option<u64>,
}

struct Reader<'f> {
    file: &'f str,
    parsed: Parsed,
    state: Option<FileState>,
    batch: Option<Batch>,
    entry: Option<Entry>,
    /// Addenda of an entry that could not be read are skipped without more errors.
    skip_addenda: bool,
}

/// Reads a NACHA ACH file held in memory.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let records = records(bytes);
    let Some(first) = records.first() else {
        return Err(FormatError::new(
            file,
            Position::File,
            "empty file: no NACHA records",
        ));
    };
    if first.kind() != '1' {
        return Err(FormatError::new(
            file,
            first.position(1, 1),
            format!(
                "not a NACHA file: the first record is of type {:?}, expected a file header (1)",
                first.kind()
            ),
        ));
    }
    let mut reader = Reader {
        file,
        parsed: Parsed::default(),
        state: None,
        batch: None,
        entry: None,
        skip_addenda: false,
    };
    for r in records {
        reader.record(r);
    }
    reader.end_file();
    Ok(reader.parsed)
}

impl Reader<'_> {
    fn error(&mut self, r: &Record, from: usize, to: usize, message: String) {
        self.parsed
            .errors
            .push(FormatError::new(self.file, r.position(from, to), message));
    }

    fn record(&mut self, r: Record) {
        if r.kind() != '1' {
            if let Some(s) = &mut self.state {
                s.physical_records += 1;
            }
        }
        if is_padding(&r) {
            return;
        }
        if r.kind() != '1' && self.state.as_ref().is_some_and(|s| s.control_seen) {
            let w = format!("line {}: a record after the file control record", r.line);
            self.warn_scope(w);
        }
        let extra: String = r.chars.iter().skip(RECORD).collect();
        if !extra.trim().is_empty() {
            let w = format!(
                "line {}: record is {} characters long, expected {RECORD}; the rest is ignored",
                r.line,
                r.chars.len()
            );
            self.warn_scope(w);
        }
        match r.kind() {
            '1' => self.file_header(r),
            '5' => self.batch_header(r),
            '6' => self.entry(r),
            '7' => self.addenda(r),
            '8' => self.batch_control(r),
            '9' => self.file_control(r),
            other => {
                let m = format!("unknown record type {other:?}; the record is skipped");
                self.error(&r, 1, 1, m);
            }
        }
    }

    /// A warning about the innermost open scope: the batch if one is open, else the file.
    fn warn_scope(&mut self, w: String) {
        if let Some(b) = &mut self.batch {
            b.warnings.push(w);
        } else if let Some(s) = &mut self.state {
            s.warnings.push(w);
        }
    }

    fn file_header(&mut self, r: Record) {
        if self.state.is_some() {
            self.end_file();
        }
        let mut warnings = Vec::new();
        let format_code = r.raw(40, 40);
        if format_code != "1" {
            warnings.push(format!(
                "file header format code (position 40) is {format_code:?}, expected \"1\": the \
                 file does not follow the NACHA layout it claims"
            ));
        }
        let size = r.raw(35, 37);
        if size != "094" {
            warnings.push(format!(
                "file header record size (positions 35-37) is {size:?}, expected \"094\""
            ));
        }
        let blocking = r.raw(38, 39);
        if blocking != "10" {
            warnings.push(format!(
                "file header blocking factor (positions 38-39) is {blocking:?}, expected \"10\""
            ));
        }
        self.state = Some(FileState {
            first_payment: self.parsed.payments.len(),
            warnings,
            batches: 0,
            totals: Totals::default(),
            physical_records: 1,
            control_seen: false,
            declared_blocks: None,
        });
        self.skip_addenda = false;
    }

    fn batch_header(&mut self, r: Record) {
        if self.batch.is_some() {
            self.end_batch(Some("the batch has no batch control record (8)".into()));
        }
        let sec = r.field(51, 53);
        let effective = r.raw(70, 75);
        let effective_date = yymmdd(&effective);
        let mut warnings = Vec::new();
        if effective_date.is_none() {
            warnings.push(format!(
                "batch header effective entry date (positions 70-75) is {effective:?}, not YYMMDD"
            ));
        }
        let unsupported = sec == "IAT";
        if unsupported {
            let m = "IAT (international) batches have a different entry layout and are not read; \
                     the batch is skipped"
                .to_string();
            self.error(&r, 51, 53, m);
        }
        if let Some(s) = &mut self.state {
            s.batches += 1;
        }
        self.batch = Some(Batch {
            header: BatchHeader {
                company_name: r.field(5, 20),
                company_id: r.field(41, 50),
                sec,
                service_class: r.field(2, 4),
                batch_number: r.field(88, 94),
                effective_date,
            },
            line: r.line,
            first_payment: self.parsed.payments.len(),
            totals: Totals::default(),
            warnings,
            unsupported,
        });
    }

    fn entry(&mut self, r: Record) {
        self.end_entry();
        self.skip_addenda = true;
        let Some(batch) = &mut self.batch else {
            self.error(&r, 1, 1, "entry detail record (6) outside a batch".into());
            return;
        };
        batch.totals.records += 1;
        if batch.unsupported {
            return;
        }
        match r.number(4, 11) {
            Some(h) => batch.totals.hash += h,
            None => batch.warnings.push(format!(
                "line {}: receiving DFI identification (positions 4-11) {:?} is not numeric",
                r.line,
                r.raw(4, 11)
            )),
        }
        let code = r.raw(2, 3);
        let Some((direction, note)) = transaction_code(&code) else {
            let m = format!("unknown transaction code {code:?}; the entry is skipped");
            self.error(&r, 2, 3, m);
            return;
        };
        let Some(amount) = r.number(30, 39) else {
            let m = format!(
                "entry amount (positions 30-39) {:?} is not a number of cents",
                r.raw(30, 39)
            );
            self.error(&r, 30, 39, m);
            return;
        };
        match direction {
            Direction::Credit => batch.totals.credit += amount,
            Direction::Debit => batch.totals.debit += amount,
        }
        let is_ctx = batch.header.sec == "CTX";
        let (name, declared_addenda) = if is_ctx {
            (r.field(59, 74), r.number(55, 58).map(|n| n as usize))
        } else {
            (r.field(55, 76), None)
        };
        let trace = r.field(80, 94);
        let mut warnings = Vec::new();
        if let Some(n) = note {
            warnings.push(format!("transaction code {code}: {n}"));
        }
        let class = batch.header.service_class.as_str();
        if (class == "220" && direction == Direction::Debit)
            || (class == "225" && direction == Direction::Credit)
        {
            warnings.push(format!(
                "transaction code {code} does not belong in a batch of service class {class}"
            ));
        }
        let payer = match direction {
            // The originator pays a credit: an ACH file names it but does not carry its account,
            // so its ACH company identification stands in for one.
            Direction::Credit => Payer {
                name: Some(batch.header.company_name.clone()).filter(|s| !s.is_empty()),
                account: Some(batch.header.company_id.clone()).filter(|s| !s.is_empty()),
            },
            // A debit takes the money from the receiver's account.
            Direction::Debit => {
                let account = r.field(13, 29);
                let routing = r.field(4, 12);
                Payer {
                    name: Some(name).filter(|s| !s.is_empty()),
                    account: (!account.is_empty()).then(|| format!("{routing}:{account}")),
                }
            }
        };
        let payment_id = if trace.is_empty() {
            let id = format!("{}/{}", batch.header.batch_number, r.line);
            warnings.push(format!(
                "no trace number: payment_id {id:?} made of batch number and line"
            ));
            id
        } else {
            trace.clone()
        };
        let identification = Some(r.field(40, 54)).filter(|s| !s.is_empty());
        self.entry = Some(Entry {
            line: r.line,
            payment: Payment {
                payment_id,
                format: FORMAT.to_string(),
                direction,
                payment_date: batch.header.effective_date,
                amount: cents(amount),
                currency: Currency::USD,
                payer,
                lines: Vec::new(),
                free_text: Vec::new(),
                warnings,
                returned: None,
            },
            identification,
            addenda_flag: r.raw(79, 79) == "1",
            declared_addenda,
            addenda: Vec::new(),
            trace,
        });
        self.skip_addenda = false;
    }

    fn addenda(&mut self, r: Record) {
        if let Some(b) = &mut self.batch {
            b.totals.records += 1;
        }
        match &mut self.entry {
            Some(e) => e.addenda.push(r),
            None if self.skip_addenda => {}
            None => self.error(
                &r,
                1,
                1,
                "addenda record (7) without an entry before it".into(),
            ),
        }
    }

    fn batch_control(&mut self, r: Record) {
        self.end_entry();
        let Some(batch) = &mut self.batch else {
            self.error(
                &r,
                1,
                1,
                "batch control record (8) without a batch header".into(),
            );
            return;
        };
        let t = &batch.totals;
        let mut w = Vec::new();
        let mut check = |what: &str, from: usize, to: usize, actual: u64, modulo: Option<u64>| {
            let actual = modulo.map_or(actual, |m| actual % m);
            match r.number(from, to) {
                Some(n) if n == actual => {}
                Some(n) => w.push(format!(
                    "batch control {what} (positions {from}-{to}) is {n}, the batch adds up to {actual}"
                )),
                None => w.push(format!(
                    "batch control {what} (positions {from}-{to}) {:?} is not a number",
                    r.raw(from, to)
                )),
            }
        };
        if !batch.unsupported {
            check("entry/addenda count", 5, 10, t.records, None);
            check("entry hash", 11, 20, t.hash, Some(10_000_000_000));
            check("total debit amount", 21, 32, t.debit, None);
            check("total credit amount", 33, 44, t.credit, None);
        }
        let number = r.field(88, 94);
        if number != batch.header.batch_number {
            w.push(format!(
                "batch control batch number {number:?} differs from the batch header's {:?}",
                batch.header.batch_number
            ));
        }
        batch.warnings.extend(w);
        self.end_batch(None);
    }

    fn file_control(&mut self, r: Record) {
        self.end_entry();
        if self.batch.is_some() {
            self.end_batch(Some("the batch has no batch control record (8)".into()));
        }
        let Some(state) = &mut self.state else {
            self.error(
                &r,
                1,
                1,
                "file control record (9) without a file header".into(),
            );
            return;
        };
        state.control_seen = true;
        state.declared_blocks = r.number(8, 13);
        let t = &state.totals;
        let mut w = Vec::new();
        let mut check = |what: &str, from: usize, to: usize, actual: u64| match r.number(from, to) {
            Some(n) if n == actual => {}
            Some(n) => w.push(format!(
                "file control {what} (positions {from}-{to}) is {n}, the file adds up to {actual}"
            )),
            None => w.push(format!(
                "file control {what} (positions {from}-{to}) {:?} is not a number",
                r.raw(from, to)
            )),
        };
        check("batch count", 2, 7, state.batches);
        check("entry/addenda count", 14, 21, t.records);
        check("entry hash", 22, 31, t.hash % 10_000_000_000);
        check("total debit amount", 32, 43, t.debit);
        check("total credit amount", 44, 55, t.credit);
        state.warnings.extend(w);
    }

    /// Reads the addenda of the entry in hand and files its payment.
    fn end_entry(&mut self) {
        let Some(mut e) = self.entry.take() else {
            return;
        };
        let p = &mut e.payment;
        if let Some(id) = e.identification.take() {
            p.free_text.push(id);
        }
        if e.addenda_flag == e.addenda.is_empty() {
            p.warnings.push(format!(
                "addenda record indicator (position 79) says {}, the entry has {} addenda",
                if e.addenda_flag {
                    "addenda follow"
                } else {
                    "no addenda"
                },
                e.addenda.len()
            ));
        }
        if let Some(n) = e.declared_addenda {
            if n != e.addenda.len() {
                p.warnings.push(format!(
                    "CTX number of addenda records (positions 55-58) is {n}, the entry has {}",
                    e.addenda.len()
                ));
            }
        }
        let entry_seq = e.trace.chars().rev().take(7).collect::<Vec<_>>();
        let entry_seq: String = entry_seq.into_iter().rev().collect();
        let mut payment_info: Vec<String> = Vec::new();
        for (i, a) in e.addenda.iter().enumerate() {
            let kind = a.raw(2, 3);
            match kind.as_str() {
                "05" => {
                    let seq = a.number(84, 87);
                    if seq != Some(i as u64 + 1) {
                        p.warnings.push(format!(
                            "line {}: addenda sequence number {:?}, expected {}",
                            a.line,
                            a.raw(84, 87),
                            i + 1
                        ));
                    }
                    if a.field(88, 94) != entry_seq {
                        p.warnings.push(format!(
                            "line {}: addenda entry sequence number {:?} is not the trace number's {entry_seq:?}",
                            a.line,
                            a.raw(88, 94)
                        ));
                    }
                    payment_info.push(a.raw(4, 83));
                }
                // The return addenda: reason code (4-6), the original entry's trace number
                // (7-21), date of death (22-27), the original receiving DFI (28-35) and text
                // (36-79).
                "99" => {
                    let code = a.field(4, 6);
                    let original = a.field(7, 21);
                    let text = a.field(36, 79);
                    if !code.starts_with('R') {
                        p.warnings.push(format!(
                            "line {}: return reason code (positions 4-6) {code:?} is not an R-code",
                            a.line
                        ));
                    }
                    p.warnings.push(format!(
                        "returned entry: return reason {code} (original trace {original})"
                    ));
                    p.returned = Some(ReturnedItem {
                        reason: return_reason(&code)
                            .map(str::to_string)
                            .or_else(|| (!text.is_empty()).then_some(text)),
                        return_code: code,
                        original_trace: (!original.is_empty()).then_some(original),
                    });
                }
                "98" => p.warnings.push(format!(
                    "notification of change: code {} (corrected data {:?})",
                    a.field(4, 6),
                    a.field(36, 64)
                )),
                "02" => p.free_text.push(a.field(4, 83)),
                other => p.warnings.push(format!(
                    "line {}: addenda type {other:?} is not read",
                    a.line
                )),
            }
        }
        remittance(p, &payment_info, self.file, e.line);
        self.parsed.payments.push(e.payment);
    }

    fn end_batch(&mut self, missing_control: Option<String>) {
        self.end_entry();
        let Some(mut batch) = self.batch.take() else {
            return;
        };
        if let Some(m) = missing_control {
            batch.warnings.push(m);
        }
        let line = batch.line;
        for p in self.parsed.payments.iter_mut().skip(batch.first_payment) {
            p.warnings.extend(
                batch
                    .warnings
                    .iter()
                    .map(|w| format!("batch at line {line}: {w}")),
            );
        }
        if let Some(s) = &mut self.state {
            s.totals.records += batch.totals.records;
            s.totals.hash += batch.totals.hash;
            s.totals.debit += batch.totals.debit;
            s.totals.credit += batch.totals.credit;
        }
    }

    fn end_file(&mut self) {
        self.end_batch(Some("the batch has no batch control record (8)".into()));
        let Some(mut state) = self.state.take() else {
            return;
        };
        if !state.control_seen {
            state
                .warnings
                .push("the file has no file control record (9)".into());
        } else {
            let blocks = state.physical_records.div_ceil(10);
            if state.declared_blocks != Some(blocks) {
                state.warnings.push(format!(
                    "file control block count (positions 8-13) is {}, the file has {} records \
                     in {blocks} blocks of 10",
                    state
                        .declared_blocks
                        .map_or("not a number".into(), |b| b.to_string()),
                    state.physical_records
                ));
            }
        }
        for p in self.parsed.payments.iter_mut().skip(state.first_payment) {
            p.warnings.extend(state.warnings.iter().cloned());
        }
    }
}

/// What the common NACHA return reason codes mean (the Operating Rules' table of return reason
/// codes); an unlisted code is kept as given, without a description.
pub(crate) fn return_reason(code: &str) -> Option<&'static str> {
    Some(match code {
        "R01" => "insufficient funds",
        "R02" => "account closed",
        "R03" => "no account / unable to locate account",
        "R04" => "invalid account number",
        "R05" => "unauthorized debit to consumer account using corporate SEC code",
        "R06" => "returned per ODFI's request",
        "R07" => "authorization revoked by customer",
        "R08" => "payment stopped",
        "R09" => "uncollected funds",
        "R10" => "customer advises not authorized",
        "R11" => "customer advises entry not in accordance with the terms of the authorization",
        "R12" => "account sold to another DFI",
        "R13" => "invalid ACH routing number",
        "R14" => "representative payee deceased",
        "R15" => "beneficiary or account holder deceased",
        "R16" => "account frozen",
        "R17" => "file record edit criteria",
        "R20" => "non-transaction account",
        "R23" => "credit entry refused by receiver",
        "R24" => "duplicate entry",
        "R29" => "corporate customer advises not authorized",
        "R31" => "permissible return entry",
        _ => return None,
    })
}

/// Reads the payment-related information of an entry's 705 addenda into the payment: a full
/// X12 820 (CTX), X12-style segments (`RMR*IV*...\`), or free text.
fn remittance(p: &mut Payment, info: &[String], file: &str, line: usize) {
    if info.is_empty() {
        return;
    }
    let joined: String = info.concat();
    let trimmed = joined.trim();
    if trimmed.starts_with("ISA") {
        embedded_820(p, trimmed, file, line);
    } else if looks_like_segments(trimmed) {
        segments(p, trimmed);
    } else {
        p.free_text.extend(
            info.iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        );
    }
}

fn looks_like_segments(s: &str) -> bool {
    let id: String = s.chars().take_while(|&c| c != '*').collect();
    (2..=3).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && s.len() > id.len()
}

/// Segments in the banking convention of CCD+ addenda: `*` between elements, `\` (or `~`)
/// after each segment.
fn segments(p: &mut Payment, s: &str) {
    for seg in s
        .split(['\\', '~'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let elements: Vec<&[u8]> = seg.split('*').map(str::as_bytes).collect();
        let id = elements.first().copied().unwrap_or_default();
        match id {
            b"RMR" => match x12::rmr_line(elements.as_slice()) {
                Ok(line) => p.lines.push(line),
                Err((i, m)) => {
                    p.warnings
                        .push(format!("addenda {m} (element {i} of {seg:?})"));
                    p.free_text.push(seg.to_string());
                }
            },
            b"ADX" => {
                let amount = x12::parse_amount(elements.as_slice().el(1));
                match amount {
                    Ok(a) => {
                        let reason_code = Some(elements.as_slice().el(2))
                            .filter(|b| !b.is_empty())
                            .map(|b| String::from_utf8_lossy(b).into_owned());
                        let adj = Adjustment {
                            amount: x12::negate(a),
                            reason_code,
                            text: None,
                        };
                        match p.lines.last_mut() {
                            Some(l) => l.adjustments.push(adj),
                            None => p.lines.push(RemittanceLine {
                                reference_kind: ReferenceKind::Unknown,
                                adjustments: vec![adj],
                                ..RemittanceLine::default()
                            }),
                        }
                    }
                    Err(m) => p.warnings.push(format!("addenda ADX01 {m}")),
                }
            }
            b"NTE" => {
                let note = String::from_utf8_lossy(elements.as_slice().el(2));
                if !note.is_empty() {
                    p.free_text.push(note.into_owned());
                }
            }
            b"REF" => {
                let parts: Vec<String> = (1..=3)
                    .map(|i| elements.as_slice().el(i))
                    .filter(|b| !b.is_empty())
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect();
                p.free_text.push(parts.join(" "));
            }
            // TXP (tax payment), DED (child support) and the rest: kept whole for a person.
            _ => p.free_text.push(seg.to_string()),
        }
    }
}

/// A full X12 820 carried in CTX addenda: its lines, free text and payer (the 820 names the
/// payer, where the ACH record names only the originating company) join the payment.
fn embedded_820(p: &mut Payment, s: &str, file: &str, line: usize) {
    // Back to the bytes the sender wrote: a UTF-8 file holds Latin-1 delimiters (such as the
    // broken bar) as two bytes, which X12 needs as one.
    let bytes: Vec<u8> = s
        .chars()
        .flat_map(|c| match u8::try_from(u32::from(c)) {
            Ok(b) => vec![b],
            Err(_) => c.to_string().into_bytes(),
        })
        .collect();
    let context = format!("CTX addenda of the entry at line {line}");
    let parsed = match x12::parse(&bytes, file) {
        Ok(parsed) => parsed,
        Err(e) => {
            p.warnings
                .push(format!("{context}: the X12 820 could not be read: {e}"));
            return;
        }
    };
    for e in parsed.errors {
        p.warnings
            .push(format!("{context}: X12 820 transaction not read: {e}"));
    }
    for t in parsed.payments {
        if t.amount != p.amount {
            p.warnings.push(format!(
                "{context}: the 820's BPR02 amount {} differs from the entry amount {}",
                t.amount, p.amount
            ));
        }
        if t.direction != p.direction {
            p.warnings.push(format!(
                "{context}: the 820 says {:?}, the transaction code says {:?}",
                t.direction, p.direction
            ));
        }
        if t.currency != p.currency {
            p.warnings.push(format!(
                "{context}: the 820's currency is {}, ACH moves USD",
                t.currency
            ));
        }
        if !t
            .warnings
            .iter()
            .any(|w| w.starts_with(x12::NO_TRN_WARNING))
        {
            p.free_text.push(t.payment_id);
        }
        if t.payer.name.is_some() {
            p.payer.name = t.payer.name;
        }
        if t.payer.account.is_some() {
            p.payer.account = t.payer.account;
        }
        p.lines.extend(t.lines);
        p.free_text.extend(t.free_text);
        p.warnings.extend(
            t.warnings
                .into_iter()
                .map(|w| format!("{context}: 820: {w}")),
        );
    }
}

#[cfg(test)]
mod tests;
