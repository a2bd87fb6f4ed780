//! Reading logical records into payments: the file, group and account being read, the
//! transaction details, and the control totals and record counts of the trailers.

use super::remit::*;
use super::split::*;
use super::{Event, FORMAT, RECENT_REFERENCES};
use crate::domain::{Currency, Direction, Payment, ReturnedItem};
use crate::formats::common::{minor_unit_exponent, yymmdd};
use crate::formats::{FormatError, Position};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::{HashMap, VecDeque};
use std::str::FromStr;

/// A record with the `88` continuations that followed it.
pub(super) struct Logical {
    code: u8,
    line: usize,
    body: String,
    continuations: Vec<(usize, String)>,
}

pub(super) struct FileCtx {
    line: usize,
    sender: String,
    created: String,
    file_id: String,
    /// Sum of the groups' declared `98` control totals.
    total: i128,
    groups: u64,
    records: u64,
    payments_before: usize,
    warnings: Vec<String>,
}

pub(super) struct GroupCtx {
    line: usize,
    as_of: Option<NaiveDate>,
    currency: Option<Currency>,
    total: i128,
    accounts: u64,
    records: u64,
    payments_before: usize,
    warnings: Vec<String>,
}

pub(super) struct AccountCtx {
    line: usize,
    number: String,
    currency: Currency,
    /// Signed sum of the summary amounts of the `03` and the amounts of its `16` records.
    total: i128,
    records: u64,
    payments_before: usize,
    warnings: Vec<String>,
}

/// Recently seen bank references with how often each appeared.
pub(super) struct RecentRefs {
    counts: HashMap<String, u32>,
    order: VecDeque<String>,
}

impl RecentRefs {
    pub(super) fn new() -> Self {
        RecentRefs {
            counts: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records one more sighting and returns how many there have been.
    pub(super) fn see(&mut self, r: &str) -> u32 {
        if let Some(n) = self.counts.get_mut(r) {
            *n += 1;
            return *n;
        }
        if self.order.len() >= RECENT_REFERENCES {
            if let Some(old) = self.order.pop_front() {
                self.counts.remove(&old);
            }
        }
        self.counts.insert(r.to_string(), 1);
        self.order.push_back(r.to_string());
        1
    }
}

pub(super) struct Reader<'f> {
    file: &'f str,
    seen_first: bool,
    pending: Option<Logical>,
    file_ctx: Option<FileCtx>,
    group: Option<GroupCtx>,
    account: Option<AccountCtx>,
    emitted: usize,
    details: u64,
    refs: RecentRefs,
    last_line: usize,
}

impl<'f> Reader<'f> {
    pub(super) fn new(file: &'f str) -> Self {
        Reader {
            file,
            seen_first: false,
            pending: None,
            file_ctx: None,
            group: None,
            account: None,
            emitted: 0,
            details: 0,
            refs: RecentRefs::new(),
            last_line: 1,
        }
    }

    pub(super) fn fatal(&self, f: SplitFault) -> FormatError {
        FormatError::new(
            self.file,
            Position::Line {
                line: f.line,
                column: None,
            },
            f.message,
        )
    }

    pub(super) fn err(
        &self,
        line: usize,
        field: Option<usize>,
        message: impl Into<String>,
    ) -> FormatError {
        FormatError::new(
            self.file,
            Position::Line {
                line,
                column: field,
            },
            message,
        )
    }

    pub(super) fn record(
        &mut self,
        raw: RawRecord,
        sink: &mut dyn FnMut(Event),
    ) -> Result<(), FormatError> {
        self.last_line = raw.line;
        if !self.seen_first {
            self.seen_first = true;
            if raw.code != 1 {
                return Err(self.err(
                    raw.line,
                    Some(1),
                    format!(
                        "not a BAI2 file: the first record is {:02}, expected the 01 file header",
                        raw.code
                    ),
                ));
            }
        }
        if raw.code == 88 {
            match self.pending.as_mut() {
                Some(p) => p.continuations.push((raw.line, raw.body)),
                None => sink(Event::Error(self.err(
                    raw.line,
                    Some(1),
                    "88 continuation with no record before it to continue",
                ))),
            }
            return Ok(());
        }
        if let Some(done) = self.pending.take() {
            self.finish_record(done, sink);
        }
        self.pending = Some(Logical {
            code: raw.code,
            line: raw.line,
            body: raw.body,
            continuations: vec![],
        });
        Ok(())
    }

