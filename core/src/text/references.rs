//! Reference normalisation and extraction.
//!
//! Payers quote invoice numbers the way they typed or scanned them: `inv 12345`, `INV-0012345`,
//! `lNV0O12345`, `12345`. Two keys make those comparable. The *normalised* form keeps letters and
//! digits in upper case. The *core* is the digit run at the end of it after OCR folding (O->0,
//! I/L->1, S->5, B->8, Z->2), without leading zeros: it survives a dropped or different prefix,
//! lost zeros, OCR confusions, case and spacing, and is what the ledger index is keyed on.

/// Upper-case letters and digits only.
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The digit a letter is commonly misread for, if any.
fn ocr_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c),
        b'O' | b'Q' | b'D' => Some(b'0'),
        b'I' | b'L' => Some(b'1'),
        b'S' => Some(b'5'),
        b'B' => Some(b'8'),
        b'Z' => Some(b'2'),
        b'G' => Some(b'6'),
        _ => None,
    }
}

/// Shortest core that still identifies a document; shorter digit tails fall back to the whole
/// normalised reference (schemes like `AB12C34`).
const MIN_CORE_DIGITS: usize = 4;

/// The comparable core of a reference (see the module doc). Empty when the reference holds
/// nothing usable.
pub fn core(s: &str) -> String {
    let n = normalize(s);
    core_of_normalized(&n)
}

/// [`core`] of an already normalised reference.
pub(crate) fn core_of_normalized(n: &str) -> String {
    let b = n.as_bytes();
    // The longest suffix that reads as digits after OCR folding, but it must contain at least
    // one real digit: an all-letter word is not a document number.
    let mut start = b.len();
    while start > 0 && ocr_digit(b[start - 1]).is_some() {
        start -= 1;
    }
    let tail = &b[start..];
    let real_digits = tail.iter().filter(|c| c.is_ascii_digit()).count();
    // Letters before the first real digit are the prefix (`SO`, `INVOICE`), not misread digits:
    // a misread leading zero is dropped with the zeros anyway.
    let skip = tail
        .iter()
        .position(|c| c.is_ascii_digit())
        .unwrap_or(tail.len());
    let tail = &tail[skip..];
    let folded: Vec<u8> = tail.iter().filter_map(|&c| ocr_digit(c)).collect();
    let trimmed: &[u8] = {
        let z = folded.iter().take_while(|&&c| c == b'0').count();
        &folded[z..]
    };
    if real_digits == 0 {
        return String::new();
    }
    if trimmed.len() >= MIN_CORE_DIGITS {
        String::from_utf8_lossy(trimmed).into_owned()
    } else {
        // Too short to stand alone: keep the whole reference, folded, so `AB12C34` is still a key.
        n.bytes()
            .map(|c| ocr_digit(c).unwrap_or(c) as char)
            .collect()
    }
}

/// The core of the last segment of a reference as written (`2026-0064628` gives `64628`), when
/// it differs from the whole core: schemes with a year or branch in front lose that part when
/// payers retype them (`IN-0064628`). Empty when there is no such segment.
pub(crate) fn tail_core(raw: &str) -> String {
    let last = raw
        .rsplit(|c: char| !c.is_ascii_alphanumeric())
        .find(|s| !s.is_empty())
        .unwrap_or("");
    let whole = core(raw);
    let t = core(last);
    if t.len() >= MIN_CORE_DIGITS && t != whole && t.bytes().all(|c| c.is_ascii_digit()) {
        t
    } else {
        String::new()
    }
}

/// How similar two references are, in [0, 1]: 1 for equal normalised forms, 0.98 for equal
/// cores, 0.95 when one's number tail is the other's, otherwise a Damerau-Levenshtein
/// similarity of the cores (typos, transpositions, dropped digits). Jaro-Winkler is used only
/// for references without digits: on numbers it rewards a shared year prefix, not identity.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (ka, kb) = (RefKey::new(a), RefKey::new(b));
    ka.similarity(&kb)
}

