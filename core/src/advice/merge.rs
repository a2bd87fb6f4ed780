//! A link made into the payments the matcher decides: the receipt's money, the advice's detail.

use super::Link;
use crate::domain::{Payment, RemittanceLine};
use crate::matching::amounts::subset_sums;
use rust_decimal::Decimal;

/// Most advice lines divided among the receipts of a split payment; beyond it every receipt
/// gets every line and the matcher picks what its amount pays.
const MAX_LINES_TO_DIVIDE: usize = 16;

/// The payments of a link, one per receipt, each keeping its receipt's id, amount, date and
/// currency. The payer is the bank's, completed from the advice where the bank left a field
/// out. With several advices the receipt carries all their lines. With several receipts the
/// advice's lines are divided among them when their amounts say how, in exactly one way;
/// otherwise each receipt carries all the lines, with a warning, and the matcher finds the
/// invoices its amount pays.
pub fn merge(link: &Link, receipts: &[Payment], advices: &[Payment]) -> Vec<Payment> {
    let advice_ids: Vec<&str> = link
        .advices
        .iter()
        .map(|&a| advices[a].payment_id.as_str())
        .collect();
    let note = format!(
        "linked to advice {} ({})",
        advice_ids.join(", "),
        link.evidence.join("; ")
    );
    let lines_of = |a: usize| advices[a].lines.clone();
    let divided: Option<Vec<Vec<RemittanceLine>>> = match link.advices.as_slice() {
        [a] if link.receipts.len() > 1 => divide(
            &advices[*a].lines,
            &link
                .receipts
                .iter()
                .map(|&r| receipts[r].amount)
                .collect::<Vec<_>>(),
        ),
        _ => None,
    };
    link.receipts
        .iter()
        .enumerate()
        .map(|(k, &r)| {
            let receipt = &receipts[r];
            let mut p = receipt.clone();
            let first = &advices[link.advices[0]];
            if p.payer.name.is_none() {
                p.payer.name = first.payer.name.clone();
            }
            if p.payer.account.is_none() {
                p.payer.account = first.payer.account.clone();
            }
            p.lines = match &divided {
                Some(parts) => parts[k].clone(),
                None => link.advices.iter().flat_map(|&a| lines_of(a)).collect(),
            };
            for &a in &link.advices {
                p.free_text.extend(advices[a].free_text.iter().cloned());
                p.warnings.extend(advices[a].warnings.iter().cloned());
            }
            p.warnings.push(note.clone());
            if link.receipts.len() > 1 && divided.is_none() {
                p.warnings.push(format!(
                    "one of {} receipts of one advice: the advice's lines could not be divided by amount, so each receipt carries them all",
                    link.receipts.len()
                ));
            }
            p
        })
        .collect()
}

/// The advice's lines divided among receipts of `amounts`, when every line states what it paid
/// and exactly one division adds up for every receipt.
fn divide(lines: &[RemittanceLine], amounts: &[Decimal]) -> Option<Vec<Vec<RemittanceLine>>> {
    if lines.len() > MAX_LINES_TO_DIVIDE {
        return None;
    }
    let paid: Vec<Decimal> = lines
        .iter()
        .map(|l| l.amount_paid)
        .collect::<Option<Vec<_>>>()?;
    // The search prunes on running totals, which only holds for positive amounts: a credit
    // memo taken on the advice leaves the lines undivided.
    if paid.iter().any(|p| !p.is_sign_positive() || p.is_zero()) {
        return None;
    }
    let mut solutions: Vec<Vec<usize>> = Vec::new();
    let mut owner = vec![usize::MAX; lines.len()];
    assign(&paid, amounts, 0, &mut owner, &mut solutions);
    match solutions.as_slice() {
        [only] => {
            let mut parts = vec![Vec::new(); amounts.len()];
            for (line, &r) in only.iter().enumerate() {
                parts[r].push(lines[line].clone());
            }
            Some(parts)
        }
        _ => None,
    }
}

/// Assigns lines to receipts `r..` one receipt at a time, each taking a subset of the lines
/// still free that sums to its amount; the last receipt must take exactly what is left. Stops
/// at two solutions.
fn assign(
    paid: &[Decimal],
    amounts: &[Decimal],
    r: usize,
    owner: &mut Vec<usize>,
    solutions: &mut Vec<Vec<usize>>,
) {
    if solutions.len() >= 2 {
        return;
    }
    let free: Vec<usize> = (0..paid.len())
        .filter(|&l| owner[l] == usize::MAX)
        .collect();
    if r + 1 == amounts.len() {
        let rest: Decimal = free.iter().map(|&l| paid[l]).sum();
        if rest == amounts[r] && !free.is_empty() {
            let mut o = owner.clone();
            free.iter().for_each(|&l| o[l] = r);
            solutions.push(o);
        }
        return;
    }
    let free_paid: Vec<Decimal> = free.iter().map(|&l| paid[l]).collect();
    // A receipt may be paid by one line: subsets of one are allowed here.
    let mut subsets: Vec<Vec<usize>> = (0..free_paid.len())
        .filter(|&k| free_paid[k] == amounts[r])
        .map(|k| vec![k])
        .collect();
    subsets.extend(subset_sums(&free_paid, amounts[r], free_paid.len(), 64).0);
    for s in subsets {
        for &k in &s {
            owner[free[k]] = r;
        }
        assign(paid, amounts, r + 1, owner, solutions);
        for &k in &s {
            owner[free[k]] = usize::MAX;
        }
        if solutions.len() >= 2 {
            return;
        }
    }
}
