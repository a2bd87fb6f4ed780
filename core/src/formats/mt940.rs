//! SWIFT MT940 customer statements: the European banks' end-of-day statement, a sequence of
//! tagged fields (`:20:` reference, `:25:` account, `:28C:` statement number, `:60F:` opening
//! balance, `:61:` statement line, `:86:` information to the account owner, `:62F:` closing
//! balance). Each `:61:` becomes a payment; docs/formats/mt940.md gives the mapping.
//!
//! Files arrive with SWIFT block headers (`{1:...}{2:...}{4:`), bank banners or free text before
//! the first tag, `-` lines between messages, CRLF or LF, in UTF-8 or Latin-1. The `:86:`
//! narrative comes in three dialects: the German `?`-subfield layout (`166?00GUTSCHRIFT?20EREF+
//! ...`), the Dutch/SEPA `/CODE/value/` layout (`/EREF/.../REMI/...`), and plain text. A
//! statement is a few hundred lines at most, so the whole file is read into memory.

use super::common::{self, minor_unit_exponent, yymmdd};
use super::{FormatError, Parsed, Position};
use crate::domain::{Currency, Direction, Payer, Payment, RemittanceLine};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::str::FromStr;

const FORMAT: &str = "mt940";

/// Whether the first bytes look like MT940: a SWIFT application header for message type 940,
/// or `:20:` and `:25:` fields at line starts followed by an opening balance `:60F:`/`:60M:`.
pub fn looks_like(head: &[u8]) -> bool {
    let text = decode(head);
    if text.contains("{2:O940") || text.contains("{2:I940") {
        return true;
    }
    let has = |tag: &str| text.lines().any(|l| l.trim_start().starts_with(tag));
    has(":20:") && has(":25:") && (has(":60F:") || has(":60M:"))
}

/// Reads an MT940 file: one payment per `:61:` statement line.
///
/// A statement line that cannot be read is listed in [`Parsed::errors`] and the rest of the
/// statement is still read; a statement without a balance to take the currency from loses its
/// lines with one error. A statement whose opening balance plus its lines does not give its
/// closing balance gets a warning on each of its payments. A file with no `:20:` or `:61:`
/// field at all is an `Err`.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let text = decode(bytes);
    let tokens = tokenize(&text);
    if !tokens
        .iter()
        .any(|t| matches!(t, Token::Field(f) if f.tag == "20" || f.tag == "61"))
    {
        return Err(FormatError::new(
            file,
            Position::File,
            "not an MT940 file: no :20: or :61: field found",
        ));
    }
    let mut reader = Reader {
        file,
        parsed: Parsed::default(),
        used_ids: HashMap::new(),
    };
    let mut statement: Option<Statement> = None;
    // Which statement part the last field belonged to, so that an :86: joins its :61:.
    let mut after_61 = false;
    for token in tokens {
        let field = match token {
            Token::End { .. } => {
                if let Some(s) = statement.take() {
                    reader.statement(s);
                }
                after_61 = false;
                continue;
            }
            Token::Field(f) => f,
        };
        if field.tag == "20" {
            if let Some(s) = statement.take() {
                reader.statement(s);
            }
        }
        let s = statement.get_or_insert_with(|| Statement::new(field.line));
        let value = field.lines.first().map(String::as_str).unwrap_or("").trim();
        match field.tag.as_str() {
            "20" => s.reference = value.to_string(),
            "25" => s.account = value.to_string(),
            "28" | "28C" => s.number = value.to_string(),
            "60F" | "60M" if s.opening.is_none() => {
                s.opening = Some((field.line, value.to_string()));
            }
            "62F" | "62M" => s.closing = Some((field.line, value.to_string())),
            "61" => s.entries.push(Entry {
                field: field.clone(),
                narrative: Vec::new(),
            }),
            "86" if after_61 => {
                if let Some(e) = s.entries.last_mut() {
                    e.narrative.extend(field.lines.iter().cloned());
                }
            }
            _ => {}
        }
        after_61 = field.tag == "61" || (field.tag == "86" && after_61);
    }
    if let Some(s) = statement.take() {
        reader.statement(s);
    }
    Ok(reader.parsed)
}

