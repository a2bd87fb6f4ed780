//! The report's figures, drawn with plotters' SVG backend (text as SVG `<text>`, so no system
//! fonts are needed to draw or to view them).

use crate::evaluate::{ModelEval, Top};
use plotters::prelude::*;
use std::path::Path;

/// A figure that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PlotError {
    pub file: String,
    pub message: String,
}

const SIZE: (u32, u32) = (720, 440);
const COLOURS: [RGBColor; 4] = [
    RGBColor(0x99, 0x99, 0x99),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
];

fn err(path: &Path) -> impl Fn(String) -> PlotError + '_ {
    move |message| PlotError {
        file: path.display().to_string(),
        message,
    }
}

/// Tops sorted best first, as (coverage, precision) after each: coverage is the share of the
/// holdout payments with candidates that would be auto-applied at that confidence.
pub fn precision_curve(tops: &[Top]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<Top> = tops.to_vec();
    sorted.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let n = sorted.len().max(1) as f64;
    let mut right = 0usize;
    let mut out = Vec::with_capacity(sorted.len());
    for (k, t) in sorted.iter().enumerate() {
        right += usize::from(t.correct);
        // Only at the end of a run of ties: tied payments are in or out together.
        let last_of_tie = sorted
            .get(k + 1)
            .is_none_or(|next| next.confidence != t.confidence);
        if last_of_tie {
            out.push(((k + 1) as f64 / n, right as f64 / (k + 1) as f64));
        }
    }
    out
}

/// Precision against coverage for each model, with each model's operating point marked.
pub fn precision_coverage(path: &Path, evals: &[&ModelEval], target: f64) -> Result<(), PlotError> {
    let e = err(path);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let curves: Vec<Vec<(f64, f64)>> = evals.iter().map(|m| precision_curve(&m.tops)).collect();
    // Start the axis where the curves have left the noisy first few payments.
    let low = curves
        .iter()
        .flat_map(|c| c.iter().filter(|p| p.0 >= 0.05).map(|p| p.1))
        .fold(1.0f64, f64::min)
        .min(target)
        .clamp(0.5, 0.995);
    let low = (low * 100.0).floor() / 100.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Precision of auto-applies against coverage (holdout)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..1f64, low..1.0005f64)
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("share of holdout payments auto-applied (by confidence, best first)")
        .y_desc("precision")
        .x_label_formatter(&|v| format!("{:.0}%", 100.0 * v))
        .y_label_formatter(&|v| format!("{:.1}%", 100.0 * v))
        .draw()
        .map_err(|x| e(x.to_string()))?;
    let dashed = COLOURS[0];
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, target), (1.0, target)],
            dashed.stroke_width(1),
        ))
        .map_err(|x| e(x.to_string()))?
        .label(format!("target {:.2}%", 100.0 * target))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], dashed));
    for (i, (m, curve)) in evals.iter().zip(&curves).enumerate() {
        let colour = COLOURS[(i + 1) % COLOURS.len()];
        let step = (curve.len() / 600).max(1);
        // The best-ranked payments are often tied at the top confidence; the curve starts at
        // their precision rather than mid-axis.
        let start = curve.first().map(|p| (0.0, p.1.max(low)));
        let pts: Vec<(f64, f64)> = start
            .into_iter()
            .chain(
                curve
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| k % step == 0 || *k + 1 == curve.len())
                    .map(|(_, p)| (p.0, p.1.max(low))),
            )
            .collect();
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(|x| e(x.to_string()))?
            .label(format!("{} ({})", m.name, m.version))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        // The operating point: the last payment at or above the model's threshold.
        let n_auto = m
            .tops
            .iter()
            .filter(|t| t.confidence >= m.threshold)
            .count();
        if n_auto > 0 {
            let n = m.tops.len().max(1) as f64;
            let prec = m
                .tops
                .iter()
                .filter(|t| t.confidence >= m.threshold && t.correct)
                .count() as f64
                / n_auto as f64;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (n_auto as f64 / n, prec.max(low)),
                    6,
                    colour.filled(),
                )))
                .map_err(|x| e(x.to_string()))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

