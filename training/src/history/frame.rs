//! Tables read with polars: a CSV or Parquet file scanned lazily, only the columns asked for,
//! streamed in batches of typed columns and handed row by row to `cashmatch_core::io`'s readers
//! through its [`Table`] and [`Record`] traits, so what a row means is decided in one place for
//! the service, the CLI and this job.
//!
//! The file never sits in memory whole: polars' streaming engine hands over one batch at a time
//! (in file order) through a bounded channel, and each batch is converted to domain types and
//! dropped before the next is read. CSV fields are text and are parsed here with the project's
//! own money and date rules (`cashmatch_core::io`); Parquet columns keep their types (dates as
//! `Date`, money as `Decimal`, an integer or text), and a floating-point money column is refused:
//! money is never read through a double.
//!
//! Positions in errors: for CSV the line is the record's line when no quoted field spans lines
//! (the header is line 1); for Parquet the "line" is the 1-based row. The column is the field's
//! 1-based position in the file.

use cashmatch_core::formats::{FormatError, Position};
use cashmatch_core::io::{Column, Kind, Record, Table};
use chrono::NaiveDate;
use polars::prelude::*;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::fmt::Display;
use std::num::NonZeroUsize;
use std::path::Path;

/// Rows per batch handed to the converters.
const BATCH_ROWS: usize = 64 * 1024;
/// The row-number column added to every scan.
const ROW: &str = "__cashmatch_row";

/// A file opened for scanning, with its header mapped.
pub(crate) struct PolarsTable {
    pub(crate) file: String,
    lf: LazyFrame,
    parquet: bool,
    /// (lower-cased trimmed name, name in the file, dtype, 1-based position)
    header: Vec<(String, String, DataType, usize)>,
}

fn file_error(file: &str, message: impl Into<String>) -> FormatError {
    FormatError::new(file, Position::File, message)
}

impl PolarsTable {
    /// Opens `path`, a `.csv` or `.parquet` file, and reads its header (or schema).
    pub(crate) fn open(path: &Path) -> Result<PolarsTable, FormatError> {
        let file = path.display().to_string();
        if !path.is_file() {
            return Err(file_error(&file, "cannot open: no such file"));
        }
        let parquet = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
        let pl_path =
            PlRefPath::try_from_path(path).map_err(|e| file_error(&file, e.to_string()))?;
        let lf = if parquet {
            LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default())
        } else {
            // Every CSV field as text: money keeps its written digits (thousands commas
            // included) until our own parser reads it, and a bad field is reported, not nulled.
            LazyCsvReader::new(pl_path)
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .finish()
        }
        .map_err(|e| file_error(&file, format!("cannot read: {e}")))?;
        let mut lf = lf;
        let schema = lf
            .collect_schema()
            .map_err(|e| file_error(&file, format!("cannot read the header: {e}")))?;
        let header: Vec<(String, String, DataType, usize)> = schema
            .iter()
            .enumerate()
            .map(|(i, (name, dtype))| {
                let canon = name
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_ascii_lowercase();
                (canon, name.to_string(), dtype.clone(), i + 1)
            })
            .collect();
        if header.is_empty() {
            return Err(file_error(&file, "empty file: no header row"));
        }
        Ok(PolarsTable {
            file,
            lf,
            parquet,
            header,
        })
    }

    /// Whether the file has a column of this (lower-case) name.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.header.iter().any(|h| h.0 == name)
    }

    fn find(&self, name: &str) -> Option<&(String, String, DataType, usize)> {
        self.header.iter().find(|h| h.0 == name)
    }

    /// Checks that every required column is present with a usable type, as a file-level error
    /// naming the column and listing the header found.
    fn check(&self, columns: &[Column]) -> Result<(), FormatError> {
        for s in columns {
            let Some((_, actual, dtype, pos)) = self.find(s.name) else {
                if s.required {
                    let names: Vec<&str> = self.header.iter().map(|h| h.1.as_str()).collect();
                    return Err(FormatError::new(
                        &self.file,
                        Position::Line {
                            line: 1,
                            column: None,
                        },
                        format!(
                            "missing required column {:?}; the header has: {}",
                            s.name,
                            names.join(",")
                        ),
                    ));
                }
                continue;
            };
            let ok = match s.kind {
                Kind::Text => dtype.is_string() || dtype.is_integer() || dtype.is_null(),
                Kind::Money => {
                    dtype.is_string() || dtype.is_integer() || dtype.is_decimal() || dtype.is_null()
                }
                Kind::Date => {
                    dtype.is_string() || matches!(dtype, DataType::Date) || dtype.is_null()
                }
            };
            if !ok {
                let hint = if s.kind == Kind::Money && dtype.is_float() {
                    "; money must not be floating point: store it as a decimal or as text"
                } else {
                    ""
                };
                return Err(FormatError::new(
                    &self.file,
                    Position::Line {
                        line: 1,
                        column: Some(*pos),
                    },
                    format!("column {actual:?} has the type {dtype}{hint}"),
                ));
            }
        }
        Ok(())
    }
}

