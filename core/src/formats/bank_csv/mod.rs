//! Bank and payment-portal CSV exports: a bank's "download as CSV", a PayPal activity or
//! statement report. One payment per transaction row.
//!
//! No two banks agree on the layout, so the reader finds its way from the content
//! (docs/formats/bank_csv.md has the whole vocabulary and the rules):
//!
//! - the **header** is the first row (after at most [`MAX_PREAMBLE`] rows) whose cells name a
//!   date column and an amount column, or debit/credit columns, in English, French, German,
//!   Dutch, Spanish or Italian; the rows above it are a preamble (account number, period,
//!   currency), which is read only for a currency code;
//! - the **delimiter** (`,` `;` tab) is the one under which such a header is found;
//! - the **decimal mark** is settled for the whole file from its amount cells, and the **date
//!   order** (day-first or month-first) for the whole date column, before any row is read, so
//!   that `03/04/2024` means the same date in every row.
//!
//! The file is read twice, once to settle those conventions and once to read the rows, so that
//! memory does not grow with it.

use super::{Format, FormatError, Parsed, Position};
use crate::domain::{Currency, Direction, Payer, Payment, ReferenceKind, RemittanceLine};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, Read};
use std::path::Path;

/// How many rows may come before the header; a preamble is a few lines of account metadata.
pub const MAX_PREAMBLE: usize = 50;

/// How much of the file is searched for the header.
const HEAD_BYTES: u64 = 64 * 1024;

/// The delimiters tried, in the order that breaks a tie.
const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// How many recent transaction ids are remembered to flag a repeat: bounded, like BAI2's, so
/// that memory stays flat on a long export.
const RECENT_IDS: usize = 65_536;

/// Whether the head of a file is a bank or portal CSV export: a header row naming a date and an
/// amount (or debit/credit) column. A table whose header names neither is also taken, so that
/// [`parse`] can refuse it with an error listing its columns rather than leave it to the
/// free-text reader, which would find a misleading figure in it or none at all.
pub fn looks_like(head: &[u8]) -> bool {
    !matches!(sniff(head), Sniffed::Nothing)
}

/// Reads a bank or portal CSV export; `file` names it in errors and in the fallback payment
/// ids. A file with no header row naming a date and an amount column is an `Err`; a row with a
/// bad date or amount is kept in [`Parsed::errors`] and the other rows go on.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let mut parsed = Parsed::default();
    read_with(
        &mut || Ok::<_, std::io::Error>(bytes),
        file,
        &mut |r| match r {
            Ok(p) => parsed.payments.push(p),
            Err(e) => parsed.errors.push(e),
        },
    )?;
    Ok(parsed)
}

/// Streams the payments of a bank CSV file at `path` to `on_payment`, in file order. The file
/// is opened twice (conventions, then rows), so memory does not grow with it.
pub(crate) fn for_each_in_path(
    path: &Path,
    file: &str,
    on_payment: &mut dyn FnMut(Result<Payment, FormatError>),
) -> Result<(), FormatError> {
    read_with(
        &mut || std::fs::File::open(path).map(|f| std::io::BufReader::with_capacity(1 << 16, f)),
        file,
        on_payment,
    )
}

fn read_with<R: BufRead>(
    open: &mut dyn FnMut() -> std::io::Result<R>,
    file: &str,
    on_payment: &mut dyn FnMut(Result<Payment, FormatError>),
) -> Result<(), FormatError> {
    let io_error =
        |e: std::io::Error| FormatError::new(file, Position::File, format!("cannot read: {e}"));
    let mut head = Vec::new();
    open()
        .map_err(io_error)?
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    let layout = match sniff(&head) {
        Sniffed::Bank(layout) => *layout,
        Sniffed::Table { line, columns } => {
            let names: Vec<String> = columns.iter().map(|c| format!("{c:?}")).collect();
            return Err(FormatError::new(
                file,
                Position::Line { line, column: None },
                format!(
                    "a CSV without payment_id (project format) or date and amount columns \
                     (bank export): columns are {}",
                    names.join(", ")
                ),
            ));
        }
        Sniffed::Nothing => {
            return Err(FormatError::new(
                file,
                Position::File,
                format!(
                    "not a bank CSV export: no header row naming a date column and an amount \
                     (or debit/credit) column after at most {MAX_PREAMBLE} rows of preamble"
                ),
            ));
        }
    };
    let conventions = survey(open().map_err(io_error)?, &layout, file)?;
    let stem = Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string());
    let mut rows = Rows {
        layout: &layout,
        conventions: &conventions,
        file,
        stem: &stem,
        recent: RecentIds::default(),
    };
    let mut records = Records::new(layout.delimiter, open().map_err(io_error)?);
    let mut record = Record::default();
    let mut index = 0usize;
    while records.next(&mut record).map_err(io_error)? {
        let this = index;
        index += 1;
        if this <= layout.header_record {
            continue;
        }
        let cells = record.cells();
        if let Some(r) = rows.read(&cells, record.line) {
            on_payment(r);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// The longest record (a quoted field may hold line breaks) before the file is refused: an
/// unbalanced quote would otherwise swallow the rest of the file into one field.
const MAX_RECORD_BYTES: usize = 1 << 20;

/// One CSV record and the line (1-based) it starts on.
#[derive(Clone, Default)]
struct Record {
    line: usize,
    /// Every field's bytes, one after the other; `ends` says where each stops.
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Record {
    fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(p) => *self.ends.get(p)?,
            None => 0,
        };
        self.bytes.get(start..end)
    }

    fn fields(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.ends.len()).filter_map(|i| self.get(i))
    }

    /// The fields as text (see [`cell_text`]).
    fn cells(&self) -> Vec<Cow<'_, str>> {
        self.fields().map(cell_text).collect()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn end_field(&mut self) {
        self.ends.push(self.bytes.len());
    }
}

/// A quote-aware CSV record reader that counts physical lines itself, so that an error names
/// the line a person sees in an editor (the `csv` crate's record positions lag by one line in
/// CRLF files). RFC 4180 quoting, leniently: a quote opens a quoted field only at the start of
/// a field (after blanks); text after a closing quote is kept; a quote inside an unquoted field
/// is a character. Lines that are empty (or blank) between records are skipped.
struct Records<R> {
    input: R,
    delimiter: u8,
    /// Physical lines read so far.
    lines: usize,
    raw: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lex {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote seen inside a quoted field: a doubled quote or the field's end.
    QuoteInQuoted,
    AfterQuoted,
}

impl<R: BufRead> Records<R> {
    fn new(delimiter: u8, input: R) -> Self {
        Records {
            input,
            delimiter,
            lines: 0,
            raw: Vec::new(),
        }
    }

    /// Reads the next record into `record`; `false` at the end of the input.
    fn next(&mut self, record: &mut Record) -> std::io::Result<bool> {
        record.clear();
        let mut state = Lex::FieldStart;
        let mut started = false;
        let mut size = 0usize;
        loop {
            self.raw.clear();
            if self.input.read_until(b'\n', &mut self.raw)? == 0 {
                if !started {
                    return Ok(false);
                }
                // End of input inside a quoted field: the record ends there.
                record.end_field();
                return Ok(true);
            }
            self.lines += 1;
            let mut line: &[u8] = &self.raw;
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            if !started {
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                started = true;
                record.line = self.lines;
            }
            size += line.len();
            if size > MAX_RECORD_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the record from line {} runs past {MAX_RECORD_BYTES} bytes \
                         (an unbalanced quote?)",
                        record.line
                    ),
                ));
            }
            state = self.lex(line, state, record);
            if state == Lex::Quoted {
                // A line break inside a quoted field belongs to the field.
                record.bytes.push(b'\n');
                continue;
            }
            record.end_field();
            return Ok(true);
        }
    }
}