/// 1 - (optimal-string-alignment distance / longer length): typos, dropped digits and adjacent
/// transpositions cost one edit each. rapidfuzz's bit-parallel OSA, not strsim's
/// Damerau-Levenshtein: on this hot path it measured many times faster for the same answers on
/// references (`cashmatch bench strings`, docs/benchmarks.md).
pub fn edit_similarity(a: &str, b: &str) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    rapidfuzz::distance::osa::normalized_similarity(a.bytes(), b.bytes())
}

/// Whether two references are one slip of the keyboard apart at most: their cores (prefixes,
/// separators and leading zeros aside) equal, or one digit mistyped, dropped, doubled, or two
/// neighbours swapped. What a lookup reads as similar is wider (a tail alone, two edits).
pub(crate) fn one_slip_apart(a: &RefKey, b: &RefKey) -> bool {
    !a.core.is_empty()
        && !b.core.is_empty()
        && rapidfuzz::distance::osa::distance(a.core.bytes(), b.core.bytes()) <= 1
}

/// The comparable forms of one reference, computed once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefKey {
    pub norm: String,
    pub core: String,
    pub tail: String,
}

impl RefKey {
    pub fn new(raw: &str) -> RefKey {
        let norm = normalize(raw);
        RefKey {
            core: core_of_normalized(&norm),
            tail: tail_core(raw),
            norm,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.norm.is_empty()
    }

    /// See [`similarity`].
    pub fn similarity(&self, other: &RefKey) -> f64 {
        if self.norm.is_empty() || other.norm.is_empty() {
            return 0.0;
        }
        if self.norm == other.norm {
            return 1.0;
        }
        if !self.core.is_empty() && self.core == other.core {
            return 0.98;
        }
        let tails =
            |a: &RefKey, b: &RefKey| !a.tail.is_empty() && (a.tail == b.tail || a.tail == b.core);
        if tails(self, other) || tails(other, self) {
            return 0.95;
        }
        let dl = |a: &str, b: &str| edit_similarity(a, b);
        let digits = self.core.bytes().any(|c| c.is_ascii_digit())
            || other.core.bytes().any(|c| c.is_ascii_digit());
        let mut best = dl(&self.core, &other.core);
        let my_tail = if self.tail.is_empty() {
            &self.core
        } else {
            &self.tail
        };
        let their_tail = if other.tail.is_empty() {
            &other.core
        } else {
            &other.tail
        };
        if !self.tail.is_empty() || !other.tail.is_empty() {
            best = best.max(dl(my_tail, their_tail) * 0.97);
        }
        if !digits {
            best = best.max(strsim::jaro_winkler(&self.norm, &other.norm) * 0.9);
        }
        best
    }
}

impl RefKey {
    /// An upper bound of [`RefKey::similarity`], cheap enough to run over thousands of a payer's
    /// open items: the same steps, with each edit similarity replaced by its bag bound. Every
    /// edit (insertion, deletion, substitution, adjacent transposition) changes the multiset of
    /// characters on each side by at most one, so the optimal-string-alignment distance is at
    /// least the larger multiset difference, and the similarity at most one less that over the
    /// longer length. A pair whose bound is under a threshold is under it when compared.
    pub(crate) fn similarity_at_most(&self, other: &RefKey) -> f64 {
        if self.norm.is_empty() || other.norm.is_empty() {
            return 0.0;
        }
        if self.norm == other.norm {
            return 1.0;
        }
        if !self.core.is_empty() && self.core == other.core {
            return 0.98;
        }
        let tails =
            |a: &RefKey, b: &RefKey| !a.tail.is_empty() && (a.tail == b.tail || a.tail == b.core);
        if tails(self, other) || tails(other, self) {
            return 0.95;
        }
        let digits = self.core.bytes().any(|c| c.is_ascii_digit())
            || other.core.bytes().any(|c| c.is_ascii_digit());
        if !digits {
            // Jaro-Winkler has no such bound here.
            return 1.0;
        }
        let mut best = bag_similarity_bound(&self.core, &other.core);
        if !self.tail.is_empty() || !other.tail.is_empty() {
            let my_tail = if self.tail.is_empty() {
                &self.core
            } else {
                &self.tail
            };
            let their_tail = if other.tail.is_empty() {
                &other.core
            } else {
                &other.tail
            };
            best = best.max(bag_similarity_bound(my_tail, their_tail) * 0.97);
        }
        best
    }
}

/// At least [`edit_similarity`]: one less the bag distance (the larger of the two multiset
/// differences) over the longer length.
fn bag_similarity_bound(a: &str, b: &str) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    // Normalised references are ASCII; folding other bytes onto ASCII slots only merges
    // characters, which can lower the bag distance, never raise it.
    let mut count = [0i32; 128];
    for c in a.bytes() {
        count[(c & 0x7f) as usize] += 1;
    }
    for c in b.bytes() {
        count[(c & 0x7f) as usize] -= 1;
    }
    let (mut more, mut fewer) = (0i32, 0i32);
    for n in count {
        if n > 0 {
            more += n;
        } else {
            fewer -= n;
        }
    }
    let bag = more.max(fewer) as f64;
    1.0 - bag / a.len().max(b.len()) as f64
}

