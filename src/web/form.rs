//! The resolve form of an item page, read into a service request. Rows of the allocation table
//! are numbered fields (`inv.3`, `amt.3`, ...), so the page works as a plain HTML form; rows left
//! blank are not allocations.

use crate::domain::Allocation;
use crate::io::parse_money;
use crate::service::ResolveAction;
use rust_decimal::Decimal;

/// Rows one form may carry; more is not a page of ours.
const MAX_ROWS: usize = 2_000;

/// One row of the allocation table as typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RowInput {
    pub(crate) key: usize,
    pub(crate) invoice_id: String,
    pub(crate) amount: String,
    pub(crate) discount: String,
    pub(crate) deduction: String,
    pub(crate) reason_code: String,
}

impl RowInput {
    fn is_blank(&self) -> bool {
        [&self.amount, &self.discount, &self.deduction]
            .iter()
            .all(|v| v.trim().is_empty())
    }
}

/// The resolve form as posted.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResolveForm {
    pub(crate) csrf: String,
    /// The analyst the page was rendered for, if the post names one.
    pub(crate) analyst: Option<String>,
    pub(crate) action: String,
    pub(crate) note: String,
    pub(crate) unapplied: String,
    pub(crate) account: String,
    /// Every row of the table, by key, as typed.
    pub(crate) rows: Vec<RowInput>,
}

impl ResolveForm {
    pub(crate) fn parse(pairs: Vec<(String, String)>) -> Result<ResolveForm, String> {
        let mut f = ResolveForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => f.csrf = v,
                "analyst" => f.analyst = Some(v),
                "action" => f.action = v,
                "note" => f.note = v,
                "unapplied" => f.unapplied = v,
                "account" => f.account = v,
                _ => {
                    let Some((field, key)) = k.split_once('.') else {
                        continue;
                    };
                    let Ok(key) = key.parse::<usize>() else {
                        continue;
                    };
                    let row = match f.rows.iter().position(|r| r.key == key) {
                        Some(i) => &mut f.rows[i],
                        None => {
                            if f.rows.len() >= MAX_ROWS {
                                return Err(format!("more than {MAX_ROWS} allocation rows"));
                            }
                            f.rows.push(RowInput {
                                key,
                                ..Default::default()
                            });
                            let last = f.rows.len() - 1;
                            &mut f.rows[last]
                        }
                    };
                    match field {
                        "inv" => row.invoice_id = v,
                        "amt" => row.amount = v,
                        "disc" => row.discount = v,
                        "ded" => row.deduction = v,
                        "code" => row.reason_code = v,
                        _ => {}
                    }
                }
            }
        }
        f.rows.sort_by_key(|r| r.key);
        Ok(f)
    }

    /// The rows that allocate something, in table order.
    pub(crate) fn used_rows(&self) -> Vec<&RowInput> {
        self.rows.iter().filter(|r| !r.is_blank()).collect()
    }

    /// The service action the form asks for. A value that cannot be read is refused here with
    /// the row it is on; everything else is the service's to judge.
    pub(crate) fn action(&self) -> Result<ResolveAction, String> {
        match self.action.as_str() {
            "unapplied" => Ok(ResolveAction::LeaveUnapplied),
            "account" => {
                let c = self.account.trim();
                if c.is_empty() {
                    return Err(
                        "Put on account: give the customer id whose account keeps the cash.".into(),
                    );
                }
                Ok(ResolveAction::PutOnAccount(c.to_string()))
            }
            "allocate" => {
                let mut allocations = Vec::new();
                for (n, r) in self.used_rows().into_iter().enumerate() {
                    let row = n + 1;
                    let invoice_id = r.invoice_id.trim();
                    if invoice_id.is_empty() {
                        return Err(format!(
                            "Allocation {row}: choose the invoice the amounts go to."
                        ));
                    }
                    let amount = |label: &str, v: &str| -> Result<Decimal, String> {
                        if v.trim().is_empty() {
                            return Ok(Decimal::ZERO);
                        }
                        parse_money(v).map_err(|e| {
                            format!("Allocation {row} (invoice {invoice_id}), {label}: {e}")
                        })
                    };
                    let code = r.reason_code.trim();
                    allocations.push(Allocation {
                        invoice_id: invoice_id.to_string(),
                        amount: amount("cash applied", &r.amount)?,
                        discount: amount("discount", &r.discount)?,
                        deduction: amount("deduction", &r.deduction)?,
                        reason_code: (!code.is_empty()).then(|| code.to_string()),
                    });
                }
                let unapplied = match self.unapplied.trim() {
                    "" => None,
                    u => Some(parse_money(u).map_err(|e| format!("Unapplied: {e}"))?),
                };
                Ok(ResolveAction::ApplyAllocation {
                    allocations,
                    unapplied,
                })
            }
            a => match a.strip_prefix("accept:").map(str::parse::<u32>) {
                Some(Ok(k)) => Ok(ResolveAction::AcceptSuggestion(k)),
                _ => Err(format!("Unknown action {a:?}.")),
            },
        }
    }
}