impl<R> Records<R> {
    /// Splits one physical line into `record`'s fields, from `state`; returns the state at the
    /// line's end. Runs of plain bytes are copied whole between the bytes that matter (the
    /// delimiter outside quotes, the quote inside them), found with memchr.
    fn lex(&self, line: &[u8], mut state: Lex, record: &mut Record) -> Lex {
        let delimiter = self.delimiter;
        let mut rest = line;
        loop {
            match state {
                Lex::Unquoted | Lex::AfterQuoted => match memchr::memchr(delimiter, rest) {
                    Some(i) => {
                        record
                            .bytes
                            .extend_from_slice(rest.get(..i).unwrap_or_default());
                        record.end_field();
                        rest = rest.get(i + 1..).unwrap_or_default();
                        state = Lex::FieldStart;
                    }
                    None => {
                        record.bytes.extend_from_slice(rest);
                        return state;
                    }
                },
                Lex::Quoted => match memchr::memchr(b'"', rest) {
                    Some(i) => {
                        record
                            .bytes
                            .extend_from_slice(rest.get(..i).unwrap_or_default());
                        rest = rest.get(i + 1..).unwrap_or_default();
                        state = Lex::QuoteInQuoted;
                    }
                    None => {
                        record.bytes.extend_from_slice(rest);
                        return state;
                    }
                },
                Lex::FieldStart | Lex::QuoteInQuoted => {
                    let Some((&b, tail)) = rest.split_first() else {
                        return state;
                    };
                    rest = tail;
                    state = match (state, b) {
                        (_, d) if d == delimiter => {
                            record.end_field();
                            Lex::FieldStart
                        }
                        (Lex::FieldStart, b'"') => {
                            // Blanks before an opening quote are not part of the field.
                            let start = record.ends.last().copied().unwrap_or(0);
                            record.bytes.truncate(start);
                            Lex::Quoted
                        }
                        (Lex::FieldStart, b' ') => {
                            record.bytes.push(b);
                            Lex::FieldStart
                        }
                        (Lex::FieldStart, _) => {
                            record.bytes.push(b);
                            Lex::Unquoted
                        }
                        // A doubled quote inside quotes is one quote.
                        (_, b'"') => {
                            record.bytes.push(b'"');
                            Lex::Quoted
                        }
                        // Text after a closing quote is kept, leniently.
                        _ => {
                            record.bytes.push(b);
                            Lex::AfterQuoted
                        }
                    };
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cells and header names
// ---------------------------------------------------------------------------------------------

/// A cell as text: UTF-8 when it is, else Windows-1252, which is what European banks' exports
/// are when they are not UTF-8. Decided per cell, since a byte sequence that is valid UTF-8 in a
/// Windows-1252 file is vanishingly rare. Trimmed, byte-order mark included.
fn cell_text(bytes: &[u8]) -> Cow<'_, str> {
    let pad = |c: char| c.is_whitespace() || c == '\u{feff}';
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s.trim_matches(pad)),
        Err(_) => {
            let s: String = bytes.iter().map(|&b| windows_1252(b)).collect();
            Cow::Owned(s.trim_matches(pad).to_string())
        }
    }
}

fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH
            .get(usize::from(b - 0x80))
            .copied()
            .unwrap_or('\u{fffd}'),
        _ => char::from(b),
    }
}

/// A header name folded for lookup: lower case, accents dropped, every run of punctuation or
/// space one space. `Date opération` → `date operation`, `Naam / Omschrijving` →
/// `naam omschrijving`, `N° d'opération` → `n d operation`.
pub(crate) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        let folded: &str = match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => "a",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => "o",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ÿ' => "y",
            'ß' => "ss",
            'œ' => "oe",
            'æ' => "ae",
            c if c.is_ascii_alphanumeric() => {
                if gap && !out.is_empty() {
                    out.push(' ');
                }
                gap = false;
                out.push(c);
                continue;
            }
            _ => {
                gap = true;
                continue;
            }
        };
        if gap && !out.is_empty() {
            out.push(' ');
        }
        gap = false;
        out.push_str(folded);
    }
    out
}

/// ISO 4217 codes common enough in bank exports to be recognised in a header (`Betrag (EUR)`),
/// a preamble (`Devise : EUR`) or beside an amount (`12,50 EUR`). A currency column takes any
/// three-letter code.
const KNOWN_CURRENCIES: [&str; 34] = [
    "EUR", "USD", "GBP", "CHF", "CAD", "AUD", "NZD", "JPY", "CNY", "HKD", "SGD", "SEK", "NOK",
    "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "ISK", "TRY", "ZAR", "MXN", "BRL", "INR", "ILS",
    "AED", "SAR", "KRW", "THB", "MYR", "IDR", "PHP", "RUB",
];

fn known_currency(code: &str) -> Option<Currency> {
    KNOWN_CURRENCIES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(code))
        .and_then(|c| c.parse().ok())
}

/// A header name folded, with a currency it names taken off: `Betrag (EUR)` → (`betrag`, EUR),
/// `Montant euros` → (`montant`, EUR), `Umsatz in EUR` → (`umsatz`, EUR).
fn header_name(raw: &str) -> (String, Option<Currency>) {
    let folded = fold(raw);
    let mut words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    let mut currency = None;
    if words.len() > 1 {
        let last = words.last().copied().unwrap_or("");
        let named = match last {
            "euro" | "euros" => "EUR".parse().ok(),
            w if w.len() == 3 => known_currency(w),
            _ => None,
        };
        if named.is_some() {
            currency = named;
            words.pop();
            if words.len() > 1 && matches!(words.last(), Some(&"in") | Some(&"en")) {
                words.pop();
            }
        }
    }
    if currency.is_none() && raw.contains('€') {
        currency = "EUR".parse().ok();
    } else if currency.is_none() && raw.contains('£') {
        currency = "GBP".parse().ok();
    }
    (words.join(" "), currency)
}

// ---------------------------------------------------------------------------------------------
// The column vocabulary
// ---------------------------------------------------------------------------------------------

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Booking or transaction date.
    Date,
    /// Value date: used only when there is no booking date.
    ValueDate,
    /// A signed amount.
    Amount,
    /// PayPal's gross: the payer's payment before the processor's fee.
    Gross,
    /// What reached the account after the fee.
    Net,
    Debit,
    Credit,
    /// A column saying debit or credit (`Af Bij`, `D/C`, `Soll/Haben`) for an unsigned amount.
    Indicator,
    Currency,
    Name,
    Account,
    TransactionId,
    Reference(ReferenceKind),
    Description,
    Fee,
    Status,
}

