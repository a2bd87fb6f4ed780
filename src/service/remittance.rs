//! Raw remittance bytes to payments, through the formats module's dispatcher, and the service's
//! per-remittance limits.

use crate::domain::Payment;
use crate::formats::{self, Format, FormatError, Parsed, Position};

/// Reads a remittance file in the given format, or the one its first bytes show.
pub(crate) fn parse_remittance(
    bytes: &[u8],
    file: &str,
    format: Option<Format>,
) -> Result<Parsed, FormatError> {
    formats::parse(bytes, file, format)
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
    fn a_payment_over_the_line_limit_is_reported_and_the_others_kept() {
        let mut csv = String::from(
            "payment_id,payment_date,payment_amount,currency,payer_name,payer_account,reference,line_amount,adjustment_amount,adjustment_code,memo\n",
        );
        for i in 0..3 {
            csv.push_str(&format!("P1,2026-11-02,30.00,USD,ACME,,INV-{i},10.00,,,\n"));
        }
        csv.push_str("P2,2026-11-02,10.00,USD,ACME,,INV-9,10.00,,,\n");
        let mut parsed = parse_remittance(csv.as_bytes(), "r.csv", None).expect("csv detected");
        enforce_line_limit(&mut parsed, "r.csv", 2);
        assert_eq!(
            parsed
                .payments
                .iter()
                .map(|p| p.payment_id.as_str())
                .collect::<Vec<_>>(),
            ["P2"]
        );
        assert!(
            parsed.errors[0]
                .to_string()
                .starts_with("r.csv: file: payment P1: 3 remittance lines")
        );
    }
}
