//! What camt.053/054 and remt.001 share: a streaming XML reader that hands out one small
//! element tree at a time (an entry, a remittance) with its XML path, and the mapping of ISO 20022
//! remittance information (`RmtInf`: `Ustrd`, `Strd` with `RfrdDocInf`, `RfrdDocAmt`,
//! `CdtrRefInf`) to [`RemittanceLine`]s.
//!
//! Elements are matched on their local names only, so every version of a message (`.001.02`,
//! `.001.04`, `.001.08`, with or without a namespace prefix) goes through the same code.

use crate::domain::{Adjustment, Currency, Payer, ReferenceKind, RemittanceLine};
use crate::formats::{FormatError, Position};
use chrono::NaiveDate;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;

/// Deeper than any ISO 20022 message; a limit keeps hostile input from growing the stack.
const MAX_DEPTH: usize = 64;
/// One entry or remittance is small; this bounds the memory one element tree may take.
const MAX_SUBTREE_NODES: usize = 100_000;

/// Elements that repeat among their siblings; their path segments carry a 1-based index.
const REPEATING: &[&str] = &[
    "Stmt",
    "Ntfctn",
    "Rpt",
    "Ntry",
    "NtryDtls",
    "TxDtls",
    "RmtInf",
    "Strd",
    "Ustrd",
    "RfrdDocInf",
    "LineDtls",
    "AdjstmntAmtAndRsn",
    "DscntApldAmt",
    "TaxAmt",
    "AddtlRmtInf",
    "Bal",
];

/// The sentinel ISO 20022 uses for "the sender had no end-to-end reference".
pub(crate) const NOT_PROVIDED: &str = "NOTPROVIDED";

/// Whether `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The first 4 KiB, where detection looks.
pub(crate) fn head(bytes: &[u8]) -> &[u8] {
    bytes.get(..4096).unwrap_or(bytes)
}

/// Whether the head names the ISO 20022 message `msg` (such as `camt.054`), by namespace, or by
/// its message element when a file carries no namespace.
pub(crate) fn names_message(head: &[u8], msg: &str, element: &str) -> bool {
    let ns = format!("urn:iso:std:iso:20022:tech:xsd:{msg}");
    contains(head, ns.as_bytes())
        || contains(head, format!("<{element}>").as_bytes())
        || contains(head, format!(":{element}>").as_bytes())
}

/// Turns the file's bytes into text: a UTF-8 byte-order mark is dropped, a Latin-1 or
/// Windows-1252 declaration is honoured, anything else must be UTF-8.
pub(crate) fn decode_input<'a>(bytes: &'a [u8], file: &str) -> Result<Cow<'a, str>, FormatError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(FormatError::new(
            file,
            Position::File,
            "UTF-16 XML is not supported; convert the file to UTF-8",
        ));
    }
    let encoding = declared_encoding(bytes);
    match encoding.as_deref() {
        Some("iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "iso-8859-15" | "l1") => {
            Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
        }
        Some("windows-1252" | "cp1252") => {
            Ok(Cow::Owned(bytes.iter().map(|&b| windows_1252(b)).collect()))
        }
        _ => std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
            let said = encoding
                .map(|e| format!(" (the declaration says {e})"))
                .unwrap_or_default();
            FormatError::new(
                file,
                Position::File,
                format!("not valid UTF-8 at byte {}{said}", e.valid_up_to()),
            )
        }),
    }
}

/// The `encoding` of the XML declaration, lower case.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let decl = bytes.strip_prefix(b"<?xml")?;
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(decl.get(..end)?).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl
        .get(at + "encoding".len()..)?
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = rest.get(1..)?;
    let value = rest.get(..rest.find(quote)?)?;
    Some(value.trim().to_ascii_lowercase())
}

/// Windows-1252 differs from Latin-1 only in 0x80..=0x9F.
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH
            .get(usize::from(b - 0x80))
            .copied()
            .unwrap_or('\u{FFFD}'),
        _ => char::from(b),
    }
}

/// One XML element with its local name, its path in the file, the `Ccy` attribute (the only one
/// ISO 20022 money needs), its text and its children.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) ccy: Option<String>,
    pub(crate) text: String,
    pub(crate) children: Vec<Node>,
}

