//! Document numbers (the world's invoice-number scheme, customers' PO schemes) and the ways
//! payers mangle them when they quote them back.

use super::pick;
use crate::matching::references::normalize;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How a world numbers its invoices, chosen from the seed so worlds look different.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `INV-0012345`: an alphabetic prefix, a dash, zero-padded digits.
    InvDash,
    /// `0090012345`: SAP-style ten-digit document numbers with leading zeros.
    Sap,
    /// `2026-004512`: the year, a dash, a zero-padded sequence.
    YearSeq,
    /// `SO0123456`: the sales-order number doubles as the invoice number.
    SalesOrder,
}

impl Scheme {
    pub(crate) fn choose(rng: &mut ChaCha8Rng) -> Scheme {
        [
            Scheme::InvDash,
            Scheme::Sap,
            Scheme::YearSeq,
            Scheme::SalesOrder,
        ][pick(rng, 4)]
    }

    /// `width` is the number of digits; the generator makes it wide enough that every number
    /// keeps at least one leading zero, so "lost leading zeros" can happen in every world.
    pub(crate) fn invoice(self, seq: u64, year: i32, width: usize) -> String {
        match self {
            Scheme::InvDash => format!("INV-{seq:0width$}"),
            Scheme::Sap => format!("{:010}", 90_000_000 + seq),
            Scheme::YearSeq => format!("{year}-{seq:0width$}"),
            Scheme::SalesOrder => format!("SO{seq:0width$}"),
        }
    }

    pub(crate) fn credit_memo(self, seq: u64, year: i32) -> String {
        match self {
            Scheme::InvDash => format!("CM-{seq:07}"),
            Scheme::Sap => format!("{:010}", 70_000_000 + seq),
            Scheme::YearSeq => format!("CM{year}-{seq:05}"),
            Scheme::SalesOrder => format!("CR{seq:07}"),
        }
    }
}

/// How one customer numbers its purchase orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PoScheme {
    /// `PO-4500123456`
    Sap,
    /// `45001234`
    Short,
    /// `NIS-12345`, from the customer's initials.
    Initials(String),
    /// `612345`
    Numeric,
}

impl PoScheme {
    pub(crate) fn choose(rng: &mut ChaCha8Rng, name: &str) -> PoScheme {
        match rng.random_range(0..100) {
            0..35 => PoScheme::Sap,
            35..60 => PoScheme::Short,
            60..85 => {
                let ini: String = name
                    .split_whitespace()
                    .filter_map(|w| w.chars().next())
                    .filter(|c| c.is_ascii_alphabetic())
                    .take(3)
                    .collect::<String>()
                    .to_ascii_uppercase();
                PoScheme::Initials(if ini.len() < 2 { "PO".into() } else { ini })
            }
            _ => PoScheme::Numeric,
        }
    }

    pub(crate) fn format(&self, seq: u64) -> String {
        match self {
            PoScheme::Sap => format!("PO-45{:08}", seq % 100_000_000),
            PoScheme::Short => format!("45{:06}", seq % 1_000_000),
            PoScheme::Initials(i) => format!("{i}-{:05}", seq % 100_000),
            PoScheme::Numeric => format!("{:06}", 600_000 + seq % 400_000),
        }
    }
}

/// Splits a document number into its prefix and its trailing run of digits.
pub(crate) fn split(number: &str) -> (&str, &str) {
    let cut = number
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    number.split_at(cut)
}

/// The same number in other case and spacing; normalises back to the original.
pub(crate) fn case_spacing(rng: &mut ChaCha8Rng, number: &str) -> String {
    let (prefix, digits) = split(number);
    let bare = prefix.trim_end_matches(['-', ' ']);
    let mid = digits.len() / 2;
    let spaced_digits = format!("{} {}", &digits[..mid], &digits[mid..]);
    let candidates = if bare.is_empty() {
        vec![
            spaced_digits,
            format!("{}-{}", &digits[..mid], &digits[mid..]),
            format!("{}.{}", &digits[..mid], &digits[mid..]),
        ]
    } else {
        vec![
            number.to_ascii_lowercase(),
            format!("{bare} {digits}"),
            format!("{bare}{digits}"),
            format!("{}{}", title(bare), &number[bare.len()..]),
            format!("{}{}", prefix.to_ascii_lowercase(), spaced_digits),
            format!("{} {digits}", bare.to_ascii_lowercase()),
            format!("{bare} - {digits}"),
        ]
    };
    let options: Vec<_> = candidates.into_iter().filter(|c| c != number).collect();
    options
        .get(pick(rng, options.len()))
        .cloned()
        .unwrap_or_else(|| number.to_ascii_lowercase())
}

fn title(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_string() + &c.as_str().to_ascii_lowercase(),
        None => String::new(),
    }
}

/// Index of the first significant (non-zero) digit, so typos land where people make them.
fn significant(digits: &str) -> usize {
    digits.find(|c: char| c != '0').unwrap_or(0)
}