/// Calibrated confidence against the observed share of right top candidates, in ten bins.
pub fn reliability_bins(tops: &[Top]) -> Vec<(f64, f64, usize)> {
    let mut bins = vec![(0.0f64, 0usize, 0usize); 10];
    for t in tops {
        let b = ((t.confidence * 10.0).floor() as usize).min(9);
        bins[b].0 += t.confidence;
        bins[b].1 += usize::from(t.correct);
        bins[b].2 += 1;
    }
    bins.into_iter()
        .filter(|b| b.2 > 0)
        .map(|(sum, right, n)| (sum / n as f64, right as f64 / n as f64, n))
        .collect()
}

/// The reliability diagram of each model.
pub fn reliability(path: &Path, evals: &[&ModelEval]) -> Result<(), PlotError> {
    let e = err(path);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Reliability of the calibrated confidence (holdout, top candidates)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("calibrated confidence (bin mean)")
        .y_desc("share right")
        .draw()
        .map_err(|x| e(x.to_string()))?;
    let grey = COLOURS[0];
    chart
        .draw_series(LineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], grey))
        .map_err(|x| e(x.to_string()))?
        .label("perfect calibration")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    for (i, m) in evals.iter().enumerate() {
        let colour = COLOURS[(i + 1) % COLOURS.len()];
        let bins = reliability_bins(&m.tops);
        let pts: Vec<(f64, f64)> = bins.iter().map(|b| (b.0, b.1)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
            .map_err(|x| e(x.to_string()))?
            .label(format!("{} ({})", m.name, m.version))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, colour.filled())))
            .map_err(|x| e(x.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

/// Horizontal bars: one stacked bar per row, `(label, [values...])`, with a legend per stack
/// layer.
pub fn bars(
    path: &Path,
    title: &str,
    x_desc: &str,
    rows: &[(String, Vec<f64>)],
    layers: &[&str],
) -> Result<(), PlotError> {
    let e = err(path);
    let height = (80 + 26 * rows.len().max(1)) as u32;
    let root = SVGBackend::new(path, (SIZE.0, height.max(200))).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let max = rows
        .iter()
        .map(|r| r.1.iter().sum::<f64>())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let n = rows.len();
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(200)
        .build_cartesian_2d(0f64..max * 1.05, 0f64..n.max(1) as f64)
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1) * 2 + 1)
        .y_label_formatter(&|v| {
            // Labels sit at bar centres (k + 0.5), the first row at the top.
            let k = v - 0.5;
            if (k - k.round()).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                labels[n - 1 - k.round() as usize].clone()
            } else {
                String::new()
            }
        })
        .x_desc(x_desc)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    for (layer, name) in layers.iter().enumerate() {
        let colour = COLOURS[(layer + 1) % COLOURS.len()];
        let rects: Vec<Rectangle<(f64, f64)>> = rows
            .iter()
            .enumerate()
            .map(|(k, (_, v))| {
                let start: f64 = v.iter().take(layer).sum();
                let end = start + v.get(layer).copied().unwrap_or(0.0);
                let y = (n - 1 - k) as f64;
                Rectangle::new([(start, y + 0.15), (end, y + 0.85)], colour.filled())
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(|x| e(x.to_string()))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled()));
    }
    if layers.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(|x| e(x.to_string()))?;
    }
    root.present().map_err(|x| e(x.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(confidence: f64, correct: bool) -> Top {
        Top {
            confidence,
            correct,
        }
    }

    #[test]
    fn ties_enter_the_curve_together() {
        let tops = [
            top(0.9, true),
            top(0.9, false),
            top(0.5, true),
            top(0.1, false),
        ];
        let c = precision_curve(&tops);
        assert_eq!(c, vec![(0.5, 0.5), (0.75, 2.0 / 3.0), (1.0, 0.5)]);
    }

    #[test]
    fn reliability_bins_average_within_a_bin() {
        let tops = [top(0.95, true), top(0.91, false), top(0.05, false)];
        let b = reliability_bins(&tops);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], (0.05, 0.0, 1));
        assert!((b[1].0 - 0.93).abs() < 1e-12 && b[1].1 == 0.5 && b[1].2 == 2);
    }
}