impl Node {
    /// The first child of that name.
    pub(crate) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child of that name, in document order.
    pub(crate) fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Node> + 's {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first descendant along a path of child names.
    pub(crate) fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, name| n.child(name))
    }

    /// The element's own text, trimmed; `None` when empty.
    pub(crate) fn text(&self) -> Option<&str> {
        Some(self.text.trim()).filter(|t| !t.is_empty())
    }

    /// The trimmed text at a path of child names.
    pub(crate) fn text_at(&self, path: &[&str]) -> Option<String> {
        self.at(path).and_then(Node::text).map(str::to_string)
    }

    /// A fault at this element.
    pub(crate) fn error(&self, file: &str, message: impl Into<String>) -> FormatError {
        FormatError::new(file, Position::XmlPath(self.path.clone()), message)
    }
}

/// An element the stream has just opened.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) name: String,
    pub(crate) path: String,
    ccy: Option<String>,
}

struct Frame {
    segment: String,
    /// How many children of each name this element has had so far, for the path indexes.
    seen: Vec<(String, usize)>,
    /// `<x/>`: no end tag will come.
    empty: bool,
}

/// A streaming reader over an XML document that walks the top levels element by element and
/// reads the interesting elements whole, so memory holds one entry at a time.
///
/// After [`XmlStream::next_child`] returns an element, the caller either walks into it with
/// more `next_child` calls, or consumes it with [`XmlStream::subtree`] or [`XmlStream::skip`].
pub(crate) struct XmlStream<'a> {
    reader: Reader<&'a [u8]>,
    file: &'a str,
    stack: Vec<Frame>,
}

impl<'a> XmlStream<'a> {
    pub(crate) fn new(text: &'a str, file: &'a str) -> Self {
        let mut reader = Reader::from_str(text);
        reader.config_mut().check_end_names = true;
        let root = Frame {
            segment: String::new(),
            seen: Vec::new(),
            empty: false,
        };
        XmlStream {
            reader,
            file,
            stack: vec![root],
        }
    }

    /// The path of the innermost open element.
    pub(crate) fn path(&self) -> String {
        let p: String = self
            .stack
            .iter()
            .skip(1)
            .map(|f| format!("/{}", f.segment))
            .collect();
        if p.is_empty() { "/".into() } else { p }
    }

    fn fault(&self, message: impl Into<String>) -> FormatError {
        FormatError::new(self.file, Position::XmlPath(self.path()), message)
    }

