//! Conversions between the proto messages and the domain. Every conversion destructures the whole
//! message, so a field added to the proto breaks the build here until someone decides what it
//! means. Inbound conversions are `TryFrom` and fail with a [`FieldError`] naming the field.

use super::pb;
use crate::domain::{
    Adjustment, Allocation, Currency, Customer, Decision, Direction, Invoice, LabelSource,
    Leftover, Payer, Payment, ReferenceKind, RemittanceLine, ReturnedItem, ReviewReason,
    RulesApplied, Status, Suggestion, Terms, WriteOffLine,
};
use crate::formats::FormatError;
use crate::model::artifact::TrainingMetrics;
use crate::service::{
    Approval, ApprovalState, AuditEvent, AuditRecord, Resolution, ResolutionAction, ReviewRecord,
    ReviewState, ReviewSummary, Sla, TrainingExample,
};
use crate::service::{ModelInfo, ServiceError};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;

/// A missing or malformed field, named by its path in the request (`invoices[3].amount`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error inside an enclosing field.
    pub(crate) fn within(self, outer: impl std::fmt::Display) -> FieldError {
        FieldError {
            field: format!("{outer}.{}", self.field),
            message: self.message,
        }
    }
}

impl From<FieldError> for ServiceError {
    fn from(e: FieldError) -> Self {
        ServiceError::InvalidArgument {
            field: e.field,
            message: e.message,
        }
    }
}

pub(crate) fn required(field: &str, v: String) -> Result<String, FieldError> {
    if v.trim().is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    Ok(v)
}

/// Amounts beyond this are refused at the edge, so that no sum of a few of them can overflow.
const MAX_AMOUNT: Decimal = Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0); // 10^15

pub(crate) fn decimal(field: &str, v: &str) -> Result<Decimal, FieldError> {
    let t = v.trim();
    if t.is_empty() {
        return Err(FieldError::new(
            field,
            "is required (a decimal string such as \"1234.56\")",
        ));
    }
    let d = Decimal::from_str(t)
        .map_err(|e| FieldError::new(field, format!("{t:?} is not a decimal amount: {e}")))?;
    if d.abs() > MAX_AMOUNT {
        return Err(FieldError::new(
            field,
            format!("{t} is beyond the largest amount, {MAX_AMOUNT}"),
        ));
    }
    Ok(d)
}

fn decimal_or_zero(field: &str, v: &str) -> Result<Decimal, FieldError> {
    if v.trim().is_empty() {
        Ok(Decimal::ZERO)
    } else {
        decimal(field, v)
    }
}

fn opt_decimal(field: &str, v: Option<String>) -> Result<Option<Decimal>, FieldError> {
    v.map(|s| decimal(field, &s)).transpose()
}

fn date(field: &str, v: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
        .map_err(|_| FieldError::new(field, format!("{v:?} is not a date like 2026-11-02")))
}

