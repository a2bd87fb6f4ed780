//! Raw remittance bytes to payments: the one place the service reads a file, so that switching to
//! the formats module's own dispatcher (`formats::parse`) is a change of this file only.

use crate::domain::Payment;
use crate::formats::{self, Format, FormatError, Parsed, Position};
use crate::io;

/// Bytes of a file's head that format detection looks at.
const HEAD: usize = 4096;

/// Reads a remittance file in the given format, or the one its first bytes show.
pub(crate) fn parse_remittance(
    bytes: &[u8],
    file: &str,
    format: Option<Format>,
) -> Result<Parsed, FormatError> {
    let format = match format {
        Some(f) => f,
        None => detect(bytes).ok_or_else(|| {
            FormatError::new(
                file,
                Position::File,
                "could not tell the format from the first bytes; name it in the request",
            )
        })?,
    };
    match format {
        Format::Csv => io::remittances_from_reader(bytes, file),
        Format::X12_820 => formats::x12::parse(bytes, file),
        Format::Bai2 => formats::bai2::parse(bytes, file),
        Format::Lockbox => formats::lockbox::parse(bytes, file),
        Format::Camt053 | Format::Camt054 => formats::camt::parse(bytes, file),
        Format::Remt001 => formats::remt::parse(bytes, file),
        Format::Nacha => formats::nacha::parse(bytes, file),
        Format::Mt940 => formats::mt940::parse(bytes, file),
        Format::FreeText => formats::text::parse(bytes, file),
    }
}

/// The format whose signature the head shows, trying the most specific first; the project CSV by
/// its header; free text last.
fn detect(bytes: &[u8]) -> Option<Format> {
    let head = bytes.get(..HEAD).unwrap_or(bytes);
    let csv_header = {
        let h = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
        h.trim_ascii_start().starts_with(b"payment_id")
    };
    Format::ALL.into_iter().find(|f| match f {
        Format::X12_820 => formats::x12::looks_like(head),
        Format::Nacha => formats::nacha::looks_like(head),
        Format::Camt054 | Format::Camt053 => formats::camt::looks_like(head),
        Format::Remt001 => formats::remt::looks_like(head),
        Format::Bai2 => formats::bai2::looks_like(head),
        Format::Lockbox => formats::lockbox::looks_like(head),
        Format::Mt940 => formats::mt940::looks_like(head),
        Format::Csv => csv_header,
        Format::FreeText => formats::text::looks_like(head),
    })
}

/// Payments of a parsed file that exceed the per-remittance line limit, moved to the errors.
pub(crate) fn enforce_line_limit(parsed: &mut Parsed, file: &str, max_lines: usize) {
    let (ok, too_long): (Vec<Payment>, Vec<Payment>) = std::mem::take(&mut parsed.payments)
        .into_iter()
        .partition(|p| p.lines.len() <= max_lines);
    parsed.payments = ok;
    for p in too_long {
        parsed.errors.push(FormatError::new(
            file,
            Position::File,
            format!(
                "payment {}: {} remittance lines exceed the limit of {max_lines}",
                p.payment_id,
                p.lines.len()
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_project_csv_and_x12_and_refuses_binary() {
        let csv = b"payment_id,payment_date,payment_amount,currency,payer_name,payer_account,reference,line_amount,adjustment_amount,adjustment_code,memo\n";
        assert_eq!(detect(csv), Some(Format::Csv));
        let x12 = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/x12/820_005010_two_st_adx_credit_memo.x12"),
        )
        .unwrap_or_default();
        assert_eq!(detect(&x12), Some(Format::X12_820));
        assert_eq!(detect(&[0xff, 0xfe, 0x00, 0x01]), None);
        let err = parse_remittance(&[0xff, 0x00], "blob.bin", None).err();
        assert!(err.is_some_and(|e| e.to_string().starts_with("blob.bin: file:")));
    }
}