/// A keying error: a substituted, transposed or missing digit.
pub(crate) fn typo(rng: &mut ChaCha8Rng, number: &str) -> String {
    let (prefix, digits) = split(number);
    let mut d: Vec<u8> = digits.bytes().collect();
    if d.len() < 2 {
        return format!("{number}{}", rng.random_range(0..10));
    }
    let from = significant(digits).min(d.len() - 2);
    let kind = rng.random_range(0..100);
    if kind < 30 {
        let pairs: Vec<usize> = (from..d.len() - 1).filter(|&i| d[i] != d[i + 1]).collect();
        if let Some(&i) = pairs.get(pick(rng, pairs.len().max(1))) {
            d.swap(i, i + 1);
            return format!("{prefix}{}", String::from_utf8_lossy(&d));
        }
    }
    if kind >= 75 {
        let i = rng.random_range(from as u32..d.len() as u32) as usize;
        d.remove(i);
        return format!("{prefix}{}", String::from_utf8_lossy(&d));
    }
    let i = rng.random_range(from as u32..d.len() as u32) as usize;
    let old = d[i];
    let mut new = b'0' + rng.random_range(0..9u8);
    if new >= old {
        new += 1;
    }
    d[i] = new.min(b'9');
    if d[i] == old {
        d[i] = if old == b'9' { b'8' } else { old + 1 };
    }
    format!("{prefix}{}", String::from_utf8_lossy(&d))
}

/// Characters an OCR engine reads as letters, and letters it reads as digits.
const OCR_DIGIT: &[(char, &[char])] = &[
    ('0', &['O', 'D']),
    ('1', &['I', 'l']),
    ('5', &['S']),
    ('8', &['B']),
    ('2', &['Z']),
    ('6', &['G']),
];
const OCR_LETTER: &[(char, char)] = &[('O', '0'), ('I', '1'), ('S', '5'), ('B', '8'), ('Z', '2')];

/// An OCR misreading of a printed number: 0/O, 1/I, 5/S, 8/B and kin.
pub(crate) fn ocr(rng: &mut ChaCha8Rng, number: &str) -> String {
    let mut chars: Vec<char> = number.chars().collect();
    let digit_spots: Vec<usize> = (0..chars.len())
        .filter(|&i| OCR_DIGIT.iter().any(|(d, _)| *d == chars[i]))
        .collect();
    if !digit_spots.is_empty() {
        let n = if rng.random_bool(0.3) && digit_spots.len() > 1 {
            2
        } else {
            1
        };
        for _ in 0..n {
            let i = digit_spots[pick(rng, digit_spots.len())];
            if let Some((_, looks)) = OCR_DIGIT.iter().find(|(d, _)| *d == chars[i]) {
                chars[i] = looks[pick(rng, looks.len())];
            }
        }
    } else {
        let letter_spots: Vec<usize> = (0..chars.len())
            .filter(|&i| OCR_LETTER.iter().any(|(l, _)| *l == chars[i]))
            .collect();
        match letter_spots.get(pick(rng, letter_spots.len().max(1))) {
            Some(&i) => {
                if let Some((_, d)) = OCR_LETTER.iter().find(|(l, _)| *l == chars[i]) {
                    chars[i] = *d;
                }
            }
            None => return typo(rng, number),
        }
    }
    chars.into_iter().collect()
}

/// The number with its prefix dropped or replaced by another payer's habit.
pub(crate) fn prefix_change(rng: &mut ChaCha8Rng, number: &str) -> String {
    let (prefix, digits) = split(number);
    let alpha = prefix.trim_end_matches(['-', ' ']);
    let mut options: Vec<String> = Vec::new();
    if !alpha.is_empty() {
        options.push(digits.to_string());
        options.push(digits.to_string());
    }
    for p in ["INVOICE ", "INV#", "IN-", "IV", "INV NO ", "DOC ", "BILL "] {
        options.push(format!("{p}{digits}"));
    }
    if alpha == "INV" {
        options.retain(|o| !o.starts_with("INV#"));
    }
    if alpha.starts_with("SO") {
        options.push(format!("ORD{digits}"));
        options.push(format!("SALES ORDER {digits}"));
    }
    if alpha.len() == 4 && alpha.bytes().all(|b| b.is_ascii_digit()) {
        // `2026-004512` quoted as `26-004512`.
        options.push(format!("{}-{digits}", &alpha[2..]));
    }
    let norm = normalize(number);
    options.retain(|o| normalize(o) != norm);
    options
        .get(pick(rng, options.len()))
        .cloned()
        .unwrap_or_else(|| digits.to_string())
}

/// The number with the leading zeros of its digits lost, as a spreadsheet column does.
pub(crate) fn drop_zeros(number: &str) -> String {
    let (prefix, digits) = split(number);
    let kept = digits.trim_start_matches('0');
    format!("{prefix}{}", if kept.is_empty() { "0" } else { kept })
}

/// How the number is quoted inside free text: with its own prefix, or with the payer's
/// word for "invoice" in front of the bare digits.
fn in_text(number: &str, bare: bool) -> String {
    let (prefix, digits) = split(number);
    if bare && !prefix.is_empty() && !prefix.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        digits.to_string()
    } else {
        number.to_string()
    }
}