    pub(super) fn finish(mut self, sink: &mut dyn FnMut(Event)) -> Result<(), FormatError> {
        if let Some(done) = self.pending.take() {
            self.finish_record(done, sink);
        }
        if !self.seen_first {
            return Err(FormatError::new(
                self.file,
                Position::File,
                "empty file: no BAI2 records",
            ));
        }
        let line = self.last_line;
        if let Some(a) = self.account.take() {
            self.control(
                sink,
                a.payments_before,
                line,
                None,
                format!(
                    "the file ends inside account {} (03 at line {}) without its 49 trailer; \
                 the file may be truncated",
                    a.number, a.line
                ),
            );
        }
        if let Some(g) = self.group.take() {
            self.control(
                sink,
                g.payments_before,
                line,
                None,
                format!(
                    "the file ends inside the group that starts at line {} without its 98 trailer",
                    g.line
                ),
            );
        }
        if let Some(f) = self.file_ctx.take() {
            self.control(
                sink,
                f.payments_before,
                line,
                None,
                format!(
                    "the file ends without its 99 trailer (01 at line {})",
                    f.line
                ),
            );
        }
        Ok(())
    }

    pub(super) fn control(
        &self,
        sink: &mut dyn FnMut(Event),
        since: usize,
        line: usize,
        field: Option<usize>,
        message: String,
    ) {
        sink(Event::Control {
            since,
            error: self.err(line, field, message),
        });
    }

    pub(super) fn finish_record(&mut self, rec: Logical, sink: &mut dyn FnMut(Event)) {
        let count = 1 + rec.continuations.len() as u64;
        // Every record inside a scope counts towards that scope's trailer, trailers included.
        if rec.code != 1 {
            if let Some(f) = self.file_ctx.as_mut() {
                f.records += count;
            }
        }
        if rec.code != 2 && rec.code != 1 {
            if let Some(g) = self.group.as_mut() {
                g.records += count;
            }
        }
        if rec.code == 16 || rec.code == 49 {
            if let Some(a) = self.account.as_mut() {
                a.records += count;
            }
        }
        match rec.code {
            1 => self.file_header(rec, count, sink),
            2 => self.group_header(rec, count, sink),
            3 => self.account_header(rec, count, sink),
            16 => self.detail(rec, sink),
            49 => self.account_trailer(rec, sink),
            98 => self.group_trailer(rec, sink),
            99 => self.file_trailer(rec, sink),
            other => sink(Event::Error(self.err(
                rec.line,
                Some(1),
                format!("unknown BAI2 record code {other:02}; the record was skipped"),
            ))),
        }
    }

    /// All fields of a non-text record, its `88` continuations appended as further fields.
    pub(super) fn fields(rec: &Logical) -> Vec<String> {
        let mut out: Vec<String> = rec.body.split(',').map(|f| f.trim().to_string()).collect();
        for (_, c) in &rec.continuations {
            out.extend(c.split(',').map(|f| f.trim().to_string()));
        }
        out
    }

