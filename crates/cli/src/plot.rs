//! The training curve of a result (`metrics.jsonl`) as a PNG: training and evaluation loss
//! per step, and the evaluation accuracy when the task has one.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use tensorgrid_train::{
    spec::{JobSpec, Metric, ModelSpec},
    trainer::MetricsRecord,
};

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

/// What the curve is of: its title and the threshold the spec sets on its metric.
pub struct Curve<'a> {
    /// e.g. "mlp on digits.safetensors".
    pub title: &'a str,
    pub metric: Metric,
    pub threshold: f64,
}

impl<'a> Curve<'a> {
    /// The title for `spec`: model, dataset and metric.
    pub fn title_for(spec: &JobSpec) -> String {
        let model = match &spec.model {
            ModelSpec::Mlp { hidden } => format!("MLP {hidden:?}"),
            ModelSpec::Cnn { channels, .. } => format!("CNN {channels:?}"),
            ModelSpec::CharTransformer {
                layers, d_model, ..
            } => format!("char transformer {layers}×{d_model}"),
        };
        let uri = spec.dataset.uri.trim_end_matches('/');
        let dataset = uri.rsplit('/').next().unwrap_or(uri);
        format!(
            "{model} on {} — eval {}",
            crate::describe::clean(dataset),
            metric_name(spec.evaluation.metric)
        )
    }

    pub fn for_spec(spec: &JobSpec, title: &'a str) -> Self {
        Self {
            title,
            metric: spec.evaluation.metric,
            threshold: spec.evaluation.threshold,
        }
    }
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Accuracy => "accuracy",
        Metric::Loss => "loss",
        Metric::Perplexity => "perplexity",
    }
}

// Okabe–Ito: told apart with any colour vision, and in greyscale by line style.
const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const VERMILION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);

/// Draws `records` into a 960×540 PNG at `out`: training loss as a line, each evaluation as a
/// point (loss, and accuracy on the right axis when the task has one), the spec's threshold
/// as a dashed line on its metric's axis, integer steps.
pub fn curve(records: &[MetricsRecord], what: &Curve, out: &Path) -> Result<()> {
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
    // Perplexity is exp(loss): drawn on the loss axis as its log, the threshold likewise.
    let loss_threshold = match what.metric {
        Metric::Loss => Some(what.threshold),
        Metric::Perplexity if what.threshold > 0.0 => Some(what.threshold.ln()),
        _ => None,
    };
    let losses = records
        .iter()
        .flat_map(|r| [r.train_loss, r.eval_loss])
        .chain(loss_threshold)
        .filter(|v| v.is_finite());
    let max_loss = losses.fold(0f64, f64::max).max(1e-6) * 1.08;
    let has_accuracy = records.iter().any(|r| r.eval_accuracy.is_some());

    let mut chart = ChartBuilder::on(&root)
        .caption(what.title, (FAMILY, 18))
        .margin(16)
        .margin_right(36)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .right_y_label_area_size(if has_accuracy { 64 } else { 0 })
        .build_cartesian_2d(0f64..max_step, 0f64..max_loss)
        .map_err(|e| err(&e))?
        .set_secondary_coord(0f64..max_step, 0f64..1.02f64);
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(if what.metric == Metric::Perplexity {
            "loss (ln perplexity)"
        } else {
            "loss"
        })
        .x_label_formatter(&|x| format!("{:.0}", x.round()))
        .light_line_style(BLACK.mix(0.06))
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
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(eval.clone(), VERMILION.stroke_width(1)))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(
            eval.iter()
                .map(|&(x, y)| Circle::new((x, y), 4, VERMILION.filled())),
        )
        .map_err(|e| err(&e))?
        .label("eval loss (each evaluation)")
        .legend(|(x, y)| Circle::new((x + 10, y), 4, VERMILION.filled()));
    if let Some(t) = loss_threshold {
        draw_threshold(&mut chart, t, max_step, false, &err)?;
    }
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
            .draw_secondary_series(LineSeries::new(acc.clone(), GREEN.stroke_width(1)))
            .map_err(|e| err(&e))?;
        chart
            .draw_secondary_series(
                acc.iter()
                    .map(|&(x, y)| TriangleMarker::new((x, y), 5, GREEN.filled())),
            )
            .map_err(|e| err(&e))?
            .label("eval accuracy (each evaluation)")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 5, GREEN.filled()));
        if what.metric == Metric::Accuracy {
            draw_threshold(&mut chart, what.threshold, max_step, true, &err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// The threshold as a dashed black line across the plot, labelled, on the primary (loss) or
/// secondary (accuracy) axis.
fn draw_threshold(
    chart: &mut plotters::chart::DualCoordChartContext<
        '_,
        BitMapBackend<'_>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    value: f64,
    max_step: f64,
    secondary: bool,
    err: &dyn Fn(&dyn std::fmt::Display) -> anyhow::Error,
) -> Result<()> {
    let dashes = 24;
    let segment = max_step / (2 * dashes) as f64;
    let lines = (0..dashes).map(move |i| {
        let x0 = (2 * i) as f64 * segment;
        PathElement::new(
            vec![(x0, value), (x0 + segment, value)],
            BLACK.stroke_width(2),
        )
    });
    let label = format!("threshold {}", (value * 1e4).round() / 1e4);
    if secondary {
        chart
            .draw_secondary_series(lines)
            .map_err(|e| err(&e))?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    } else {
        chart
            .draw_series(lines)
            .map_err(|e| err(&e))?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    }
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
        let what = Curve {
            title: "MLP [64] on digits.safetensors — eval accuracy",
            metric: Metric::Accuracy,
            threshold: 0.9,
        };
        curve(&records, &what, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 5_000, "{}", bytes.len());
    }
}