/// Text from bytes: UTF-8 when valid (after a byte-order mark), else Latin-1.
fn decode(bytes: &[u8]) -> String {
    common::decode(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
}

// ---------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------

/// One tagged field: the tag without colons (`61`, `60F`), the line it starts on, and its
/// physical lines, the first being the text after the tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) tag: String,
    pub(crate) line: usize,
    pub(crate) lines: Vec<String>,
}

/// What the tokenizer finds: fields, and the `-` that ends a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    Field(Field),
    End { line: usize },
}

/// The tag of a line starting `:NN:` or `:NNa:`, and the text after it.
fn tag_of(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(':')?;
    let end = rest.find(':')?;
    let tag = &rest[..end];
    let b = tag.as_bytes();
    let ok = match b.len() {
        2 => b.iter().all(u8::is_ascii_digit),
        3 => b[..2].iter().all(u8::is_ascii_digit) && b[2].is_ascii_uppercase(),
        _ => false,
    };
    ok.then(|| (tag, &rest[end + 1..]))
}

/// Splits MT940 text into fields. Lines before the first tag, and between a message's closing
/// `-` and the next tag, are banners and are skipped; SWIFT block headers are skipped up to the
/// text block `{4:`; any other line continues the field before it.
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut current: Option<Field> = None;
    let mut inside = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let mut line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with('{') {
            // `{1:F01...}{2:O940...}{4:` opens the text block; `{5:...}` trails it.
            match line.find("{4:") {
                Some(i) => line = &line[i + 3..],
                None => continue,
            }
            if line.trim().is_empty() {
                continue;
            }
        }
        let trimmed = line.trim();
        if trimmed == "-" || trimmed.starts_with("-}") {
            if let Some(f) = current.take() {
                out.push(Token::Field(f));
            }
            out.push(Token::End { line: line_no });
            inside = false;
            continue;
        }
        if let Some((tag, rest)) = tag_of(line) {
            if let Some(f) = current.take() {
                out.push(Token::Field(f));
            }
            current = Some(Field {
                tag: tag.to_string(),
                line: line_no,
                lines: vec![rest.to_string()],
            });
            inside = true;
            continue;
        }
        if !inside || trimmed.is_empty() {
            continue;
        }
        if let Some(f) = current.as_mut() {
            f.lines.push(line.to_string());
        }
    }
    if let Some(f) = current.take() {
        out.push(Token::Field(f));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Statements into payments
// ---------------------------------------------------------------------------------------------

struct Entry {
    field: Field,
    narrative: Vec<String>,
}

struct Statement {
    line: usize,
    reference: String,
    account: String,
    number: String,
    opening: Option<(usize, String)>,
    closing: Option<(usize, String)>,
    entries: Vec<Entry>,
}

impl Statement {
    fn new(line: usize) -> Self {
        Statement {
            line,
            reference: String::new(),
            account: String::new(),
            number: String::new(),
            opening: None,
            closing: None,
            entries: Vec::new(),
        }
    }
}

/// A balance field (`:60F:`, `:62F:`): mark, date, currency, amount.
struct Balance {
    signed: Decimal,
    currency: Currency,
}

fn parse_balance(s: &str) -> Result<Balance, String> {
    let s = s.trim();
    let mark = s.get(..1).ok_or("empty balance")?;
    let currency = s
        .get(7..10)
        .ok_or_else(|| format!("balance {s:?} is too short"))?;
    let currency = Currency::from_str(currency).map_err(|e| format!("balance {s:?}: {e}"))?;
    let amount = amount(s.get(10..).unwrap_or(""))
        .ok_or_else(|| format!("balance {s:?} has no valid amount"))?;
    let signed = match mark {
        "C" => amount,
        "D" => -amount,
        m => return Err(format!("balance mark {m:?} is neither C nor D")),
    };
    Ok(Balance { signed, currency })
}

/// An MT940 amount: digits with a decimal comma (`1234,5`, `9,`); a decimal point is accepted.
fn amount(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.is_empty()
        || s.len() > 20
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'.')
    {
        return None;
    }
    let normal = s.replace(',', ".");
    let normal = normal.strip_suffix('.').unwrap_or(&normal);
    if normal.starts_with('.') || normal.matches('.').count() > 1 {
        return None;
    }
    Decimal::from_str(normal).ok()
}