/// A reference found in free text, with the line number of the text it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextReference {
    pub reference: String,
    /// Whether the text called it a purchase order (`PO 4500123`).
    pub purchase_order: bool,
    /// Whether the text presents it as a document: an invoice or PO word before it (`INV`,
    /// `INVOICE`, `RE`, `PO`, ...) or a document prefix in the token (`INV#0012345`). A bare
    /// number in a memo (`CHECK 104233`, `AP RUN 0412`) may be anything, and a number that
    /// finds nothing is then not evidence of a reference gone wrong.
    pub named: bool,
}

/// Words that say the numbers after them are documents the payment is for. `PMT 0012345`
/// (payment of 0012345) is how payers write a memo for one invoice; a check, batch or run
/// number has its own word (`CHECK`, `BATCH`, `RUN`), which ends the context.
const DOCUMENT_WORDS: [&str; 14] = [
    "INV", "INVOICE", "INVOICES", "INVS", "BILL", "BILLS", "RE", "REF", "DOC", "FACTUUR",
    "RECHNUNG", "FACTURE", "PMT", "PAYMENT",
];

/// Digits a memo made of one number alone needs to be read as the reference the payer typed
/// into the field: a payer's own check or batch number comes with its word.
const LONE_NUMBER_DIGITS: usize = 6;

/// Letter prefixes of document numbers written in one token (`INV0012345`, `PO-4500123`).
const DOCUMENT_PREFIXES: [&str; 9] = ["INV", "IN", "IV", "DOC", "SO", "ORD", "CM", "CR", "PO"];

/// Whether a token carries a document prefix of its own.
fn has_document_prefix(tok: &str) -> bool {
    let letters: String = tok
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    DOCUMENT_PREFIXES.contains(&letters.as_str())
        && tok.chars().filter(|c| c.is_ascii_digit()).count() >= 3
}

/// Whether a token is written as a document number is (`2026-0081671`, `CA-2027-0142536`,
/// `SO-104233-2`): groups of letters and digits joined by dashes or slashes, one of them four
/// digits or more, six digits in all. Check, batch and run numbers are bare numbers; a date or
/// an amount never reaches here.
fn structured_number(tok: &str) -> bool {
    let groups: Vec<&str> = tok.split(['-', '/']).collect();
    groups.len() >= 2
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.chars().all(|c| c.is_ascii_alphanumeric()))
        && groups
            .iter()
            .any(|g| g.len() >= 4 && g.chars().all(|c| c.is_ascii_digit()))
        && tok.chars().filter(|c| c.is_ascii_digit()).count() >= 6
}

/// Largest range expansion (`INV 1001-1004`) taken at face value; a longer "range" is more
/// likely two unrelated numbers with a dash.
const MAX_RANGE: u64 = 50;

/// Words that introduce a purchase order in a memo.
const PO_WORDS: [&str; 4] = ["PO", "P.O.", "PURCHASE", "ORDER"];