/// Header names, folded (see [`fold`]), and what they mean. Matched whole, so that
/// `Shipping and Handling Amount` is not an amount and `Download start date : 01/04/2020` in a
/// preamble is not a date. PayPal's `Reference Txn ID` (a link to another transaction) and
/// `Balance`/`Solde`/`Saldo` columns are deliberately absent.
const VOCABULARY: &[(Role, &[&str])] = &[
    (
        Role::Date,
        &[
            "date",
            "datum",
            "date operation",
            "date d operation",
            "date de operation",
            "date de l operation",
            "date comptable",
            "date de comptabilisation",
            "transaction date",
            "trans date",
            "booking date",
            "posting date",
            "posted date",
            "date posted",
            "buchungstag",
            "buchungsdatum",
            "transactiedatum",
            "boekdatum",
            "boekingsdatum",
            "fecha",
            "fecha operacion",
            "data",
            "data operazione",
            "data contabile",
        ],
    ),
    (
        Role::ValueDate,
        &[
            "value date",
            "date de valeur",
            "date valeur",
            "valutadatum",
            "valuta",
            "wertstellung",
            "wertstellung valuta",
            "wertstellungsdatum",
            "rentedatum",
            "valeurdatum",
            "fecha valor",
            "data valuta",
        ],
    ),
    (
        Role::Amount,
        &[
            "amount",
            "transaction amount",
            "payment amount",
            "amount paid",
            "montant",
            "montant operation",
            "montant de l operation",
            "betrag",
            "umsatz",
            "bedrag",
            "importe",
            "importo",
        ],
    ),
    (
        Role::Gross,
        &[
            "gross",
            "gross amount",
            "brut",
            "montant brut",
            "brutto",
            "bruttobetrag",
        ],
    ),
    (
        Role::Net,
        &["net", "net amount", "montant net", "netto", "nettobetrag"],
    ),
    (
        Role::Debit,
        &[
            "debit",
            "debits",
            "debit amount",
            "montant debit",
            "withdrawal",
            "withdrawals",
            "withdrawal amount",
            "money out",
            "paid out",
            "soll",
            "debet",
            "cargo",
            "addebiti",
        ],
    ),
    (
        Role::Credit,
        &[
            "credit",
            "credits",
            "credit amount",
            "montant credit",
            "deposit",
            "deposits",
            "deposit amount",
            "money in",
            "paid in",
            "haben",
            "abono",
            "accrediti",
        ],
    ),
    (
        Role::Indicator,
        &[
            "af bij",
            "bij af",
            "debit credit",
            "credit debit",
            "d c",
            "c d",
            "dc",
            "cr dr",
            "dr cr",
            "soll haben",
            "s h",
            "debit credit indicator",
            "credit debit indicator",
            "sens",
        ],
    ),
    (
        Role::Currency,
        &[
            "currency",
            "currency code",
            "ccy",
            "devise",
            "monnaie",
            "wahrung",
            "waehrung",
            "munt",
            "moneda",
        ],
    ),
    (
        Role::Name,
        &[
            "name",
            "nom",
            "naam",
            "payer",
            "payer name",
            "counterparty",
            "counterparty name",
            "customer",
            "customer name",
            "debtor",
            "debtor name",
            "remitter",
            "ordering party",
            "tiers",
            "nom du tiers",
            "naam tegenpartij",
            "tegenpartij",
            "naam omschrijving",
            "auftraggeber",
            "auftraggeber empfanger",
            "begunstigter auftraggeber",
            "beguenstigter zahlungspflichtiger",
            "begunstigter zahlungspflichtiger",
            "zahlungspflichtiger",
            "name zahlungsbeteiligter",
            "name des zahlungsbeteiligten",
        ],
    ),
    (
        Role::Account,
        &[
            "iban",
            "counterparty account",
            "counterparty iban",
            "payer account",
            "compte contrepartie",
            "tegenrekening",
            "tegenrekening iban",
            "tegenrekening iban bban",
            "kontonummer iban",
            "iban zahlungsbeteiligter",
        ],
    ),
    (
        Role::TransactionId,
        &[
            "transaction id",
            "transaction number",
            "transaction no",
            "transaction reference",
            "txn id",
            "id",
            "bank reference",
            "operation number",
            "numero operation",
            "numero d operation",
            "numero de l operation",
            "n operation",
            "n d operation",
            "reference operation",
            "transaktions id",
            "transaktionsnummer",
            "transactie id",
            "volgnr",
        ],
    ),
    (
        Role::Reference(ReferenceKind::Invoice),
        &[
            "invoice",
            "invoice number",
            "invoice no",
            "invoice nr",
            "invoice id",
            "invoice ref",
            "invoice reference",
            "facture",
            "numero de facture",
            "numero facture",
            "n facture",
            "n de facture",
            "reference facture",
            "rechnung",
            "rechnungsnummer",
            "rechnungsnr",
            "rechnungs nr",
            "factuur",
            "factuurnummer",
            "factuurnr",
            "factura",
            "numero factura",
            "fattura",
            "numero fattura",
        ],
    ),
    (
        Role::Reference(ReferenceKind::PurchaseOrder),
        &[
            "po",
            "po number",
            "purchase order",
            "purchase order number",
            "bon de commande",
            "numero de commande",
            "bestellnummer",
            "inkoopordernummer",
        ],
    ),
    (
        Role::Reference(ReferenceKind::Unknown),
        &[
            "reference",
            "ref",
            "payment reference",
            "customer reference",
            "your reference",
            "remittance reference",
            "structured reference",
            "end to end reference",
            "end to end id",
            "endtoendid",
            "reference client",
            "referenz",
            "kundenreferenz",
            "kundenreferenz end to end",
            "referentie",
            "kenmerk",
            "betalingskenmerk",
            "referencia",
            "riferimento",
        ],
    ),
    (
        Role::Description,
        &[
            "description",
            "label",
            "detail",
            "details",
            "subject",
            "note",
            "notes",
            "memo",
            "narrative",
            "narration",
            "purpose",
            "payment details",
            "transaction details",
            "remittance information",
            "remittance info",
            "information",
            "particulars",
            "libelle",
            "libelle court",
            "libelle long",
            "libelle operation",
            "detail de l ecriture",
            "communication",
            "motif",
            "verwendungszweck",
            "buchungstext",
            "beschreibung",
            "omschrijving",
            "omschrijving 1",
            "omschrijving 2",
            "omschrijving 3",
            "mededelingen",
            "concepto",
            "causale",
        ],
    ),
    (
        Role::Fee,
        &[
            "fee",
            "fees",
            "fee amount",
            "transaction fee",
            "frais",
            "commission",
            "gebuhr",
            "gebuhren",
            "gebuehr",
            "kosten",
        ],
    ),
    (Role::Status, &["status", "statut"]),
];

fn role_of(folded: &str) -> Option<Role> {
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, Role>> =
        std::sync::OnceLock::new();
    BY_NAME
        .get_or_init(|| {
            VOCABULARY
                .iter()
                .flat_map(|(role, names)| names.iter().map(move |n| (*n, *role)))
                .collect()
        })
        .get(folded)
        .copied()
}

/// The longest header name worth folding: no name of the vocabulary is near it, and data rows
/// scanned for a header are mostly longer or numeric.
const MAX_NAME_CHARS: usize = 48;

// ---------------------------------------------------------------------------------------------
// Finding the header
// ---------------------------------------------------------------------------------------------