/// The parts of a `:61:` statement line.
#[derive(Debug)]
pub(crate) struct StatementLine {
    pub(crate) value_date: NaiveDate,
    pub(crate) entry_date: Option<NaiveDate>,
    /// `C`, `D`, `RC` (reversal of a credit) or `RD` (reversal of a debit).
    pub(crate) mark: String,
    pub(crate) amount: Decimal,
    pub(crate) transaction_type: String,
    pub(crate) customer_ref: String,
    pub(crate) bank_ref: String,
    pub(crate) supplementary: String,
}

/// Reads a `:61:` line (`6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]` and supplementary details on the
/// following lines), tolerating blanks in place of the entry date as some banks write.
pub(crate) fn parse_61(lines: &[String]) -> Result<StatementLine, String> {
    let first = lines.first().map(String::as_str).unwrap_or("");
    let s = first.trim_start();
    let value_text = s.get(..6).ok_or("the value date is missing")?;
    let value_date = yymmdd(value_text)
        .ok_or_else(|| format!("value date {value_text:?} is not a YYMMDD date"))?;
    let mut rest = s.get(6..).unwrap_or("").trim_start();
    let mut entry_date = None;
    if rest.len() >= 4 && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
        let mmdd = &rest[..4];
        entry_date = entry_date_near(value_date, mmdd);
        if entry_date.is_none() {
            return Err(format!("entry date {mmdd:?} is not an MMDD date"));
        }
        rest = rest[4..].trim_start();
    }
    let mark = if rest.starts_with("RC") || rest.starts_with("RD") {
        &rest[..2]
    } else if rest.starts_with('C') || rest.starts_with('D') {
        &rest[..1]
    } else {
        return Err(format!(
            "debit/credit mark missing at {:?} (expected C, D, RC or RD)",
            rest.chars().take(10).collect::<String>()
        ));
    };
    rest = &rest[mark.len()..];
    // The optional funds code is the third letter of the currency code.
    if rest.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
        rest = &rest[1..];
    }
    let amount_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b',')
        .count();
    let amount_text = &rest[..amount_len];
    let value =
        amount(amount_text).ok_or_else(|| format!("amount {amount_text:?} is not valid"))?;
    rest = &rest[amount_len..];
    let type_len = rest.char_indices().nth(4).map_or(rest.len(), |(i, _)| i);
    let transaction_type = &rest[..type_len];
    if transaction_type.len() < 4
        || !transaction_type.starts_with(|c: char| c.is_ascii_alphabetic())
    {
        return Err(format!(
            "transaction type {transaction_type:?} is not a letter and 3 characters"
        ));
    }
    rest = &rest[type_len..];
    let (customer_ref, bank_ref) = match rest.split_once("//") {
        Some((c, b)) => (c.trim(), b.trim()),
        None => (rest.trim(), ""),
    };
    let supplementary = lines.get(1..).unwrap_or(&[]).join(" ").trim().to_string();
    Ok(StatementLine {
        value_date,
        entry_date,
        mark: mark.to_string(),
        amount: value,
        transaction_type: transaction_type.to_string(),
        customer_ref: customer_ref.to_string(),
        bank_ref: bank_ref.to_string(),
        supplementary,
    })
}

/// The entry date (MMDD) in the year that puts it nearest the value date, since a booking can
/// fall in the year before or after around New Year.
fn entry_date_near(value: NaiveDate, mmdd: &str) -> Option<NaiveDate> {
    let m: u32 = mmdd.get(..2)?.parse().ok()?;
    let d: u32 = mmdd.get(2..4)?.parse().ok()?;
    [value.year() - 1, value.year(), value.year() + 1]
        .into_iter()
        .filter_map(|y| NaiveDate::from_ymd_opt(y, m, d))
        .min_by_key(|c| (*c - value).num_days().abs())
}

struct Reader<'f> {
    file: &'f str,
    parsed: Parsed,
    used_ids: HashMap<String, u32>,
}

