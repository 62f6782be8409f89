//! The chart of a `--json` file: one bar per figure showing how munggoggo
//! fares against its same-run baseline (1 = as good; right of it better,
//! left worse, on a log scale), each labelled with both values.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::figure::{human, Figure};

/// Draws the figures of `input` (JSON) as an SVG at `output`.
pub fn draw(input: &Path, output: &Path) -> Result<(), Box<dyn Error>> {
    let figures: Vec<Figure> = serde_json::from_str(&std::fs::read_to_string(input)?)?;
    if figures.is_empty() {
        return Err("no figures in the file".into());
    }
    let n = figures.len();
    let merits: Vec<f64> = figures
        .iter()
        .map(|f| f.merit())
        .filter(|m| m.is_finite() && *m > 0.0)
        .collect();
    let lo = merits.iter().copied().fold(0.5f64, f64::min).max(1e-3) / 1.5;
    let hi = merits.iter().copied().fold(2.0f64, f64::max).min(1e3) * 1.5;
    let root = SVGBackend::new(output, (1100, 110 + 30 * n as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "munggoggo beside same-run baselines (bar: how it fares, 1 = as good, right = better)",
            ("sans-serif", 17),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(470)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())?;
    let label = |i: &SegmentValue<usize>| match i {
        SegmentValue::CenterOf(i) => figures.get(*i).map(describe).unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .y_labels(n)
        .y_label_formatter(&label)
        .y_label_style(("sans-serif", 12))
        .x_desc("ratio to the baseline (inverted where lower is better)")
        .x_label_formatter(&|x| format!("{x:.2}"))
        .disable_y_mesh()
        .draw()?;
    chart.draw_series(figures.iter().enumerate().map(|(i, f)| {
        let merit = f.merit().clamp(lo, hi);
        let color = if merit >= 1.0 { GREEN } else { RED };
        Rectangle::new(
            [(1.0, SegmentValue::Exact(i)), (merit, SegmentValue::Exact(i + 1))],
            color.mix(0.55).filled(),
        )
    }))?;
    chart.draw_series(LineSeries::new(
        [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
        BLACK.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

/// `embedded one-way: 1.20M vs 1.90M msg/s (tokio mpsc + JSON)`.
fn describe(f: &Figure) -> String {
    format!(
        "{}: {} vs {} {} ({})",
        f.name,
        human(f.ours),
        human(f.baseline),
        f.unit,
        f.baseline_name
    )
}
