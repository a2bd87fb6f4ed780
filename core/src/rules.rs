//! Rules: what the engine does with a difference it can account for but the remittance does not
//! settle, as versioned configuration rather than code.
//!
//! A rules file is TOML: a `version` (recorded in every decision and posting made under it), a
//! `[default]` section, and sections that override it field by field for a currency
//! (`[currency.EUR]`) and for a customer (`[customer."C123"]`); a customer's section wins over its
//! currency's, which wins over the default. Each section may set
//!
//! - `discount_grace_days`: days after the terms' discount window a discount is still taken as
//!   within terms (mail and bank float);
//! - `overpayment`: what an auto decision does with the cash it leaves over: `"unapplied"` (it
//!   waits), `"on_account"` (kept on the payer's account) or `"refund_review"` (a person decides
//!   whether to refund it, so the payment goes to review);
//! - `[…write_off]`: `underpay_abs`, `underpay_pct`, `overpay_abs`, `overpay_pct` and
//!   `reason_code`: a short pay or an overpayment within both the absolute limit and the
//!   percentage is written off with the reason code instead of being left open or unapplied;
//! - `[…small_balance]`: `limit` and `reason_code`: an invoice a payment leaves with less than
//!   `limit` open is written off rather than left open for a few cents.
//!
//! [`Rules::default`] is what the engine did before rules were configurable (nothing written off,
//! overpayments unapplied, five days of grace); docs/rules.md has an example file. Reading a file
//! names the line, column and field of a mistake ([`RulesError`]).

use crate::domain::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// The version of [`Rules::default`]: the version string decisions carried when the rules were a
/// constant, so that decisions made before and after rules files are told apart only when a
/// file changes what the engine does.
pub const DEFAULT_VERSION: &str = "rules-2026.12.7";

/// Days after the terms' discount window a discount still counts as taken within terms, unless
/// the rules say otherwise.
pub const DEFAULT_DISCOUNT_GRACE_DAYS: u32 = 5;

/// The reason code of a write-off when the rules name none.
pub const DEFAULT_WRITE_OFF_REASON: &str = "WRITE_OFF";

/// The reason code of a small balance written off when the rules name none.
pub const DEFAULT_SMALL_BALANCE_REASON: &str = "SMALL_BALANCE";

/// Longest grace the rules accept: more than a quarter after the window is no longer grace.
const MAX_GRACE_DAYS: i64 = 90;

/// What an auto decision does with cash left over once its invoices are paid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overpayment {
    /// It waits, unapplied, for a person or a later invoice.
    #[default]
    Unapplied,
    /// It is kept on the payer's account, to be applied to invoices later.
    OnAccount,
    /// A person decides whether to refund it: the payment goes to review.
    RefundReview,
}

impl Overpayment {
    /// The name used in the rules file.
    pub fn name(self) -> &'static str {
        match self {
            Overpayment::Unapplied => "unapplied",
            Overpayment::OnAccount => "on_account",
            Overpayment::RefundReview => "refund_review",
        }
    }
}

/// The write-off limits of one policy. A difference is written off only when it is within the
/// absolute limit and, where a percentage is set, within that share of its base.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteOff {
    pub underpay_abs: Decimal,
    /// Percent of the invoice's open amount; `None`: the absolute limit alone.
    pub underpay_pct: Option<Decimal>,
    pub overpay_abs: Decimal,
    /// Percent of the payment's amount; `None`: the absolute limit alone.
    pub overpay_pct: Option<Decimal>,
    pub reason_code: String,
}

/// The small-balance rule of one policy.
#[derive(Clone, Debug, PartialEq)]
pub struct SmallBalance {
    /// A residual below this is written off; zero: never.
    pub limit: Decimal,
    pub reason_code: String,
}

/// The rules in force for one currency and customer: the default with the overrides applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub discount_grace_days: u32,
    pub overpayment: Overpayment,
    pub write_off: WriteOff,
    pub small_balance: SmallBalance,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            discount_grace_days: DEFAULT_DISCOUNT_GRACE_DAYS,
            overpayment: Overpayment::Unapplied,
            write_off: WriteOff {
                underpay_abs: Decimal::ZERO,
                underpay_pct: None,
                overpay_abs: Decimal::ZERO,
                overpay_pct: None,
                reason_code: DEFAULT_WRITE_OFF_REASON.into(),
            },
            small_balance: SmallBalance {
                limit: Decimal::ZERO,
                reason_code: DEFAULT_SMALL_BALANCE_REASON.into(),
            },
        }
    }
}