/// Which amount column a row's amount comes from, for the fee warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AmountKind {
    Plain,
    Gross,
    Net,
}

/// Where everything is, read from the header row.
#[derive(Clone, Debug)]
struct Layout {
    delimiter: u8,
    /// The header's 0-based record index: the records before it are the preamble.
    header_record: usize,
    /// The header names as written.
    columns: Vec<String>,
    date: usize,
    amount: Option<(usize, AmountKind)>,
    net: Option<usize>,
    debit: Option<usize>,
    credit: Option<usize>,
    indicator: Option<usize>,
    currency: Option<usize>,
    /// A currency named in an amount column's header (`Betrag (EUR)`).
    header_currency: Option<Currency>,
    /// A currency code alone in a preamble cell (`Devise : EUR`).
    preamble_currency: Option<Currency>,
    name: Option<usize>,
    account: Option<usize>,
    id: Option<usize>,
    references: Vec<(usize, ReferenceKind)>,
    descriptions: Vec<usize>,
    fee: Option<usize>,
    status: Option<usize>,
}

impl Layout {
    /// From a row of header cells, when they name a date and an amount or debit/credit column.
    /// The first column of each role wins; a booking date beats a value date, and a plain
    /// amount beats a gross, which beats a net.
    fn from_header(cells: &[Cow<str>], delimiter: u8, header_record: usize) -> Option<Layout> {
        let named: Vec<(Option<Role>, Option<Currency>)> = cells
            .iter()
            .map(|c| {
                // Dates and amounts, most of the cells of the rows searched, are no names.
                let data = c.starts_with(|ch: char| {
                    ch.is_ascii_digit() || matches!(ch, '-' | '+' | '(' | '$' | '€' | '£')
                });
                if data || c.len() > MAX_NAME_CHARS * 2 || c.chars().count() > MAX_NAME_CHARS {
                    return (None, None);
                }
                let (name, currency) = header_name(c);
                (role_of(&name), currency)
            })
            .collect();
        let first = |role: Role| named.iter().position(|(r, _)| *r == Some(role));
        let date = first(Role::Date).or_else(|| first(Role::ValueDate))?;
        let amount = first(Role::Amount)
            .map(|i| (i, AmountKind::Plain))
            .or_else(|| first(Role::Gross).map(|i| (i, AmountKind::Gross)))
            .or_else(|| first(Role::Net).map(|i| (i, AmountKind::Net)));
        let debit = first(Role::Debit);
        let credit = first(Role::Credit);
        if amount.is_none() && debit.is_none() && credit.is_none() {
            return None;
        }
        let header_currency = [amount.map(|(i, _)| i), debit, credit]
            .into_iter()
            .flatten()
            .find_map(|i| named.get(i).and_then(|(_, c)| *c));
        let mut references = Vec::new();
        let mut descriptions = Vec::new();
        for (i, (role, _)) in named.iter().enumerate() {
            match role {
                Some(Role::Reference(kind)) => references.push((i, *kind)),
                Some(Role::Description) => descriptions.push(i),
                _ => {}
            }
        }
        Some(Layout {
            delimiter,
            header_record,
            columns: cells.iter().map(|c| c.to_string()).collect(),
            date,
            amount,
            net: first(Role::Net).filter(|&i| Some(i) != amount.map(|(a, _)| a)),
            debit,
            credit,
            indicator: first(Role::Indicator),
            currency: first(Role::Currency),
            header_currency,
            preamble_currency: None,
            name: first(Role::Name),
            account: first(Role::Account),
            id: first(Role::TransactionId),
            references,
            descriptions,
            fee: first(Role::Fee),
            status: first(Role::Status),
        })
    }

    /// How many columns the reader understood: the delimiter that understands most wins.
    fn understood(&self) -> usize {
        [
            Some(self.date),
            self.amount.map(|(i, _)| i),
            self.net,
            self.debit,
            self.credit,
            self.indicator,
            self.currency,
            self.name,
            self.account,
            self.id,
            self.fee,
            self.status,
        ]
        .into_iter()
        .flatten()
        .count()
            + self.references.len()
            + self.descriptions.len()
    }

    fn column_name(&self, i: usize) -> &str {
        self.columns.get(i).map(String::as_str).unwrap_or("?")
    }
}

/// What the head of a file is.
enum Sniffed {
    Bank(Box<Layout>),
    /// A table whose header names no date and amount: refused with its columns listed.
    Table {
        line: usize,
        columns: Vec<String>,
    },
    Nothing,
}