impl Reader<'_> {
    fn err(&self, line: usize, message: String) -> FormatError {
        FormatError::new(self.file, Position::Line { line, column: None }, message)
    }

    fn statement(&mut self, s: Statement) {
        if s.entries.is_empty() {
            return;
        }
        let label = if s.reference.is_empty() {
            format!("the statement at line {}", s.line)
        } else {
            format!("statement {} (line {})", s.reference, s.line)
        };
        let mut balance_problem = None;
        let opening = s.opening.as_ref().map(|(l, v)| (*l, parse_balance(v)));
        let closing = s.closing.as_ref().map(|(l, v)| (*l, parse_balance(v)));
        let currency =
            match (&opening, &closing) {
                (Some((_, Ok(b))), _) | (_, Some((_, Ok(b)))) => b.currency,
                _ => {
                    let why = match (&opening, &closing) {
                        (Some((l, Err(e))), _) => format!(":60F: at line {l}: {e}"),
                        (_, Some((l, Err(e)))) => format!(":62F: at line {l}: {e}"),
                        _ => "it has no :60F: or :62F: balance".to_string(),
                    };
                    let e = self.err(s.line, format!(
                    "{label} has no readable balance to take the currency from ({why}); its \
                     {} statement lines were skipped",
                    s.entries.len()
                ));
                    self.parsed.errors.push(e);
                    return;
                }
            };
        for (l, b) in [&opening, &closing].into_iter().flatten() {
            if let Err(e) = b {
                balance_problem = Some(format!(
                    "{label}: the balance at line {l} is unreadable: {e}"
                ));
            }
        }
        let exponent = minor_unit_exponent(currency);
        let first_payment = self.parsed.payments.len();
        // None once the sum overflows, which only absurd amounts can make happen.
        let mut movement = Some(Decimal::ZERO);
        let mut all_read = true;
        for (seq, entry) in s.entries.iter().enumerate() {
            let line = match parse_61(&entry.field.lines) {
                Ok(l) => l,
                Err(m) => {
                    all_read = false;
                    let e = self.err(
                        entry.field.line,
                        format!(":61: statement line: {m}; the line was skipped"),
                    );
                    self.parsed.errors.push(e);
                    continue;
                }
            };
            let (direction, sign, reversal) = match line.mark.as_str() {
                "C" => (Direction::Credit, Decimal::ONE, None),
                "D" => (Direction::Debit, Decimal::NEGATIVE_ONE, None),
                "RC" => (
                    Direction::Debit,
                    Decimal::NEGATIVE_ONE,
                    Some("reversal of a credit (RC)"),
                ),
                _ => (
                    Direction::Credit,
                    Decimal::ONE,
                    Some("reversal of a debit (RD)"),
                ),
            };
            movement = movement.and_then(|m| m.checked_add(sign * line.amount));
            let mut amount = line.amount;
            if amount.scale() < exponent {
                amount.rescale(exponent);
            }
            let narrative = narrative(&entry.narrative);
            let mut warnings = Vec::new();
            if let Some(r) = reversal {
                warnings.push(r.to_string());
            }
            if line.transaction_type.get(1..) == Some("RTI") {
                // SWIFT code RTI: a returned item, money bouncing back rather than a payment.
                warnings.push(format!(
                    "returned item (transaction type {})",
                    line.transaction_type
                ));
            }
            if line.amount.is_zero() {
                warnings.push("zero amount: an information line, not a money movement".into());
            }
            if let Some(note) = &narrative.return_note {
                warnings.push(note.clone());
            }
            let payment_id = self.payment_id(&s, &line, &narrative, seq + 1, &mut warnings);
            let mut free_text = Vec::new();
            let mut account = narrative.account.clone();
            if !line.supplementary.is_empty() {
                if account.is_none() && looks_like_iban(&line.supplementary) {
                    account = Some(line.supplementary.clone());
                } else {
                    free_text.push(line.supplementary.clone());
                }
            }
            free_text.extend(narrative.free_text.iter().cloned());
            self.parsed.payments.push(Payment {
                payment_id,
                format: FORMAT.to_string(),
                direction,
                payment_date: line.entry_date.or(Some(line.value_date)),
                amount,
                currency,
                payer: Payer {
                    name: narrative.name.clone(),
                    account,
                },
                lines: narrative.lines.clone(),
                free_text,
                warnings,
                returned: None,
            });
        }
        if let (Some((_, Ok(open))), Some((l, Ok(close))), true, Some(movement)) =
            (&opening, &closing, all_read, movement)
        {
            let computed = open.signed.checked_add(movement);
            if computed.is_some_and(|c| c != close.signed) {
                balance_problem = Some(format!(
                    "{label}: the opening balance {} plus the statement lines {} gives {}, but \
                     the closing balance at line {l} is {}",
                    open.signed,
                    movement,
                    computed.unwrap_or_default(),
                    close.signed
                ));
            }
        }
        if let Some(w) = balance_problem {
            for p in self
                .parsed
                .payments
                .get_mut(first_payment..)
                .unwrap_or_default()
            {
                p.warnings.push(w.clone());
            }
        }
    }

    /// The `:61:` customer reference; for `NONREF`, or one already used in the file, the bank's
    /// reference after `//`; failing both, `account:statement:value date:sequence`. A customer
    /// reference `EREF` (Rabobank) or `KREF+` (German banks) points at that reference in the
    /// `:86:`, which is used instead.
    fn payment_id(
        &mut self,
        s: &Statement,
        line: &StatementLine,
        narrative: &Narrative,
        seq: usize,
        warnings: &mut Vec<String>,
    ) -> String {
        let mut customer = line.customer_ref.clone();
        let pointer = customer.trim_end_matches('+').to_ascii_uppercase();
        if pointer == "EREF" || pointer == "KREF" {
            let named = if pointer == "EREF" {
                &narrative.end_to_end
            } else {
                &narrative.customer_ref
            };
            customer = named.clone().unwrap_or_default();
        }
        let usable = |r: &str| !r.is_empty() && !r.eq_ignore_ascii_case("NONREF");
        let mut candidates = Vec::new();
        if usable(&customer) {
            candidates.push(customer.clone());
        }
        if usable(&line.bank_ref) {
            candidates.push(line.bank_ref.clone());
        }
        let synthetic = format!(
            "{}:{}:{}:{seq}",
            s.account,
            s.number,
            line.value_date.format("%y%m%d")
        );
        let chosen = candidates
            .iter()
            .find(|c| !self.used_ids.contains_key(c.as_str()))
            .cloned()
            .unwrap_or_else(|| synthetic.clone());
        if usable(&customer) && chosen != customer {
            warnings.push(format!(
                "the :61: reference {customer:?} repeats in the file; payment_id is {chosen:?}"
            ));
        }
        let n = self.used_ids.entry(chosen.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            chosen
        } else {
            let id = format!("{chosen}#{n}");
            self.used_ids.insert(id.clone(), 1);
            id
        }
    }
}