impl Table for PolarsTable {
    fn file(&self) -> &str {
        &self.file
    }

    /// Streams the file in row order as batches of the `columns` (absent optional ones read as
    /// empty) and hands each row to `f`.
    fn scan(
        &mut self,
        columns: &[Column],
        f: &mut dyn FnMut(&dyn Record) -> Result<(), FormatError>,
    ) -> Result<(), FormatError> {
        self.check(columns)?;
        let mut exprs: Vec<Expr> = vec![col(ROW)];
        let mut present = Vec::new();
        for s in columns {
            if let Some((_, actual, _, _)) = self.find(s.name) {
                exprs.push(col(actual.as_str()).alias(s.name));
                present.push(*s);
            }
        }
        let lf = self.lf.clone().with_row_index(ROW, None).select(exprs);
        let (tx, rx) = std::sync::mpsc::sync_channel::<DataFrame>(2);
        let plan = lf
            .sink_batches(
                // `true` stops the scan: the receiver has gone (the converter failed).
                PlanCallback::new(move |df: DataFrame| Ok(tx.send(df).is_err())),
                true,
                NonZeroUsize::new(BATCH_ROWS),
            )
            .map_err(|e| file_error(&self.file, format!("cannot read: {e}")))?;
        let this = &*self;
        std::thread::scope(|scope| {
            let runner = scope.spawn(move || plan.collect());
            let mut outcome = Ok(());
            'batches: for df in rx.iter() {
                let batch = match Batch::new(this, &df, columns, &present) {
                    Ok(b) => b,
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                };
                for i in 0..batch.len() {
                    if let Err(e) = f(&BatchRow { batch: &batch, i }) {
                        outcome = Err(e);
                        break 'batches;
                    }
                }
            }
            drop(rx);
            let scanned = runner
                .join()
                .map_err(|_| file_error(&this.file, "the reader thread panicked"))?;
            outcome?;
            scanned
                .map(|_| ())
                .map_err(|e| file_error(&this.file, format!("cannot read: {e}")))
        })
    }
}

/// One batch's values of one column.
enum Values {
    Absent,
    Text(StringChunked),
    Int(Int64Chunked),
    /// Days since 1970-01-01.
    Date(Int32Chunked),
    Decimal(Int128Chunked, u32),
}

/// A column of a batch: its values, name and position for messages.
struct BatchCol {
    name: &'static str,
    position: Option<usize>,
    values: Values,
}

/// A batch of rows.
struct Batch<'t> {
    table: &'t PolarsTable,
    rows: Vec<u64>,
    cols: Vec<BatchCol>,
}

impl<'t> Batch<'t> {
    fn new(
        table: &'t PolarsTable,
        df: &DataFrame,
        columns: &[Column],
        present: &[Column],
    ) -> Result<Batch<'t>, FormatError> {
        let err = |e: PolarsError| file_error(&table.file, format!("cannot read: {e}"));
        let rows = df
            .column(ROW)
            .and_then(|c| c.cast(&DataType::Int64))
            .map_err(err)?;
        let rows = rows.i64().map_err(err)?;
        let rows: Vec<u64> = (0..rows.len())
            .map(|i| rows.get(i).unwrap_or(0).max(0) as u64)
            .collect();
        let mut cols = Vec::with_capacity(columns.len());
        for s in columns {
            let position = table.find(s.name).map(|h| h.3);
            if !present.iter().any(|p| p.name == s.name) {
                cols.push(BatchCol {
                    name: s.name,
                    position,
                    values: Values::Absent,
                });
                continue;
            }
            let c = df.column(s.name).map_err(err)?;
            let dtype = c.dtype().clone();
            let values = if dtype.is_null() {
                Values::Absent
            } else if dtype.is_string() {
                Values::Text(c.str().map_err(err)?.clone())
            } else if matches!(dtype, DataType::Date) {
                Values::Date(c.date().map_err(err)?.physical().clone())
            } else if dtype.is_decimal() {
                let d = c.decimal().map_err(err)?;
                Values::Decimal(d.physical().clone(), d.scale() as u32)
            } else {
                let c = c.cast(&DataType::Int64).map_err(err)?;
                Values::Int(c.i64().map_err(err)?.clone())
            };
            cols.push(BatchCol {
                name: s.name,
                position,
                values,
            });
        }
        Ok(Batch { table, rows, cols })
    }

    fn len(&self) -> usize {
        self.rows.len()
    }
}

