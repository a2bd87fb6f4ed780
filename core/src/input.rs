//! What reading an input file gives: the payments read, and the faults that name the file and
//! where in it they are.
//!
//! Both the remittance and bank formats ([`crate::formats`]) and the project's own CSV files
//! ([`crate::io`]) report faults this way; the types live here, below both, so that neither has
//! to import the other for them. [`crate::formats`] re-exports them as part of its API.

use crate::domain::Payment;
use std::fmt;

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