/// Finds invoice-number-like tokens in free text: tokens with at least three digits, lists
/// (`INV 1001, 1002 & 1005`) and ranges (`INV 1001-1004`, `1001 TO 1004`). Amounts
/// (`1,234.50`, `$99.00`) and dates are not references and are skipped.
pub(crate) fn extract_from_text(text: &str) -> Vec<TextReference> {
    let mut out: Vec<TextReference> = Vec::new();
    let raw: Vec<&str> = text
        .split(|c: char| {
            c.is_whitespace() || c == ',' || c == ';' || c == '&' || c == '(' || c == ')'
        })
        .filter(|t| !t.is_empty())
        .collect();
    let mut po_context = false;
    // Set by a document word, kept through the list that follows it, ended by another word.
    let mut doc_context = false;
    let mut i = 0;
    while i < raw.len() {
        let tok = raw[i].trim_matches(|c: char| c == ':' || c == '#' || c == '.' || c == '"');
        let up = tok.to_ascii_uppercase();
        if PO_WORDS.contains(&up.as_str()) || up.starts_with("PO#") {
            po_context = true;
            doc_context = true;
        } else if [
            "INV", "INVOICE", "INVOICES", "INVS", "BILL", "FACTUUR", "RECHNUNG",
        ]
        .contains(&up.as_str())
        {
            po_context = false;
        }
        if DOCUMENT_WORDS.contains(&up.as_str()) {
            doc_context = true;
        } else if !up.is_empty()
            && up.chars().all(|c| c.is_ascii_alphabetic())
            && ![
                "AND", "TO", "THRU", "THROUGH", "NO", "NR", "NUM", "NOS", "#", "-",
            ]
            .contains(&up.as_str())
            && !PO_WORDS.contains(&up.as_str())
        {
            doc_context = false;
        }
        // A memo that is one number and nothing else is the reference field as the payer
        // filled it (`0095110793`).
        let lone = raw.len() == 1
            && tok.chars().filter(|c| c.is_ascii_digit()).count() >= LONE_NUMBER_DIGITS;
        let named = doc_context || lone || has_document_prefix(tok) || structured_number(tok);
        if is_amount_or_date(tok) {
            i += 1;
            continue;
        }
        // `2026-0065466/2026-0065468`: a list written with slashes.
        if tok.contains('/') {
            for part in tok
                .split('/')
                .filter(|p| p.chars().filter(|c| c.is_ascii_digit()).count() >= 3)
            {
                out.push(TextReference {
                    reference: part.to_string(),
                    purchase_order: po_context,
                    named,
                });
            }
            i += 1;
            continue;
        }
        // `1001-1004` or `2027-0081806-11` in one token (the last dash starts the range end),
        // or `1001 - 1004` / `1001 TO 1004` across three.
        let one_token = tok
            .match_indices('-')
            .map(|(i, _)| (&tok[..i], &tok[i + 1..]))
            .rev()
            .find_map(|(a, b)| expand_range(a, b));
        if let Some(list) = one_token {
            out.extend(list.into_iter().map(|r| TextReference {
                reference: r,
                purchase_order: po_context,
                named,
            }));
            i += 1;
            continue;
        }
        if i + 2 < raw.len()
            && ["-", "TO", "THRU", "THROUGH"].contains(&raw[i + 1].to_ascii_uppercase().as_str())
        {
            if let Some(list) = expand_range(tok, raw[i + 2]) {
                out.extend(list.into_iter().map(|r| TextReference {
                    reference: r,
                    purchase_order: po_context,
                    named,
                }));
                i += 3;
                continue;
            }
        }
        let digits = tok.chars().filter(|c| c.is_ascii_digit()).count();
        if digits >= 3 && tok.len() <= 30 {
            let reference = tok
                .trim_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string();
            let purchase_order = po_context || reference.to_ascii_uppercase().starts_with("PO");
            out.push(TextReference {
                reference,
                purchase_order,
                named,
            });
        }
        i += 1;
    }
    if ends_in_a_cut_number(text, &out) {
        out.pop();
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(normalize(&r.reference)));
    out
}

