//! The 820 reader: the segments of each ST/SE transaction set mapped onto one payment, with the
//! GS/GE and ISA/IEA envelopes around them checked.

use super::elements::{
    counts, negate, opt_text, parse_amount, parse_date, reference_kind, rmr_line, shown, text,
};
use super::tokenizer::{Elements, Segment};
use super::{FORMAT, NO_TRN_WARNING};
use crate::domain::{
    Adjustment, Currency, Direction, Payer, Payment, ReferenceKind, RemittanceLine,
};
use crate::formats::{FormatError, Position};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

/// Which loop the last segment opened, for the segments that belong to it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ctx {
    Header,
    Entity,
    Rmr(usize),
    RmrAdx { line: usize, adj: usize },
    EntityAdx { adj: Option<(usize, usize)> },
}

struct Bpr {
    pub(super) amount: Decimal,
    pub(super) direction: Direction,
    pub(super) account: Option<String>,
    pub(super) date: Option<NaiveDate>,
}

/// One transaction set being read.
struct Txn {
    st_index: usize,
    control: String,
    pub(super) segments: usize,
    pub(super) error: Option<FormatError>,
    bpr: Option<Bpr>,
    trn: Option<String>,
    pub(super) currency: Option<Currency>,
    payer_name: Option<String>,
    header_date: Option<NaiveDate>,
    in_entity: bool,
    ctx: Ctx,
    pub(super) lines: Vec<RemittanceLine>,
    pub(super) free_text: Vec<String>,
    pub(super) warnings: Vec<String>,
    remitted: Decimal,
    has_remitted: bool,
}

fn seg_error(
    file: &str,
    seg: &Segment<'_>,
    element: Option<usize>,
    message: String,
) -> FormatError {
    let id = text(seg.id());
    FormatError::new(
        file,
        Position::Segment {
            index: seg.index,
            id,
            element,
        },
        message,
    )
}

impl Txn {
    pub(super) fn new(seg: &Segment<'_>, file: &str) -> Txn {
        let control = text(seg.el(2));
        let code = seg.el(1);
        let error = (code != b"820").then(|| {
            seg_error(
                file,
                seg,
                Some(1),
                format!(
                    "transaction {control}: ST01 is {:?}; only 820 transaction sets are read",
                    shown(code)
                ),
            )
        });
        Txn {
            st_index: seg.index,
            control,
            segments: 1,
            error,
            bpr: None,
            trn: None,
            currency: None,
            payer_name: None,
            header_date: None,
            in_entity: false,
            ctx: Ctx::Header,
            lines: Vec::new(),
            free_text: Vec::new(),
            warnings: Vec::new(),
            remitted: Decimal::ZERO,
            has_remitted: false,
        }
    }

    pub(super) fn segment(&mut self, seg: &Segment<'_>, file: &str) {
        self.segments += 1;
        if self.error.is_some() {
            return;
        }
        if let Err((element, message)) = self.map(seg) {
            let message = format!("transaction {}: {message}", self.control);
            self.error = Some(seg_error(file, seg, element, message));
        }
    }