/// Row `i` of a batch.
struct BatchRow<'b> {
    batch: &'b Batch<'b>,
    i: usize,
}

impl BatchRow<'_> {
    fn values(&self, c: usize) -> &Values {
        self.batch
            .cols
            .get(c)
            .map_or(&Values::Absent, |bc| &bc.values)
    }
}

impl Record for BatchRow<'_> {
    /// The file's line of the row (see the module doc).
    fn line(&self) -> usize {
        let r = self.batch.rows.get(self.i).copied().unwrap_or(0) as usize;
        if self.batch.table.parquet {
            r + 1
        } else {
            r + 2
        }
    }

    fn error(&self, c: usize, message: &dyn Display) -> FormatError {
        let (name, column) = self
            .batch
            .cols
            .get(c)
            .map_or(("?", None), |bc| (bc.name, bc.position));
        FormatError::new(
            &self.batch.table.file,
            Position::Line {
                line: self.line(),
                column,
            },
            format!("{name}: {message}"),
        )
    }

    fn text(&self, c: usize) -> Result<Option<Cow<'_, str>>, FormatError> {
        let i = self.i;
        Ok(match self.values(c) {
            Values::Absent => None,
            Values::Text(v) => v
                .get(i)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(Cow::Borrowed),
            Values::Int(v) => v.get(i).map(|n| Cow::Owned(n.to_string())),
            Values::Date(v) => v.get(i).map(|d| Cow::Owned(days_to_date(d).to_string())),
            Values::Decimal(v, scale) => v
                .get(i)
                .map(|n| Cow::Owned(Decimal::from_i128_with_scale(n, *scale).to_string())),
        })
    }

    /// Exact, from the text, or from the decimal or integer value.
    fn opt_money(&self, c: usize) -> Result<Option<Decimal>, FormatError> {
        let i = self.i;
        match self.values(c) {
            Values::Absent => Ok(None),
            Values::Text(v) => match v.get(i).map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => cashmatch_core::io::parse_money(t)
                    .map(Some)
                    .map_err(|m| self.error(c, &m)),
            },
            Values::Int(v) => Ok(v.get(i).map(Decimal::from)),
            Values::Decimal(v, scale) => match v.get(i) {
                None => Ok(None),
                Some(n) => Decimal::try_from_i128_with_scale(n, *scale)
                    .map(Some)
                    .map_err(|_| self.error(c, &format!("{n}e-{scale} is out of range"))),
            },
            Values::Date(_) => Err(self.error(c, &"a date is not an amount")),
        }
    }

    fn opt_date(&self, c: usize) -> Result<Option<NaiveDate>, FormatError> {
        match self.values(c) {
            Values::Absent => Ok(None),
            Values::Date(v) => Ok(v.get(self.i).map(days_to_date)),
            _ => match self.text(c)? {
                None => Ok(None),
                Some(t) => cashmatch_core::io::parse_date(&t)
                    .map(Some)
                    .map_err(|m| self.error(c, &m)),
            },
        }
    }
}

fn days_to_date(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(days))))
        .unwrap_or_default()
}

/// Copies a CSV file to Parquet, every column as text (money keeps its exact digits).
pub(crate) fn csv_to_parquet(src: &Path, dst: &Path) -> Result<(), FormatError> {
    let file = src.display().to_string();
    let pl_path = PlRefPath::try_from_path(src).map_err(|e| file_error(&file, e.to_string()))?;
    let mut df = LazyCsvReader::new(pl_path)
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .finish()
        .and_then(|lf| lf.collect())
        .map_err(|e| file_error(&file, format!("cannot read: {e}")))?;
    let out = dst.display().to_string();
    let f = std::fs::File::create(dst).map_err(|e| file_error(&out, e.to_string()))?;
    ParquetWriter::new(f)
        .finish(&mut df)
        .map(|_| ())
        .map_err(|e| file_error(&out, e.to_string()))
}