/// Whether a list of numbers ends where the bank's field cut it (80 characters of ACH addenda,
/// 140 of a wire): the last one closes the text and is shorter than the others, which are all
/// one length. Read as a reference, such a fragment finds an item the payer never named (a PO
/// number, another customer's invoice) at a middling similarity.
fn ends_in_a_cut_number(text: &str, refs: &[TextReference]) -> bool {
    let [rest @ .., last] = refs else {
        return false;
    };
    let len = |r: &TextReference| {
        r.reference
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .count()
    };
    let Some(first) = rest.first().map(len) else {
        return false;
    };
    if rest.len() < 2 || rest.iter().any(|r| len(r) != first) || len(last) >= first {
        return false;
    }
    // The fragment closes the text and follows the list's last number across separators only:
    // `... 0012360 CHECK 5521` ends in another number, not in a cut one.
    let Some(head) = text.trim_end().strip_suffix(last.reference.as_str()) else {
        return false;
    };
    rest.last().is_some_and(|prev| {
        head.trim_end_matches(|c: char| c.is_whitespace() || ",;&/".contains(c))
            .ends_with(prev.reference.as_str())
    })
}

/// `1,234.50`, `$99`, `99.00`, `2026-11-27`, `11/27/2026`: numbers that are not references.
fn is_amount_or_date(tok: &str) -> bool {
    let t = tok
        .trim_start_matches(['$', '€', '£'])
        .trim_end_matches(['.']);
    if tok.starts_with(['$', '€', '£']) {
        return true;
    }
    // Money: digits with a decimal point and exactly two decimals.
    if let Some((int, frac)) = t.rsplit_once('.') {
        if frac.len() == 2
            && frac.bytes().all(|c| c.is_ascii_digit())
            && !int.is_empty()
            && int.bytes().all(|c| c.is_ascii_digit() || c == b',')
        {
            return true;
        }
    }
    // Dates: three numeric groups separated by - or / with a 4-digit year at one end.
    for sep in ['-', '/'] {
        let parts: Vec<&str> = t.split(sep).collect();
        if parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
            && (parts[0].len() == 4 || parts[2].len() == 4)
            && parts[1].len() <= 2
        {
            return true;
        }
    }
    false
}

