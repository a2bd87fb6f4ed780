//! Reading one cell's value: dates in the file's date order, amounts in its decimal mark (with
//! currency symbols, CR/DR and signs), currency codes and debit/credit indicators.

use super::conventions::DecimalMark;
use super::header::{fold, known_currency};
use crate::domain::{Currency, Direction};
use chrono::NaiveDate;
use rust_decimal::Decimal;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum DateCell {
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
pub(super) fn read_date(text: &str) -> DateCell {
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
    pub(super) negative: bool,
    core: &'a str,
    pub(super) currency: Option<Currency>,
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
pub(super) fn decimal_evidence(text: &str) -> Option<DecimalMark> {
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
pub(super) fn read_amount(
    text: &str,
    mark: DecimalMark,
) -> Result<(Decimal, Option<Currency>), String> {
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
pub(super) fn read_currency(text: &str) -> Option<Currency> {
    match text {
        "€" => "EUR".parse().ok(),
        "£" => "GBP".parse().ok(),
        _ => text.parse().ok(),
    }
}

/// What a debit/credit indicator cell says; `None` when it says neither.
pub(super) fn read_indicator(text: &str) -> Option<Direction> {
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