    fn next_event(&mut self) -> Result<Event<'a>, FormatError> {
        self.reader.read_event().map_err(|e| {
            let at = self.reader.error_position();
            self.fault(format!("malformed XML at byte {at}: {e}"))
        })
    }

    /// Opens an element: pushes its frame and returns its name and path.
    fn open(&mut self, raw_name: &[u8], empty: bool) -> Result<Opened, FormatError> {
        if self.stack.len() > MAX_DEPTH {
            return Err(self.fault(format!("elements nested deeper than {MAX_DEPTH} levels")));
        }
        let local = match raw_name.iter().rposition(|&b| b == b':') {
            Some(i) => raw_name.get(i + 1..).unwrap_or_default(),
            None => raw_name,
        };
        let name = String::from_utf8_lossy(local).into_owned();
        let parent = self.stack.last_mut().ok_or_else(|| {
            FormatError::new(
                self.file,
                Position::File,
                "element after the end of the document",
            )
        })?;
        let n = match parent.seen.iter_mut().find(|(s, _)| *s == name) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                parent.seen.push((name.clone(), 1));
                1
            }
        };
        let segment = if REPEATING.contains(&name.as_str()) {
            format!("{name}[{n}]")
        } else {
            name.clone()
        };
        self.stack.push(Frame {
            segment,
            seen: Vec::new(),
            empty,
        });
        Ok(Opened {
            name,
            path: self.path(),
            ccy: None,
        })
    }

    fn close(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }

    /// The next child element of the innermost open element, or `None` (having closed that
    /// element) when it has no more. Text between elements at this level is ignored.
    pub(crate) fn next_child(&mut self) -> Result<Option<Opened>, FormatError> {
        if self.stack.last().is_some_and(|f| f.empty) {
            self.close();
            return Ok(None);
        }
        loop {
            match self.next_event()? {
                Event::Start(e) => {
                    let mut o = self.open(e.name().as_ref(), false)?;
                    o.ccy = ccy_attribute(&e);
                    return Ok(Some(o));
                }
                Event::Empty(e) => {
                    let mut o = self.open(e.name().as_ref(), true)?;
                    o.ccy = ccy_attribute(&e);
                    return Ok(Some(o));
                }
                Event::End(_) => {
                    if self.stack.len() <= 1 {
                        return Err(self.fault("end tag without a start tag"));
                    }
                    self.close();
                    return Ok(None);
                }
                Event::Eof => {
                    if self.stack.len() > 1 {
                        return Err(self.fault("the file ends inside this element"));
                    }
                    return Ok(None);
                }
                _ => {}
            }
        }
    }

    /// Reads the element just opened, whole, and closes it.
    pub(crate) fn subtree(&mut self, opened: &Opened) -> Result<Node, FormatError> {
        let mut nodes = 1usize;
        let mut open: Vec<Node> = vec![Node {
            name: opened.name.clone(),
            path: opened.path.clone(),
            ccy: opened.ccy.clone(),
            ..Node::default()
        }];
        if self.stack.last().is_some_and(|f| f.empty) {
            self.close();
            return open
                .pop()
                .ok_or_else(|| self.fault("internal: empty element stack"));
        }
        loop {
            match self.next_event()? {
                Event::Start(e) | Event::Empty(e) if nodes >= MAX_SUBTREE_NODES => {
                    let _ = e;
                    return Err(self.fault(format!(
                        "element holds more than {MAX_SUBTREE_NODES} elements; refusing to read it"
                    )));
                }
                Event::Start(e) => {
                    let o = self.open(e.name().as_ref(), false)?;
                    nodes += 1;
                    open.push(Node {
                        name: o.name,
                        path: o.path,
                        ccy: ccy_attribute(&e),
                        ..Node::default()
                    });
                }
                Event::Empty(e) => {
                    let o = self.open(e.name().as_ref(), true)?;
                    self.close();
                    nodes += 1;
                    let n = Node {
                        name: o.name,
                        path: o.path,
                        ccy: ccy_attribute(&e),
                        ..Node::default()
                    };
                    if let Some(parent) = open.last_mut() {
                        parent.children.push(n);
                    }
                }
                Event::End(_) => {
                    self.close();
                    let done = open
                        .pop()
                        .ok_or_else(|| self.fault("internal: unbalanced tree"))?;
                    match open.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Event::Text(t) => {
                    let s = t
                        .xml10_content()
                        .map_err(|e| self.fault(format!("bad text: {e}")))?;
                    if let Some(n) = open.last_mut() {
                        if !(n.text.is_empty() && s.trim().is_empty()) {
                            n.text.push_str(&s);
                        }
                    }
                }
                Event::CData(t) => {
                    let s = t
                        .decode()
                        .map_err(|e| self.fault(format!("bad CDATA: {e}")))?;
                    if let Some(n) = open.last_mut() {
                        n.text.push_str(&s);
                    }
                }
                Event::GeneralRef(r) => {
                    let c = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = r.decode().map_err(|e| self.fault(format!("{e}")))?;
                            match name.as_ref() {
                                "amp" => "&".into(),
                                "lt" => "<".into(),
                                "gt" => ">".into(),
                                "quot" => "\"".into(),
                                "apos" => "'".into(),
                                other => {
                                    return Err(self.fault(format!("unknown entity &{other};")));
                                }
                            }
                        }
                        Err(e) => return Err(self.fault(format!("bad character reference: {e}"))),
                    };
                    if let Some(n) = open.last_mut() {
                        n.text.push_str(&c);
                    }
                }
                Event::Eof => return Err(self.fault("the file ends inside this element")),
                _ => {}
            }
        }
    }

    /// Consumes the element just opened without keeping it.
    pub(crate) fn skip(&mut self, opened: &Opened) -> Result<(), FormatError> {
        self.subtree(opened).map(drop)
    }

    /// Reads to the end of the document so that trailing garbage is reported.
    pub(crate) fn finish(&mut self) -> Result<(), FormatError> {
        loop {
            match self.next_event()? {
                Event::Eof => return Ok(()),
                Event::Start(_) | Event::Empty(_) => {
                    return Err(self.fault("a second root element after the document"));
                }
                Event::Text(t) if !t.iter().all(u8::is_ascii_whitespace) => {
                    return Err(self.fault("text after the document"));
                }
                _ => {}
            }
        }
    }

    /// The first element of the document and, when it is a `Document` wrapper, the message
    /// element inside it.
    pub(crate) fn message_element(&mut self) -> Result<Opened, FormatError> {
        let none = || FormatError::new(self.file, Position::File, "no XML element in the file");
        let root = self.next_child()?.ok_or_else(none)?;
        if root.name != "Document" {
            return Ok(root);
        }
        self.next_child()?.ok_or_else(|| {
            FormatError::new(
                self.file,
                Position::XmlPath(root.path),
                "empty Document element",
            )
        })
    }
}