    pub(super) fn file_header(&mut self, rec: Logical, count: u64, sink: &mut dyn FnMut(Event)) {
        if let Some(f) = self.file_ctx.as_ref() {
            let since = f.payments_before;
            let line = f.line;
            self.control(sink, since, rec.line, Some(1), format!(
                "a new 01 file header before the 99 trailer of the file that starts at line {line}"
            ));
            self.account = None;
            self.group = None;
        }
        let fields = Self::fields(&rec);
        let get = |i: usize| fields.get(i).cloned().unwrap_or_default();
        let mut warnings = Vec::new();
        let version = get(7);
        if version != "2" {
            warnings.push(format!(
                "01 header at line {} gives BAI version {version:?}; read as version 2",
                rec.line
            ));
        }
        self.file_ctx = Some(FileCtx {
            line: rec.line,
            sender: get(0),
            created: get(2),
            file_id: get(4),
            total: 0,
            groups: 0,
            records: count,
            payments_before: self.emitted,
            warnings,
        });
    }

    pub(super) fn group_header(&mut self, rec: Logical, count: u64, sink: &mut dyn FnMut(Event)) {
        if let Some(a) = self.account.take() {
            self.control(
                sink,
                a.payments_before,
                rec.line,
                Some(1),
                format!(
                    "account {} (03 at line {}) has no 49 trailer before the next 02 group",
                    a.number, a.line
                ),
            );
        }
        if let Some(g) = self.group.take() {
            self.control(
                sink,
                g.payments_before,
                rec.line,
                Some(1),
                format!(
                    "the group that starts at line {} has no 98 trailer before the next 02 group",
                    g.line
                ),
            );
        }
        if self.file_ctx.is_none() {
            sink(Event::Error(self.err(
                rec.line,
                Some(1),
                "02 group header outside a file (no 01 header since the last 99 trailer)",
            )));
        }
        let fields = Self::fields(&rec);
        let get = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
        let mut warnings = Vec::new();
        match get(2) {
            "2" => warnings.push("group status 2: the bank reports this data as a deletion".into()),
            "3" => {
                warnings.push("group status 3: the bank reports this data as a correction".into())
            }
            "4" => warnings.push("group status 4: the bank marks this data as test only".into()),
            _ => {}
        }
        let as_of = match yymmdd(get(3)) {
            Some(d) => Some(d),
            None => {
                warnings.push(format!(
                    "02 group at line {} has no valid as-of date (field 5 is {:?}); the \
                     payments carry no date",
                    rec.line,
                    get(3)
                ));
                None
            }
        };
        let currency = match get(5) {
            "" => None,
            c => match Currency::from_str(c) {
                Ok(c) => Some(c),
                Err(_) => {
                    warnings.push(format!(
                        "02 group at line {} has an invalid currency {c:?}; using USD",
                        rec.line
                    ));
                    None
                }
            },
        };
        self.group = Some(GroupCtx {
            line: rec.line,
            as_of,
            currency,
            total: 0,
            accounts: 0,
            records: count,
            payments_before: self.emitted,
            warnings,
        });
    }

