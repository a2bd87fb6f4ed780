//! The advice files of the decoupled family that the formats module has no writer for: an AP
//! system's payment advice as a PDF with a text layer, and a UN/EDIFACT REMADV message. Both
//! are written so that the project's own readers ([`crate::formats::pdf`],
//! [`crate::formats::remadv`]) read back the advice's amount, date, payer and lines.

use crate::domain::{Payment, ReferenceKind, RemittanceLine};
use rust_decimal::Decimal;
use std::io::Write;

/// Table rows on one PDF page before the table goes on under a repeated header.
const ROWS_PER_PAGE: usize = 40;

/// A money figure as AP printouts print it: `1,234.50`, a negative one as `(25.00)`.
fn printed(d: Decimal) -> String {
    let r = d.round_dp(2);
    let s = format!("{:.2}", r.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if r.is_sign_negative() && !r.is_zero() {
        format!("({grouped}.{frac})")
    } else {
        format!("{grouped}.{frac}")
    }
}

/// Text as a PDF string literal in WinAnsi: Latin-1 characters as their byte, anything else `?`.
fn pdf_string(t: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for c in t.chars() {
        match c {
            '\\' | '(' | ')' => out.extend([b'\\', c as u8]),
            c if (c as u32) >= 0x20 && (c as u32) < 0x7F => out.push(c as u8),
            c if (0xA0..=0xFF).contains(&(c as u32)) => out.push(c as u32 as u8),
            _ => out.push(b'?'),
        }
    }
    out.push(b')');
    out
}

/// The x at which a figure of Helvetica 10 starts so that it ends at `right`.
fn right_aligned(right: f32, t: &str) -> f32 {
    let w: f32 = t
        .chars()
        .map(|c| {
            if c.is_ascii_digit() || c == '$' {
                5.56
            } else {
                2.78
            }
        })
        .sum();
    right - w
}

/// The payment advice an AP system prints: the payer, the date, a table of Invoice / Amount /
/// Discount / Paid with a row per line (on as many pages as it takes, the header repeated), and
/// the total. Streams are compressed as most producers do.
pub(crate) fn pdf(a: &Payment) -> std::io::Result<Vec<u8>> {
    let mut heading: Vec<(f32, f32, u32, String)> = vec![(
        50.0,
        740.0,
        14,
        a.payer
            .name
            .clone()
            .unwrap_or_else(|| "Accounts Payable".into()),
    )];
    heading.push((50.0, 722.0, 10, "Payment Advice".into()));
    let mut y = 700.0;
    if let Some(n) = &a.payer.name {
        heading.push((50.0, y, 10, format!("Payer: {n}")));
        y -= 14.0;
    }
    if let Some(d) = a.payment_date {
        heading.push((
            50.0,
            y,
            10,
            format!("Payment Date: {}", d.format("%Y-%m-%d")),
        ));
        y -= 14.0;
    }
    heading.push((50.0, y, 10, format!("Currency: {}", a.currency.as_str())));
    let cols: [(f32, &str); 4] = [
        (50.0, "Invoice"),
        (370.0, "Amount"),
        (460.0, "Discount"),
        (560.0, "Paid"),
    ];
    let header = |y: f32| -> Vec<(f32, f32, u32, String)> {
        cols.iter()
            .map(|&(x, h)| {
                let x0 = if x < 300.0 { x } else { right_aligned(x, h) };
                (x0, y, 10, h.to_string())
            })
            .collect()
    };
    let row = |l: &RemittanceLine, y: f32| -> Vec<(f32, f32, u32, String)> {
        let mut cells = vec![(50.0, y, 10, l.reference.clone().unwrap_or_default())];
        for (x, v) in [
            (370.0, l.invoice_amount),
            (460.0, l.discount),
            (560.0, l.amount_paid),
        ] {
            if let Some(v) = v {
                let t = printed(v);
                cells.push((right_aligned(x, &t), y, 10, t));
            }
        }
        cells
    };
    let chunks: Vec<&[RemittanceLine]> = if a.lines.is_empty() {
        vec![&[]]
    } else {
        a.lines.chunks(ROWS_PER_PAGE).collect()
    };
    let mut pages: Vec<Vec<(f32, f32, u32, String)>> = Vec::new();
    for (k, chunk) in chunks.iter().enumerate() {
        let mut cells = if k == 0 {
            heading.clone()
        } else {
            vec![(50.0, 740.0, 10, "Payment Advice (continued)".to_string())]
        };
        let mut y = if k == 0 { 620.0 } else { 710.0 };
        cells.extend(header(y));
        y -= 16.0;
        for l in *chunk {
            cells.extend(row(l, y));
            y -= 14.0;
        }
        if k + 1 == chunks.len() {
            let t = printed(a.amount);
            cells.push((50.0, y - 6.0, 10, "Total".into()));
            cells.push((right_aligned(560.0, &t), y - 6.0, 10, t));
        }
        cells.push((50.0, 60.0, 8, format!("Page {} of {}", k + 1, chunks.len())));
        pages.push(cells);
    }
    let mut contents = Vec::new();
    for cells in pages {
        let mut ops = b"BT\n".to_vec();
        for (x, y, size, t) in cells {
            write!(ops, "/F1 {size} Tf 1 0 0 1 {x:.2} {y:.2} Tm ")?;
            ops.extend(pdf_string(&t));
            ops.extend(b" Tj\n");
        }
        ops.extend(b"ET\n");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&ops)?;
        contents.push(z.finish()?);
    }
    Ok(pdf_file(&contents))
}

