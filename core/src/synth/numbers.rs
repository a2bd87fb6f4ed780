//! Document numbers (the world's invoice-number scheme, customers' PO schemes) and the ways
//! payers mangle them when they quote them back.

use super::pick;
use crate::text::references::normalize;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How a world numbers its invoices, chosen from the seed (within the world profile's set) so
/// worlds look different.
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
    /// `NE1-104233`: the billing branch's code in front of one sequence (branch invoicing on
    /// one ERP); no leading zeros.
    Branch,
    /// `104233`: short plain numbers, no prefix and no leading zeros.
    Plain,
    /// `104233-7`: the number and a mod-10 (Luhn) check digit, as "parallel" invoice numbers
    /// carry one for bank payments.
    CheckDigit,
    /// `0104233-01`: zero-padded digits and a two-digit document suffix (revision, instalment).
    Suffix,
}

/// Billing branches' codes for [`Scheme::Branch`]; a customer is billed by one of them.
pub(crate) const BRANCH_CODES: &[&str] = &[
    "NE1", "NE2", "SE1", "MW1", "MW3", "SW2", "W1", "W4", "TX2", "CA1", "A07", "B12",
];

/// The mod-10 (Luhn) check digit of a string of digits.
pub(crate) fn luhn(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .enumerate()
        .map(|(k, b)| {
            let d = u32::from(b - b'0');
            if k % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

impl Scheme {
    /// The schemes of today's (`standard`) worlds.
    pub(crate) const STANDARD: [Scheme; 4] = [
        Scheme::InvDash,
        Scheme::Sap,
        Scheme::YearSeq,
        Scheme::SalesOrder,
    ];
    /// The other schemes, for worlds of the `enterprise` profile.
    pub(crate) const OTHER: [Scheme; 4] = [
        Scheme::Branch,
        Scheme::Plain,
        Scheme::CheckDigit,
        Scheme::Suffix,
    ];

    pub(crate) fn choose(rng: &mut ChaCha8Rng, set: &[Scheme]) -> Scheme {
        set.get(pick(rng, set.len()))
            .copied()
            .unwrap_or(Scheme::InvDash)
    }

    /// Whether the scheme pads its digits with leading zeros (so they can be lost).
    pub(crate) fn zero_padded(self) -> bool {
        matches!(
            self,
            Scheme::InvDash | Scheme::Sap | Scheme::YearSeq | Scheme::SalesOrder | Scheme::Suffix
        )
    }

    /// `width` is the number of digits; the generator makes it wide enough that every
    /// zero-padded number keeps at least one leading zero, so "lost leading zeros" can happen.
    /// `branch` is the billing branch's code, used by [`Scheme::Branch`] only.
    pub(crate) fn invoice(self, seq: u64, year: i32, width: usize, branch: &str) -> String {
        match self {
            Scheme::InvDash => format!("INV-{seq:0width$}"),
            Scheme::Sap => format!("{:010}", 90_000_000 + seq),
            Scheme::YearSeq => format!("{year}-{seq:0width$}"),
            Scheme::SalesOrder => format!("SO{seq:0width$}"),
            Scheme::Branch => format!("{branch}-{}", 100_000 + seq),
            Scheme::Plain => format!("{}", 100_000 + seq),
            Scheme::CheckDigit => {
                let n = format!("{}", 1_000_000 + seq);
                let d = luhn(&n);
                format!("{n}-{d}")
            }
            Scheme::Suffix => {
                // Most documents are the first of their number; a few are re-issues.
                let sfx = match seq % 10 {
                    8 => 2,
                    9 => 3,
                    _ => 1,
                };
                format!("{seq:0width$}-{sfx:02}")
            }
        }
    }

    pub(crate) fn credit_memo(self, seq: u64, year: i32, branch: &str) -> String {
        match self {
            Scheme::InvDash => format!("CM-{seq:07}"),
            Scheme::Sap => format!("{:010}", 70_000_000 + seq),
            Scheme::YearSeq => format!("CM{year}-{seq:05}"),
            Scheme::SalesOrder => format!("CR{seq:07}"),
            Scheme::Branch => format!("{branch}-CM{seq}"),
            Scheme::Plain => format!("CM{seq}"),
            Scheme::CheckDigit => format!("CN{seq}-{}", luhn(&seq.to_string())),
            Scheme::Suffix => format!("CR{seq:07}-01"),
        }
    }

    /// A number of a sister company's ledger, which the engine does not hold: its own company
    /// code in the number, and digits that overlap ours (one ERP, one sequence format per
    /// company code). It never normalises to a number of ours.
    pub(crate) fn foreign(self, seq: u64, year: i32, width: usize, branch: &str) -> String {
        match self {
            Scheme::InvDash => format!("INV-CA-{seq:0width$}"),
            // Another company code's number range.
            Scheme::Sap => format!("{:010}", 95_000_000 + seq % 5_000_000),
            Scheme::YearSeq => format!("CA-{year}-{seq:0width$}"),
            Scheme::SalesOrder => format!("SO-CA-{seq:0width$}"),
            Scheme::Branch => format!("{branch}-CA-{}", 100_000 + seq),
            Scheme::Plain => format!("CA{}", 100_000 + seq),
            Scheme::CheckDigit => {
                let n = format!("{}", 1_000_000 + seq);
                format!("CA{n}-{}", luhn(&n))
            }
            Scheme::Suffix => format!("{seq:0width$}-CA"),
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

/// Splits a document number into its prefix, its main run of digits (the longest; the last of
/// equally long ones) and what follows it (a check digit, a suffix).
pub(crate) fn parts(number: &str) -> (&str, &str, &str) {
    let b = number.as_bytes();
    let (mut best, mut i) = ((0usize, 0usize), 0usize);
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start >= best.1 - best.0 {
                best = (start, i);
            }
        } else {
            i += 1;
        }
    }
    if best.1 == best.0 {
        return (number, "", "");
    }
    (
        &number[..best.0],
        &number[best.0..best.1],
        &number[best.1..],
    )
}

/// Splits a document number into its prefix and its main run of digits (see [`parts`]).
pub(crate) fn split(number: &str) -> (&str, &str) {
    let (prefix, digits, _) = parts(number);
    (prefix, digits)
}

/// The same number in other case and spacing; normalises back to the original.
pub(crate) fn case_spacing(rng: &mut ChaCha8Rng, number: &str) -> String {
    let (prefix, digits, sfx) = parts(number);
    let bare = prefix.trim_end_matches(['-', ' ']);
    let mid = digits.len() / 2;
    let (d1, d2) = (&digits[..mid], &digits[mid..]);
    // Whole-number variants keep what follows the digits (a check digit, a suffix) as it is.
    let candidates: Vec<String> = if bare.is_empty() {
        vec![
            format!("{d1} {d2}{sfx}"),
            format!("{d1}-{d2}{sfx}"),
            format!("{d1}.{d2}{sfx}"),
        ]
    } else {
        vec![
            number.to_ascii_lowercase(),
            format!("{bare} {digits}{sfx}"),
            format!("{bare}{digits}{sfx}"),
            format!("{}{}", title(bare), &number[bare.len()..]),
            format!("{}{d1} {d2}{sfx}", prefix.to_ascii_lowercase()),
            format!("{} {digits}{sfx}", bare.to_ascii_lowercase()),
            format!("{bare} - {digits}{sfx}"),
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
    let (prefix, digits, sfx) = parts(number);
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
            return format!("{prefix}{}{sfx}", String::from_utf8_lossy(&d));
        }
    }
    if kind >= 75 {
        let i = rng.random_range(from as u32..d.len() as u32) as usize;
        d.remove(i);
        return format!("{prefix}{}{sfx}", String::from_utf8_lossy(&d));
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
    format!("{prefix}{}{sfx}", String::from_utf8_lossy(&d))
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
    let (prefix, digits, sfx) = parts(number);
    let alpha = prefix.trim_end_matches(['-', ' ']);
    let mut options: Vec<String> = Vec::new();
    if !alpha.is_empty() {
        options.push(format!("{digits}{sfx}"));
        options.push(format!("{digits}{sfx}"));
    }
    for p in ["INVOICE ", "INV#", "IN-", "IV", "INV NO ", "DOC ", "BILL "] {
        options.push(format!("{p}{digits}{sfx}"));
    }
    if alpha == "INV" {
        options.retain(|o| !o.starts_with("INV#"));
    }
    if alpha.starts_with("SO") {
        options.push(format!("ORD{digits}{sfx}"));
        options.push(format!("SALES ORDER {digits}{sfx}"));
    }
    if alpha.len() == 4 && alpha.bytes().all(|b| b.is_ascii_digit()) {
        // `2026-004512` quoted as `26-004512`.
        options.push(format!("{}-{digits}{sfx}", &alpha[2..]));
    }
    let norm = normalize(number);
    options.retain(|o| normalize(o) != norm);
    options
        .get(pick(rng, options.len()))
        .cloned()
        .unwrap_or_else(|| format!("{digits}{sfx}"))
}

/// The number with the leading zeros of its digits lost, as a spreadsheet column does.
pub(crate) fn drop_zeros(number: &str) -> String {
    let (prefix, digits, sfx) = parts(number);
    let kept = digits.trim_start_matches('0');
    format!("{prefix}{}{sfx}", if kept.is_empty() { "0" } else { kept })
}

/// How the number is quoted inside free text: with its own prefix, or with the payer's
/// word for "invoice" in front of the bare digits.
fn in_text(number: &str, bare: bool) -> String {
    let (prefix, digits, sfx) = parts(number);
    if bare && !prefix.is_empty() && !prefix.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        format!("{digits}{sfx}")
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
        // A number with a suffix or check digit has no tail to shorten.
        2 if !parts(&b).2.is_empty() => format!("{head}{a} THRU {b}"),
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

/// Lengths of the fields that carry a memo, which cut a longer one: an ACH CCD/PPD addenda
/// record's payment-related information (80 characters), ISO 20022 unstructured remittance
/// information or a wire's four lines of 35 (140), one line of 35 (a SWIFT MT103 field 70 line,
/// a check stub's memo line).
pub(crate) const MEMO_FIELDS: [usize; 3] = [80, 140, 35];

/// The memo as a field of `limit` characters holds it: cut hard, mid-number if need be.
pub(crate) fn cut(memo: &str, limit: usize) -> String {
    memo.chars()
        .take(limit)
        .collect::<String>()
        .trim_end()
        .to_string()
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
    fn zero_padded_schemes_keep_a_leading_zero() {
        for s in Scheme::STANDARD.into_iter().chain(Scheme::OTHER) {
            let n = s.invoice(456_789, 2026, 7, "NE1");
            let (_, digits) = split(&n);
            assert_eq!(digits.starts_with('0'), s.zero_padded(), "{n}");
            assert_eq!(drop_zeros(&n) != n, s.zero_padded(), "{n}");
        }
        assert_eq!(split("INV-0012345"), ("INV-", "0012345"));
        assert_eq!(split("2026-004512"), ("2026-", "004512"));
        assert_eq!(split("0090012345"), ("", "0090012345"));
        assert_eq!(parts("NE1-104233"), ("NE1-", "104233", ""));
        assert_eq!(parts("1104233-6"), ("", "1104233", "-6"));
        assert_eq!(parts("0104233-01"), ("", "0104233", "-01"));
    }

    #[test]
    fn check_digits_are_luhn() {
        // The textbook example: 7992739871 has check digit 3.
        assert_eq!(luhn("7992739871"), 3);
        let n = Scheme::CheckDigit.invoice(104_233, 2026, 7, "");
        let (_, digits, check) = parts(&n);
        assert_eq!(check, format!("-{}", luhn(digits)));
    }

    #[test]
    fn foreign_numbers_never_read_as_ours() {
        for s in Scheme::STANDARD.into_iter().chain(Scheme::OTHER) {
            for seq in [1_000u64, 45_678, 456_789] {
                let ours: Vec<String> = (seq.saturating_sub(3)..seq + 3)
                    .flat_map(|q| {
                        [
                            normalize(&s.invoice(q, 2026, 7, "NE1")),
                            normalize(&s.credit_memo(q, 2026, "NE1")),
                        ]
                    })
                    .collect();
                let theirs = s.foreign(seq, 2026, 7, "NE1");
                assert!(!ours.contains(&normalize(&theirs)), "{theirs}");
                // ... but their digits are ours: a lookalike.
                let (_, d, _) = parts(&theirs);
                assert!(
                    ours.iter().any(|o| o.contains(d.trim_start_matches('0'))) || s == Scheme::Sap,
                    "{theirs}"
                );
            }
        }
    }

    #[test]
    fn noise_changes_the_normalised_form_except_case_and_spacing() {
        let mut r = rng();
        for n in [
            "INV-0012345",
            "0090012345",
            "2026-004512",
            "SO0123456",
            "NE1-104233",
            "104233",
            "1104233-6",
            "0104233-01",
        ] {
            for _ in 0..200 {
                let c = case_spacing(&mut r, n);
                assert_ne!(c, n);
                assert_eq!(normalize(&c), normalize(n), "{n} -> {c}");
                let mut noisy = vec![typo(&mut r, n), ocr(&mut r, n), prefix_change(&mut r, n)];
                if split(n).1.starts_with('0') {
                    noisy.push(drop_zeros(n));
                }
                for x in noisy {
                    assert_ne!(normalize(&x), normalize(n), "{n} -> {x}");
                }
            }
        }
    }

    #[test]
    fn a_memo_is_cut_at_the_field_length() {
        let long =
            "INV 0012345, 0012346, 0012347, 0012348, 0012349, 0012350, 0012351, 0012352, 0012353";
        for limit in MEMO_FIELDS {
            let m = cut(long, limit);
            assert!(m.len() <= limit, "{m}");
            assert!(long.starts_with(&m));
        }
        assert_eq!(cut("INV 1, 2", 80), "INV 1, 2");
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
