//! The figures a subcommand prints or writes: reports beside the rules baseline, and the model
//! card's section on a labelled test split.

use super::files::{load_cases, load_payments, report_bad};
use anyhow::Result;
use cashmatch::eval::{self, Report};
use cashmatch::io;
use cashmatch::model::artifact::Model;
use std::path::Path;
use std::sync::Arc;

/// The model card's section on a labelled test split: the model beside the rules baseline.
pub(super) fn test_section(model: &Model, dir: &Path) -> Result<String> {
    let customers = report_bad(io::read_customers(dir.join("customers.csv"))?)?;
    let invoices = report_bad(io::read_invoices(dir.join("invoices.csv"))?)?;
    let payments = load_payments(&dir.join("remittances.csv"), None)?;
    let labels = report_bad(io::read_labels(dir.join("labels.csv"))?)?;
    let cases = load_cases(None, &dir.join("labels.csv"))?;
    let c = eval::compare(
        Arc::new(model.clone()),
        &customers,
        &invoices,
        &payments,
        &labels,
        &cases,
    )?;
    let o = &c.model.overall;
    eprintln!(
        "test split {}: touchless {:.2}%, precision {}, wrong {:.2} per 1,000 (rules touchless {:.2}%)",
        dir.display(),
        100.0 * o.touchless(),
        o.precision_text(3),
        o.wrong_per_1000(),
        100.0 * c.rules.overall.touchless()
    );
    Ok(format!(
        "\n## Test split\n\n`{}`: {} payments the model never saw, matched in order against their \
         ledger, beside the exact-match rules baseline.\n\n{}",
        dir.display(),
        payments.len(),
        eval::render(&[("model", &c.model), ("rules", &c.rules)])
    ))
}

pub(super) fn print_reports(model: &Report, baseline: Option<&Report>) {
    let mut cols: Vec<(&str, &Report)> = vec![("model", model)];
    if let Some(b) = baseline {
        cols.push(("rules", b));
    }
    print!("{}", eval::render(&cols));
    let o = &model.overall;
    println!(
        "\nmodel: touchless {:.2}%, auto-apply precision {}, wrong auto-applies {:.2} per 1,000 payments (misapplied {:.2}, incomplete {:.2}), review top-1 {:.1}%",
        100.0 * o.touchless(),
        o.precision_text(3),
        o.wrong_per_1000(),
        o.misapplied_per_1000(),
        o.incomplete_per_1000(),
        100.0 * o.review_top1()
    );
    if let Some(b) = baseline {
        let b = &b.overall;
        println!(
            "rules baseline: touchless {:.2}%, auto-apply precision {}, wrong auto-applies {:.2} per 1,000 payments",
            100.0 * b.touchless(),
            b.precision_text(3),
            b.wrong_per_1000()
        );
    }
}