fn currency(field: &str, v: &str) -> Result<Currency, FieldError> {
    Currency::from_str(v).map_err(|m| FieldError::new(field, m))
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn enum_value<E: TryFrom<i32>>(field: &str, v: i32) -> Result<E, FieldError> {
    E::try_from(v).map_err(|_| FieldError::new(field, format!("unknown value {v}")))
}

// ----- inbound -----

impl TryFrom<pb::Customer> for Customer {
    type Error = FieldError;

    fn try_from(v: pb::Customer) -> Result<Self, FieldError> {
        let pb::Customer {
            id,
            name,
            parent_id,
            bank_accounts,
        } = v;
        Ok(Customer {
            id: required("id", id)?,
            name,
            parent_id: nonempty(parent_id),
            bank_accounts: bank_accounts
                .into_iter()
                .filter(|a| !a.trim().is_empty())
                .collect(),
        })
    }
}

impl TryFrom<pb::Invoice> for Invoice {
    type Error = FieldError;

    fn try_from(v: pb::Invoice) -> Result<Self, FieldError> {
        let pb::Invoice {
            id,
            customer_id,
            number,
            po_number,
            invoice_date,
            due_date,
            currency: cur,
            amount,
            open_amount,
            terms,
        } = v;
        let amount = decimal("amount", &amount)?;
        Ok(Invoice {
            id: required("id", id)?,
            customer_id: required("customer_id", customer_id)?,
            number: required("number", number)?,
            po_number: nonempty(po_number),
            invoice_date: date("invoice_date", &invoice_date)?,
            due_date: date("due_date", &due_date)?,
            currency: currency("currency", &cur)?,
            amount,
            open_amount: match open_amount {
                Some(s) => decimal("open_amount", &s)?,
                None => amount,
            },
            terms: Terms::parse(&terms).map_err(|m| FieldError::new("terms", m))?,
        })
    }
}

impl TryFrom<pb::Adjustment> for Adjustment {
    type Error = FieldError;

    fn try_from(v: pb::Adjustment) -> Result<Self, FieldError> {
        let pb::Adjustment {
            amount,
            reason_code,
            text,
        } = v;
        Ok(Adjustment {
            amount: decimal("amount", &amount)?,
            reason_code: nonempty(reason_code),
            text: nonempty(text),
        })
    }
}

impl TryFrom<pb::RemittanceLine> for RemittanceLine {
    type Error = FieldError;

    fn try_from(v: pb::RemittanceLine) -> Result<Self, FieldError> {
        let pb::RemittanceLine {
            reference,
            reference_kind,
            amount_paid,
            invoice_amount,
            discount,
            adjustments,
        } = v;
        let reference_kind =
            match enum_value::<pb::ReferenceKind>("reference_kind", reference_kind)? {
                pb::ReferenceKind::Unspecified => ReferenceKind::Unknown,
                pb::ReferenceKind::Invoice => ReferenceKind::Invoice,
                pb::ReferenceKind::CreditNote => ReferenceKind::CreditNote,
                pb::ReferenceKind::PurchaseOrder => ReferenceKind::PurchaseOrder,
            };
        let adjustments = adjustments
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                Adjustment::try_from(a).map_err(|e| e.within(format!("adjustments[{i}]")))
            })
            .collect::<Result<_, _>>()?;
        Ok(RemittanceLine {
            reference: nonempty(reference),
            reference_kind,
            amount_paid: opt_decimal("amount_paid", amount_paid)?,
            invoice_amount: opt_decimal("invoice_amount", invoice_amount)?,
            discount: opt_decimal("discount", discount)?,
            adjustments,
        })
    }
}

impl TryFrom<pb::Payment> for Payment {
    type Error = FieldError;

    fn try_from(v: pb::Payment) -> Result<Self, FieldError> {
        let pb::Payment {
            payment_id,
            format,
            direction,
            payment_date,
            amount,
            currency: cur,
            payer,
            lines,
            free_text,
            warnings,
            returned,
        } = v;
        let returned = returned
            .map(|r| {
                let pb::ReturnedItem {
                    return_code,
                    reason,
                    original_trace,
                } = r;
                Ok::<_, FieldError>(ReturnedItem {
                    return_code: required("returned.return_code", return_code)?,
                    reason: nonempty(reason),
                    original_trace: nonempty(original_trace),
                })
            })
            .transpose()?;
        let direction = match enum_value::<pb::Direction>("direction", direction)? {
            pb::Direction::Unspecified | pb::Direction::Credit => Direction::Credit,
            pb::Direction::Debit => Direction::Debit,
        };
        let payer = match payer {
            Some(pb::Payer { name, account }) => Payer {
                name: nonempty(name),
                account: nonempty(account),
            },
            None => Payer::default(),
        };
        let lines = lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| RemittanceLine::try_from(l).map_err(|e| e.within(format!("lines[{i}]"))))
            .collect::<Result<_, _>>()?;
        Ok(Payment {
            payment_id: required("payment_id", payment_id)?,
            format: if format.trim().is_empty() {
                "grpc".into()
            } else {
                format
            },
            direction,
            payment_date: payment_date
                .filter(|d| !d.trim().is_empty())
                .map(|d| date("payment_date", &d))
                .transpose()?,
            amount: decimal("amount", &amount)?,
            currency: currency("currency", &cur)?,
            payer,
            lines,
            free_text,
            warnings,
            returned,
        })
    }
}

impl TryFrom<pb::Allocation> for Allocation {
    type Error = FieldError;

    fn try_from(v: pb::Allocation) -> Result<Self, FieldError> {
        let pb::Allocation {
            invoice_id,
            amount,
            discount,
            deduction,
            reason_code,
        } = v;
        Ok(Allocation {
            invoice_id: required("invoice_id", invoice_id)?,
            amount: decimal("amount", &amount)?,
            discount: decimal_or_zero("discount", &discount)?,
            deduction: decimal_or_zero("deduction", &deduction)?,
            reason_code: nonempty(reason_code),
        })
    }
}

