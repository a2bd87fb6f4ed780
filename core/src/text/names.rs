//! Payer-name normalisation.
//!
//! The bank gives the payer's name as the payer's bank holds it: upper case, truncated to 22
//! characters in ACH, with `AP DEPT` in front, `INC` abbreviated or gone. Normalised names drop
//! what carries no identity (legal suffixes, department prefixes, punctuation) and expand the
//! common abbreviations, so that variants of one name compare equal or close.

/// Words in front of a name that say which department paid, not who.
const PREFIXES: [&[&str]; 7] = [
    &["A", "P", "DEPT"],
    &["AP", "DEPT"],
    &["AP", "DEPARTMENT"],
    &["ACCOUNTS", "PAYABLE"],
    &["A", "P"],
    &["AP"],
    &["ATTN"],
];

/// Legal-form words that carry no identity.
const SUFFIXES: [&str; 16] = [
    "INC",
    "INCORPORATED",
    "CORP",
    "CORPORATION",
    "CO",
    "COMPANY",
    "LLC",
    "LTD",
    "LIMITED",
    "LP",
    "LLP",
    "PLC",
    "GMBH",
    "SA",
    "BV",
    "THE",
];

/// Abbreviations expanded so that `INTL` and `INTERNATIONAL` agree.
const ABBREVIATIONS: [(&str, &str); 14] = [
    ("INTL", "INTERNATIONAL"),
    ("MFG", "MANUFACTURING"),
    ("IND", "INDUSTRIAL"),
    ("INDUS", "INDUSTRIAL"),
    ("DIST", "DISTRIBUTION"),
    ("DISTR", "DISTRIBUTION"),
    ("SVCS", "SERVICES"),
    ("SVC", "SERVICES"),
    ("SUPP", "SUPPLY"),
    ("SPLY", "SUPPLY"),
    ("BROS", "BROTHERS"),
    ("ASSOC", "ASSOCIATES"),
    ("MKT", "MARKET"),
    ("TECH", "TECHNOLOGIES"),
];

/// The identity-bearing words of a name, upper case, in order.
pub(crate) fn name_tokens(name: &str) -> Vec<String> {
    let cleaned: String = name
        .chars()
        // `&`, punctuation and spaces all separate words.
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                ' '
            }
        })
        .collect();
    let mut toks: Vec<String> = cleaned.split_whitespace().map(str::to_string).collect();
    for p in PREFIXES {
        if toks.len() > p.len() && toks.iter().zip(p.iter()).all(|(t, w)| t == w) {
            toks.drain(..p.len());
            break;
        }
    }
    toks.retain(|t| !SUFFIXES.contains(&t.as_str()) && t != "AND");
    for t in &mut toks {
        if let Some((_, full)) = ABBREVIATIONS.iter().find(|(a, _)| a == t) {
            *t = (*full).to_string();
        }
    }
    toks
}

/// The normalised name: its tokens joined by single spaces.
pub fn normalize_name(name: &str) -> String {
    name_tokens(name).join(" ")
}

/// How alike two normalised names are, in [0, 1]. A truncated name (ACH cuts at 22 characters)
/// that is a prefix of the other scores high; otherwise Jaro-Winkler blended with the share of
/// tokens in common.
pub(crate) fn name_similarity(a: &str, b: &str) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() >= 8 && long.starts_with(short) {
        return 0.95;
    }
    let ta: Vec<&str> = a.split(' ').collect();
    let tb: Vec<&str> = b.split(' ').collect();
    let common = ta.iter().filter(|t| tb.contains(t)).count();
    let overlap = common as f64 / ta.len().max(tb.len()) as f64;
    let jw = strsim::jaro_winkler(a, b);
    (0.5 * jw + 0.5 * overlap).min(0.94)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_normalise_alike() {
        let base = normalize_name("Northwind Industrial Supply, Inc.");
        assert_eq!(base, "NORTHWIND INDUSTRIAL SUPPLY");
        assert_eq!(normalize_name("NORTHWIND IND SUPPLY INC"), base);
        assert_eq!(normalize_name("AP DEPT NORTHWIND INDUSTRIAL SUPPLY"), base);
        assert_eq!(
            normalize_name("Northwind Intl Mfg Co"),
            "NORTHWIND INTERNATIONAL MANUFACTURING"
        );
    }

    #[test]
    fn truncation_scores_high_and_strangers_low() {
        let full = normalize_name("Northwind Industrial Supply Inc");
        let ach = normalize_name(&"NORTHWIND INDUSTRIAL SUPPLY INC"[..22]);
        assert!(name_similarity(&ach, &full) >= 0.95);
        let other = normalize_name("Bluegrass Foods LLC");
        assert!(name_similarity(&other, &full) < 0.6);
    }
}