/// How a residual left on an invoice is closed, if the rules close it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closing {
    pub reason_code: String,
    /// Which rule: `write-off` or `small balance`, for explanations.
    pub rule: &'static str,
}

impl Policy {
    /// Whether a short pay of `short` on an invoice with `open` open is written off, and under
    /// which rule: the write-off limits first, then the small-balance limit.
    pub fn close_short_pay(&self, short: Decimal, open: Decimal) -> Option<Closing> {
        if short <= Decimal::ZERO || short >= open {
            return None;
        }
        let w = &self.write_off;
        if within(short, w.underpay_abs, w.underpay_pct, open) {
            return Some(Closing {
                reason_code: w.reason_code.clone(),
                rule: "write-off",
            });
        }
        (short < self.small_balance.limit).then(|| Closing {
            reason_code: self.small_balance.reason_code.clone(),
            rule: "small balance",
        })
    }

    /// Whether cash of `excess` left over from a payment of `amount` is written off.
    pub fn writes_off_overpayment(&self, excess: Decimal, amount: Decimal) -> bool {
        excess > Decimal::ZERO
            && excess < amount
            && within(
                excess,
                self.write_off.overpay_abs,
                self.write_off.overpay_pct,
                amount,
            )
    }

    /// Whether a discount taken `late_days` days after the terms' window is still within terms.
    pub fn within_grace(&self, late_days: i64) -> bool {
        late_days <= i64::from(self.discount_grace_days)
    }
}

fn within(diff: Decimal, abs: Decimal, pct: Option<Decimal>, base: Decimal) -> bool {
    diff <= abs && pct.is_none_or(|p| diff * Decimal::ONE_HUNDRED <= base * p)
}

/// One section's overrides, validated.
#[derive(Clone, Debug, Default, PartialEq)]
struct Layer {
    discount_grace_days: Option<u32>,
    overpayment: Option<Overpayment>,
    underpay_abs: Option<Decimal>,
    underpay_pct: Option<Decimal>,
    overpay_abs: Option<Decimal>,
    overpay_pct: Option<Decimal>,
    reason_code: Option<String>,
    small_balance_limit: Option<Decimal>,
    small_balance_reason_code: Option<String>,
}

impl Layer {
    fn apply(&self, p: &mut Policy) {
        fn set<T: Clone>(to: &mut T, from: &Option<T>) {
            if let Some(v) = from {
                *to = v.clone();
            }
        }
        set(&mut p.discount_grace_days, &self.discount_grace_days);
        set(&mut p.overpayment, &self.overpayment);
        let w = &mut p.write_off;
        set(&mut w.underpay_abs, &self.underpay_abs);
        if self.underpay_pct.is_some() {
            w.underpay_pct = self.underpay_pct;
        }
        set(&mut w.overpay_abs, &self.overpay_abs);
        if self.overpay_pct.is_some() {
            w.overpay_pct = self.overpay_pct;
        }
        set(&mut w.reason_code, &self.reason_code);
        set(&mut p.small_balance.limit, &self.small_balance_limit);
        set(
            &mut p.small_balance.reason_code,
            &self.small_balance_reason_code,
        );
    }

    /// What the section sets, for the summary.
    fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut put = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                out.push(format!("{name} {v}"));
            }
        };
        put(
            "discount_grace_days",
            self.discount_grace_days.map(|d| d.to_string()),
        );
        put(
            "overpayment",
            self.overpayment.map(|o| o.name().to_string()),
        );
        put("underpay_abs", self.underpay_abs.map(|d| d.to_string()));
        put("underpay_pct", self.underpay_pct.map(|d| d.to_string()));
        put("overpay_abs", self.overpay_abs.map(|d| d.to_string()));
        put("overpay_pct", self.overpay_pct.map(|d| d.to_string()));
        put("reason_code", self.reason_code.clone());
        put(
            "small_balance.limit",
            self.small_balance_limit.map(|d| d.to_string()),
        );
        put(
            "small_balance.reason_code",
            self.small_balance_reason_code.clone(),
        );
        out
    }
}

/// A validated rules file: its version, the default policy and the overrides.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    version: String,
    default: Policy,
    currency: HashMap<Currency, Layer>,
    customer: HashMap<String, Layer>,
}

impl Default for Rules {
    /// What the engine did before rules were configurable.
    fn default() -> Self {
        Rules {
            version: DEFAULT_VERSION.into(),
            default: Policy::default(),
            currency: HashMap::new(),
            customer: HashMap::new(),
        }
    }
}