// ----- outbound -----

impl From<Customer> for pb::Customer {
    fn from(v: Customer) -> Self {
        let Customer {
            id,
            name,
            parent_id,
            bank_accounts,
        } = v;
        pb::Customer {
            id,
            name,
            parent_id,
            bank_accounts,
        }
    }
}

impl From<Invoice> for pb::Invoice {
    fn from(v: Invoice) -> Self {
        let Invoice {
            id,
            customer_id,
            number,
            po_number,
            invoice_date,
            due_date,
            currency,
            amount,
            open_amount,
            terms,
        } = v;
        pb::Invoice {
            id,
            customer_id,
            number,
            po_number,
            invoice_date: invoice_date.to_string(),
            due_date: due_date.to_string(),
            currency: currency.to_string(),
            amount: amount.to_string(),
            open_amount: Some(open_amount.to_string()),
            terms: terms.to_string(),
        }
    }
}

impl From<Payment> for pb::Payment {
    fn from(v: Payment) -> Self {
        let Payment {
            payment_id,
            format,
            direction,
            payment_date,
            amount,
            currency,
            payer,
            lines,
            free_text,
            warnings,
            returned,
        } = v;
        let Payer { name, account } = payer;
        pb::Payment {
            payment_id,
            format,
            direction: match direction {
                Direction::Credit => pb::Direction::Credit,
                Direction::Debit => pb::Direction::Debit,
            } as i32,
            payment_date: payment_date.map(|d| d.to_string()),
            amount: amount.to_string(),
            currency: currency.to_string(),
            payer: Some(pb::Payer { name, account }),
            lines: lines.into_iter().map(pb::RemittanceLine::from).collect(),
            free_text,
            warnings,
            returned: returned.map(
                |ReturnedItem {
                     return_code,
                     reason,
                     original_trace,
                 }| pb::ReturnedItem {
                    return_code,
                    reason,
                    original_trace,
                },
            ),
        }
    }
}

impl From<RemittanceLine> for pb::RemittanceLine {
    fn from(v: RemittanceLine) -> Self {
        let RemittanceLine {
            reference,
            reference_kind,
            amount_paid,
            invoice_amount,
            discount,
            adjustments,
        } = v;
        pb::RemittanceLine {
            reference,
            reference_kind: match reference_kind {
                ReferenceKind::Invoice => pb::ReferenceKind::Invoice,
                ReferenceKind::CreditNote => pb::ReferenceKind::CreditNote,
                ReferenceKind::PurchaseOrder => pb::ReferenceKind::PurchaseOrder,
                ReferenceKind::Unknown => pb::ReferenceKind::Unspecified,
            } as i32,
            amount_paid: amount_paid.map(|d| d.to_string()),
            invoice_amount: invoice_amount.map(|d| d.to_string()),
            discount: discount.map(|d| d.to_string()),
            adjustments: adjustments
                .into_iter()
                .map(
                    |Adjustment {
                         amount,
                         reason_code,
                         text,
                     }| pb::Adjustment {
                        amount: amount.to_string(),
                        reason_code,
                        text,
                    },
                )
                .collect(),
        }
    }
}

impl From<Allocation> for pb::Allocation {
    fn from(v: Allocation) -> Self {
        let Allocation {
            invoice_id,
            amount,
            discount,
            deduction,
            reason_code,
        } = v;
        pb::Allocation {
            invoice_id,
            amount: amount.to_string(),
            discount: discount.to_string(),
            deduction: deduction.to_string(),
            reason_code,
        }
    }
}

/// The domain reason of a wire reason; UNSPECIFIED (or an unknown number) is none.
pub(crate) fn review_reason_from(v: i32) -> Option<ReviewReason> {
    match pb::ReviewReason::try_from(v).ok()? {
        pb::ReviewReason::Unspecified => None,
        pb::ReviewReason::NoCustomer => Some(ReviewReason::NoCustomer),
        pb::ReviewReason::NoCandidate => Some(ReviewReason::NoCandidate),
        pb::ReviewReason::Ambiguous => Some(ReviewReason::Ambiguous),
        pb::ReviewReason::AmountMismatch => Some(ReviewReason::AmountMismatch),
        pb::ReviewReason::Deduction => Some(ReviewReason::Deduction),
        pb::ReviewReason::LowConfidence => Some(ReviewReason::LowConfidence),
        pb::ReviewReason::NotMatchable => Some(ReviewReason::NotMatchable),
        pb::ReviewReason::PossibleDuplicate => Some(ReviewReason::PossibleDuplicate),
        pb::ReviewReason::Unapplied => Some(ReviewReason::Unapplied),
        pb::ReviewReason::ReturnedItem => Some(ReviewReason::ReturnedItem),
    }
}

