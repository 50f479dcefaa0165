//! The training curve of a result (`metrics.jsonl`) as a PNG: training and evaluation loss
//! per step, and the evaluation accuracy when the task has one.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use tensorgrid_train::trainer::MetricsRecord;

/// A font shipped with the binary (DejaVu Sans Mono, see assets/DejaVu-LICENSE): the PNG's
/// labels must not depend on the fonts of the machine.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
const FAMILY: &str = "tensorgrid-sans";

/// Reads `metrics.jsonl`.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsRecord>> {
    // A metrics log is a line per evaluation; a huge one is not worth plotting.
    const MAX: u64 = 64 << 20;
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX {
        anyhow::bail!(
            "{}: {len} bytes, more than a metrics log has",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// Draws `records` into a 960×540 PNG at `out`.
pub fn curve(records: &[MetricsRecord], title: &str, out: &Path) -> Result<()> {
    if records.is_empty() {
        return Err(anyhow!("no metrics to plot"));
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", out.display());
    let root = BitMapBackend::new(out, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let max_step = records.iter().map(|r| r.step).max().unwrap_or(1).max(1) as f64;
    let losses = records
        .iter()
        .flat_map(|r| [r.train_loss, r.eval_loss])
        .filter(|v| v.is_finite());
    let max_loss = losses.fold(0f64, f64::max).max(1e-6) * 1.05;
    let has_accuracy = records.iter().any(|r| r.eval_accuracy.is_some());

    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(if has_accuracy { 60 } else { 0 })
        .build_cartesian_2d(0f64..max_step, 0f64..max_loss)
        .map_err(|e| err(&e))?
        .set_secondary_coord(0f64..max_step, 0f64..1f64);
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .label_style((FAMILY, 14))
        .draw()
        .map_err(|e| err(&e))?;
    let train: Vec<(f64, f64)> = records
        .iter()
        .map(|r| (r.step as f64, r.train_loss))
        .collect();
    let eval: Vec<(f64, f64)> = records
        .iter()
        .map(|r| (r.step as f64, r.eval_loss))
        .collect();
    chart
        .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("train loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(eval, RED.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("eval loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    if has_accuracy {
        chart
            .configure_secondary_axes()
            .y_desc("eval accuracy")
            .label_style((FAMILY, 14))
            .draw()
            .map_err(|e| err(&e))?;
        let acc: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| r.eval_accuracy.map(|a| (r.step as f64, a)))
            .collect();
        chart
            .draw_secondary_series(LineSeries::new(acc, GREEN.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("eval accuracy")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png() {
        let records: Vec<MetricsRecord> = (1..=10)
            .map(|i| MetricsRecord {
                step: i * 10,
                epoch: Some(i),
                train_loss: 2.0 / i as f64,
                eval_loss: 2.2 / i as f64,
                eval_accuracy: Some(1.0 - 0.5 / i as f64),
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("curve.png");
        curve(&records, "test", &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 5_000, "{}", bytes.len());
    }
}