    pub(super) fn account_header(&mut self, rec: Logical, count: u64, sink: &mut dyn FnMut(Event)) {
        if let Some(a) = self.account.take() {
            self.control(
                sink,
                a.payments_before,
                rec.line,
                Some(1),
                format!(
                    "account {} (03 at line {}) has no 49 trailer before the next 03 account",
                    a.number, a.line
                ),
            );
        }
        let Some(group) = self.group.as_mut() else {
            sink(Event::Error(self.err(
                rec.line,
                Some(1),
                "03 account record outside a group (no 02 header before it); its \
                 transactions are skipped",
            )));
            return;
        };
        group.accounts += 1;
        let group_currency = group.currency;
        let fields = Self::fields(&rec);
        let number = fields.first().cloned().unwrap_or_default();
        let mut warnings = Vec::new();
        let currency = match fields.get(1).map(String::as_str).unwrap_or("") {
            "" => group_currency.unwrap_or(Currency::USD),
            c => Currency::from_str(c).unwrap_or_else(|_| {
                warnings.push(format!(
                    "03 account {number} at line {} has an invalid currency {c:?}; using \
                     the group's",
                    rec.line
                ));
                group_currency.unwrap_or(Currency::USD)
            }),
        };
        let mut total: i128 = 0;
        let mut cursor = fields.iter().skip(2).map(String::as_str).enumerate();
        // Summary groups: type code, amount, item count, funds type and what the funds type adds.
        // An empty type code is skipped on its own: banks leave an empty group (`USD,,,,,060`)
        // or one comma too many before the `/` (`,015,100,,,/`), and skipping a single field
        // keeps the groups of the following 88 continuation aligned in both cases.
        while let Some((i, code)) = cursor.next() {
            if code.is_empty() {
                continue;
            }
            let amount = cursor.next().map(|(_, a)| a).unwrap_or("");
            let _count = cursor.next();
            let funds = cursor.next().map(|(_, f)| f).unwrap_or("");
            if !amount.is_empty() {
                match signed_amount(amount) {
                    Some(a) => total = total.saturating_add(a),
                    None => warnings.push(format!(
                        "03 account {number} at line {}: summary amount {amount:?} of type \
                         {code} (field {}) is not a number",
                        rec.line,
                        i + 4
                    )),
                }
            }
            let mut rest = cursor.by_ref().map(|(_, f)| f);
            if let Err(m) = skip_funds_fields(funds, &mut rest) {
                warnings.push(format!("03 account {number} at line {}: {m}", rec.line));
                break;
            }
        }
        self.account = Some(AccountCtx {
            line: rec.line,
            number,
            currency,
            total,
            records: count,
            payments_before: self.emitted,
            warnings,
        });
    }

    pub(super) fn detail(&mut self, rec: Logical, sink: &mut dyn FnMut(Event)) {
        self.details += 1;
        let Some(account) = self.account.as_ref() else {
            sink(Event::Error(self.err(
                rec.line,
                Some(1),
                "16 transaction detail outside an account (no valid 03 record before it)",
            )));
            return;
        };
        let currency = account.currency;
        let detail = match parse_detail(&rec.body, currency) {
            Ok(d) => d,
            Err((field, message)) => {
                sink(Event::Error(self.err(
                    rec.line,
                    Some(field),
                    format!("16 transaction detail: {message}; the transaction was skipped"),
                )));
                return;
            }
        };
        if let Some(a) = self.account.as_mut() {
            a.total = a.total.saturating_add(i128::from(detail.minor));
        }
        let mut warnings = Vec::new();
        let payment_id = match &detail.bank_ref {
            Some(r) => match self.refs.see(r) {
                1 => r.clone(),
                n => {
                    warnings.push(format!(
                        "bank reference {r:?} appears {n} times; payment_id is {r}#{n}"
                    ));
                    format!("{r}#{n}")
                }
            },
            None => match self.file_ctx.as_ref() {
                Some(f) => format!("{}:{}:{}:{}", f.sender, f.created, f.file_id, self.details),
                None => format!(":::{}", self.details),
            },
        };
        let returned = returned_item(&detail, &rec.continuations);
        let mut remit = Remit::default();
        if let Some(t) = detail.text.as_deref() {
            remit.free_text.push(t.to_string());
        }
        if let Some(c) = &detail.customer_ref {
            remit.free_text.push(format!("customer reference {c}"));
        }
        for (_, text) in &rec.continuations {
            remit.continuation(text.trim(), detail.direction);
        }
        let (Some(group), Some(account)) = (self.group.as_ref(), self.account.as_ref()) else {
            return;
        };
        let file_warnings = self
            .file_ctx
            .as_ref()
            .map(|f| f.warnings.as_slice())
            .unwrap_or(&[]);
        let mut all_warnings: Vec<String> = file_warnings
            .iter()
            .chain(&group.warnings)
            .chain(&account.warnings)
            .cloned()
            .collect();
        all_warnings.extend(warnings);
        let payment = Payment {
            payment_id,
            format: FORMAT.to_string(),
            direction: detail.direction,
            payment_date: group.as_of,
            amount: detail.amount,
            currency,
            payer: remit.payer(),
            lines: remit.lines,
            free_text: remit.free_text,
            warnings: all_warnings,
            returned,
        };
        self.emitted += 1;
        sink(Event::Payment(Box::new(payment)));
    }

