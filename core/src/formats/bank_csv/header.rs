//! Cells and header names (decoded, folded for comparison, a currency code taken out of a
//! header), and finding the header row and the delimiter under which it reads as a table.

use super::records::{Record, Records};
use super::vocabulary::{MAX_NAME_CHARS, Role, role_of};
use super::{DELIMITERS, MAX_PREAMBLE};
use crate::domain::{Currency, ReferenceKind};
use std::borrow::Cow;

/// A cell as text: UTF-8 when it is, else Windows-1252, which is what European banks' exports
/// are when they are not UTF-8. Decided per cell, since a byte sequence that is valid UTF-8 in a
/// Windows-1252 file is vanishingly rare. Trimmed, byte-order mark included.
pub(super) fn cell_text(bytes: &[u8]) -> Cow<'_, str> {
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

pub(super) fn known_currency(code: &str) -> Option<Currency> {
    KNOWN_CURRENCIES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(code))
        .and_then(|c| c.parse().ok())
}

/// A header name folded, with a currency it names taken off: `Betrag (EUR)` → (`betrag`, EUR),
/// `Montant euros` → (`montant`, EUR), `Umsatz in EUR` → (`umsatz`, EUR).
pub(super) fn header_name(raw: &str) -> (String, Option<Currency>) {
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
// Finding the header
// ---------------------------------------------------------------------------------------------

/// Which amount column a row's amount comes from, for the fee warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AmountKind {
    Plain,
    Gross,
    Net,
}

/// Where everything is, read from the header row.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) delimiter: u8,
    /// The header's 0-based record index: the records before it are the preamble.
    pub(super) header_record: usize,
    /// The header names as written.
    pub(super) columns: Vec<String>,
    pub(super) date: usize,
    pub(super) amount: Option<(usize, AmountKind)>,
    pub(super) net: Option<usize>,
    pub(super) debit: Option<usize>,
    pub(super) credit: Option<usize>,
    pub(super) indicator: Option<usize>,
    pub(super) currency: Option<usize>,
    /// A currency named in an amount column's header (`Betrag (EUR)`).
    pub(super) header_currency: Option<Currency>,
    /// A currency code alone in a preamble cell (`Devise : EUR`).
    pub(super) preamble_currency: Option<Currency>,
    pub(super) name: Option<usize>,
    pub(super) account: Option<usize>,
    pub(super) id: Option<usize>,
    pub(super) references: Vec<(usize, ReferenceKind)>,
    pub(super) descriptions: Vec<usize>,
    pub(super) fee: Option<usize>,
    pub(super) status: Option<usize>,
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

    pub(super) fn column_name(&self, i: usize) -> &str {
        self.columns.get(i).map(String::as_str).unwrap_or("?")
    }
}

/// What the head of a file is.
pub(super) enum Sniffed {
    Bank(Box<Layout>),
    /// A table whose header names no date and amount: refused with its columns listed.
    Table {
        line: usize,
        columns: Vec<String>,
    },
    Nothing,
}

pub(super) fn sniff(head: &[u8]) -> Sniffed {
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
pub(super) fn preamble_currency<'a>(
    rows: impl Iterator<Item = Vec<Cow<'a, str>>>,
) -> Option<Currency> {
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