/// A service field path in the analyst's words; `invoices` are the invoice ids of the
/// allocations sent, so that `allocations[1]` becomes the invoice it was for.
pub(crate) fn field_label(field: &str, invoices: &[String]) -> String {
    let simple = match field {
        "note" => Some("Note"),
        "unapplied" => Some("Unapplied"),
        "allocations" | "apply_allocation.allocations" => Some("Allocation"),
        "accept_suggestion.index" => Some("Suggestion"),
        "put_on_account.customer_id" => Some("Put on account"),
        "payment_id" => Some("Payment"),
        _ => None,
    };
    if let Some(s) = simple {
        return s.to_string();
    }
    let parsed = field
        .strip_prefix("allocations[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest.trim_start_matches('.'))));
    match parsed {
        Some((i, sub)) => {
            let what = match sub {
                "amount" => "cash applied",
                "discount" => "discount",
                "deduction" => "deduction",
                "reason_code" => "reason code",
                "invoice_id" => "invoice",
                other => other,
            };
            match invoices.get(i) {
                Some(inv) => format!("Allocation {} (invoice {inv}), {what}", i + 1),
                None => format!("Allocation {}, {what}", i + 1),
            }
        }
        None => field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn blank_rows_are_left_out_and_typed_amounts_are_read_exactly() {
        let f = ResolveForm::parse(pairs(&[
            ("action", "allocate"),
            ("inv.0", "I-1"),
            ("amt.0", "1,200.10"),
            ("inv.1", "I-2"),
            ("amt.1", ""),
            ("inv.2", "I-3"),
            ("amt.2", "50"),
            ("ded.2", "2.5"),
            ("code.2", " 20 "),
            ("unapplied", "0.00"),
        ]))
        .expect("form");
        let ResolveAction::ApplyAllocation {
            allocations,
            unapplied,
        } = f.action().expect("action")
        else {
            panic!("not an allocation");
        };
        assert_eq!(unapplied, Some(dec!(0.00)));
        assert_eq!(allocations.len(), 2);
        assert_eq!(allocations[0].amount, dec!(1200.10));
        assert_eq!(allocations[1].deduction, dec!(2.5));
        assert_eq!(allocations[1].reason_code.as_deref(), Some("20"));
    }

    #[test]
    fn unreadable_amounts_name_their_row_and_a_decimal_comma_is_refused() {
        let f = ResolveForm::parse(pairs(&[
            ("action", "allocate"),
            ("inv.4", "I-9"),
            ("amt.4", "12,50"),
        ]))
        .expect("form");
        let e = f.action().err().unwrap_or_default();
        assert!(
            e.starts_with("Allocation 1 (invoice I-9), cash applied"),
            "{e}"
        );
        assert_eq!(
            field_label("allocations[1].reason_code", &["A".into(), "B".into()]),
            "Allocation 2 (invoice B), reason code"
        );
    }
}