/// The smallest PDF readers accept: catalog, page tree, the standard Helvetica (not embedded),
/// a page per compressed content stream, the cross-reference table and the trailer.
fn pdf_file(contents: &[Vec<u8>]) -> Vec<u8> {
    // Objects 1 catalog, 2 page tree, 3 font, then a stream and a page per page.
    let mut objs: Vec<Vec<u8>> = vec![Vec::new(), Vec::new()];
    objs.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    let mut kids = Vec::new();
    for c in contents {
        let mut s =
            format!("<< /Length {} /Filter /FlateDecode >>\nstream\n", c.len()).into_bytes();
        s.extend(c);
        s.extend(b"\nendstream");
        objs.push(s);
        let stream = objs.len();
        objs.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {stream} 0 R >>"
            )
            .into_bytes(),
        );
        kids.push(format!("{} 0 R", objs.len()));
    }
    objs[0] = b"<< /Type /Catalog /Pages 2 0 R >>".to_vec();
    objs[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        kids.len()
    )
    .into_bytes();
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).into_bytes());
        out.extend(body);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).into_bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").into_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objs.len() + 1
        )
        .into_bytes(),
    );
    out
}

/// EDIFACT text with the release character before the service characters.
fn edi(t: &str) -> String {
    let mut s = String::with_capacity(t.len());
    for c in t.chars() {
        if matches!(c, '?' | '\'' | '+' | ':') {
            s.push('?');
        }
        // A line break inside a value would read as part of it; EDIFACT has none.
        s.push(if c.is_control() { ' ' } else { c });
    }
    s
}

/// A REMADV (D.96A) interchange of one message: `BGM` the advice's id, `DTM+137` its date,
/// `NAD+PR` the payer, `CUX` the currency, `MOA+9` the total, then a `DOC` per line (380 an
/// invoice, 381 a credit note, 220 an order) with `MOA+12` what it pays, `MOA+39` the invoice
/// amount, `MOA+52` the discount and an `AJT`/`MOA+8` per adjustment (its reason code).
/// `None` when a line has no document number, which a `DOC` must carry.
pub(crate) fn remadv(a: &Payment) -> Option<String> {
    let mut segs: Vec<String> = vec![
        "UNH+1+REMADV:D:96A:UN".into(),
        format!("BGM+481+{}+9", edi(&a.payment_id)),
    ];
    if let Some(d) = a.payment_date {
        segs.push(format!("DTM+137:{}:102", d.format("%Y%m%d")));
    }
    if let Some(n) = &a.payer.name {
        segs.push(format!("NAD+PR+++{}", edi(n)));
    }
    segs.push(format!("CUX+2:{}:11", a.currency.as_str()));
    segs.push(format!("MOA+9:{}", a.amount));
    for l in &a.lines {
        let reference = l.reference.as_deref().map(str::trim).unwrap_or("");
        if reference.is_empty() {
            return None;
        }
        let code = match l.reference_kind {
            ReferenceKind::Invoice => "380",
            ReferenceKind::CreditNote => "381",
            ReferenceKind::PurchaseOrder => "220",
            ReferenceKind::Unknown => "ZZZ",
        };
        segs.push(format!("DOC+{code}+{}", edi(reference)));
        if let Some(v) = l.invoice_amount {
            segs.push(format!("MOA+39:{v}"));
        }
        if let Some(v) = l.discount {
            segs.push(format!("MOA+52:{v}"));
        }
        if let Some(v) = l.amount_paid {
            segs.push(format!("MOA+12:{v}"));
        }
        for adj in &l.adjustments {
            let reason = adj.reason_code.as_deref().unwrap_or("");
            segs.push(format!("AJT+{}", edi(reason)));
            segs.push(format!("MOA+8:{}", adj.amount));
        }
    }
    segs.push("UNS+S".into());
    segs.push(format!("UNT+{}+1", segs.len() + 1));
    let date = a
        .payment_date
        .map(|d| d.format("%y%m%d").to_string())
        .unwrap_or_else(|| "000101".into());
    let mut out = format!("UNA:+.? '\nUNB+UNOC:3+PAYER:ZZZ+CASHMATCH:ZZZ+{date}:0900+1'\n");
    for s in segs {
        out.push_str(&s);
        out.push_str("'\n");
    }
    out.push_str("UNZ+1+1'\n");
    Some(out)
}