fn sniff(head: &[u8]) -> Sniffed {
    let mut best: Option<Layout> = None;
    let mut table: Option<(usize, Vec<String>)> = None;
    for delimiter in DELIMITERS {
        let mut records = Records::new(delimiter, head);
        // Kept raw and decoded where needed: most rows of most files are looked at only once.
        let mut rows: Vec<Record> = Vec::new();
        let mut record = Record::default();
        let mut found = None;
        // The header may be row MAX_PREAMBLE (0-based), and a table header wants the row after it.
        while rows.len() <= MAX_PREAMBLE + 1 {
            match records.next(&mut record) {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
            if rows.len() <= MAX_PREAMBLE {
                found = Layout::from_header(&record.cells(), delimiter, rows.len());
            }
            rows.push(std::mem::take(&mut record));
            if found.is_some() {
                break;
            }
        }
        if let Some(mut layout) = found {
            let preamble = rows.iter().take(layout.header_record).map(Record::cells);
            layout.preamble_currency = preamble_currency(preamble);
            let better = best.as_ref().is_none_or(|b| {
                (layout.understood(), std::cmp::Reverse(layout.header_record))
                    > (b.understood(), std::cmp::Reverse(b.header_record))
            });
            if better {
                best = Some(layout);
            }
        } else if let Some((line, cells)) = rows.windows(2).find_map(|w| match w {
            [row, next] => {
                let cells = row.cells();
                is_table_header(delimiter, &cells, &next.cells()).then(|| {
                    let names: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
                    (row.line, names)
                })
            }
            _ => None,
        }) && table.as_ref().is_none_or(|(_, c)| cells.len() > c.len())
        {
            table = Some((line, cells));
        }
    }
    match (best, table) {
        (Some(layout), _) => Sniffed::Bank(Box::new(layout)),
        (None, Some((line, columns))) => Sniffed::Table { line, columns },
        (None, None) => Sniffed::Nothing,
    }
}

/// A row that looks like the header of a table: short names without digits, every one given,
/// and a next row with as many cells. A memo's comma-separated sentence has digits, empty
/// pieces or a ragged next line; three cells are asked of a comma-separated one.
fn is_table_header(delimiter: u8, cells: &[Cow<str>], next: &[Cow<str>]) -> bool {
    let least = if delimiter == b',' { 3 } else { 2 };
    cells.len() >= least
        && next.len() == cells.len()
        && cells.iter().all(|c| {
            !c.is_empty()
                && c.chars().count() <= 40
                && c.chars().any(char::is_alphabetic)
                && !c.chars().any(|ch| ch.is_ascii_digit())
        })
}

/// A currency code standing alone in a preamble cell (`: EUR`, `Devise : EUR`, or `EUR` beside a
/// `Currency` cell). Two different ones say nothing.
fn preamble_currency<'a>(rows: impl Iterator<Item = Vec<Cow<'a, str>>>) -> Option<Currency> {
    let mut found: Option<Currency> = None;
    for cell in rows.flatten() {
        let value = cell.rsplit(':').next().unwrap_or("").trim();
        if value.len() == 3
            && value.bytes().all(|b| b.is_ascii_uppercase())
            && let Some(c) = known_currency(value)
        {
            if found.is_some_and(|f| f != c) {
                return None;
            }
            found = Some(c);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Conventions: decimal mark and date order, settled for the whole file
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DecimalMark {
    Dot,
    Comma,
}

impl DecimalMark {
    fn char(self) -> char {
        match self {
            DecimalMark::Dot => '.',
            DecimalMark::Comma => ',',
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DateOrder {
    DayFirst,
    MonthFirst,
}

impl DateOrder {
    fn date(self, first: u32, second: u32, year: i32) -> Option<NaiveDate> {
        match self {
            DateOrder::DayFirst => NaiveDate::from_ymd_opt(year, second, first),
            DateOrder::MonthFirst => NaiveDate::from_ymd_opt(year, first, second),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            DateOrder::DayFirst => "day-first (DD/MM/YYYY)",
            DateOrder::MonthFirst => "month-first (MM/DD/YYYY)",
        }
    }
}

#[derive(Clone, Debug)]
struct Conventions {
    decimal: DecimalMark,
    order: DateOrder,
    /// Set when the date column fits both orders, so that each payment read that way says so.
    order_warning: Option<String>,
}

#[derive(Default)]
struct Span {
    min: Option<NaiveDate>,
    max: Option<NaiveDate>,
}

impl Span {
    fn add(&mut self, d: NaiveDate) {
        self.min = Some(self.min.map_or(d, |m| m.min(d)));
        self.max = Some(self.max.map_or(d, |m| m.max(d)));
    }

    fn days(&self) -> i64 {
        match (self.min, self.max) {
            (Some(a), Some(b)) => (b - a).num_days(),
            _ => 0,
        }
    }
}

/// Evidence gathered over the whole file.
#[derive(Default)]
struct Evidence {
    comma_decimal: usize,
    dot_decimal: usize,
    /// Date cells of the `NN/NN/YY(YY)` shape, and how many of them each order reads.
    pairs: usize,
    day_first_ok: usize,
    month_first_ok: usize,
    day_first_span: Span,
    month_first_span: Span,
    dotted: usize,
}

/// The first pass: reads every row after the header for the decimal mark and the date order.
fn survey<R: BufRead>(input: R, layout: &Layout, file: &str) -> Result<Conventions, FormatError> {
    let mut ev = Evidence::default();
    let mut records = Records::new(layout.delimiter, input);
    let mut record = Record::default();
    let mut index = 0usize;
    let money_columns: Vec<usize> = [
        layout.amount.map(|(i, _)| i),
        layout.net,
        layout.debit,
        layout.credit,
        layout.fee,
    ]
    .into_iter()
    .flatten()
    .collect();
    while records
        .next(&mut record)
        .map_err(|e| FormatError::new(file, Position::File, format!("cannot read: {e}")))?
    {
        let this = index;
        index += 1;
        if this <= layout.header_record {
            continue;
        }
        for &i in &money_columns {
            if let Some(cell) = record.get(i) {
                match decimal_evidence(&cell_text(cell)) {
                    Some(DecimalMark::Comma) => ev.comma_decimal += 1,
                    Some(DecimalMark::Dot) => ev.dot_decimal += 1,
                    None => {}
                }
            }
        }
        if let Some(cell) = record.get(layout.date)
            && let DateCell::Pair {
                first,
                second,
                year,
                dotted,
            } = read_date(&cell_text(cell))
        {
            ev.pairs += 1;
            ev.dotted += usize::from(dotted);
            if let Some(d) = DateOrder::DayFirst.date(first, second, year) {
                ev.day_first_ok += 1;
                ev.day_first_span.add(d);
            }
            if let Some(d) = DateOrder::MonthFirst.date(first, second, year) {
                ev.month_first_ok += 1;
                ev.month_first_span.add(d);
            }
        }
    }
    Ok(decide(&ev, layout.delimiter))
}

/// The rules of docs/formats/bank_csv.md, in order.
fn decide(ev: &Evidence, delimiter: u8) -> Conventions {
    let decimal = if ev.comma_decimal != ev.dot_decimal {
        if ev.comma_decimal > ev.dot_decimal {
            DecimalMark::Comma
        } else {
            DecimalMark::Dot
        }
    } else if delimiter == b';' {
        // Semicolons are what spreadsheets write where the comma is the decimal mark.
        DecimalMark::Comma
    } else {
        DecimalMark::Dot
    };
    let mut order_warning = None;
    let order = if ev.day_first_ok != ev.month_first_ok {
        // Some date reads only one way (a first field above 12 means day-first, a second field
        // above 12 month-first): the order that reads more of the column wins, and the rows it
        // cannot read are errors.
        if ev.day_first_ok > ev.month_first_ok {
            DateOrder::DayFirst
        } else {
            DateOrder::MonthFirst
        }
    } else if ev.pairs == 0 {
        DateOrder::DayFirst
    } else {
        let (d, m) = (ev.day_first_span.days(), ev.month_first_span.days());
        let (order, why) = if d != m {
            // An export covers a statement period: the reading that gives the shorter period
            // is the likely one (01/04 and 02/04 are one day apart, not a month).
            let order = if d < m {
                DateOrder::DayFirst
            } else {
                DateOrder::MonthFirst
            };
            (
                order,
                format!(
                    "it spans {} where the other order spans {}",
                    days(d.min(m)),
                    days(d.max(m))
                ),
            )
        } else if ev.dotted > 0 {
            (
                DateOrder::DayFirst,
                "dates written with dots are day-first".to_string(),
            )
        } else if decimal == DecimalMark::Comma {
            (
                DateOrder::DayFirst,
                "the file writes decimal commas".to_string(),
            )
        } else {
            (
                DateOrder::MonthFirst,
                "the file writes decimal points".to_string(),
            )
        };
        order_warning = Some(format!(
            "date read {}: no date in the column shows the order (no field above 12), and {why}",
            order.describe()
        ));
        order
    };
    Conventions {
        decimal,
        order,
        order_warning,
    }
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_string()
    } else {
        format!("{n} days")
    }
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum DateCell {
    /// Year first (`2024-03-05`, `2024/03/05`, `20240305`): no doubt about the order.
    Exact(NaiveDate),
    /// `NN/NN/YYYY` (or `-`, `.`, two-digit year): the order is the column's.
    Pair {
        first: u32,
        second: u32,
        year: i32,
        dotted: bool,
    },
    Bad,
}

/// A date cell; a time after it (`2024-03-05 13:30`, `2024-03-05T13:30:00Z`) is ignored.
/// A two-digit year is 20YY below 70 and 19YY from 70.
fn read_date(text: &str) -> DateCell {
    let token = text.split_whitespace().next().unwrap_or("");
    let token = match token.split_once('T') {
        Some((d, _)) if d.len() == 10 => d,
        _ => token,
    };
    let number = |s: &str| -> Option<u32> {
        if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if token.len() == 8 && token.bytes().all(|b| b.is_ascii_digit()) {
        let part = |r: std::ops::Range<usize>| token.get(r).and_then(number);
        return match (part(0..4), part(4..6), part(6..8)) {
            (Some(y), Some(m), Some(d)) => i32::try_from(y)
                .ok()
                .and_then(|y| NaiveDate::from_ymd_opt(y, m, d))
                .map_or(DateCell::Bad, DateCell::Exact),
            _ => DateCell::Bad,
        };
    }
    let Some(sep) = token.chars().find(|c| matches!(c, '-' | '/' | '.')) else {
        return DateCell::Bad;
    };
    let mut parts = token.split(sep);
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return DateCell::Bad;
    };
    let (Some(x), Some(y), Some(z)) = (number(a), number(b), number(c)) else {
        return DateCell::Bad;
    };
    if a.len() == 4 && b.len() <= 2 && c.len() <= 2 {
        return i32::try_from(x)
            .ok()
            .and_then(|year| NaiveDate::from_ymd_opt(year, y, z))
            .map_or(DateCell::Bad, DateCell::Exact);
    }
    if a.len() <= 2 && b.len() <= 2 && (c.len() == 4 || c.len() == 2) {
        let Ok(mut year) = i32::try_from(z) else {
            return DateCell::Bad;
        };
        if c.len() == 2 {
            year += if year < 70 { 2000 } else { 1900 };
        }
        return DateCell::Pair {
            first: x,
            second: y,
            year,
            dotted: sep == '.',
        };
    }
    DateCell::Bad
}

// ---------------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------------

/// An amount cell taken apart: its sign, the digits and separators, a currency written with it.
struct MoneyParts<'a> {
    negative: bool,
    core: &'a str,
    currency: Option<Currency>,
}

/// Peels signs, parentheses, `CR`/`DR`, currency symbols and codes off both ends of a cell:
/// `-1.234,56`, `1.234,56-`, `(1,234.56)`, `+31070,11`, `$1,234.56`, `12,50 EUR`,
/// `1,234.56 DR`.
fn split_money(text: &str) -> Result<MoneyParts<'_>, &'static str> {
    let mut s = text.trim();
    let mut signs = 0;
    let mut negative = false;
    let mut open = false;
    let mut close = false;
    let mut currency = None;
    let mut marked = false;
    // Each round takes at most one thing off each end; six rounds cover every legal combination.
    for _ in 0..6 {
        let before = s.len();
        if let Some(r) = s.strip_prefix('(') {
            if open {
                return Err("two opening parentheses");
            }
            open = true;
            s = r.trim_start();
        } else if let Some(r) = s.strip_prefix(['-', '−']) {
            signs += 1;
            negative = true;
            s = r.trim_start();
        } else if let Some(r) = s.strip_prefix('+') {
            signs += 1;
            s = r.trim_start();
        } else if let Some(r) = strip_symbol_front(s, &mut currency) {
            s = r;
        }
        if let Some(r) = s.strip_suffix(')') {
            if close {
                return Err("two closing parentheses");
            }
            close = true;
            s = r.trim_end();
        } else if let Some(r) = s.strip_suffix(['-', '−']) {
            signs += 1;
            negative = true;
            s = r.trim_end();
        } else if let Some(r) = s.strip_suffix('+') {
            signs += 1;
            s = r.trim_end();
        } else if let Some((r, debit)) = strip_cr_dr(s) {
            if marked {
                return Err("two CR/DR marks");
            }
            marked = true;
            negative ^= debit;
            s = r;
        } else if let Some(r) = strip_symbol_back(s, &mut currency) {
            s = r;
        }
        if s.len() == before {
            break;
        }
    }
    if signs > 1 {
        return Err("more than one sign");
    }
    if open != close {
        return Err("unbalanced parentheses");
    }
    if open {
        negative = !negative;
    }
    Ok(MoneyParts {
        negative,
        core: s,
        currency,
    })
}

fn strip_symbol_front<'a>(s: &'a str, currency: &mut Option<Currency>) -> Option<&'a str> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if let Some(symbol) = symbol_currency(c) {
        *currency = symbol.or(*currency);
        return Some(chars.as_str().trim_start());
    }
    let code = s.get(..3)?;
    let rest = s.get(3..)?;
    if rest.starts_with(|c: char| c.is_alphabetic()) {
        return None;
    }
    let cur = known_currency(code)?;
    *currency = Some(cur);
    Some(rest.trim_start())
}

fn strip_symbol_back<'a>(s: &'a str, currency: &mut Option<Currency>) -> Option<&'a str> {
    let c = s.chars().next_back()?;
    if let Some(symbol) = symbol_currency(c) {
        *currency = symbol.or(*currency);
        return Some(s.get(..s.len() - c.len_utf8())?.trim_end());
    }
    let cut = s.len().checked_sub(3)?;
    let code = s.get(cut..)?;
    let rest = s.get(..cut)?;
    if rest.ends_with(|c: char| c.is_alphabetic()) {
        return None;
    }
    let cur = known_currency(code)?;
    *currency = Some(cur);
    Some(rest.trim_end())
}

