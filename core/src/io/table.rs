//! The boundary between where rows come from and what they mean.
//!
//! The project's files are read by one set of rules (which columns, how a row becomes a
//! customer, an invoice, a label, and how consecutive remittance rows become a payment), written
//! once against [`Table`] and [`Record`]. A CSV file read here is one [`Table`]; the retraining
//! job's polars reader (CSV and Parquet at scale, in the `cashmatch-training` crate) is another.
//! So the service, the CLI and the retraining job cannot disagree about what a file says.

use crate::input::FormatError;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::fmt::Display;

/// What a column holds. A typed source (Parquet) checks its column types against it; CSV
/// fields are all text and are parsed by the rules of [`parse_money`](super::parse_money) and
/// [`parse_date`](super::parse_date).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Money,
    Date,
}

/// A column a reader asks for: its name in docs/formats.md (headers are matched
/// case-insensitively after trimming), what it holds, and whether the file must have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

/// A column the file must have.
pub const fn required(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: true,
    }
}

/// A column the file may have; when it is absent every field of it reads as empty.
pub const fn optional(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: false,
    }
}

/// One row of a table. Fields are addressed by the position of their [`Column`] in the list
/// given to [`Table::scan`]; a bad field becomes an error naming file, line and column.
pub trait Record {
    /// The row's line in its file, as errors report it (the header is line 1).
    fn line(&self) -> usize;

    /// An error at this row and at column `c`, prefixed with the column's name.
    fn error(&self, c: usize, message: &dyn Display) -> FormatError;

    /// Whether the row as a whole can be read (a CSV row shorter than its header cannot: which
    /// fields moved is a guess).
    fn check(&self) -> Result<(), FormatError> {
        Ok(())
    }

    /// The trimmed text of a field; `None` when the column is absent or the field empty.
    fn text(&self, c: usize) -> Result<Option<Cow<'_, str>>, FormatError>;

    /// An optional amount. The default parses the text with the project's money rules; a typed
    /// source overrides it to read decimals exactly.
    fn opt_money(&self, c: usize) -> Result<Option<Decimal>, FormatError> {
        match self.text(c)? {
            None => Ok(None),
            Some(t) => super::parse_money(&t)
                .map(Some)
                .map_err(|m| self.error(c, &m)),
        }
    }

    /// An optional date, `YYYY-MM-DD` as text unless the source overrides it.
    fn opt_date(&self, c: usize) -> Result<Option<NaiveDate>, FormatError> {
        match self.text(c)? {
            None => Ok(None),
            Some(t) => super::parse_date(&t)
                .map(Some)
                .map_err(|m| self.error(c, &m)),
        }
    }

    /// A field that must not be empty.
    fn required(&self, c: usize) -> Result<Cow<'_, str>, FormatError> {
        self.text(c)?.ok_or_else(|| self.error(c, &"is empty"))
    }

    /// An amount that must be given.
    fn money(&self, c: usize) -> Result<Decimal, FormatError> {
        self.opt_money(c)?.ok_or_else(|| self.error(c, &"is empty"))
    }

    /// A date that must be given.
    fn date(&self, c: usize) -> Result<NaiveDate, FormatError> {
        self.opt_date(c)?.ok_or_else(|| self.error(c, &"is empty"))
    }
}

/// A table of rows with named columns: a CSV file, a Parquet file.
pub trait Table {
    /// The file's name, as errors report it.
    fn file(&self) -> &str;

    /// Maps `columns` onto the file's header (a missing required column is a file-level error,
    /// naming the column and listing the header), then calls `f` with each row in file order.
    /// Returns the first `Err` of `f`, which stops the scan, or a file-level fault.
    fn scan(
        &mut self,
        columns: &[Column],
        f: &mut dyn FnMut(&dyn Record) -> Result<(), FormatError>,
    ) -> Result<(), FormatError>;
}