fn review_reason(r: Option<ReviewReason>) -> pb::ReviewReason {
    match r {
        None => pb::ReviewReason::Unspecified,
        Some(ReviewReason::NoCustomer) => pb::ReviewReason::NoCustomer,
        Some(ReviewReason::NoCandidate) => pb::ReviewReason::NoCandidate,
        Some(ReviewReason::Ambiguous) => pb::ReviewReason::Ambiguous,
        Some(ReviewReason::AmountMismatch) => pb::ReviewReason::AmountMismatch,
        Some(ReviewReason::Deduction) => pb::ReviewReason::Deduction,
        Some(ReviewReason::LowConfidence) => pb::ReviewReason::LowConfidence,
        Some(ReviewReason::NotMatchable) => pb::ReviewReason::NotMatchable,
        Some(ReviewReason::PossibleDuplicate) => pb::ReviewReason::PossibleDuplicate,
        Some(ReviewReason::Unapplied) => pb::ReviewReason::Unapplied,
        Some(ReviewReason::ReturnedItem) => pb::ReviewReason::ReturnedItem,
    }
}

impl From<Decision> for pb::Decision {
    fn from(v: Decision) -> Self {
        let Decision {
            payment_id,
            status,
            confidence,
            customer_id,
            allocations,
            unapplied,
            suggestions,
            explanation,
            review_reason: reason,
            model_version,
            rules_version,
            by_rules:
                RulesApplied {
                    write_offs,
                    leftover,
                },
        } = v;
        let (leftover, leftover_reason_code) = match leftover {
            Leftover::Unapplied => ("unapplied", None),
            Leftover::OnAccount => ("on_account", None),
            Leftover::WriteOff { reason_code } => ("write_off", Some(reason_code)),
        };
        pb::Decision {
            payment_id,
            status: match status {
                Status::Auto => pb::DecisionStatus::Auto,
                Status::Review => pb::DecisionStatus::Review,
                Status::Returned => pb::DecisionStatus::Returned,
            } as i32,
            confidence,
            customer_id,
            allocations: allocations.into_iter().map(pb::Allocation::from).collect(),
            unapplied: unapplied.to_string(),
            suggestions: suggestions
                .into_iter()
                .map(
                    |Suggestion {
                         confidence,
                         allocations,
                         unapplied,
                         explanation,
                     }| pb::Suggestion {
                        confidence,
                        allocations: allocations.into_iter().map(pb::Allocation::from).collect(),
                        unapplied: unapplied.to_string(),
                        explanation,
                    },
                )
                .collect(),
            explanation,
            review_reason: review_reason(reason) as i32,
            model_version,
            rules_version,
            write_offs: write_offs
                .into_iter()
                .map(
                    |WriteOffLine {
                         invoice_id,
                         amount,
                         reason_code,
                     }| pb::WriteOff {
                        invoice_id,
                        amount: amount.to_string(),
                        reason_code,
                    },
                )
                .collect(),
            leftover: leftover.into(),
            leftover_reason_code,
        }
    }
}

impl From<FormatError> for pb::InputError {
    fn from(v: FormatError) -> Self {
        let FormatError {
            file,
            position,
            message,
        } = v;
        pb::InputError {
            file,
            position: position.to_string(),
            message,
        }
    }
}

/// A review summary as listed, with its age, priority and whether it is overdue measured at
/// `now` against `sla`.
pub(crate) fn summary(v: ReviewSummary, now: DateTime<Utc>, sla: &Sla) -> pb::ReviewItemSummary {
    let (age_days, priority) = (v.age_days(now), v.priority(now));
    let overdue = v.state == ReviewState::Open && sla.overdue(v.reason, v.created_at, now);
    let due_at = rfc3339(v.created_at + sla.limit(v.reason));
    let ReviewSummary {
        payment_id,
        customer_id,
        amount,
        currency,
        reason,
        confidence,
        created_at,
        state,
        owner,
    } = v;
    pb::ReviewItemSummary {
        overdue,
        due_at,
        owner,
        payment_id,
        customer_id,
        amount: amount.to_string(),
        currency: currency.to_string(),
        reason: review_reason(reason) as i32,
        confidence,
        created_at: rfc3339(created_at),
        age_days,
        priority,
        state: match state {
            ReviewState::Open => pb::ReviewState::Open,
            ReviewState::Resolved => pb::ReviewState::Resolved,
            ReviewState::Returned => pb::ReviewState::Returned,
        } as i32,
    }
}