/// `INV1001` .. `1004` (or `INV1004`): the references in between, keeping the first one's prefix
/// and zero padding. `None` when it is not a plausible range.
fn expand_range(a: &str, b: &str) -> Option<Vec<String>> {
    let a = a.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let b = b.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let split = |s: &str| {
        let p = s.len() - s.bytes().rev().take_while(|c| c.is_ascii_digit()).count();
        (s[..p].to_string(), s[p..].to_string())
    };
    let (pa, da) = split(a);
    let (pb, db) = split(b);
    if da.len() < 3 || db.is_empty() || !(pb.is_empty() || pb.eq_ignore_ascii_case(&pa)) {
        return None;
    }
    let start: u64 = da.parse().ok()?;
    // `1001-04` abbreviates the end to its last digits.
    let end: u64 = if db.len() < da.len() {
        let keep = &da[..da.len() - db.len()];
        format!("{keep}{db}").parse().ok()?
    } else {
        db.parse().ok()?
    };
    if end <= start || end - start > MAX_RANGE {
        return None;
    }
    let width = da.len();
    Some((start..=end).map(|n| format!("{pa}{n:0width$}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_survives_prefixes_zeros_case_and_ocr() {
        for r in [
            "INV-0012345",
            "inv 12345",
            "12345",
            "lNV0O12345",
            "SO-12345",
            "#0012345",
            "INVOICE 12345",
        ] {
            assert_eq!(core(r), "12345", "{r}");
        }
        assert_eq!(core("12S45"), "12545");
        assert_eq!(core("INVOICE"), "");
        // A short digit tail keeps the whole reference as its key.
        assert_eq!(core("AB12C34"), "A812C34");
        assert_eq!(core("ab12c34"), core("AB 12 C34"));
    }

    /// References as payers mangle them: prefixes, years, zeros, OCR letters, typos.
    fn mangled_reference() -> impl proptest::strategy::Strategy<Value = String> {
        "(INV-|IN|SO |2026-|#|lNV|PO )?[0-9OISBLZ]{1,12}(-[0-9]{1,6})?"
    }

    proptest::proptest! {
        #[test]
        fn the_bound_is_never_below_the_similarity(
            a in mangled_reference(),
            b in mangled_reference(),
        ) {
            let (ka, kb) = (RefKey::new(&a), RefKey::new(&b));
            let sim = ka.similarity(&kb);
            proptest::prop_assert!(ka.similarity_at_most(&kb) >= sim, "{a} {b}");
            proptest::prop_assert!(kb.similarity_at_most(&ka) >= kb.similarity(&ka), "{b} {a}");
        }
    }

    #[test]
    fn the_bound_holds_for_neighbouring_numbers() {
        let base = 64_628u64;
        for other in (base - 2_000..base + 2_000).chain([6_462_800, 46_628, 64_682]) {
            for (x, y) in [
                (format!("INV-{base:07}"), format!("INV-{other:07}")),
                (format!("IN-{base}"), format!("2026-{other:07}")),
                (format!("{base}"), format!("SO-{other}")),
            ] {
                let (kx, ky) = (RefKey::new(&x), RefKey::new(&y));
                assert!(kx.similarity_at_most(&ky) >= kx.similarity(&ky), "{x} {y}");
            }
        }
    }

    #[test]
    fn one_slip_is_one_edit_of_the_number_not_of_its_tail() {
        let slip = |a: &str, b: &str| one_slip_apart(&RefKey::new(a), &RefKey::new(b));
        assert!(slip("2026-0138074", "2026-0131074"));
        assert!(slip("2026-0151766", "2026-0115766"));
        assert!(slip("2026-007829", "2026-0078829"));
        assert!(slip("INV 0012345", "0012345"));
        assert!(!slip("CA-2027-0150424", "2026-0150427"));
        assert!(!slip("2026-0138074", "2026-0131084"));
        assert!(!slip("CHECK", "2026-0131084"));
    }

    #[test]
    fn similarity_ranks_typos_above_strangers() {
        assert_eq!(similarity("INV-0012345", "inv12345"), 0.98);
        let typo = similarity("INV-0012345", "INV-0012354");
        let missing = similarity("INV-0012345", "INV-001234");
        let other = similarity("INV-0012345", "INV-0098761");
        assert!(typo > 0.75 && missing > 0.75, "{typo} {missing}");
        assert!(other < typo && other < missing, "{other}");
        assert_eq!(similarity("", "INV1"), 0.0);
        // A shared year prefix is not identity.
        assert!(similarity("2027-0050358", "2027-0081505") < 0.72);
        assert_eq!(similarity("IN-0064628", "2026-0064628"), 0.95);
    }

    #[test]
    fn only_numbers_the_text_presents_as_documents_are_named() {
        let named = |t: &str| -> Vec<(String, bool)> {
            extract_from_text(t)
                .into_iter()
                .map(|r| (r.reference, r.named))
                .collect()
        };
        assert_eq!(named("CHECK 104233"), [("104233".to_string(), false)]);
        assert_eq!(named("AP RUN 0412"), [("0412".to_string(), false)]);
        assert_eq!(
            named("PAYMENT FOR INVOICE 0012345, 0012351 & 0012360 CHECK 5521"),
            [
                ("0012345".to_string(), true),
                ("0012351".to_string(), true),
                ("0012360".to_string(), true),
                ("5521".to_string(), false),
            ]
        );
        assert_eq!(
            named("PMT INV#0012345"),
            [("INV#0012345".to_string(), true)]
        );
        assert_eq!(named("PO 4500123456"), [("4500123456".to_string(), true)]);
        // Written as a document number is: another entity's, quoted alone in a memo.
        assert_eq!(
            named("PMT CA-2027-0131682"),
            [("CA-2027-0131682".to_string(), true)]
        );
        assert_eq!(named("BATCH 88346"), [("88346".to_string(), false)]);
        // Payment of one invoice, and the reference field holding one number alone: both say
        // what is paid. A short lone number may be anything; a check number has its word.
        assert_eq!(named("PMT 0090075844"), [("0090075844".to_string(), true)]);
        assert_eq!(named("0095110793"), [("0095110793".to_string(), true)]);
        assert_eq!(named("55213"), [("55213".to_string(), false)]);
        assert_eq!(
            named("PMT 0090075844 CHECK 104233"),
            [
                ("0090075844".to_string(), true),
                ("104233".to_string(), false)
            ]
        );
        assert!(named("ACH PAYMENT").is_empty());
    }

    #[test]
    fn text_lists_ranges_and_amounts() {
        let refs: Vec<String> =
            extract_from_text("PAYMENT FOR INV 1001, 1002 & 1005 TOTAL $3,300.00 ON 2026-11-02")
                .into_iter()
                .map(|r| r.reference)
                .collect();
        assert_eq!(refs, ["1001", "1002", "1005"]);
        let refs: Vec<String> = extract_from_text("INV 1001-1004")
            .into_iter()
            .map(|r| r.reference)
            .collect();
        assert_eq!(refs, ["1001", "1002", "1003", "1004"]);
        let refs: Vec<String> = extract_from_text("invoices INV-0101 to INV-0103")
            .into_iter()
            .map(|r| r.reference)
            .collect();
        assert_eq!(refs, ["INV-0101", "INV-0102", "INV-0103"]);
        let po = extract_from_text("PO 4500123456 paid in full");
        assert_eq!(po.len(), 1);
        assert!(po[0].purchase_order);
        assert!(extract_from_text("THANK YOU 1,234.56").is_empty());
        let refs: Vec<String> =
            extract_from_text("INVOICES 2026-0065466/2026-0065468 ON 11/27/2026")
                .into_iter()
                .map(|r| r.reference)
                .collect();
        assert_eq!(refs, ["2026-0065466", "2026-0065468"]);
        let refs: Vec<String> = extract_from_text("INVS 2027-0081806-08")
            .into_iter()
            .map(|r| r.reference)
            .collect();
        assert_eq!(refs, ["2027-0081806", "2027-0081807", "2027-0081808"]);
        let refs: Vec<String> = extract_from_text("INVS 2027-0082445-2027-0082447")
            .into_iter()
            .map(|r| r.reference)
            .collect();
        assert_eq!(refs, ["2027-0082445", "2027-0082446", "2027-0082447"]);
        // A huge "range" is two numbers, not a thousand invoices.
        assert_eq!(extract_from_text("1001-9999").len(), 1);
    }

    #[test]
    fn a_list_cut_by_the_banks_field_loses_its_fragment_not_its_numbers() {
        let refs = |t: &str| -> Vec<String> {
            extract_from_text(t)
                .into_iter()
                .map(|r| r.reference)
                .collect()
        };
        // 80 characters of ACH addenda: the last number is cut after four digits.
        assert_eq!(
            refs("INV 0090058411 0090058412 0090058413 0090058414 0090058415 0090058416 0090"),
            [
                "0090058411",
                "0090058412",
                "0090058413",
                "0090058414",
                "0090058415",
                "0090058416"
            ]
        );
        assert_eq!(
            refs("2026-0128048/2026-0128051/2026-01"),
            ["2026-0128048", "2026-0128051"]
        );
        // Numbers of another length are not a fragment unless they end the text.
        assert_eq!(
            refs("INV 10011, 10012, 998 PAID"),
            ["10011", "10012", "998"]
        );
        assert_eq!(refs("INV 1001-1004"), ["1001", "1002", "1003", "1004"]);
        // Two numbers are no list to judge a length by.
        assert_eq!(refs("INV 0090058411 0090"), ["0090058411", "0090"]);
    }

    proptest::proptest! {
        #[test]
        fn extraction_never_panics(s in "\\PC{0,200}") {
            let _ = extract_from_text(&s);
            let _ = core(&s);
            let _ = similarity(&s, "INV-1001");
        }
    }
}