    pub(super) fn account_trailer(&mut self, rec: Logical, sink: &mut dyn FnMut(Event)) {
        let Some(a) = self.account.take() else {
            sink(Event::Error(self.err(
                rec.line,
                Some(1),
                "49 account trailer without an open 03 account",
            )));
            return;
        };
        let fields = Self::fields(&rec);
        let declared = fields.first().and_then(|t| signed_amount(t));
        let records = fields.get(1).and_then(|n| n.parse::<u64>().ok());
        if let Some(g) = self.group.as_mut() {
            g.total = g.total.saturating_add(declared.unwrap_or(a.total));
        }
        match declared {
            Some(t) if t == a.total => {}
            Some(t) => self.control(
                sink,
                a.payments_before,
                rec.line,
                Some(2),
                format!(
                    "49 control total {t} of account {} (03 at line {}) does not match the sum of \
                 its amounts {}",
                    a.number, a.line, a.total
                ),
            ),
            None => self.control(
                sink,
                a.payments_before,
                rec.line,
                Some(2),
                format!(
                    "49 control total {:?} of account {} is not a number",
                    fields.first().cloned().unwrap_or_default(),
                    a.number
                ),
            ),
        }
        if records != Some(a.records) {
            self.control(
                sink,
                a.payments_before,
                rec.line,
                Some(3),
                format!(
                    "49 record count {:?} of account {} (03 at line {}) does not match the {} \
                 records it has",
                    fields.get(1).cloned().unwrap_or_default(),
                    a.number,
                    a.line,
                    a.records
                ),
            );
        }
    }

    pub(super) fn group_trailer(&mut self, rec: Logical, sink: &mut dyn FnMut(Event)) {
        if let Some(a) = self.account.take() {
            self.control(
                sink,
                a.payments_before,
                rec.line,
                Some(1),
                format!(
                    "account {} (03 at line {}) has no 49 trailer before the 98 group trailer",
                    a.number, a.line
                ),
            );
        }
        let Some(g) = self.group.take() else {
            sink(Event::Error(self.err(
                rec.line,
                Some(1),
                "98 group trailer without an open 02 group",
            )));
            return;
        };
        let fields = Self::fields(&rec);
        let declared = fields.first().and_then(|t| signed_amount(t));
        if let Some(f) = self.file_ctx.as_mut() {
            f.groups += 1;
            f.total = f.total.saturating_add(declared.unwrap_or(g.total));
        }
        if declared != Some(g.total) {
            self.control(
                sink,
                g.payments_before,
                rec.line,
                Some(2),
                format!(
                    "98 control total {:?} of the group at line {} does not match the sum of its \
                 49 account totals {}",
                    fields.first().cloned().unwrap_or_default(),
                    g.line,
                    g.total
                ),
            );
        }
        if fields.get(1).and_then(|n| n.parse::<u64>().ok()) != Some(g.accounts) {
            self.control(
                sink,
                g.payments_before,
                rec.line,
                Some(3),
                format!(
                    "98 account count {:?} of the group at line {} does not match its {} accounts",
                    fields.get(1).cloned().unwrap_or_default(),
                    g.line,
                    g.accounts
                ),
            );
        }
        if fields.get(2).and_then(|n| n.parse::<u64>().ok()) != Some(g.records) {
            self.control(
                sink,
                g.payments_before,
                rec.line,
                Some(4),
                format!(
                    "98 record count {:?} of the group at line {} does not match its {} records",
                    fields.get(2).cloned().unwrap_or_default(),
                    g.line,
                    g.records
                ),
            );
        }
    }

