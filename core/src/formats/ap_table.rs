//! The remittance table of an AP system's payment advice, laid out on a page: a header row
//! naming the columns (`Invoice / Date / Amount / Discount / Paid` and their synonyms), a row
//! per document paid, and often a total. Readers that place text on a page (the PDF reader)
//! give rows of cells with their horizontal extent; this module finds the header, puts each
//! cell under the column it stands beneath, and makes one advice of the lines.
//!
//! The columns mean what AP systems mean by them: `Amount` (or `Invoice Amount`, `Gross`) is
//! the document's amount, `Discount` the early-payment discount taken, `Paid` (or `Net`,
//! `Amount Paid`) the cash paid for the line. A table with only an amount column pays that
//! amount; one with an amount and a discount but no paid column pays the amount less the
//! discount. A header repeated on a later page is read again, so each page's columns are its
//! own. Rows under the header that carry no reference or no amount (notes, page footers) are
//! not lines; a row with a reference and an amount that cannot be read is reported with its
//! position, and the other lines go on.

use super::{Format, FormatError, Parsed, Position};
use crate::domain::{Direction, Payer, Payment, ReferenceKind, RemittanceLine};
use rust_decimal::Decimal;

/// A run of text on one row, with the horizontal extent it occupies on the page.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cell {
    pub x0: f32,
    pub x1: f32,
    pub text: String,
}

/// One row of a page, its cells left to right.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// 1-based.
    pub page: usize,
    pub cells: Vec<Cell>,
}

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Reference(ReferenceKind),
    Date,
    Gross,
    Discount,
    Paid,
}

/// Header names, folded (lower case, punctuation a space: `Invoice #` is `invoice`).
const VOCABULARY: &[(Role, &[&str])] = &[
    (
        Role::Reference(ReferenceKind::Invoice),
        &[
            "invoice",
            "invoice no",
            "invoice number",
            "invoice nr",
            "invoice id",
            "invoice ref",
            "invoice reference",
            "inv",
            "inv no",
            "inv number",
            "your invoice",
            "your invoice no",
            "your invoice number",
            "vendor invoice",
            "supplier invoice",
            "document",
            "document no",
            "document number",
            "doc no",
            "doc number",
            "facture",
            "rechnung",
            "rechnungsnummer",
        ],
    ),
    (
        Role::Reference(ReferenceKind::PurchaseOrder),
        &["po", "po no", "po number", "purchase order"],
    ),
    (
        Role::Reference(ReferenceKind::Unknown),
        &["reference", "ref", "your reference", "your ref"],
    ),
    (
        Role::Date,
        &[
            "date",
            "invoice date",
            "inv date",
            "document date",
            "doc date",
        ],
    ),
    (
        Role::Gross,
        &[
            "amount",
            "invoice amount",
            "inv amount",
            "gross",
            "gross amount",
            "original amount",
            "document amount",
            "amount due",
        ],
    ),
    (
        Role::Discount,
        &[
            "discount",
            "disc",
            "discount taken",
            "disc taken",
            "discount amount",
            "cash discount",
            "skonto",
            "escompte",
        ],
    ),
    (
        Role::Paid,
        &[
            "paid",
            "amount paid",
            "paid amount",
            "net paid",
            "net",
            "net amount",
            "net payment",
            "payment",
            "payment amount",
            "amount remitted",
        ],
    ),
];

fn role(header: &str) -> Option<Role> {
    let f = super::bank_csv::fold(header);
    VOCABULARY
        .iter()
        .find(|(_, names)| names.contains(&f.as_str()))
        .map(|(r, _)| *r)
}

/// A header: the columns it names, with their extent.
struct Header {
    columns: Vec<(Role, f32, f32)>,
}

impl Header {
    /// A row is a header when it names a reference column and an amount column (paid or gross),
    /// and every cell it names is a distinct role.
    fn of(row: &Row) -> Option<Header> {
        let columns: Vec<(Role, f32, f32)> = row
            .cells
            .iter()
            .filter_map(|c| role(&c.text).map(|r| (r, c.x0, c.x1)))
            .collect();
        let has = |f: &dyn Fn(Role) -> bool| columns.iter().any(|c| f(c.0));
        let reference = has(&|r| matches!(r, Role::Reference(_)));
        let amount = has(&|r| matches!(r, Role::Paid | Role::Gross));
        (reference && amount && columns.len() >= 2).then_some(Header { columns })
    }