/// `Some(None)` for a symbol that names no one currency (`$`).
fn symbol_currency(c: char) -> Option<Option<Currency>> {
    match c {
        '€' => Some("EUR".parse().ok()),
        '£' => Some("GBP".parse().ok()),
        '$' | '¥' => Some(None),
        _ => None,
    }
}

/// A trailing `CR` or `DR` after the digits; `true` for `DR`.
fn strip_cr_dr(s: &str) -> Option<(&str, bool)> {
    let cut = s.len().checked_sub(2)?;
    let mark = s.get(cut..)?;
    let rest = s.get(..cut)?;
    if !rest.ends_with(|c: char| c.is_ascii_digit() || c.is_whitespace()) {
        return None;
    }
    let debit = if mark.eq_ignore_ascii_case("DR") {
        true
    } else if mark.eq_ignore_ascii_case("CR") {
        false
    } else {
        return None;
    };
    Some((rest.trim_end(), debit))
}

fn is_group_separator(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\'' | '’')
}

/// What one amount cell says about the decimal mark, if anything: with both `.` and `,` the
/// last is the mark; one kind written twice is a thousands separator; written once, it is the
/// mark unless exactly three digits follow (`1,234` could be either).
fn decimal_evidence(text: &str) -> Option<DecimalMark> {
    let core = split_money(text).ok()?.core;
    let last_dot = core.rfind('.');
    let last_comma = core.rfind(',');
    match (last_dot, last_comma) {
        (Some(d), Some(c)) => Some(if d > c {
            DecimalMark::Dot
        } else {
            DecimalMark::Comma
        }),
        (Some(_), None) => one_kind(core, '.', DecimalMark::Dot, DecimalMark::Comma),
        (None, Some(_)) => one_kind(core, ',', DecimalMark::Comma, DecimalMark::Dot),
        (None, None) => None,
    }
}

fn one_kind(
    core: &str,
    sep: char,
    as_mark: DecimalMark,
    other: DecimalMark,
) -> Option<DecimalMark> {
    if core.matches(sep).count() > 1 {
        return Some(other);
    }
    let after = core.rsplit(sep).next()?;
    let digits = after.chars().filter(char::is_ascii_digit).count();
    (digits != 3).then_some(as_mark)
}

