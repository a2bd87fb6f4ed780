//! Decisions as JSON Lines: one serialised [`Decision`] per line.

use super::{Loaded, open};
use crate::domain::Decision;
use crate::input::{FormatError, Position};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

/// Writes one JSON object per decision, each on its own line.
pub fn write_decisions<'a>(
    mut w: impl Write,
    decisions: impl IntoIterator<Item = &'a Decision>,
) -> std::io::Result<()> {
    for d in decisions {
        serde_json::to_writer(&mut w, d)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Reads a decisions file (what `cashmatch eval` takes).
pub fn read_decisions(path: impl AsRef<Path>) -> Result<Loaded<Decision>, FormatError> {
    let (r, name) = open(path.as_ref())?;
    decisions_from_reader(r, &name)
}

/// Reads decisions from any reader; a line that is not a decision is an error at that line and
/// column, and the other lines go on. Blank lines are skipped.
pub fn decisions_from_reader(
    reader: impl Read,
    file: &str,
) -> Result<Loaded<Decision>, FormatError> {
    let mut out = Loaded::default();
    for (i, line) in BufReader::new(reader).split(b'\n').enumerate() {
        let line_no = i + 1;
        let at = |column| Position::Line {
            line: line_no,
            column,
        };
        let bytes =
            line.map_err(|e| FormatError::new(file, at(None), format!("cannot read: {e}")))?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            out.errors
                .push(FormatError::new(file, at(None), "line is not valid UTF-8"));
            continue;
        };
        let text = text.trim_start_matches('\u{feff}');
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Decision>(text) {
            Ok(d) => out.rows.push(d),
            Err(e) => out.errors.push(FormatError::new(
                file,
                at(Some(e.column())),
                format!("not a decision: {e}"),
            )),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Allocation, Status};
    use rust_decimal_macros::dec;

    #[test]
    fn decisions_round_trip_and_a_bad_line_is_reported() {
        let d = Decision {
            payment_id: "P1".into(),
            status: Status::Auto,
            confidence: 0.998,
            customer_id: Some("C1".into()),
            allocations: vec![Allocation {
                invoice_id: "I1".into(),
                amount: dec!(98.00),
                discount: dec!(2.00),
                deduction: dec!(0),
                reason_code: None,
            }],
            unapplied: dec!(0),
            suggestions: vec![],
            explanation: vec!["INV-1 matched exactly".into()],
            review_reason: None,
            model_version: "m1".into(),
            rules_version: "r1".into(),
            by_rules: Default::default(),
        };
        let mut buf = Vec::new();
        write_decisions(&mut buf, [&d, &d]).unwrap();
        buf.extend_from_slice(b"\n{\"payment_id\": 5}\n");
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.contains("\"amount\":\"98.00\""), "{text}");
        let back = decisions_from_reader(buf.as_slice(), "decisions.jsonl").unwrap();
        assert_eq!(back.rows, vec![d.clone(), d]);
        assert_eq!(back.errors.len(), 1);
        assert!(matches!(
            back.errors[0].position,
            Position::Line {
                line: 4,
                column: Some(_)
            }
        ));
    }
}