    pub(super) fn file_trailer(&mut self, rec: Logical, sink: &mut dyn FnMut(Event)) {
        if let Some(a) = self.account.take() {
            self.control(
                sink,
                a.payments_before,
                rec.line,
                Some(1),
                format!(
                    "account {} (03 at line {}) has no 49 trailer before the 99 file trailer",
                    a.number, a.line
                ),
            );
        }
        if let Some(g) = self.group.take() {
            self.control(
                sink,
                g.payments_before,
                rec.line,
                Some(1),
                format!(
                    "the group at line {} has no 98 trailer before the 99 file trailer",
                    g.line
                ),
            );
        }
        let Some(f) = self.file_ctx.take() else {
            sink(Event::Error(self.err(
                rec.line,
                Some(1),
                "99 file trailer without an open 01 file",
            )));
            return;
        };
        let fields = Self::fields(&rec);
        if fields.first().and_then(|t| signed_amount(t)) != Some(f.total) {
            self.control(
                sink,
                f.payments_before,
                rec.line,
                Some(2),
                format!(
                    "99 control total {:?} does not match the sum of the 98 group totals {}",
                    fields.first().cloned().unwrap_or_default(),
                    f.total
                ),
            );
        }
        if fields.get(1).and_then(|n| n.parse::<u64>().ok()) != Some(f.groups) {
            self.control(
                sink,
                f.payments_before,
                rec.line,
                Some(3),
                format!(
                    "99 group count {:?} does not match the {} groups in the file",
                    fields.get(1).cloned().unwrap_or_default(),
                    f.groups
                ),
            );
        }
        if fields.get(2).and_then(|n| n.parse::<u64>().ok()) != Some(f.records) {
            self.control(
                sink,
                f.payments_before,
                rec.line,
                Some(4),
                format!(
                    "99 record count {:?} does not match the {} records in the file",
                    fields.get(2).cloned().unwrap_or_default(),
                    f.records
                ),
            );
        }
    }
}

/// A `16` record's fields as read.
pub(super) struct Detail {
    code: u16,
    direction: Direction,
    minor: u64,
    amount: Decimal,
    bank_ref: Option<String>,
    customer_ref: Option<String>,
    text: Option<String>,
}

/// Reads a `16` body; the error is the 1-based BAI2 field number (the record code is field 1)
/// and what is wrong with it.
pub(super) fn parse_detail(body: &str, currency: Currency) -> Result<Detail, (usize, String)> {
    let mut f = Fields::new(body);
    let code_text = f.next().unwrap_or("").trim();
    let code: u16 = match code_text.parse() {
        Ok(c) if code_text.len() == 3 => c,
        _ => return Err((2, format!("type code {code_text:?} is not three digits"))),
    };
    let direction = direction_of(code).ok_or_else(|| {
        (
            2,
            format!("type code {code} is not a credit or debit detail code"),
        )
    })?;
    let amount_text = f.next().unwrap_or("").trim();
    let digits = amount_text.strip_prefix('+').unwrap_or(amount_text);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err((
            3,
            format!("amount {amount_text:?} is not an unsigned number of minor units"),
        ));
    }
    let minor: u64 = digits
        .parse()
        .map_err(|_| (3, format!("amount {amount_text:?} is too large")))?;
    let amount = Decimal::from_i128_with_scale(i128::from(minor), minor_unit_exponent(currency));
    let funds = f.next().unwrap_or("").trim().to_string();
    let mut funds_fields = std::iter::from_fn(|| f.next());
    skip_funds_fields(&funds, &mut funds_fields).map_err(|m| (4, m))?;
    let bank_ref = f
        .next()
        .map(|s| percent_decode(s.trim()))
        .filter(|s| !s.is_empty());
    let customer_ref = f
        .next()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let text = f
        .rest()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    Ok(Detail {
        code,
        direction,
        minor,
        amount,
        bank_ref,
        customer_ref,
        text,
    })
}