impl Rules {
    /// The version recorded in decisions and postings made under these rules.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The policy for a payment in `currency` from `customer` (when the payer is known): the
    /// default, then the currency's overrides, then the customer's.
    pub fn policy(&self, currency: Currency, customer: Option<&str>) -> Policy {
        let mut p = self.default.clone();
        if let Some(l) = self.currency.get(&currency) {
            l.apply(&mut p);
        }
        if let Some(l) = customer.and_then(|c| self.customer.get(c)) {
            l.apply(&mut p);
        }
        p
    }

    /// The discount grace of an invoice's customer and currency: [`Rules::policy`]'s, without
    /// building the whole policy for every candidate discount.
    pub fn discount_grace_days(&self, currency: Currency, customer: &str) -> u32 {
        [self.customer.get(customer), self.currency.get(&currency)]
            .into_iter()
            .flatten()
            .find_map(|l| l.discount_grace_days)
            .unwrap_or(self.default.discount_grace_days)
    }

    /// Reads and validates a rules file; the error names the file.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let bytes = std::fs::read(path).map_err(|e| RulesError {
            file: Some(path.display().to_string()),
            ..RulesError::new(None, None, e.to_string())
        })?;
        Rules::from_bytes(path, &bytes)
    }

    /// Validates the bytes of the rules file at `path`; the error names the file.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Rules, RulesError> {
        let in_file = |e: RulesError| RulesError {
            file: Some(path.display().to_string()),
            ..e
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|e| in_file(RulesError::new(None, None, format!("not UTF-8: {e}"))))?;
        Rules::parse(text).map_err(in_file)
    }

    /// Parses and validates the text of a rules file.
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        let file: FileRules = toml::from_str(text).map_err(|e| {
            let span = e.span();
            let field = missing_field(e.message())
                .or_else(|| span.as_ref().and_then(|s| field_at(text, s.start)));
            RulesError::new(span.map(|s| (text, s)), field, e.message().trim().into())
        })?;
        file.validate(text)
    }

    /// A few lines saying what the rules do, for `cashmatch rules check`.
    pub fn summary(&self) -> String {
        let d = Layer {
            discount_grace_days: Some(self.default.discount_grace_days),
            overpayment: Some(self.default.overpayment),
            underpay_abs: Some(self.default.write_off.underpay_abs),
            underpay_pct: self.default.write_off.underpay_pct,
            overpay_abs: Some(self.default.write_off.overpay_abs),
            overpay_pct: self.default.write_off.overpay_pct,
            reason_code: Some(self.default.write_off.reason_code.clone()),
            small_balance_limit: Some(self.default.small_balance.limit),
            small_balance_reason_code: Some(self.default.small_balance.reason_code.clone()),
        };
        let mut out = vec![
            format!("version {}", self.version),
            format!("default: {}", d.describe().join(", ")),
        ];
        let mut currencies: Vec<_> = self.currency.iter().collect();
        currencies.sort_by_key(|(c, _)| **c);
        for (c, l) in currencies {
            out.push(format!("currency {c}: {}", l.describe().join(", ")));
        }
        let mut customers: Vec<_> = self.customer.iter().collect();
        customers.sort_by_key(|(c, _)| c.as_str());
        for (c, l) in customers {
            out.push(format!("customer {c}: {}", l.describe().join(", ")));
        }
        out.join("\n")
    }
}

/// A rules file that cannot be used: where (file, line and column, field) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesError {
    pub file: Option<String>,
    /// 1-based line and column of the mistake, when it has a place in the text.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The dotted path of the field, e.g. `currency.EUR.write_off.underpay_pct`.
    pub field: Option<String>,
    pub message: String,
}

