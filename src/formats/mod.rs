//! Remittance and bank formats: each turns bytes into canonical [`Payment`]s.
//!
//! Every parser has the same shape: `parse(bytes, file) -> Result<Parsed, FormatError>`, where a
//! file-level fault (not the format at all, a broken envelope) is an `Err`, and a fault confined
//! to one transaction is kept in [`Parsed::errors`] while the good transactions go on.

pub mod bai2;
pub mod lockbox;
pub mod mt940;

use crate::domain::Payment;
pub mod text;

use std::fmt;

pub mod nacha;
pub mod x12;

/// A remittance or bank-statement format that cashmatch reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// The project's own remittance CSV (docs/formats.md).
    Csv,
    X12_820,
    Bai2,
    Lockbox,
    Camt053,
    Camt054,
    Remt001,
    Nacha,
    Mt940,
    FreeText,
}

impl Format {
    /// Every format, in the order `detect` tries them.
    pub const ALL: [Format; 10] = [
        Format::X12_820,
        Format::Nacha,
        Format::Camt054,
        Format::Camt053,
        Format::Remt001,
        Format::Bai2,
        Format::Lockbox,
        Format::Mt940,
        Format::Csv,
        Format::FreeText,
    ];

    /// The name used on the command line and in `Payment::format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::X12_820 => "x12_820",
            Format::Bai2 => "bai2",
            Format::Lockbox => "lockbox",
            Format::Camt053 => "camt053",
            Format::Camt054 => "camt054",
            Format::Remt001 => "remt001",
            Format::Nacha => "nacha",
            Format::Mt940 => "mt940",
            Format::FreeText => "text",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase().replace(['-', '.'], "_");
        Format::ALL
            .into_iter()
            .find(|f| f.name() == l || (l == "820" && *f == Format::X12_820))
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// Where in a file a fault is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// The whole file.
    File,
    /// A line (1-based) and, where known, a column or field (1-based).
    Line { line: usize, column: Option<usize> },
    /// An X12 segment: its ordinal (1-based), id, and the element (1-based) where known.
    Segment {
        index: usize,
        id: String,
        element: Option<usize>,
    },
    /// An XML element path such as `/Document/BkToCstmrDbtCdtNtfctn/Ntfctn[1]/Ntry[3]/Amt`.
    XmlPath(String),
    /// A fixed-width record (NACHA, lockbox): its line and the 1-based character range.
    Record { line: usize, from: usize, to: usize },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::File => f.write_str("file"),
            Position::Line {
                line,
                column: Some(c),
            } => write!(f, "line {line}, column {c}"),
            Position::Line { line, column: None } => write!(f, "line {line}"),
            Position::Segment {
                index,
                id,
                element: Some(e),
            } => {
                write!(f, "segment {index} ({id}), element {id}{e:02}")
            }
            Position::Segment {
                index,
                id,
                element: None,
            } => write!(f, "segment {index} ({id})"),
            Position::XmlPath(p) => f.write_str(p),
            Position::Record { line, from, to } => {
                write!(f, "line {line}, positions {from}-{to}")
            }
        }
    }
}

/// A fault in an input file, naming the file and where in it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {position}: {message}")]
pub struct FormatError {
    pub file: String,
    pub position: Position,
    pub message: String,
}

impl FormatError {
    pub fn new(file: &str, position: Position, message: impl Into<String>) -> Self {
        FormatError {
            file: file.to_string(),
            position,
            message: message.into(),
        }
    }
}

/// What a parser made of a file: the payments it could read and the transactions it could not.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub payments: Vec<Payment>,
    /// Transactions skipped for a fault; the rest of the file was still read.
    pub errors: Vec<FormatError>,
}

pub mod camt;
pub(crate) mod iso20022;
pub mod remt;