/// BAI2 detail type codes of returned items: 555 deposited item returned, 556 and 557 ACH return
/// items, 558 ACH reversal debit, and their credit twins 255 (check posted and returned), 256,
/// 257 and 258 (returns and reversals of the account holder's own outgoing items).
pub(super) fn is_return_type(code: u16) -> bool {
    matches!(code, 255..=258 | 555..=558)
}

/// The returned item a `16` of a return type code describes: the NACHA R-code its text or
/// continuations quote (`Reason: "R02"`), else the type code itself as `BAI2-555`; the customer
/// reference names the original item (banks put the original's reference or trace there).
fn returned_item(d: &Detail, continuations: &[(usize, String)]) -> Option<ReturnedItem> {
    if !is_return_type(d.code) {
        return None;
    }
    let texts = d
        .text
        .iter()
        .map(String::as_str)
        .chain(continuations.iter().map(|(_, t)| t.as_str()));
    let r_code = texts
        .flat_map(|t| t.split(|c: char| !c.is_ascii_alphanumeric()))
        .find(|w| w.len() == 3 && w.starts_with('R') && w[1..].bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string);
    let reason = r_code
        .as_deref()
        .and_then(crate::formats::nacha::return_reason)
        .map(str::to_string)
        .or_else(|| d.text.clone());
    Some(ReturnedItem {
        return_code: r_code.unwrap_or_else(|| format!("BAI2-{}", d.code)),
        reason,
        original_trace: d.customer_ref.clone(),
    })
}

/// Consumes the fields a funds type adds: `V` a value date and time, `S` three availability
/// amounts, `D` a count and that many (days, amount) pairs. `0`, `1`, `2`, `Z` and an empty
/// field add none.
pub(super) fn skip_funds_fields(
    funds: &str,
    fields: &mut dyn Iterator<Item = &str>,
) -> Result<(), String> {
    match funds.trim() {
        "" | "0" | "1" | "2" | "Z" | "z" => Ok(()),
        "V" | "v" => {
            fields.next();
            fields.next();
            Ok(())
        }
        "S" | "s" => {
            for _ in 0..3 {
                fields.next();
            }
            Ok(())
        }
        "D" | "d" => {
            let n_text = fields.next().unwrap_or("").trim();
            let n: usize = n_text.parse().map_err(|_| {
                format!("funds type D distribution count {n_text:?} is not a number")
            })?;
            for i in 0..n {
                if fields.next().is_none() || fields.next().is_none() {
                    return Err(format!(
                        "funds type D announces {n} distributions but the record ends after {i}"
                    ));
                }
            }
            Ok(())
        }
        other => Err(format!("unknown funds type {other:?}")),
    }
}

/// Walks the comma-separated fields of a record body and hands out the rest as text.
pub(super) struct Fields<'a> {
    rest: Option<&'a str>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(body: &'a str) -> Self {
        Fields { rest: Some(body) }
    }

    pub(super) fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match s.split_once(',') {
            Some((field, rest)) => {
                self.rest = Some(rest);
                Some(field)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }

    /// Everything not yet read, commas included: the free-text field.
    pub(super) fn rest(&mut self) -> Option<&'a str> {
        self.rest.take()
    }
}

/// Credit or debit from a BAI2 detail type code: 100–399 credits and 400–699 debits, the
/// customised ranges 920–959 credits and 960–999 debits, and in the loan range 720–759 credits
/// and 760–799 debits. Status codes (001–099, 900–919), the unassigned 700–719 and 800–899 and
/// 890 (non-monetary information) are not money movements.
pub(super) fn direction_of(code: u16) -> Option<Direction> {
    match code {
        100..=399 | 720..=759 | 920..=959 => Some(Direction::Credit),
        400..=699 | 760..=799 | 960..=999 => Some(Direction::Debit),
        _ => None,
    }
}

/// A signed amount in minor units as the summary and trailer records give it: `+123`, `-45`.
pub(super) fn signed_amount(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 30 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i128 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

pub(super) fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}