fn ccy_attribute(e: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == b"Ccy")
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.trim().to_string())
        })
}

/// Money as a message states it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Money {
    pub(crate) value: Decimal,
    pub(crate) ccy: Option<Currency>,
}

/// Reads an amount element such as `<Amt Ccy="EUR">12.50</Amt>`. ISO 20022 amounts are never
/// negative (the direction is a separate indicator), so a sign is refused.
pub(crate) fn money(node: &Node, file: &str) -> Result<Money, FormatError> {
    let text = node
        .text()
        .ok_or_else(|| node.error(file, "amount is empty"))?;
    let well_formed = {
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        !text.is_empty()
            && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
            && !(int.is_empty() && frac.is_empty())
    };
    if !well_formed {
        return Err(node.error(
            file,
            format!("amount {text:?} is not a decimal number like 1234.56"),
        ));
    }
    let value = Decimal::from_str(text)
        .map_err(|e| node.error(file, format!("amount {text:?} is out of range: {e}")))?;
    let ccy = match node.ccy.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<Currency>()
                .map_err(|e| node.error(file, format!("bad Ccy attribute: {e}")))?,
        ),
    };
    Ok(Money { value, ccy })
}

/// The amount of an element that holds either the amount itself or an `Amt` child (later
/// versions wrap discounts and taxes as `<DscntApldAmt><Tp/><Amt/></DscntApldAmt>`).
fn money_or_wrapped(node: &Node, file: &str) -> Result<Money, FormatError> {
    match node.child("Amt") {
        Some(inner) => money(inner, file),
        None => money(node, file),
    }
}

/// Adds amounts without the overflow panic of `+`.
pub(crate) fn add(a: Decimal, b: Decimal, node: &Node, file: &str) -> Result<Decimal, FormatError> {
    a.checked_add(b)
        .ok_or_else(|| node.error(file, "amounts overflow when added"))
}

/// A date from a `DateAndDateTime` choice (`<Dt>` or `<DtTm>`) or a bare date.
pub(crate) fn date(node: &Node) -> Result<Option<NaiveDate>, String> {
    let text = node
        .child("Dt")
        .or_else(|| node.child("DtTm"))
        .and_then(Node::text)
        .or_else(|| node.text());
    let Some(text) = text else { return Ok(None) };
    let day = text.get(..10).unwrap_or(text);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| format!("{}: date {text:?} is not YYYY-MM-DD", node.path))
}

/// A party's name: `Nm` directly (up to version .07) or inside `Pty` (from .08).
pub(crate) fn party_name(party: &Node) -> Option<String> {
    party
        .text_at(&["Nm"])
        .or_else(|| party.text_at(&["Pty", "Nm"]))
}

/// An account's identification: IBAN, or the other identification.
pub(crate) fn account_id(acct: &Node) -> Option<String> {
    [
        &["Id", "IBAN"][..],
        &["Id", "Othr", "Id"],
        &["Id", "BBAN"],
        &["Id", "PrtryAcct", "Id"],
    ]
    .iter()
    .find_map(|p| acct.text_at(p))
}

/// The payer from a node holding `Dbtr`, `UltmtDbtr` and `DbtrAcct` (camt `RltdPties`, remt
/// `OrgnlPmtInf`). The debtor's name goes with the debtor's account; an ultimate debtor that
/// differs (the customer a payment service or parent pays for) is returned as free text.
pub(crate) fn payer(parties: &Node) -> (Payer, Option<String>) {
    let debtor = parties.child("Dbtr").and_then(party_name);
    let ultimate = parties.child("UltmtDbtr").and_then(party_name);
    let account = parties.child("DbtrAcct").and_then(account_id);
    let note = match (&debtor, &ultimate) {
        (Some(d), Some(u)) if d != u => Some(format!("ultimate debtor: {u}")),
        _ => None,
    };
    (
        Payer {
            name: debtor.or(ultimate),
            account,
        },
        note,
    )
}

/// What a document type code says the reference is.
pub(crate) fn kind_of(code: &str) -> ReferenceKind {
    match code.trim().to_ascii_uppercase().as_str() {
        "CINV" | "HIRI" | "SBIN" | "DEBN" | "AROI" | "CMCN" | "DNFA" => ReferenceKind::Invoice,
        "CREN" | "CRN" | "CNFA" => ReferenceKind::CreditNote,
        "PUOR" => ReferenceKind::PurchaseOrder,
        _ => ReferenceKind::Unknown,
    }
}