    /// The column a cell stands under: the one its extent overlaps most, else the nearest.
    fn column_of(&self, cell: &Cell) -> usize {
        let overlap = |(_, a, b): &(Role, f32, f32)| cell.x1.min(*b) - cell.x0.max(*a);
        self.columns
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(best, most), (i, c)| {
                let o = overlap(c);
                if o > most { (i, o) } else { (best, most) }
            })
            .0
    }

    fn find(&self, pick: impl Fn(Role) -> bool) -> Option<usize> {
        self.columns.iter().position(|c| pick(c.0))
    }
}

/// A money figure as AP printouts write it: `1,234.50`, `$1,234.50`, `USD 1,234.50`, `(25.00)`
/// and `25.00-` (negative), `1.234,50` (decimal comma). `None` for an empty cell, `Err` naming
/// the text for anything else. The digits are read by [`crate::io::parse_money`].
fn money(text: &str) -> Option<Result<Decimal, String>> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let mut s = t.to_string();
    let mut negative = false;
    if let Some(inner) = s.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        negative = true;
        s = inner.to_string();
    }
    if let Some(x) = s.strip_suffix('-') {
        negative = true;
        s = x.to_string();
    }
    let s = s
        .trim()
        .trim_start_matches(['$', '€', '£'])
        .trim_end_matches(['$', '€', '£']);
    // An ISO currency code before or after the figure.
    let s = match s.split_once(' ') {
        Some((c, rest)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => rest,
        Some((rest, c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => rest,
        _ => s,
    }
    .trim();
    // A decimal comma: the last separator is a comma with two digits after it (`1.234,50`,
    // `980,00`); the points before it group thousands.
    let s = match s.rfind([',', '.']) {
        Some(i)
            if s.as_bytes()[i] == b','
                && s.len() - i == 3
                && s[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{}.{}", s[..i].replace('.', ","), &s[i + 1..])
        }
        _ => s.to_string(),
    };
    Some(
        crate::io::parse_money(&s)
            .map(|d| if negative { -d } else { d })
            .map_err(|_| format!("{t:?} is not an amount")),
    )
}

/// Reads the table of an advice laid out in `rows`, as one advice of `format`. Text without a
/// table is read by the free-text reader, so that a letter ("please apply $500.00 to INV 1001")
/// still reads; text without either is an `Err`.
pub(crate) fn read(rows: &[Row], file: &str, format: Format) -> Result<Parsed, FormatError> {
    let text: String = rows
        .iter()
        .map(|r| {
            r.cells
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join("   ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let stem = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut errors = Vec::new();
    let mut lines: Vec<RemittanceLine> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut total: Option<Decimal> = None;
    let mut header: Option<Header> = None;
    let mut before_header: Vec<&Row> = Vec::new();
    let mut found_header = false;
    for (i, row) in rows.iter().enumerate() {
        if let Some(h) = Header::of(row) {
            header = Some(h);
            found_header = true;
            continue;
        }
        let Some(h) = &header else {
            if !found_header {
                before_header.push(row);
            }
            continue;
        };
        let at = |col: usize| {
            FormatError::new(
                file,
                Position::Line {
                    line: i + 1,
                    column: Some(col + 1),
                },
                String::new(),
            )
        };
        let mut cells: Vec<Option<&str>> = vec![None; h.columns.len()];
        for c in &row.cells {
            let k = h.column_of(c);
            cells[k] = Some(match cells[k] {
                // Two cells under one column: the row does not fit the header (a note).
                Some(_) => "\u{0}",
                None => c.text.as_str(),
            });
        }
        let is_total = row
            .cells
            .iter()
            .any(|c| super::bank_csv::fold(&c.text).starts_with("total"));
        if is_total {
            let figure = [Role::Paid, Role::Gross]
                .iter()
                .find_map(|&r| h.find(|x| x == r).and_then(|k| cells[k]))
                .or_else(|| row.cells.last().map(|c| c.text.as_str()));
            if let Some(Ok(t)) = figure.and_then(money) {
                total = Some(t);
            }
            // The table ends at its total; a later header opens another.
            header = None;
            continue;
        }
        let Some(rk) = h.find(|r| matches!(r, Role::Reference(_))) else {
            continue;
        };
        let Some(reference) =
            cells[rk].filter(|r| *r != "\u{0}" && r.chars().any(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        let kind = match h.columns[rk].0 {
            Role::Reference(k) => k,
            _ => ReferenceKind::Unknown,
        };
        let figure = |role: Role| -> Result<Option<Decimal>, FormatError> {
            let Some(k) = h.find(|r| r == role) else {
                return Ok(None);
            };
            match cells[k].filter(|t| *t != "\u{0}").and_then(money) {
                None => Ok(None),
                Some(Ok(d)) => Ok(Some(d)),
                Some(Err(m)) => Err(FormatError {
                    message: format!("page {}: {reference}: {m}", row.page),
                    ..at(k)
                }),
            }
        };
        let (gross, discount, paid) = match (
            figure(Role::Gross),
            figure(Role::Discount),
            figure(Role::Paid),
        ) {
            (Ok(g), Ok(d), Ok(p)) => (g, d.map(|d| d.abs()), p),
            (g, d, p) => {
                errors.extend([g.err(), d.err(), p.err()].into_iter().flatten());
                continue;
            }
        };
        // Figures near Decimal's limit (a hostile file) must be an error, not an overflow.
        let overflow = |k: Option<usize>| FormatError {
            message: format!("page {}: {reference}: the figures overflow", row.page),
            ..at(k.unwrap_or(0))
        };
        let (paid, invoice_amount) = match (paid, gross) {
            (Some(p), g) => (p, g),
            (None, Some(g)) => match discount {
                Some(d) => match g.checked_sub(d) {
                    Some(net) => (net, Some(g)),
                    None => {
                        errors.push(overflow(h.find(|r| r == Role::Gross)));
                        continue;
                    }
                },
                None => (g, None),
            },
            // A reference without an amount is a note or a wrapped description, not a line.
            (None, None) => continue,
        };
        if let (Some(g), Some(d)) = (invoice_amount, discount)
            && g.checked_sub(d) != Some(paid)
        {
            warnings.push(format!(
                "{reference}: amount {g} less discount {d} is not the {paid} paid"
            ));
        }
        lines.push(RemittanceLine {
            reference: Some(reference.to_string()),
            reference_kind: kind,
            amount_paid: Some(paid),
            invoice_amount,
            discount: discount.filter(|d| !d.is_zero()),
            adjustments: vec![],
        });
    }
    if lines.is_empty() {
        if !errors.is_empty() {
            return Ok(Parsed {
                payments: vec![],
                errors,
            });
        }
        // No table: a letter, read as free text.
        let mut parsed = super::text::parse(text.as_bytes(), file).map_err(|e| {
            FormatError::new(
                file,
                Position::File,
                format!(
                    "no remittance table (a header such as Invoice / Date / Amount / Discount / \
                     Paid) and {}",
                    e.message
                ),
            )
        })?;
        for p in &mut parsed.payments {
            p.payment_id = format!("{}:{stem}", format.name());
            p.format = format!("{}/{}", format.name(), p.format);
            p.warnings = vec![format!(
                "{}: no remittance table; read as free text",
                format.name()
            )];
        }
        return Ok(parsed);
    }
    let sum = lines
        .iter()
        .filter_map(|l| l.amount_paid)
        .try_fold(Decimal::ZERO, |a, b| a.checked_add(b))
        .ok_or_else(|| {
            FormatError::new(
                file,
                Position::File,
                "the lines' amounts overflow when added",
            )
        })?;
    let amount = match total {
        Some(t) if t != sum => {
            warnings.push(format!(
                "the lines add up to {sum}, the advice's total says {t}"
            ));
            t
        }
        Some(t) => t,
        None => sum,
    };
    let heading: Vec<String> = before_header
        .iter()
        .map(|r| {
            r.cells
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Ok(Parsed {
        payments: vec![Payment {
            payment_id: format!("{}:{stem}", format.name()),
            format: format.name().to_string(),
            direction: Direction::Credit,
            payment_date: heading.iter().find_map(|l| labelled_date(l)),
            amount,
            currency: super::text::currency_in(&text),
            payer: Payer {
                name: heading.iter().find_map(|l| labelled_payer(l)),
                account: None,
            },
            lines,
            free_text: vec![text],
            warnings,
            returned: None,
        }],
        errors,
    })
}

/// The ISO date of a heading line that names a payment date (`Payment Date: 2026-12-07`).
fn labelled_date(line: &str) -> Option<chrono::NaiveDate> {
    let f = super::bank_csv::fold(line);
    if !(f.contains("payment date") || f.contains("date paid") || f.starts_with("date")) {
        return None;
    }
    line.split_whitespace()
        .find_map(|t| crate::io::parse_date(t.trim_matches([',', ';'])).ok())
}

/// The payer a heading line names (`Payer: Northwind Industrial Supply Inc`).
fn labelled_payer(line: &str) -> Option<String> {
    let (label, rest) = line.split_once(':')?;
    let name = rest.trim();
    matches!(
        super::bank_csv::fold(label).as_str(),
        "payer" | "paid by" | "remitter" | "from" | "customer" | "company"
    )
    .then(|| name.to_string())
    .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn row(page: usize, cells: &[(f32, &str)]) -> Row {
        Row {
            page,
            cells: cells
                .iter()
                .map(|&(x, t)| Cell {
                    x0: x,
                    x1: x + t.len() as f32 * 5.0,
                    text: t.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn money_reads_what_ap_printouts_write() {
        for (text, want) in [
            ("1,234.50", dec!(1234.50)),
            ("$1,234.50", dec!(1234.50)),
            ("USD 980.00", dec!(980.00)),
            ("980.00 EUR", dec!(980.00)),
            ("(25.00)", dec!(-25.00)),
            ("25.00-", dec!(-25.00)),
            ("1.234,50", dec!(1234.50)),
            ("980,00", dec!(980.00)),
        ] {
            assert_eq!(money(text), Some(Ok(want)), "{text}");
        }
        assert_eq!(money("  "), None);
        assert!(matches!(money("12.3.4"), Some(Err(_))));
        assert!(matches!(money("n/a"), Some(Err(_))));
    }

    #[test]
    fn header_synonyms_and_columns_by_position() {
        let rows = vec![
            row(1, &[(50.0, "Payer: Northwind Industrial Supply Inc")]),
            row(1, &[(50.0, "Payment Date: 2026-12-07")]),
            row(
                1,
                &[
                    (50.0, "Invoice #"),
                    (150.0, "Inv Date"),
                    (250.0, "Gross Amount"),
                    (350.0, "Disc Taken"),
                    (450.0, "Net Paid"),
                ],
            ),
            // The discount cell is empty on this row: the paid figure must not slide into it.
            row(
                1,
                &[
                    (50.0, "INV-100201"),
                    (150.0, "2026-11-01"),
                    (250.0, "1,000.00"),
                    (450.0, "1,000.00"),
                ],
            ),
            row(
                1,
                &[
                    (50.0, "INV-100202"),
                    (150.0, "2026-11-02"),
                    (255.0, "500.00"),
                    (355.0, "10.00"),
                    (455.0, "490.00"),
                ],
            ),
            row(1, &[(50.0, "Total"), (450.0, "1,490.00")]),
        ];
        let parsed = read(&rows, "advice.pdf", Format::Pdf).unwrap();
        let [p] = parsed.payments.as_slice() else {
            panic!()
        };
        assert_eq!(p.amount, dec!(1490.00));
        assert_eq!(
            p.payer.name.as_deref(),
            Some("Northwind Industrial Supply Inc")
        );
        assert_eq!(p.payment_date, chrono::NaiveDate::from_ymd_opt(2026, 12, 7));
        assert_eq!(p.lines.len(), 2);
        assert_eq!(p.lines[0].discount, None);
        assert_eq!(p.lines[0].amount_paid, Some(dec!(1000.00)));
        assert_eq!(p.lines[1].invoice_amount, Some(dec!(500.00)));
        assert_eq!(p.lines[1].discount, Some(dec!(10.00)));
        assert_eq!(p.lines[1].amount_paid, Some(dec!(490.00)));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_bad_amount_is_reported_where_it_is_and_the_other_lines_go_on() {
        let rows = vec![
            row(
                1,
                &[(50.0, "Invoice"), (250.0, "Amount"), (350.0, "Discount")],
            ),
            row(1, &[(50.0, "INV-1"), (250.0, "100.00"), (350.0, "2.00")]),
            row(1, &[(50.0, "INV-2"), (250.0, "1O0.00")]),
        ];
        let parsed = read(&rows, "a.pdf", Format::Pdf).unwrap();
        let p = &parsed.payments[0];
        // Amount and discount without a paid column: the amount less the discount is paid.
        assert_eq!(p.lines[0].amount_paid, Some(dec!(98.00)));
        assert_eq!(p.amount, dec!(98.00));
        let [e] = parsed.errors.as_slice() else {
            panic!("{:?}", parsed.errors)
        };
        let e = e.to_string();
        assert!(
            e.contains("line 3, column 2") && e.contains("INV-2") && e.contains("1O0.00"),
            "{e}"
        );
    }

    #[test]
    fn figures_at_the_decimal_limit_are_an_error_not_an_overflow() {
        let max = "79228162514264337593543950335";
        // The discount column far enough right that a 29-digit figure stays under Amount.
        let rows = vec![
            row(
                1,
                &[(50.0, "Invoice"), (250.0, "Amount"), (500.0, "Discount")],
            ),
            row(1, &[(50.0, "INV-1"), (250.0, max), (500.0, "(1)")]),
            row(
                1,
                &[
                    (50.0, "INV-2"),
                    (250.0, "-79228162514264337593543950335"),
                    (500.0, "5"),
                ],
            ),
        ];
        let parsed = read(&rows, "o.pdf", Format::Pdf);
        let errors = match parsed {
            Ok(p) => p.errors,
            Err(e) => vec![e],
        };
        assert!(
            errors.iter().any(|e| e.message.contains("overflow")),
            "{errors:?}"
        );
        let rows = vec![
            row(1, &[(50.0, "Invoice"), (250.0, "Paid")]),
            row(1, &[(50.0, "INV-1"), (250.0, max)]),
            row(1, &[(50.0, "INV-2"), (250.0, max)]),
        ];
        let e = read(&rows, "o.pdf", Format::Pdf).unwrap_err();
        assert!(e.message.contains("overflow"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn money_never_panics_and_reads_back_what_was_written(
            text in "[ -~€£]{0,24}",
            cents in -10_000_000_000i64..10_000_000_000,
        ) {
            let _ = money(&text);
            let d = Decimal::new(cents, 2);
            proptest::prop_assert_eq!(money(&d.to_string()), Some(Ok(d)));
            proptest::prop_assert_eq!(money(&format!("({})", d.abs())), Some(Ok(-d.abs())));
            proptest::prop_assert_eq!(money(&format!("USD {d}")), Some(Ok(d)));
        }
    }

    #[test]
    fn a_total_that_disagrees_is_kept_with_a_warning() {
        let rows = vec![
            row(1, &[(50.0, "Invoice"), (250.0, "Paid")]),
            row(1, &[(50.0, "INV-1"), (250.0, "100.00")]),
            row(1, &[(50.0, "TOTAL PAID"), (250.0, "150.00")]),
        ];
        let p = &read(&rows, "a.pdf", Format::Pdf).unwrap().payments[0];
        assert_eq!(p.amount, dec!(150.00));
        assert!(
            p.warnings[0].contains("add up to 100.00"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn text_without_a_table_is_read_as_free_text_or_refused() {
        let letter = vec![row(1, &[(50.0, "Please apply $500.00 to INV 1001")])];
        let p = &read(&letter, "l.pdf", Format::Pdf).unwrap().payments[0];
        assert_eq!(p.amount, dec!(500.00));
        assert_eq!(p.payment_id, "pdf:l");
        let e = read(&[row(1, &[(50.0, "Thank you")])], "l.pdf", Format::Pdf).unwrap_err();
        assert!(e.message.contains("no remittance table"), "{e}");
    }
}