fn looks_like_iban(s: &str) -> bool {
    let b = s.as_bytes();
    (15..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// :86: narratives
// ---------------------------------------------------------------------------------------------

/// What an `:86:` narrative says about the counterparty and the remittance.
#[derive(Default, Debug)]
pub(crate) struct Narrative {
    pub(crate) name: Option<String>,
    pub(crate) account: Option<String>,
    pub(crate) end_to_end: Option<String>,
    pub(crate) customer_ref: Option<String>,
    /// What the bank says marks the entry as a return or reversal.
    pub(crate) return_note: Option<String>,
    pub(crate) lines: Vec<RemittanceLine>,
    pub(crate) free_text: Vec<String>,
}

impl Narrative {
    fn reference(&mut self, r: &str) {
        let r = r.trim();
        if r.is_empty() || r.eq_ignore_ascii_case("NOTPROVIDED") || r.eq_ignore_ascii_case("NONREF")
        {
            return;
        }
        if !self.lines.iter().any(|l| l.reference.as_deref() == Some(r)) {
            self.lines.push(RemittanceLine {
                reference: Some(r.to_string()),
                ..Default::default()
            });
        }
    }

    fn text(&mut self, t: &str) {
        let t = t.trim();
        if !t.is_empty() {
            self.free_text.push(t.to_string());
        }
    }
}

/// Reads an `:86:` narrative in whichever dialect it is written.
pub(crate) fn narrative(lines: &[String]) -> Narrative {
    let Some(first) = lines.first() else {
        return Narrative::default();
    };
    let head = first.trim_start();
    let b = head.as_bytes();
    let gvc = b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit);
    if gvc && b.get(3) == Some(&b'?') && &head[..3] != "999" {
        return german(&lines.concat());
    }
    let mut n = Narrative::default();
    if gvc && &head[..3] == "999" {
        // Code 999: unstructured text after the code.
        let mut rest = vec![head[3..].to_string()];
        rest.extend(lines[1..].iter().cloned());
        n.text(&rest.join("\n"));
        return n;
    }
    if head.starts_with('/') {
        if let Some(n) = slash_codes(&lines.concat()) {
            return n;
        }
    }
    let text: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !l.trim().is_empty())
        .collect();
    n.text(&text.join("\n"));
    n
}