impl From<Resolution> for pb::Resolution {
    fn from(v: Resolution) -> Self {
        let Resolution {
            action,
            analyst,
            resolved_at,
            allocations,
            unapplied,
            customer_id,
            suggestion_index,
            note,
        } = v;
        pb::Resolution {
            action: match action {
                ResolutionAction::AcceptSuggestion => pb::ResolutionAction::AcceptSuggestion,
                ResolutionAction::ApplyAllocation => pb::ResolutionAction::ApplyAllocation,
                ResolutionAction::LeaveUnapplied => pb::ResolutionAction::LeaveUnapplied,
                ResolutionAction::PutOnAccount => pb::ResolutionAction::PutOnAccount,
            } as i32,
            analyst,
            resolved_at: rfc3339(resolved_at),
            allocations: allocations.into_iter().map(pb::Allocation::from).collect(),
            unapplied: unapplied.to_string(),
            customer_id,
            suggestion_index,
            note,
        }
    }
}

/// A review item with the resolution waiting on it for a second analyst, if any.
pub(crate) fn review_item(
    v: ReviewRecord,
    pending: Option<Approval>,
    now: DateTime<Utc>,
    sla: &Sla,
) -> pb::ReviewItem {
    let ReviewRecord {
        summary: s,
        payment,
        decision,
        resolution,
    } = v;
    pb::ReviewItem {
        summary: Some(summary(s, now, sla)),
        payment: Some(payment.into()),
        decision: Some(decision.into()),
        resolution: resolution.map(pb::Resolution::from),
        pending_approval: pending.map(pb::PendingApproval::from),
    }
}

impl From<Approval> for pb::PendingApproval {
    fn from(v: Approval) -> Self {
        let Approval {
            id,
            payment_id,
            proposed,
            currency,
            reasons,
            limit,
            state,
            decided_by,
            decided_at,
            decision_note,
        } = v;
        pb::PendingApproval {
            id,
            payment_id,
            proposed: Some(proposed.into()),
            currency: currency.to_string(),
            reasons,
            limit: limit.to_string(),
            state: match state {
                ApprovalState::Pending => pb::ApprovalState::Pending,
                ApprovalState::Approved => pb::ApprovalState::Approved,
                ApprovalState::Rejected => pb::ApprovalState::Rejected,
            } as i32,
            decided_by,
            decided_at: decided_at.map(rfc3339),
            decision_note,
        }
    }
}

impl From<AuditEvent> for pb::AuditEvent {
    fn from(v: AuditEvent) -> Self {
        let AuditEvent { id, record } = v;
        let AuditRecord {
            at,
            actor,
            action,
            subject,
            before,
            after,
        } = record;
        pb::AuditEvent {
            id,
            at: rfc3339(at),
            actor,
            action,
            subject,
            before_json: before.to_string(),
            after_json: after.to_string(),
        }
    }
}

impl From<TrainingExample> for pb::TrainingExample {
    fn from(v: TrainingExample) -> Self {
        let TrainingExample {
            payment,
            source,
            allocations,
            decided_at,
            position: _,
        } = v;
        let payment_id = payment.payment_id.clone();
        pb::TrainingExample {
            labels: allocations
                .into_iter()
                .map(|(invoice_id, amount)| pb::Label {
                    payment_id: payment_id.clone(),
                    invoice_id,
                    applied_amount: amount.to_string(),
                })
                .collect(),
            payment_id,
            // The API's names predate the labels file's: "review" is the file's "analyst".
            source: match source {
                LabelSource::Analyst => "review",
                LabelSource::Auto => "auto",
                LabelSource::History => "history",
            }
            .into(),
            payment: Some(payment.into()),
            decided_at: rfc3339(decided_at),
        }
    }
}