/// A memo quoting one invoice.
pub(crate) fn memo_single(rng: &mut ChaCha8Rng, number: &str) -> String {
    let n = number;
    match rng.random_range(0..7) {
        0 => format!("PAYMENT FOR INVOICE {n}"),
        1 => format!("INV {}", in_text(n, true)),
        2 => format!("RE: {n}"),
        3 => format!("INV#{}", in_text(n, true)),
        4 => format!("INVOICE NO. {n} THANK YOU"),
        5 => format!("PMT {n}"),
        _ => n.to_string(),
    }
}

/// A memo listing several invoices: `INV 1001, 1002 & 1005`.
pub(crate) fn memo_list(rng: &mut ChaCha8Rng, numbers: &[String]) -> String {
    let bare = rng.random_bool(0.6);
    let items: Vec<String> = numbers.iter().map(|n| in_text(n, bare)).collect();
    let head = if bare {
        ["INV ", "INVOICES ", "INV# ", "PAYMENT INV "][pick(rng, 4)]
    } else {
        ""
    };
    let body = match rng.random_range(0..4) {
        0 => match items.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} & {last}", rest.join(", ")),
            _ => items.join(", "),
        },
        1 => items.join(" "),
        2 => items.join("/"),
        _ => items.join(", "),
    };
    format!("{head}{body}")
}

/// A memo quoting a run of consecutive invoices: `INV 1001-1004`.
pub(crate) fn memo_range(rng: &mut ChaCha8Rng, first: &str, last: &str) -> String {
    let bare = rng.random_bool(0.6);
    let (a, b) = (in_text(first, bare), in_text(last, bare));
    let head = if bare {
        ["INV ", "INVOICES ", "INVS "][pick(rng, 3)]
    } else {
        ""
    };
    match rng.random_range(0..4) {
        0 => format!("{head}{a} THRU {b}"),
        1 => format!("{head}{a} TO {b}"),
        2 => {
            // `INV 0012345-48`: the tail of the last number only.
            let (_, da) = split(&a);
            let (_, db) = split(&b);
            let common = da
                .bytes()
                .zip(db.bytes())
                .take_while(|(x, y)| x == y)
                .count();
            let tail = db
                .get(common.min(db.len().saturating_sub(2))..)
                .unwrap_or(db);
            format!("{head}{a}-{tail}")
        }
        _ => format!("{head}{a}-{b}"),
    }
}

/// What banks and AP systems put in a memo when it says nothing about invoices.
pub(crate) fn memo_generic(rng: &mut ChaCha8Rng) -> Option<String> {
    let x = rng.random_range(0..100);
    let s = match x {
        0..45 => return None,
        45..55 => "ACH PAYMENT".to_string(),
        55..62 => "PAYMENT".to_string(),
        62..68 => "VENDOR PMT".to_string(),
        68..73 => "CCD+ REMITTANCE".to_string(),
        73..78 => "EFT CREDIT".to_string(),
        78..88 => format!("CHECK {}", rng.random_range(1000..250_000)),
        88..94 => format!("AP RUN {:04}", rng.random_range(1..2000)),
        _ => format!("BATCH {}", rng.random_range(100..99_999)),
    };
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(11)
    }

    #[test]
    fn schemes_keep_a_leading_zero() {
        for s in [
            Scheme::InvDash,
            Scheme::Sap,
            Scheme::YearSeq,
            Scheme::SalesOrder,
        ] {
            let n = s.invoice(456_789, 2026, 7);
            let (_, digits) = split(&n);
            assert!(digits.starts_with('0'), "{n}");
            assert_ne!(drop_zeros(&n), n);
        }
        assert_eq!(split("INV-0012345"), ("INV-", "0012345"));
        assert_eq!(split("2026-004512"), ("2026-", "004512"));
        assert_eq!(split("0090012345"), ("", "0090012345"));
    }

    #[test]
    fn noise_changes_the_normalised_form_except_case_and_spacing() {
        let mut r = rng();
        for n in ["INV-0012345", "0090012345", "2026-004512", "SO0123456"] {
            for _ in 0..200 {
                let c = case_spacing(&mut r, n);
                assert_ne!(c, n);
                assert_eq!(normalize(&c), normalize(n), "{n} -> {c}");
                for noisy in [
                    typo(&mut r, n),
                    ocr(&mut r, n),
                    prefix_change(&mut r, n),
                    drop_zeros(n),
                ] {
                    assert_ne!(normalize(&noisy), normalize(n), "{n} -> {noisy}");
                }
            }
        }
    }

    #[test]
    fn memos_carry_the_numbers() {
        let mut r = rng();
        let nums: Vec<String> = ["INV-0012345", "INV-0012351", "INV-0012360"]
            .map(String::from)
            .to_vec();
        for _ in 0..50 {
            let m = memo_list(&mut r, &nums);
            assert!(m.contains("0012351"), "{m}");
            let m = memo_range(&mut r, "INV-0012345", "INV-0012348");
            assert!(m.contains("0012345") && m.contains("48"), "{m}");
        }
    }
}