/// A signed amount in the file's decimal mark. The other of `.`/`,`, spaces (also no-break
/// spaces) and apostrophes may separate thousands, in groups of three.
fn read_amount(text: &str, mark: DecimalMark) -> Result<(Decimal, Option<Currency>), String> {
    let MoneyParts {
        negative,
        core,
        currency,
    } = split_money(text).map_err(|e| format!("not an amount {text:?}: {e}"))?;
    let bad = |why: &str| format!("not an amount {text:?}: {why}");
    let mark_char = mark.char();
    let thousands = match mark {
        DecimalMark::Dot => ',',
        DecimalMark::Comma => '.',
    };
    let (int, frac) = match core.split_once(mark_char) {
        Some((i, f)) => (i, Some(f)),
        None => (core, None),
    };
    if int.is_empty() {
        return Err(bad("no digits before the decimal mark"));
    }
    let mut digits = String::with_capacity(core.len());
    let mut groups = int.split(|c: char| c == thousands || is_group_separator(c));
    let first = groups.next().unwrap_or("");
    let grouped = int.contains(|c: char| c == thousands || is_group_separator(c));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(first) || (grouped && first.len() > 3) {
        return Err(bad(&format!(
            "expected digits with {} as the decimal mark",
            describe_mark(mark)
        )));
    }
    digits.push_str(first);
    for g in groups {
        if g.len() != 3 || !all_digits(g) {
            return Err(bad("thousands must be grouped by three"));
        }
        digits.push_str(g);
    }
    if let Some(f) = frac {
        if !all_digits(f) {
            return Err(bad(&format!(
                "expected digits after the decimal {}",
                describe_mark(mark)
            )));
        }
        digits.push('.');
        digits.push_str(f);
    }
    if digits.len() > 28 {
        return Err(bad("too many digits"));
    }
    let value = Decimal::from_str_exact(&digits).map_err(|e| bad(&e.to_string()))?;
    Ok((if negative { -value } else { value }, currency))
}

fn describe_mark(mark: DecimalMark) -> &'static str {
    match mark {
        DecimalMark::Dot => "point",
        DecimalMark::Comma => "comma",
    }
}

/// A currency cell: a code in any case, or a symbol that names one.
fn read_currency(text: &str) -> Option<Currency> {
    match text {
        "€" => "EUR".parse().ok(),
        "£" => "GBP".parse().ok(),
        _ => text.parse().ok(),
    }
}

