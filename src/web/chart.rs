//! Charts as inline SVG drawn on the server: no script, no library, and they print. Geometry is
//! computed in floating point; every figure a person reads is formatted by the caller.

use maud::{Markup, html};

/// One bar of a chart: stacked segments `(value, css class, tooltip)`, bottom first.
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) segments: Vec<(f64, &'static str, String)>,
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

fn f(x: f64) -> String {
    format!("{x:.1}")
}

/// A bar chart with a y axis from zero to `y_max`, labelled by `y_label`.
pub(crate) fn bars(
    title: &str,
    bars: &[Bar],
    y_max: f64,
    y_label: &dyn Fn(f64) -> String,
) -> Markup {
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let y_max = if y_max.is_finite() && y_max > 0.0 {
        y_max
    } else {
        1.0
    };
    let n = bars.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.7).max(1.0);
    let every = (bars.len() / 10).max(1);
    let y = |v: f64| TOP + plot_h - (v / y_max).clamp(0.0, 1.0) * plot_h;
    let ticks = [0.0, 0.25, 0.5, 0.75, 1.0];
    // (x, top, height, class, tooltip) of every segment drawn.
    let mut rects: Vec<(f64, f64, f64, &str, &str)> = Vec::new();
    for (i, b) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut base = 0.0;
        for (v, class, tip) in &b.segments {
            if *v > 0.0 {
                let (top, bottom) = (y(base + v), y(base));
                rects.push((x, top, (bottom - top).max(0.5), class, tip));
                base += v;
            }
        }
    }
    html! {
        svg.chart viewBox={"0 0 " (W) " " (H)} role="img" aria-label=(title) preserveAspectRatio="xMidYMid meet" {
            title { (title) }
            @for t in ticks {
                @let ty = y(t * y_max);
                line.grid x1=(f(LEFT)) x2=(f(W - RIGHT)) y1=(f(ty)) y2=(f(ty)) {}
                text.axis x=(f(LEFT - 6.0)) y=(f(ty + 4.0)) text-anchor="end" { (y_label(t * y_max)) }
            }
            @for (x, top, h, class, tip) in &rects {
                rect class=(class) x=(f(*x)) y=(f(*top)) width=(f(bar_w)) height=(f(*h)) {
                    title { (tip) }
                }
            }
            @for (i, b) in bars.iter().enumerate() {
                @let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
                @if i % every == 0 {
                    text.axis x=(f(x + bar_w / 2.0)) y=(f(H - 8.0)) text-anchor="middle" { (b.label) }
                }
            }
            line.axis-line x1=(f(LEFT)) x2=(f(W - RIGHT)) y1=(f(TOP + plot_h)) y2=(f(TOP + plot_h)) {}
        }
    }
}

/// A small horizontal meter for a probability.
pub(crate) fn meter(p: f64) -> Markup {
    let w = 56.0;
    let p = if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        0.0
    };
    html! {
        svg.meter width=(w) height="8" viewBox={"0 0 " (w) " 8"} aria-hidden="true" {
            rect.meter-bg x="0" y="0" width=(w) height="8" rx="4" {}
            rect.meter-fill x="0" y="0" width=(f(w * p)) height="8" rx="4" {}
        }
    }
}

/// A horizontal bar whose length is `share` of the full width.
pub(crate) fn hbar(share: f64) -> Markup {
    let w = 60.0;
    let s = if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    html! {
        svg.hbar width=(w) height="8" viewBox={"0 0 " (w) " 8"} aria-hidden="true" {
            rect.hbar-fill x="0" y="0" width=(f(w * s)) height="8" rx="2" {}
        }
    }
}