impl From<ModelInfo> for pb::ModelInfo {
    fn from(v: ModelInfo) -> Self {
        let ModelInfo {
            version,
            threshold,
            model_threshold,
            rules_version,
            metrics,
            training_data,
            source,
            activated_at,
        } = v;
        let TrainingMetrics {
            train_payments,
            train_candidates,
            holdout_payments,
            holdout_auc,
            holdout_touchless,
            holdout_precision,
            holdout_precision_lower_bound,
            holdout_recall_at_candidates,
            target_precision,
            rounds,
            seed,
        } = metrics;
        pb::ModelInfo {
            version,
            threshold,
            model_threshold,
            rules_version,
            metrics: Some(pb::ModelMetrics {
                train_payments: train_payments as u64,
                train_candidates: train_candidates as u64,
                holdout_payments: holdout_payments as u64,
                holdout_auc,
                holdout_touchless,
                holdout_precision,
                holdout_precision_lower_bound,
                holdout_recall_at_candidates,
                target_precision,
                rounds: rounds as u64,
                seed,
            }),
            training_data,
            source,
            activated_at: rfc3339(activated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice() -> pb::Invoice {
        pb::Invoice {
            id: "I1".into(),
            customer_id: "C1".into(),
            number: "INV-1".into(),
            po_number: None,
            invoice_date: "2026-10-01".into(),
            due_date: "2026-10-31".into(),
            currency: "usd".into(),
            amount: "100.50".into(),
            open_amount: None,
            terms: "2/10 NET 30".into(),
        }
    }

    #[test]
    fn an_invoice_round_trips_and_open_amount_defaults_to_the_amount() {
        let inv = Invoice::try_from(invoice()).expect("valid");
        assert_eq!(inv.open_amount, inv.amount);
        assert_eq!(inv.currency, Currency::USD);
        let back = pb::Invoice::from(inv.clone());
        assert_eq!(Invoice::try_from(back), Ok(inv));
    }

    #[test]
    fn malformed_fields_are_named_with_their_path() {
        let bad = pb::Invoice {
            amount: "1,00".into(),
            ..invoice()
        };
        let e = Invoice::try_from(bad)
            .err()
            .map(|e| e.within("invoices[3]"));
        assert_eq!(e.map(|e| e.field), Some("invoices[3].amount".into()));
        let bad = pb::Invoice {
            due_date: "31/10/2026".into(),
            ..invoice()
        };
        assert_eq!(
            Invoice::try_from(bad).err().map(|e| e.field),
            Some("due_date".into())
        );
        let p = pb::Payment {
            payment_id: "P1".into(),
            amount: "10".into(),
            currency: "USD".into(),
            lines: vec![pb::RemittanceLine {
                adjustments: vec![pb::Adjustment {
                    amount: "x".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            Payment::try_from(p).err().map(|e| e.field),
            Some("lines[0].adjustments[0].amount".into())
        );
        let p = pb::Payment {
            payment_id: "P1".into(),
            amount: "10".into(),
            ..Default::default()
        };
        assert_eq!(
            Payment::try_from(p).err().map(|e| e.field),
            Some("currency".into())
        );
    }

    #[test]
    fn amounts_are_bounded() {
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000_000_i64));
        assert!(decimal("amount", "1000000000000000").is_ok());
        assert!(decimal("amount", "-1000000000000000.01").is_err());
        assert!(decimal("amount", "79228162514264337593543950335").is_err());
    }

    #[test]
    fn a_payment_round_trips() {
        let p = Payment {
            payment_id: "P1".into(),
            format: "csv".into(),
            direction: Direction::Credit,
            payment_date: NaiveDate::from_ymd_opt(2026, 11, 2),
            amount: Decimal::new(12345, 2),
            currency: Currency::USD,
            payer: Payer {
                name: Some("ACME".into()),
                account: None,
            },
            lines: vec![RemittanceLine {
                reference: Some("INV-1".into()),
                reference_kind: ReferenceKind::Invoice,
                amount_paid: Some(Decimal::new(12345, 2)),
                invoice_amount: None,
                discount: None,
                adjustments: vec![Adjustment {
                    amount: Decimal::ONE,
                    reason_code: Some("FEE".into()),
                    text: None,
                }],
            }],
            free_text: vec!["memo".into()],
            warnings: vec![],
            returned: None,
        };
        assert_eq!(Payment::try_from(pb::Payment::from(p.clone())), Ok(p));
    }
}