/// The code of a `Tp` element: `Tp/CdOrPrtry/Cd`, its `Prtry`, or the older `Tp/Cd`.
fn type_code(tp: &Node) -> Option<String> {
    [
        &["CdOrPrtry", "Cd"][..],
        &["CdOrPrtry", "Prtry"],
        &["Cd"],
        &["Prtry"],
    ]
    .iter()
    .find_map(|p| tp.text_at(p))
}

/// What one `RmtInf` says: its lines, the currencies its amounts were stated in, free text and
/// what did not add up.
#[derive(Debug, Default)]
pub(crate) struct Remittance {
    pub(crate) lines: Vec<RemittanceLine>,
    /// The currency of every amount that went into `amount_paid` of some line.
    pub(crate) paid_currencies: Vec<Currency>,
    pub(crate) free_text: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

/// Maps an `RmtInf` (camt `TxDtls/RmtInf`, remt `RmtInf`): each `Ustrd` and `AddtlRmtInf` is
/// free text, each `Strd` becomes lines (see [`structured`]).
pub(crate) fn remittance(rmt: &Node, file: &str) -> Result<Remittance, FormatError> {
    let mut out = Remittance::default();
    for c in &rmt.children {
        match c.name.as_str() {
            "Ustrd" => out.free_text.extend(c.text().map(str::to_string)),
            "Strd" => structured(c, file, &mut out)?,
            _ => {}
        }
    }
    Ok(out)
}

/// Amounts of one `RfrdDocAmt`.
#[derive(Default)]
struct DocAmounts {
    due: Option<Decimal>,
    discount: Option<Decimal>,
    credit_note: Option<Decimal>,
    tax: Option<(Decimal, Option<String>)>,
    remitted: Option<Decimal>,
    adjustments: Vec<Adjustment>,
    currencies: Vec<Currency>,
    remitted_ccy: Option<Currency>,
    credit_ccy: Option<Currency>,
}

fn doc_amounts(amts: &Node, file: &str) -> Result<DocAmounts, FormatError> {
    let mut d = DocAmounts::default();
    fn note(m: &Money, d: &mut DocAmounts) {
        if let Some(c) = m.ccy {
            if !d.currencies.contains(&c) {
                d.currencies.push(c);
            }
        }
    }
    for c in &amts.children {
        match c.name.as_str() {
            "DuePyblAmt" => {
                let m = money(c, file)?;
                note(&m, &mut d);
                d.due = Some(m.value);
            }
            "DscntApldAmt" => {
                let m = money_or_wrapped(c, file)?;
                note(&m, &mut d);
                d.discount = Some(add(d.discount.unwrap_or_default(), m.value, c, file)?);
            }
            "CdtNoteAmt" => {
                let m = money(c, file)?;
                note(&m, &mut d);
                d.credit_note = Some(m.value);
                d.credit_ccy = m.ccy;
            }
            "TaxAmt" => {
                let m = money_or_wrapped(c, file)?;
                note(&m, &mut d);
                let (sum, code) = d.tax.take().unwrap_or_default();
                let code = code.or_else(|| c.child("Tp").and_then(type_code));
                d.tax = Some((add(sum, m.value, c, file)?, code));
            }
            "AdjstmntAmtAndRsn" => {
                let (a, m) = adjustment(c, file)?;
                note(&m, &mut d);
                d.adjustments.push(a);
            }
            "RmtdAmt" => {
                let m = money(c, file)?;
                note(&m, &mut d);
                d.remitted = Some(m.value);
                d.remitted_ccy = m.ccy;
            }
            _ => {}
        }
    }
    Ok(d)
}

/// A `DocumentAdjustment`: `DBIT` (or no indicator) reduced what was paid, so it is positive;
/// `CRDT` added to it, so it is negative.
fn adjustment(node: &Node, file: &str) -> Result<(Adjustment, Money), FormatError> {
    let amt = node
        .child("Amt")
        .ok_or_else(|| node.error(file, "adjustment without Amt"))?;
    let m = money(amt, file)?;
    let amount = match node.text_at(&["CdtDbtInd"]).as_deref() {
        None | Some("DBIT") => m.value,
        Some("CRDT") => -m.value,
        Some(other) => {
            return Err(node.error(
                file,
                format!("CdtDbtInd {other:?} is neither CRDT nor DBIT"),
            ));
        }
    };
    let (mut reason_code, mut text) = (node.text_at(&["Rsn"]), node.text_at(&["AddtlInf"]));
    if reason_code.is_none() {
        if let Some((code, rest)) = text.as_deref().and_then(long_reason) {
            (reason_code, text) = (Some(code), rest);
        }
    }
    let adj = Adjustment {
        amount,
        reason_code,
        text,
    };
    Ok((adj, m))
}

/// How cashmatch's camt writer carries a reason code longer than the 4 characters `Rsn` holds:
/// at the head of `AddtlInf`, as `/RSN/code/` and then the text.
pub(crate) const LONG_REASON: &str = "/RSN/";

/// The reason code and the remaining text of an `AddtlInf` written as `/RSN/code/text`.
pub(crate) fn long_reason(info: &str) -> Option<(String, Option<String>)> {
    let (code, rest) = info.strip_prefix(LONG_REASON)?.split_once('/')?;
    let code = code.trim();
    if code.is_empty() {
        return None;
    }
    let rest = rest.trim();
    Some((
        code.to_string(),
        (!rest.is_empty()).then(|| rest.to_string()),
    ))
}

/// The adjustments of a document's `LineDtls`, each noting the line it came from.
fn line_detail_adjustments(doc: &Node, file: &str) -> Result<Vec<Adjustment>, FormatError> {
    let mut out = Vec::new();
    for line in doc.all("LineDtls") {
        let id = line.text_at(&["Id", "Nb"]);
        let desc = line.text_at(&["Desc"]);
        let Some(amts) = line.child("Amt") else {
            continue;
        };
        for adj in amts.all("AdjstmntAmtAndRsn") {
            let (mut a, _) = adjustment(adj, file)?;
            let origin = match (&id, &desc) {
                (Some(i), Some(d)) => format!("line {i} ({d})"),
                (Some(i), None) => format!("line {i}"),
                (None, Some(d)) => format!("line ({d})"),
                (None, None) => "line".to_string(),
            };
            a.text = Some(match a.text.take() {
                Some(t) => format!("{origin}: {t}"),
                None => origin,
            });
            out.push(a);
        }
    }
    Ok(out)
}

fn sum_adjustments(adjs: &[Adjustment], node: &Node, file: &str) -> Result<Decimal, FormatError> {
    adjs.iter()
        .try_fold(Decimal::ZERO, |s, a| add(s, a.amount, node, file))
}

/// Maps one `Strd`:
///
/// - each `RfrdDocInf` is a line (its `Nb` the reference, its type code the kind), and so is the
///   `CdtrRefInf` (`SCOR`/RF creditor references are of unknown kind); a `Strd` with amounts and
///   no reference is one line without a reference;
/// - the amounts of `RfrdDocAmt` go to the primary line: the first invoice document, else the
///   first document that is not a credit note, else the first document, else the creditor
///   reference;
/// - a credit note amount (`CdtNoteAmt`) becomes the negative `amount_paid` of the `Strd`'s
///   credit-note line, and the invoice line's `amount_paid` is the remitted amount plus that
///   credit, so the lines add up to what was remitted; without a credit-note reference the
///   credit is a line of its own (or the primary line itself, when the `Strd` holds nothing else);
/// - a `Strd` of credit notes only pays minus its `CdtNoteAmt` (else minus `RmtdAmt`);
/// - a tax amount that the remitted amount includes on top of the due amount is a negative
///   adjustment `TAX`; otherwise it is only noted in the free text;
/// - `LineDtls` adjustments replace the document's adjustments when they add up to the same,
///   since they carry the reasons.
fn structured(strd: &Node, file: &str, out: &mut Remittance) -> Result<(), FormatError> {
    let mut lines: Vec<RemittanceLine> = Vec::new();
    let mut line_adjustments: Vec<Vec<Adjustment>> = Vec::new();
    for doc in strd.all("RfrdDocInf") {
        let code = doc
            .child("Tp")
            .or_else(|| doc.child("RfrdDocTp"))
            .and_then(type_code);
        lines.push(RemittanceLine {
            reference: doc.text_at(&["Nb"]).or_else(|| doc.text_at(&["RfrdDocNb"])),
            reference_kind: code.as_deref().map(kind_of).unwrap_or_default(),
            ..RemittanceLine::default()
        });
        line_adjustments.push(line_detail_adjustments(doc, file)?);
    }
    let documents = lines.len();
    if let Some(cref) = strd.child("CdtrRefInf") {
        let code = cref
            .child("Tp")
            .or_else(|| cref.child("CdtrRefTp"))
            .and_then(type_code);
        let reference = cref
            .text_at(&["Ref"])
            .or_else(|| cref.text_at(&["CdtrRef"]));
        if reference.is_some() || code.is_some() {
            lines.push(RemittanceLine {
                reference,
                reference_kind: code.as_deref().map(kind_of).unwrap_or_default(),
                ..RemittanceLine::default()
            });
            line_adjustments.push(Vec::new());
        }
    }
    out.free_text.extend(
        strd.all("AddtlRmtInf")
            .filter_map(Node::text)
            .map(str::to_string),
    );

    let amounts = match strd.child("RfrdDocAmt") {
        Some(a) => doc_amounts(a, file)?,
        None => DocAmounts::default(),
    };
    let has_amounts = amounts.due.is_some()
        || amounts.discount.is_some()
        || amounts.credit_note.is_some()
        || amounts.remitted.is_some()
        || amounts.tax.is_some()
        || !amounts.adjustments.is_empty();
    if lines.is_empty() {
        if !has_amounts {
            return Ok(());
        }
        lines.push(RemittanceLine::default());
        line_adjustments.push(Vec::new());
    }
    if amounts.currencies.len() > 1 {
        let list: Vec<_> = amounts.currencies.iter().map(Currency::as_str).collect();
        out.warnings.push(format!(
            "{}: the amounts of one document are in several currencies ({})",
            strd.path,
            list.join(", ")
        ));
    }

    // The documents come first in `lines`; the creditor reference takes the amounts only when
    // the Strd names no document.
    let is_credit = |l: &RemittanceLine| l.reference_kind == ReferenceKind::CreditNote;
    let docs = lines.get(..documents).unwrap_or_default();
    let primary = docs
        .iter()
        .position(|l| l.reference_kind == ReferenceKind::Invoice)
        .or_else(|| docs.iter().position(|l| !is_credit(l)))
        .unwrap_or(0);
    let credit_line = lines
        .iter()
        .enumerate()
        .position(|(i, l)| i != primary && is_credit(l));

    // Adjustments: the line details' when they explain the document's.
    let mut adjustments = amounts.adjustments.clone();
    let detail = line_adjustments.get(primary).cloned().unwrap_or_default();
    if !detail.is_empty() {
        let doc_sum = sum_adjustments(&adjustments, strd, file)?;
        let detail_sum = sum_adjustments(&detail, strd, file)?;
        if adjustments.is_empty() || doc_sum == detail_sum {
            adjustments = detail;
        } else {
            out.warnings.push(format!(
                "{}: line adjustments add up to {detail_sum} but the document's to {doc_sum}; \
                 the document's are kept",
                strd.path
            ));
        }
    }
    for (i, extra) in line_adjustments.iter().enumerate() {
        if i != primary {
            if let Some(l) = lines.get_mut(i) {
                l.adjustments.extend(extra.iter().cloned());
            }
        }
    }

    // Tax: part of what was paid only when the amounts say so.
    if let Some((tax, code)) = &amounts.tax {
        let net_adjustments = sum_adjustments(&adjustments, strd, file)?;
        let balances_with_tax = match (amounts.due, amounts.remitted) {
            (Some(due), Some(rem)) if amounts.currencies.len() <= 1 => {
                let expected = due
                    .checked_sub(amounts.discount.unwrap_or_default())
                    .and_then(|x| x.checked_sub(net_adjustments))
                    .and_then(|x| x.checked_sub(amounts.credit_note.unwrap_or_default()))
                    .and_then(|x| x.checked_add(*tax));
                expected == Some(rem)
            }
            _ => false,
        };
        let label = code
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        if balances_with_tax {
            adjustments.push(Adjustment {
                amount: -*tax,
                reason_code: Some("TAX".into()),
                text: Some(format!("tax{label} paid on top of the due amount")),
            });
        } else {
            out.free_text.push(format!("tax amount {tax}{label}"));
        }
    }

    let primary_is_credit = lines.get(primary).is_some_and(is_credit);
    let mut extra_credit: Option<RemittanceLine> = None;
    if let Some(p) = lines.get_mut(primary) {
        p.discount = amounts.discount;
        p.adjustments = adjustments;
        if primary_is_credit {
            p.amount_paid = amounts.credit_note.or(amounts.remitted).map(|v| -v);
            p.invoice_amount = amounts.due.map(|v| -v);
        } else {
            p.invoice_amount = amounts.due;
            match amounts.credit_note {
                None => p.amount_paid = amounts.remitted,
                Some(credit) => {
                    p.amount_paid = match amounts.remitted {
                        Some(r) => Some(add(r, credit, strd, file)?),
                        None => None,
                    };
                    if credit_line.is_none() {
                        if amounts.remitted.is_none() && amounts.due.is_none() {
                            // The credit is all this Strd says: the reference is the credit note.
                            p.amount_paid = Some(-credit);
                            if p.reference_kind == ReferenceKind::Unknown {
                                p.reference_kind = ReferenceKind::CreditNote;
                            }
                        } else {
                            extra_credit = Some(RemittanceLine {
                                reference_kind: ReferenceKind::CreditNote,
                                amount_paid: Some(-credit),
                                ..RemittanceLine::default()
                            });
                        }
                    }
                }
            }
        }
    }
    if let (Some(i), Some(credit)) = (credit_line, amounts.credit_note) {
        if let Some(l) = lines.get_mut(i) {
            l.amount_paid = Some(-credit);
        }
    }
    lines.extend(extra_credit);

    // Does the document add up? Only checked where every amount is in one currency.
    if let (Some(due), Some(rem), true) =
        (amounts.due, amounts.remitted, amounts.currencies.len() <= 1)
    {
        if !primary_is_credit {
            let p = lines.get(primary);
            let adj = p
                .map(|l| sum_adjustments(&l.adjustments, strd, file))
                .transpose()?;
            let expected = due
                .checked_sub(amounts.discount.unwrap_or_default())
                .and_then(|x| x.checked_sub(adj.unwrap_or_default()))
                .and_then(|x| x.checked_sub(amounts.credit_note.unwrap_or_default()));
            if let Some(expected) = expected.filter(|e| *e != rem) {
                let reference = p
                    .and_then(|l| l.reference.as_deref())
                    .unwrap_or("(no reference)");
                out.warnings.push(format!(
                    "{}: document {reference}: due {due} less discount, adjustments and credit \
                     notes is {expected}, but {rem} was remitted",
                    strd.path
                ));
            }
        }
    }

    let paid_ccy = if primary_is_credit {
        amounts.credit_ccy.or(amounts.remitted_ccy)
    } else {
        amounts.remitted_ccy.or(amounts.credit_ccy)
    };
    for c in [paid_ccy, amounts.credit_ccy].into_iter().flatten() {
        if !out.paid_currencies.contains(&c) {
            out.paid_currencies.push(c);
        }
    }
    out.lines.extend(lines);
    Ok(())
}

/// Warns when the lines' amounts do not add up to the payment, or are in another currency.
pub(crate) fn check_lines_total(
    lines: &[RemittanceLine],
    paid_currencies: &[Currency],
    amount: Decimal,
    currency: Currency,
    warnings: &mut Vec<String>,
) {
    let others: Vec<_> = paid_currencies
        .iter()
        .filter(|c| **c != currency)
        .map(Currency::as_str)
        .collect();
    if !others.is_empty() {
        warnings.push(format!(
            "remittance amounts are in {} but the payment is in {currency}; their total is not checked",
            others.join(", ")
        ));
        return;
    }
    let paid: Vec<Decimal> = lines.iter().filter_map(|l| l.amount_paid).collect();
    if paid.is_empty() {
        return;
    }
    let total = paid
        .iter()
        .try_fold(Decimal::ZERO, |s, v| s.checked_add(*v));
    match total {
        Some(t) if t == amount => {}
        Some(t) => warnings.push(format!(
            "remittance lines add up to {t} {currency} but the payment is {amount} {currency}"
        )),
        None => warnings.push("remittance line amounts overflow when added".into()),
    }
}

/// Keeps payment ids unique within a file: a repeated id gets `#2`, `#3`, ... and a warning.
#[derive(Default)]
pub(crate) struct PaymentIds {
    seen: HashMap<String, u32>,
}

impl PaymentIds {
    pub(crate) fn unique(&mut self, id: String, warnings: &mut Vec<String>) -> String {
        let Some(&n) = self.seen.get(&id) else {
            self.seen.insert(id.clone(), 1);
            return id;
        };
        let mut k = n;
        let candidate = loop {
            k += 1;
            let c = format!("{id}#{k}");
            if !self.seen.contains_key(&c) {
                break c;
            }
        };
        self.seen.insert(id.clone(), k);
        warnings.push(format!(
            "payment id {id} is used by an earlier transaction in this file; this one is {candidate}"
        ));
        self.seen.insert(candidate.clone(), 1);
        candidate
    }
}

#[cfg(test)]
mod tests;