/// The SEPA keys German banks put in the purpose subfields `?20`–`?29`.
/// `MTLG:` (Mitteilung) is no SEPA key, but banks append the return message with it.
const SEPA_KEYS: [&str; 13] = [
    "EREF+", "KREF+", "MREF+", "CRED+", "DEBT+", "SVWZ+", "ABWA+", "ABWE+", "COAM+", "OAMT+",
    "IBAN+", "BIC+", "MTLG:",
];

/// The German layout: a three-digit transaction code, then `?NN` subfields: `?00` booking
/// text, `?20`–`?29` and `?60`–`?63` purpose, `?30` bank code or BIC, `?31` account or IBAN,
/// `?32`–`?33` counterparty name, `?38` IBAN. The lines wrap at a fixed width, so they are
/// joined without a separator before the subfields are split.
fn german(text: &str) -> Narrative {
    let mut n = Narrative::default();
    let body = text.trim_start().get(3..).unwrap_or("");
    let mut purpose: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let (mut bank, mut account, mut iban) = (None, None, None);
    for (code, value) in subfields(body) {
        match code {
            20..=29 | 60..=63 => purpose.push(value),
            30 => bank = Some(value.trim().to_string()),
            31 => account = Some(value.trim().to_string()),
            32 | 33 => names.push(value),
            0 => {
                let up = value.to_uppercase();
                if ["RETOURE", "RUECK", "RÜCK", "STORNO"]
                    .iter()
                    .any(|w| up.contains(w))
                {
                    n.return_note = Some(format!("the bank books this as {:?}", value.trim()));
                }
            }
            38 => iban = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let purpose = join_wrapped(&purpose);
    let name = join_wrapped(&names);
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if !name.is_empty() {
        n.name = Some(name);
    }
    n.account = match (
        iban,
        account.filter(|a| !a.is_empty()),
        bank.filter(|b| !b.is_empty()),
    ) {
        (Some(i), _, _) if !i.is_empty() => Some(i),
        (_, Some(a), _) if looks_like_iban(&a) => Some(a),
        (_, Some(a), Some(b)) => Some(format!("{b}:{a}")),
        (_, Some(a), None) => Some(a),
        _ => None,
    };
    // Split the purpose at the SEPA keys.
    let mut sections: Vec<(&str, String)> = Vec::new();
    let mut i = 0;
    let mut start = 0;
    let mut key = "";
    while i < purpose.len() {
        if let Some(k) = SEPA_KEYS.iter().find(|k| purpose[i..].starts_with(*k)) {
            sections.push((key, purpose[start..i].to_string()));
            key = k;
            i += k.len();
            start = i;
        } else {
            i += purpose[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    sections.push((key, purpose[start..].to_string()));
    for (key, value) in sections {
        let value = value.trim();
        match key {
            "EREF+" => {
                n.end_to_end = Some(value.to_string()).filter(|v| !v.is_empty());
                n.reference(value);
            }
            "KREF+" => {
                n.customer_ref = Some(value.to_string()).filter(|v| !v.is_empty());
                n.reference(value);
            }
            "MREF+" | "CRED+" | "DEBT+" | "IBAN+" | "BIC+" | "COAM+" | "OAMT+" | "ABWE+" => {}
            _ => n.text(value),
        }
    }
    n
}

/// Joins wrapped subfields. German subfields hold 27 characters, so a full one was cut
/// mid-word and joins directly, while any other length ended a word and gets a space.
fn join_wrapped(parts: &[&str]) -> String {
    let mut out = String::new();
    let mut previous_full = true;
    for part in parts {
        if !out.is_empty() && !previous_full && !out.ends_with(' ') && !part.starts_with(' ') {
            out.push(' ');
        }
        out.push_str(part);
        previous_full = part.chars().count() == 27;
    }
    out
}

/// The `?NN` subfields of a German narrative (after the transaction code), in order. A `?` not
/// followed by two digits is text.
pub(crate) fn subfields(s: &str) -> Vec<(u8, &str)> {
    let b = s.as_bytes();
    let marks: Vec<usize> = (0..b.len())
        .filter(|&i| {
            b[i] == b'?'
                && b.get(i + 1).is_some_and(u8::is_ascii_digit)
                && b.get(i + 2).is_some_and(u8::is_ascii_digit)
        })
        .collect();
    marks
        .iter()
        .enumerate()
        .map(|(k, &m)| {
            let end = marks.get(k + 1).copied().unwrap_or(b.len());
            let code = (b[m + 1] - b'0') * 10 + (b[m + 2] - b'0');
            (code, s.get(m + 3..end).unwrap_or(""))
        })
        .collect()
}

/// The top-level codes of the `/CODE/value/` layout (Rabobank, ING, ABN AMRO SEPA).
const SLASH_CODES: [&str; 22] = [
    "TRTP", "CNTP", "IBAN", "BIC", "NAME", "EREF", "KREF", "MREF", "REMI", "ISDT", "CSID", "MARF",
    "BENM", "ORDP", "ADDR", "PREF", "RTRN", "PURP", "ULTC", "ULTD", "ULTB", "SVWZ",
];

/// The `/CODE/value/` layout, or `None` when no known code appears.
fn slash_codes(text: &str) -> Option<Narrative> {
    let pieces: Vec<&str> = text.trim().split('/').collect();
    let mut fields: Vec<(&str, Vec<&str>)> = Vec::new();
    for piece in pieces.iter().skip(1) {
        if SLASH_CODES.contains(piece) {
            fields.push((piece, Vec::new()));
        } else if let Some(last) = fields.last_mut() {
            last.1.push(piece);
        } else {
            return None;
        }
    }
    if fields.is_empty() {
        return None;
    }
    let mut n = Narrative::default();
    for (code, parts) in fields {
        let value = parts.join("/");
        let value = value.trim_matches('/').trim();
        match code {
            "NAME" if n.name.is_none() && !value.is_empty() => {
                n.name = Some(value.to_string());
            }
            "IBAN" if n.account.is_none() && !value.is_empty() => {
                n.account = Some(value.to_string());
            }
            "CNTP" => {
                // account/BIC/name/city
                let mut sub = parts.iter().map(|s| s.trim());
                if let Some(a) = sub.next().filter(|a| !a.is_empty()) {
                    n.account.get_or_insert_with(|| a.to_string());
                }
                let _bic = sub.next();
                if let Some(name) = sub.next().filter(|s| !s.is_empty()) {
                    n.name.get_or_insert_with(|| name.to_string());
                }
            }
            "EREF" => {
                if !value.is_empty() {
                    n.end_to_end = Some(value.to_string());
                }
                n.reference(value);
            }
            "KREF" => {
                n.customer_ref = Some(value.to_string()).filter(|v| !v.is_empty());
                n.reference(value);
            }
            "REMI" => {
                if let Some(t) = value
                    .strip_prefix("USTD//")
                    .or_else(|| value.strip_prefix("USTD/"))
                {
                    n.text(t.trim_matches('/'));
                } else if let Some(s) = value.strip_prefix("STRD/") {
                    // STRD/CUR/<issuer>/<reference>: the creditor reference is the last part.
                    if let Some(r) = s
                        .split('/')
                        .map(str::trim)
                        .rfind(|p| !p.is_empty() && *p != "CUR")
                    {
                        n.reference(r);
                    }
                } else {
                    n.text(value);
                }
            }
            "SVWZ" | "RTRN" | "PURP" if !value.is_empty() => {
                n.text(&format!("{code}/{value}"));
            }
            _ => {}
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests;