impl RulesError {
    fn new(at: Option<(&str, Range<usize>)>, field: Option<String>, message: String) -> Self {
        let (line, column) = match at {
            Some((text, span)) => {
                let (l, c) = line_column(text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        RulesError {
            file: None,
            line,
            column,
            field,
            message,
        }
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, "line {l}, column {c}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RulesError {}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// The dotted path of the key on the line at `offset`, under the last table header before it:
/// what a syntax or type error from the TOML reader is about (its message names only the value).
fn field_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    let header = |l: &str| {
        let l = l.trim();
        (l.starts_with('[') && !l.starts_with("[["))
            .then(|| {
                l.trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
            })
            .map(|h| h.replace('"', ""))
    };
    if let Some(h) = header(line) {
        return Some(h);
    }
    let key = line.split('=').next()?.trim().replace('"', "");
    let table = text[..start].lines().rev().find_map(header);
    match table {
        Some(t) if !key.is_empty() => Some(format!("{t}.{key}")),
        Some(t) => Some(t),
        None if !key.is_empty() => Some(key),
        None => None,
    }
}

/// The field a "missing field `x`" message names.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.split("missing field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

/// Money or a percentage as written: a string (`"0.50"`, read exactly, as all money in the
/// project) or a TOML number.
#[derive(Clone, Copy, Debug)]
struct Amount(Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount such as \"5.00\" or 5")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Amount, E> {
                s.trim()
                    .parse()
                    .map(Amount)
                    .map_err(|_| E::custom(format!("{s:?} is not an amount")))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Amount, E> {
                Ok(Amount(Decimal::from(n)))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Amount, E> {
                // The shortest text that reads back as this double is what was written.
                n.to_string()
                    .parse()
                    .map(Amount)
                    .map_err(|_| E::custom(format!("{n} is not an amount")))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRules {
    version: Spanned<String>,
    #[serde(default)]
    default: FileLayer,
    #[serde(default)]
    currency: BTreeMap<Spanned<String>, FileLayer>,
    #[serde(default)]
    customer: BTreeMap<Spanned<String>, FileLayer>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    discount_grace_days: Option<Spanned<i64>>,
    overpayment: Option<Overpayment>,
    #[serde(default)]
    write_off: FileWriteOff,
    #[serde(default)]
    small_balance: FileSmallBalance,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWriteOff {
    underpay_abs: Option<Spanned<Amount>>,
    underpay_pct: Option<Spanned<Amount>>,
    overpay_abs: Option<Spanned<Amount>>,
    overpay_pct: Option<Spanned<Amount>>,
    reason_code: Option<Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSmallBalance {
    limit: Option<Spanned<Amount>>,
    reason_code: Option<Spanned<String>>,
}

impl FileRules {
    fn validate(self, text: &str) -> Result<Rules, RulesError> {
        let bad = |span: Range<usize>, field: String, message: String| {
            RulesError::new(Some((text, span)), Some(field), message)
        };
        let version = self.version.get_ref().trim();
        if version.is_empty() {
            return Err(bad(
                self.version.span(),
                "version".into(),
                "must name the rules' version (recorded in every decision)".into(),
            ));
        }
        let mut default = Policy::default();
        self.default.validate(text, "default")?.apply(&mut default);
        let mut currency = HashMap::new();
        for (code, layer) in self.currency {
            let path = format!("currency.{}", code.get_ref());
            let c = iso_currency(code.get_ref()).ok_or_else(|| {
                bad(
                    code.span(),
                    path.clone(),
                    "not an ISO 4217 currency code".into(),
                )
            })?;
            currency.insert(c, layer.validate(text, &path)?);
        }
        let mut customer = HashMap::new();
        for (id, layer) in self.customer {
            let path = format!("customer.{}", id.get_ref());
            if id.get_ref().trim().is_empty() {
                return Err(bad(id.span(), path, "a customer id cannot be empty".into()));
            }
            customer.insert(id.get_ref().clone(), layer.validate(text, &path)?);
        }
        Ok(Rules {
            version: version.to_string(),
            default,
            currency,
            customer,
        })
    }
}

impl FileLayer {
    fn validate(self, text: &str, path: &str) -> Result<Layer, RulesError> {
        let bad = |span: Range<usize>, field: &str, message: String| {
            RulesError::new(Some((text, span)), Some(format!("{path}.{field}")), message)
        };
        let money =
            |v: Option<Spanned<Amount>>, field: &str| -> Result<Option<Decimal>, RulesError> {
                match v {
                    Some(a) if a.get_ref().0 < Decimal::ZERO => Err(bad(
                        a.span(),
                        field,
                        format!("{} is negative: a limit is zero or more", a.get_ref().0),
                    )),
                    Some(a) => Ok(Some(a.get_ref().0)),
                    None => Ok(None),
                }
            };
        let pct =
            |v: Option<Spanned<Amount>>, field: &str| -> Result<Option<Decimal>, RulesError> {
                let p = money(v.clone(), field)?;
                match (p, v) {
                    (Some(p), Some(s)) if p > Decimal::ONE_HUNDRED => Err(bad(
                        s.span(),
                        field,
                        format!("{p} is more than 100 percent"),
                    )),
                    (p, _) => Ok(p),
                }
            };
        let code =
            |v: Option<Spanned<String>>, field: &str| -> Result<Option<String>, RulesError> {
                match v {
                    Some(s) if s.get_ref().trim().is_empty() => {
                        Err(bad(s.span(), field, "a reason code cannot be empty".into()))
                    }
                    Some(s) => Ok(Some(s.get_ref().trim().to_string())),
                    None => Ok(None),
                }
            };
        let discount_grace_days = match self.discount_grace_days {
            Some(d) if !(0..=MAX_GRACE_DAYS).contains(d.get_ref()) => {
                return Err(bad(
                    d.span(),
                    "discount_grace_days",
                    format!("{} is not between 0 and {MAX_GRACE_DAYS} days", d.get_ref()),
                ));
            }
            Some(d) => u32::try_from(*d.get_ref()).ok(),
            None => None,
        };
        let w = self.write_off;
        let s = self.small_balance;
        Ok(Layer {
            discount_grace_days,
            overpayment: self.overpayment,
            underpay_abs: money(w.underpay_abs, "write_off.underpay_abs")?,
            underpay_pct: pct(w.underpay_pct, "write_off.underpay_pct")?,
            overpay_abs: money(w.overpay_abs, "write_off.overpay_abs")?,
            overpay_pct: pct(w.overpay_pct, "write_off.overpay_pct")?,
            reason_code: code(w.reason_code, "write_off.reason_code")?,
            small_balance_limit: money(s.limit, "small_balance.limit")?,
            small_balance_reason_code: code(s.reason_code, "small_balance.reason_code")?,
        })
    }
}

/// The active ISO 4217 codes: a rules section for a code no bank sends would never apply, and is
/// far likelier a typo (`[currency.EUO]`) than meant.
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
    BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF \
    DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS \
    INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD \
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN \
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC \
    SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV \
    WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

fn iso_currency(code: &str) -> Option<Currency> {
    let c: Currency = code.parse().ok()?;
    ISO_4217
        .split_whitespace()
        .any(|k| k == c.as_str())
        .then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const EXAMPLE: &str = r#"version = "2026-12-06.1"

[default]
discount_grace_days = 7
overpayment = "unapplied"

[default.write_off]
underpay_abs = "5.00"
underpay_pct = "1"
overpay_abs = "2.00"
reason_code = "SMALL_DIFF"

[currency.EUR]
overpayment = "on_account"

[currency.EUR.write_off]
underpay_abs = "10.00"

[customer."C123"]
overpayment = "refund_review"

[customer."C123".small_balance]
limit = "0.50"
reason_code = "CENTS"
"#;

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../../fixtures/rules/example.toml");
        let r = Rules::parse(text).expect("fixtures/rules/example.toml");
        assert_eq!(r.version(), "acme-2026.12.1");
        let key = r.policy(Currency::USD, Some("C-1042"));
        assert_eq!(key.overpayment, Overpayment::RefundReview);
        assert_eq!(key.close_short_pay(dec!(0.50), dec!(100)), None);
        let jpy: Currency = "JPY".parse().expect("JPY");
        assert_eq!(r.policy(jpy, None).write_off.underpay_abs, dec!(500));
        assert!(
            r.summary()
                .contains("customer C-1042: overpayment refund_review")
        );
    }

    fn eur() -> Currency {
        "EUR".parse().expect("EUR")
    }

    #[test]
    fn a_customer_overrides_its_currency_which_overrides_the_default() {
        let r = Rules::parse(EXAMPLE).expect("rules");
        assert_eq!(r.version(), "2026-12-06.1");
        let usd = r.policy(Currency::USD, Some("C9"));
        assert_eq!(usd.discount_grace_days, 7);
        assert_eq!(usd.overpayment, Overpayment::Unapplied);
        assert_eq!(usd.write_off.underpay_abs, dec!(5.00));
        let eur_other = r.policy(eur(), Some("C9"));
        assert_eq!(eur_other.overpayment, Overpayment::OnAccount);
        assert_eq!(eur_other.write_off.underpay_abs, dec!(10.00));
        assert_eq!(eur_other.write_off.underpay_pct, Some(dec!(1)));
        let c123 = r.policy(eur(), Some("C123"));
        assert_eq!(c123.overpayment, Overpayment::RefundReview);
        assert_eq!(c123.write_off.underpay_abs, dec!(10.00));
        assert_eq!(c123.small_balance.limit, dec!(0.50));
        assert_eq!(c123.small_balance.reason_code, "CENTS");
        // The customer's section applies in any currency.
        assert_eq!(
            r.policy(Currency::USD, Some("C123")).overpayment,
            Overpayment::RefundReview
        );
    }

    #[test]
    fn the_default_rules_write_nothing_off() {
        let p = Rules::default().policy(Currency::USD, None);
        assert_eq!(p.close_short_pay(dec!(0.01), dec!(100)), None);
        assert!(!p.writes_off_overpayment(dec!(0.01), dec!(100)));
        assert_eq!(p.discount_grace_days, DEFAULT_DISCOUNT_GRACE_DAYS);
        assert_eq!(Rules::default().version(), DEFAULT_VERSION);
    }

    #[test]
    fn a_difference_is_written_off_only_within_both_limits() {
        let r = Rules::parse(EXAMPLE).expect("rules");
        let p = r.policy(Currency::USD, None);
        // 5.00 absolute and 1 percent of the open amount.
        assert!(p.close_short_pay(dec!(5.00), dec!(1000.00)).is_some());
        assert_eq!(p.close_short_pay(dec!(5.01), dec!(1000.00)), None);
        assert_eq!(p.close_short_pay(dec!(4.00), dec!(300.00)), None);
        // Never the whole invoice.
        assert_eq!(p.close_short_pay(dec!(3.00), dec!(3.00)), None);
        // No percentage for overpayments: the absolute limit alone.
        assert!(p.writes_off_overpayment(dec!(2.00), dec!(10.00)));
        assert!(!p.writes_off_overpayment(dec!(2.01), dec!(1000.00)));
        let small = r.policy(eur(), Some("C123"));
        assert_eq!(
            small.close_short_pay(dec!(0.40), dec!(10.00)),
            Some(Closing {
                reason_code: "CENTS".into(),
                rule: "small balance"
            })
        );
    }

    fn error(text: &str) -> RulesError {
        Rules::parse(text).expect_err("must be refused")
    }

    #[test]
    fn a_syntax_or_type_mistake_names_its_line_column_and_field() {
        let e = error("version = \"v1\"\n[default.write_off]\nunderpay_abs = \"five\"\n");
        assert_eq!((e.line, e.column), (Some(3), Some(16)), "{e}");
        assert_eq!(e.field.as_deref(), Some("default.write_off.underpay_abs"));
        assert!(e.to_string().contains("\"five\" is not an amount"), "{e}");

        let e = error("version = \"v1\"\n\n[currency.EUR]\novrpayment = \"on_account\"\n");
        assert_eq!(e.line, Some(4), "{e}");
        assert_eq!(e.field.as_deref(), Some("currency.EUR.ovrpayment"), "{e}");
        assert!(e.message.contains("unknown field"), "{e}");

        let e = error("version = \"v1\"\n[default]\noverpayment = \"refund\"\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.field.as_deref(), Some("default.overpayment"));

        let e = error("version = \"v1\"\n[default\n");
        assert_eq!(e.line, Some(2), "{e}");

        let e = error("[default]\ndiscount_grace_days = 3\n");
        assert_eq!(e.field.as_deref(), Some("version"), "{e}");
    }

    #[test]
    fn a_value_out_of_range_names_its_line_and_field() {
        let e = error("version = \"v1\"\n[customer.\"C1\".write_off]\nunderpay_abs = \"-1\"\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(
            e.field.as_deref(),
            Some("customer.C1.write_off.underpay_abs")
        );
        assert!(e.message.contains("negative"), "{e}");

        let e = error("version = \"v1\"\n[currency.EUR.write_off]\noverpay_pct = 120\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(
            e.field.as_deref(),
            Some("currency.EUR.write_off.overpay_pct")
        );
        assert!(e.message.contains("more than 100 percent"), "{e}");

        let e = error("version = \"v1\"\n\n[currency.EUO]\noverpayment = \"on_account\"\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.field.as_deref(), Some("currency.EUO"));
        assert!(e.message.contains("ISO 4217"), "{e}");

        let e = error("version = \"  \"\n");
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(1), Some("version")),
            "{e}"
        );

        let e = error("version = \"v1\"\n[default]\ndiscount_grace_days = -2\n");
        assert_eq!(e.field.as_deref(), Some("default.discount_grace_days"));
        assert_eq!(
            e.to_string(),
            "line 3, column 23: default.discount_grace_days: -2 is not between 0 and 90 days"
        );
    }
}