/// What a debit/credit indicator cell says; `None` when it says neither.
fn read_indicator(text: &str) -> Option<Direction> {
    match fold(text).as_str() {
        "d" | "dr" | "db" | "dbit" | "debit" | "debet" | "af" | "s" | "soll" | "withdrawal" => {
            Some(Direction::Debit)
        }
        "c" | "cr" | "crdt" | "credit" | "bij" | "h" | "haben" | "deposit" => {
            Some(Direction::Credit)
        }
        _ => match text {
            "-" => Some(Direction::Debit),
            "+" => Some(Direction::Credit),
            _ => None,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Footers
// ---------------------------------------------------------------------------------------------

/// Words a balance, total or footer label starts with.
const FOOTER_WORDS: [&str; 20] = [
    "solde",
    "balance",
    "total",
    "totals",
    "totaal",
    "saldo",
    "endsaldo",
    "anfangssaldo",
    "kontostand",
    "summe",
    "subtotal",
    "sous",
    "beginsaldo",
    "eindsaldo",
    "opening",
    "closing",
    "ending",
    "beginning",
    "nouveau",
    "ancien",
];

/// Words that may follow a footer word in a label (`Balance at start of period`,
/// `Solde au 31/03`, `Saldo per 31-12`, `Kontostand am`), or make it one (`Opening balance`).
const FOOTER_FOLLOWERS: [&str; 16] = [
    "at", "as", "on", "of", "au", "du", "le", "de", "per", "am", "vom", "zum", "balance", "solde",
    "saldo", "total",
];

/// Whether a cell is a footer label: a footer word alone or followed by a date word
/// (`Solde au …`, `Balance at …`), `Opening balance`, `Nouveau solde`, `Sous-total`, `Total
/// débit`. Kept narrow because a row with a valid date is a transaction unless it says it is a
/// balance: `TOTAL ENERGIES` in a description must not drop a payment.
fn is_footer_label(cell: &str) -> bool {
    if !starts_with_footer_word(cell) {
        return false;
    }
    let folded = fold(cell);
    let mut words = folded.split(' ');
    let Some(first) = words.next() else {
        return false;
    };
    if !FOOTER_WORDS.contains(&first) {
        return false;
    }
    match words.next() {
        None => !matches!(
            first,
            "opening" | "closing" | "ending" | "beginning" | "nouveau" | "ancien" | "sous"
        ),
        Some(w) => {
            FOOTER_FOLLOWERS.contains(&w)
                || matches!(
                    (first, w),
                    (
                        "sous" | "total" | "totaal",
                        "total" | "debit" | "credit" | "debet" | "des"
                    )
                )
        }
    }
}

/// Whether a row whose date cell is not a date is a footer: any cell starts with a footer word.
fn is_loose_footer(cells: &[Cow<str>]) -> bool {
    cells.iter().any(|c| starts_with_footer_word(c))
}

/// Whether the first word of a cell is a footer word, without allocating: every row's every
/// cell is asked.
fn starts_with_footer_word(cell: &str) -> bool {
    let end = cell
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(cell.len());
    let word = cell.get(..end).unwrap_or("");
    FOOTER_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word))
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// The transaction ids of the last [`RECENT_IDS`] rows.
#[derive(Default)]
struct RecentIds {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl RecentIds {
    /// Remembers `id`; `false` when it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= RECENT_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.to_string());
        self.set.insert(id.to_string());
        true
    }
}

/// The second pass: one payment per transaction row.
struct Rows<'a> {
    layout: &'a Layout,
    conventions: &'a Conventions,
    file: &'a str,
    stem: &'a str,
    recent: RecentIds,
}

/// A row's money: direction, positive amount, and a currency written with it.
struct Money {
    direction: Direction,
    amount: Decimal,
    currency: Option<Currency>,
    warning: Option<String>,
}

impl Rows<'_> {
    /// `None` for a row that is skipped (blank, no date, a balance or total).
    fn read(&mut self, cells: &[Cow<str>], line: usize) -> Option<Result<Payment, FormatError>> {
        if cells.iter().all(|c| c.is_empty()) {
            return None;
        }
        let l = self.layout;
        let cell = |i: usize| cells.get(i).map(|c| c.as_ref()).unwrap_or("");
        let date_text = cell(l.date);
        if date_text.is_empty() {
            return None;
        }
        let mut warnings = Vec::new();
        let date = match read_date(date_text) {
            DateCell::Exact(d) => d,
            DateCell::Pair {
                first,
                second,
                year,
                ..
            } => match self.conventions.order.date(first, second, year) {
                Some(d) => {
                    warnings.extend(self.conventions.order_warning.clone());
                    d
                }
                None => {
                    return Some(Err(self.error(
                        line,
                        l.date,
                        format!(
                            "not a date {date_text:?} read {} as the rest of the column",
                            self.conventions.order.describe()
                        ),
                    )));
                }
            },
            DateCell::Bad if is_loose_footer(cells) => return None,
            DateCell::Bad => {
                return Some(Err(self.error(
                    line,
                    l.date,
                    format!(
                        "not a date {date_text:?} (expected YYYY-MM-DD, DD/MM/YYYY or MM/DD/YYYY)"
                    ),
                )));
            }
        };
        if cells.iter().any(|c| is_footer_label(c)) {
            return None;
        }
        let money = match self.money(cells, line) {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        warnings.extend(money.warning);
        let currency = match l.currency.map(cell).filter(|c| !c.is_empty()) {
            Some(text) => match read_currency(text) {
                Some(c) => c,
                None => {
                    let col = l.currency.unwrap_or(0);
                    return Some(Err(self.error(
                        line,
                        col,
                        format!("not a currency code {text:?}"),
                    )));
                }
            },
            None => match money.currency.or(l.header_currency).or(l.preamble_currency) {
                Some(c) => c,
                None => {
                    warnings.push("no currency in the file: USD assumed".to_string());
                    Currency::USD
                }
            },
        };
        let id_text = l.id.map(cell).unwrap_or("");
        let payment_id = if id_text.is_empty() {
            warnings.push(format!(
                "no transaction id: payment id made from the file name and line ({}:{line})",
                self.stem
            ));
            format!("{}:{line}", self.stem)
        } else if self.recent.insert(id_text) {
            id_text.to_string()
        } else {
            warnings.push(format!(
                "transaction id {id_text:?} repeats an earlier row: the line is added to it"
            ));
            format!("{id_text}#{line}")
        };
        if let Some(fee) = l.fee.map(cell).filter(|f| !f.is_empty())
            && let Ok((value, _)) = read_amount(fee, self.conventions.decimal)
            && !value.is_zero()
        {
            warnings.push(match l.amount {
                Some((_, AmountKind::Net)) => format!("amount is the net, after a fee of {fee}"),
                _ => {
                    let net = l
                        .net
                        .map(cell)
                        .filter(|n| !n.is_empty())
                        .map(|n| format!("; net {n}"))
                        .unwrap_or_default();
                    format!("amount is the gross; the processor's fee was {fee}{net}")
                }
            });
        }
        if let Some(status) = l.status.map(cell).filter(|s| !s.is_empty())
            && !matches!(
                fold(status).as_str(),
                "completed"
                    | "complete"
                    | "termine"
                    | "booked"
                    | "gebucht"
                    | "executed"
                    | "settled"
                    | "cleared"
                    | "posted"
                    | "paid"
                    | "success"
                    | "succeeded"
            )
        {
            warnings.push(format!("status {status:?}"));
        }
        let mut lines: Vec<RemittanceLine> = Vec::new();
        for &(i, kind) in &l.references {
            let r = cell(i);
            // SEPA's placeholders for "no reference" are not references.
            let placeholder = ["NOTPROVIDED", "NOT PROVIDED", "NONREF"]
                .iter()
                .any(|p| p.eq_ignore_ascii_case(r));
            if !r.is_empty()
                && !placeholder
                && !lines.iter().any(|x| x.reference.as_deref() == Some(r))
            {
                lines.push(RemittanceLine {
                    reference: Some(r.to_string()),
                    reference_kind: kind,
                    ..Default::default()
                });
            }
        }
        let free_text = l
            .descriptions
            .iter()
            .map(|&i| cell(i))
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        let text = |i: Option<usize>| i.map(cell).filter(|s| !s.is_empty()).map(str::to_string);
        Some(Ok(Payment {
            payment_id,
            format: Format::BankCsv.name().to_string(),
            direction: money.direction,
            payment_date: Some(date),
            amount: money.amount,
            currency,
            payer: Payer {
                name: text(l.name),
                account: text(l.account),
            },
            lines,
            free_text,
            warnings,
            returned: None,
        }))
    }

    /// The row's amount and direction: the amount column when it is filled (its sign, or the
    /// indicator column, gives the direction), else the debit or credit column. `Ok(None)` for
    /// a row with no amount that is a footer.
    fn money(&self, cells: &[Cow<str>], line: usize) -> Result<Option<Money>, FormatError> {
        let l = self.layout;
        let mark = self.conventions.decimal;
        let cell = |i: usize| cells.get(i).map(|c| c.as_ref()).unwrap_or("");
        let parse = |i: usize| -> Result<Option<(Decimal, Option<Currency>)>, FormatError> {
            let text = cell(i);
            if text.is_empty() {
                return Ok(None);
            }
            read_amount(text, mark)
                .map(Some)
                .map_err(|m| self.error(line, i, m))
        };
        if let Some((i, _)) = l.amount
            && let Some((value, currency)) = parse(i)?
        {
            let by_sign = if value.is_sign_negative() && !value.is_zero() {
                Direction::Debit
            } else {
                Direction::Credit
            };
            let said = l.indicator.and_then(|k| read_indicator(cell(k)));
            let warning = match said {
                Some(d) if d != by_sign && by_sign == Direction::Debit => Some(format!(
                    "{} says credit but the amount is negative: read as a credit",
                    l.indicator.map_or("?", |k| l.column_name(k))
                )),
                _ => None,
            };
            return Ok(Some(Money {
                direction: said.unwrap_or(by_sign),
                amount: value.abs(),
                currency,
                warning,
            }));
        }
        let debit = l.debit.map(parse).transpose()?.flatten();
        let credit = l.credit.map(parse).transpose()?.flatten();
        // A sign inside a debit or credit column is only how the bank writes it: the column
        // says the direction.
        let (direction, (value, currency)) = match (debit, credit) {
            (Some(d), Some(c)) if d.0.is_zero() => (Direction::Credit, c),
            (Some(d), Some(c)) if c.0.is_zero() => (Direction::Debit, d),
            (Some(_), Some(_)) => {
                let col = l.debit.unwrap_or(0);
                return Err(self.error(
                    line,
                    col,
                    "both the debit and the credit column hold an amount".to_string(),
                ));
            }
            (Some(d), None) => (Direction::Debit, d),
            (None, Some(c)) => (Direction::Credit, c),
            (None, None) => {
                if cells.iter().any(|c| is_footer_label(c)) || is_loose_footer(cells) {
                    return Ok(None);
                }
                let col = l
                    .amount
                    .map(|(i, _)| i)
                    .or(l.debit)
                    .or(l.credit)
                    .unwrap_or(0);
                let names: Vec<&str> = [l.amount.map(|(i, _)| i), l.debit, l.credit]
                    .into_iter()
                    .flatten()
                    .map(|i| l.column_name(i))
                    .collect();
                return Err(self.error(line, col, format!("no amount (in {})", names.join(", "))));
            }
        };
        Ok(Some(Money {
            direction,
            amount: value.abs(),
            currency,
            warning: None,
        }))
    }

    /// An error at a row's cell, naming its column by header.
    fn error(&self, line: usize, column: usize, message: String) -> FormatError {
        FormatError::new(
            self.file,
            Position::Line {
                line,
                column: Some(column + 1),
            },
            format!("{}: {message}", self.layout.column_name(column)),
        )
    }
}

#[cfg(test)]
mod tests;