    pub(super) fn map(&mut self, seg: &Segment<'_>) -> Result<(), (Option<usize>, String)> {
        let id = seg.id();
        if !(2..=3).contains(&id.len()) || !id.iter().all(u8::is_ascii_alphanumeric) {
            return Err((None, format!("{:?} is not a segment id", shown(id))));
        }
        let amount = |i: usize| -> Result<Decimal, (Option<usize>, String)> {
            let b = seg.el(i);
            if b.is_empty() {
                return Err((Some(i), format!("{}{i:02} (amount) is missing", text(id))));
            }
            parse_amount(b).map_err(|m| (Some(i), format!("{}{i:02} {m}", text(id))))
        };
        match id {
            b"BPR" => {
                if self.bpr.is_some() {
                    return Err((None, "a second BPR segment in one transaction".into()));
                }
                match seg.el(1) {
                    b"H" => self
                        .warnings
                        .push("BPR01 H: notification only, no funds move".into()),
                    b"P" => self
                        .warnings
                        .push("BPR01 P: prenotification, no funds move".into()),
                    _ if seg.el(4) == b"NON" => self
                        .warnings
                        .push("BPR04 NON: non-payment, no funds move".into()),
                    _ => {}
                }
                let amount = amount(2)?;
                let direction = match seg.el(3) {
                    b"C" => Direction::Credit,
                    b"D" => Direction::Debit,
                    b"" => {
                        self.warnings
                            .push("BPR03 (credit/debit flag) is missing: taken as credit".into());
                        Direction::Credit
                    }
                    other => {
                        return Err((
                            Some(3),
                            format!("BPR03 must be C or D, found {:?}", shown(other)),
                        ));
                    }
                };
                let account = match (seg.el(7), seg.el(9)) {
                    (_, b"") => None,
                    (b"", acct) => Some(text(acct)),
                    (dfi, acct) => Some(format!("{}:{}", text(dfi), text(acct))),
                };
                let date = match seg.el(16) {
                    b"" => {
                        // Some senders drop an empty element in the middle (the Wikipedia
                        // example lacks BPR11), which moves the date to BPR15.
                        let shifted = (seg.el(15).len() >= 6).then(|| parse_date(seg.el(15)));
                        if let Some(Some(d)) = shifted {
                            self.warnings.push(format!(
                                "BPR16 (date) is missing and BPR15 holds a date, {d}: taken as \
                                 the payment date, assuming an element was left out"
                            ));
                        }
                        shifted.flatten()
                    }
                    d => Some(parse_date(d).ok_or_else(|| {
                        (
                            Some(16),
                            format!("BPR16 is not a date (CCYYMMDD): {:?}", shown(d)),
                        )
                    })?),
                };
                self.bpr = Some(Bpr {
                    amount,
                    direction,
                    account,
                    date,
                });
            }
            b"TRN" if self.trn.is_none() => self.trn = opt_text(seg.el(2)),
            b"CUR" if self.currency.is_none() => {
                let c = text(seg.el(2));
                let c = Currency::from_str(&c).map_err(|m| (Some(2), format!("CUR02: {m}")))?;
                self.currency = Some(c);
            }
            b"REF" => {
                let parts: Vec<String> = (1..=3)
                    .map(|i| seg.el(i))
                    .filter(|b| !b.is_empty())
                    .map(text)
                    .collect();
                if parts.len() > 1 {
                    self.free_text.push(parts.join(" "));
                }
            }
            b"DTM" if !self.in_entity && self.header_date.is_none() => {
                self.header_date = parse_date(seg.el(2));
            }
            b"N1" => {
                self.ctx = Ctx::Header;
                if seg.el(1) == b"PR" && self.payer_name.is_none() {
                    self.payer_name = opt_text(seg.el(2));
                }
            }
            b"ENT" => {
                self.in_entity = true;
                self.ctx = Ctx::Entity;
            }
            b"RMR" => {
                let line = rmr_line(seg).map_err(|(i, m)| (Some(i), m))?;
                if let Some(paid) = line.amount_paid {
                    self.remitted += paid;
                    self.has_remitted = true;
                }
                self.lines.push(line);
                self.ctx = Ctx::Rmr(self.lines.len() - 1);
            }
            b"ADX" => {
                let value = amount(1)?;
                let reason_code = opt_text(seg.el(2));
                match self.ctx {
                    Ctx::Rmr(line) | Ctx::RmrAdx { line, .. } => {
                        let words: Vec<String> = [seg.el(3), seg.el(4)]
                            .into_iter()
                            .filter(|b| !b.is_empty())
                            .map(text)
                            .collect();
                        let text = (!words.is_empty()).then(|| words.join(" "));
                        let adj = Adjustment {
                            amount: negate(value),
                            reason_code,
                            text,
                        };
                        let Some(l) = self.lines.get_mut(line) else {
                            return Ok(());
                        };
                        l.adjustments.push(adj);
                        self.ctx = Ctx::RmrAdx {
                            line,
                            adj: l.adjustments.len() - 1,
                        };
                    }
                    _ => {
                        // An adjustment outside any RMR loop moves the payment by itself.
                        self.remitted += value;
                        self.has_remitted = true;
                        let reference = opt_text(seg.el(4));
                        let kind = reference_kind(seg.el(3));
                        if kind == ReferenceKind::CreditNote && reference.is_some() {
                            self.lines.push(RemittanceLine {
                                reference,
                                reference_kind: kind,
                                amount_paid: Some(value),
                                ..RemittanceLine::default()
                            });
                            self.ctx = Ctx::EntityAdx { adj: None };
                        } else {
                            self.lines.push(RemittanceLine {
                                reference,
                                reference_kind: kind,
                                adjustments: vec![Adjustment {
                                    amount: negate(value),
                                    reason_code,
                                    text: None,
                                }],
                                ..RemittanceLine::default()
                            });
                            self.ctx = Ctx::EntityAdx {
                                adj: Some((self.lines.len() - 1, 0)),
                            };
                        }
                    }
                }
            }
            b"NTE" => {
                let Some(note) = opt_text(seg.el(2)) else {
                    return Ok(());
                };
                let target = match self.ctx {
                    Ctx::RmrAdx { line, adj }
                    | Ctx::EntityAdx {
                        adj: Some((line, adj)),
                    } => self
                        .lines
                        .get_mut(line)
                        .and_then(|l| l.adjustments.get_mut(adj)),
                    _ => None,
                };
                match target {
                    Some(a) => match &mut a.text {
                        Some(t) => {
                            t.push(' ');
                            t.push_str(&note);
                        }
                        None => a.text = Some(note),
                    },
                    None => self.free_text.push(note),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the transaction at its SE (or where it was cut off) and builds the payment.
    pub(super) fn finish(
        mut self,
        se: Option<&Segment<'_>>,
        file: &str,
        envelope: &str,
    ) -> Result<Payment, FormatError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let Some(bpr) = self.bpr else {
            let position = Position::Segment {
                index: self.st_index,
                id: "ST".into(),
                element: None,
            };
            return Err(FormatError::new(
                file,
                position,
                format!(
                    "transaction {} has no BPR segment, so no payment amount",
                    self.control
                ),
            ));
        };
        match se {
            Some(se) => {
                let declared = se.el(1);
                if !counts(declared, self.segments) {
                    self.warnings.push(format!(
                        "SE01 says {} segments, the transaction has {}",
                        shown(declared),
                        self.segments
                    ));
                }
                if se.el(2) != self.control.as_bytes() {
                    self.warnings.push(format!(
                        "SE02 control number {:?} differs from ST02 {:?}",
                        shown(se.el(2)),
                        self.control
                    ));
                }
            }
            None => self.warnings.push(format!(
                "transaction {} ends without an SE segment: the file may be cut short",
                self.control
            )),
        }
        if self.has_remitted && self.remitted != bpr.amount {
            self.warnings.push(format!(
                "BPR02 amount {} does not equal the remittance total {} (RMR04 plus ADX01 \
                 outside RMR loops); difference {}",
                bpr.amount,
                self.remitted,
                bpr.amount - self.remitted
            ));
        }
        let payment_id = match self.trn {
            Some(id) => id,
            None => {
                let id = format!("{envelope}/{}", self.control);
                self.warnings.push(format!(
                    "{NO_TRN_WARNING}: payment_id {id:?} made of ISA06/ISA13/ST02"
                ));
                id
            }
        };
        Ok(Payment {
            payment_id,
            format: FORMAT.to_string(),
            direction: bpr.direction,
            payment_date: bpr.date.or(self.header_date),
            amount: bpr.amount,
            currency: self.currency.unwrap_or(Currency::USD),
            payer: Payer {
                name: self.payer_name,
                account: bpr.account,
            },
            lines: self.lines,
            free_text: self.free_text,
            warnings: self.warnings,
            returned: None,
        })
    }
}

pub(super) struct Interchange {
    /// ISA06/ISA13, which with ST02 name a transaction that has no TRN.
    pub(super) name: String,
    control: String,
    groups: usize,
}

struct Group {
    control: String,
    pub(super) transactions: usize,
}

/// Follows the envelope (ISA/GS/ST ... SE/GE/IEA) and hands out finished payments.
pub(super) struct Reader820<'a> {
    pub(super) file: &'a str,
    pub(super) on_payment: &'a mut dyn FnMut(Result<Payment, FormatError>),
    pub(super) interchange: Option<Interchange>,
    group: Option<Group>,
    txn: Option<Txn>,
    /// The last payment, held until the envelope after it has been checked, so that a control
    /// count that does not agree can be told on a payment without holding more than one.
    pub(super) pending: Option<Payment>,
    stray_reported: bool,
}

impl<'a> Reader820<'a> {
    pub(super) fn new(
        file: &'a str,
        on_payment: &'a mut dyn FnMut(Result<Payment, FormatError>),
    ) -> Self {
        Reader820 {
            file,
            on_payment,
            interchange: None,
            group: None,
            txn: None,
            pending: None,
            stray_reported: false,
        }
    }

    pub(super) fn flush(&mut self) {
        if let Some(p) = self.pending.take() {
            (self.on_payment)(Ok(p));
        }
    }

    fn warn_pending(&mut self, warning: String) {
        if let Some(p) = &mut self.pending {
            p.warnings.push(warning);
        }
    }

    fn close_txn(&mut self, se: Option<&Segment<'_>>) {
        let Some(txn) = self.txn.take() else { return };
        let envelope = self
            .interchange
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or("");
        match txn.finish(se, self.file, envelope) {
            Ok(p) => {
                self.flush();
                self.pending = Some(p);
            }
            Err(e) => (self.on_payment)(Err(e)),
        }
    }

    fn close_group(&mut self, ge: Option<&Segment<'_>>) {
        let Some(group) = self.group.take() else {
            return;
        };
        match ge {
            Some(ge) => {
                if !counts(ge.el(1), group.transactions) {
                    self.warn_pending(format!(
                        "GE01 of group {} says {} transactions, the group has {}",
                        group.control,
                        shown(ge.el(1)),
                        group.transactions
                    ));
                }
                if ge.el(2) != group.control.as_bytes() {
                    self.warn_pending(format!(
                        "GE02 control number {:?} differs from GS06 {:?}",
                        shown(ge.el(2)),
                        group.control
                    ));
                }
            }
            None => self.warn_pending(format!("group {} has no GE segment", group.control)),
        }
    }

    fn close_interchange(&mut self, iea: Option<&Segment<'_>>) {
        self.close_txn(None);
        self.close_group(None);
        let Some(ic) = self.interchange.take() else {
            return;
        };
        match iea {
            Some(iea) => {
                if !counts(iea.el(1), ic.groups) {
                    self.warn_pending(format!(
                        "IEA01 says {} groups, the interchange has {}",
                        shown(iea.el(1)),
                        ic.groups
                    ));
                }
                if iea.el(2) != ic.control.as_bytes() {
                    self.warn_pending(format!(
                        "IEA02 control number {:?} differs from ISA13 {:?}",
                        shown(iea.el(2)),
                        ic.control
                    ));
                }
            }
            None => self.warn_pending(format!("interchange {} has no IEA segment", ic.control)),
        }
        self.flush();
    }

    pub(super) fn segment(&mut self, seg: &Segment<'_>) {
        match seg.id() {
            b"ISA" => {
                if self.interchange.is_some() {
                    self.close_interchange(None);
                }
                let sender = text(seg.el(6));
                let control = text(seg.el(13));
                let name = format!("{sender}/{control}");
                self.interchange = Some(Interchange {
                    name,
                    control,
                    groups: 0,
                });
                self.stray_reported = false;
            }
            b"IEA" => self.close_interchange(Some(seg)),
            b"GS" => {
                self.close_txn(None);
                if self.group.is_some() {
                    self.close_group(None);
                }
                if let Some(ic) = &mut self.interchange {
                    ic.groups += 1;
                }
                self.group = Some(Group {
                    control: text(seg.el(6)),
                    transactions: 0,
                });
            }
            b"GE" => {
                self.close_txn(None);
                self.close_group(Some(seg));
            }
            b"ST" => {
                self.close_txn(None);
                self.flush();
                if let Some(g) = &mut self.group {
                    g.transactions += 1;
                }
                self.txn = Some(Txn::new(seg, self.file));
            }
            b"SE" => {
                if let Some(t) = &mut self.txn {
                    t.segments += 1;
                }
                self.close_txn(Some(seg));
            }
            _ => match &mut self.txn {
                Some(t) => t.segment(seg, self.file),
                None if self.interchange.is_none() && !self.stray_reported => {
                    self.stray_reported = true;
                    let e = seg_error(
                        self.file,
                        seg,
                        None,
                        "segment outside any interchange (after its IEA); ignored up to the next \
                         ISA"
                        .into(),
                    );
                    (self.on_payment)(Err(e));
                }
                // Acknowledgements (TA1) and the like between envelopes carry no payment.
                None => {}
            },
        }
    }

    pub(super) fn finish(&mut self) {
        if self.interchange.is_some() {
            self.close_interchange(None);
        } else {
            self.close_txn(None);
            self.close_group(None);
        }
        self.flush();
    }
}
