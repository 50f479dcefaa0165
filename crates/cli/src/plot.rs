//! The training curve of a result (`metrics.jsonl`) as a PNG: training and evaluation loss
//! per step, and the evaluation accuracy when the task has one.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use tensorgrid_train::{
    sample::Sample,
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
    /// A language model's text, drawn in a panel beside the curve.
    pub sample: Option<&'a Sample>,
}

impl<'a> Curve<'a> {
    /// The title for `spec`: model, dataset and metric.
    pub fn title_for(spec: &JobSpec) -> String {
        let model = match &spec.model {
            ModelSpec::Mlp { hidden, .. } => format!("MLP {hidden:?}"),
            ModelSpec::Cnn { channels, .. } => format!("CNN {channels:?}"),
            ModelSpec::Resnet { widths, blocks, .. } => format!("ResNet {widths:?}×{blocks}"),
            ModelSpec::CharTransformer {
                layers, d_model, ..
            } => format!("char transformer {layers}×{d_model}"),
            ModelSpec::Gpt2 {
                layers, d_model, ..
            } => format!("GPT-2 {layers}×{d_model}"),
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
            sample: None,
        }
    }
}

pub fn metric_name(m: Metric) -> &'static str {
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
/// as a dashed line on its metric's axis, integer steps. With a sample the PNG is 1440 wide,
/// the text in a panel on the right.
pub fn curve(records: &[MetricsRecord], what: &Curve, out: &Path) -> Result<()> {
    if records.is_empty() {
        return Err(anyhow!("no metrics to plot"));
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", out.display());
    let width = if what.sample.is_some() { 1440 } else { 960 };
    let root = BitMapBackend::new(out, (width, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (plot_area, text_area) = root.split_horizontally(960);
    if let Some(sample) = what.sample {
        draw_sample(&text_area, sample).map_err(|e| err(&e))?;
    }
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

    let mut chart = ChartBuilder::on(&plot_area)
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

/// Characters per line in the sample panel (the font is monospaced: 480 px at 14 px).
const SAMPLE_COLUMNS: usize = 50;

/// `text` in lines of at most `columns` characters: its own line breaks kept, long lines
/// broken at the last space that fits (or mid-word when none does), control characters shown
/// as `·` (the text is a stranger's dataset).
fn wrap(text: &str, columns: usize) -> Vec<String> {
    let columns = columns.max(1);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let chars: Vec<char> = paragraph
            .chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '·',
                c => c,
            })
            .collect();
        let mut rest = &chars[..];
        loop {
            if rest.len() <= columns {
                lines.push(rest.iter().collect());
                break;
            }
            let cut = rest[..=columns]
                .iter()
                .rposition(|&c| c == ' ')
                .filter(|&i| i > 0)
                .unwrap_or(columns);
            lines.push(rest[..cut].iter().collect());
            rest = &rest[cut..];
            if rest.first() == Some(&' ') {
                rest = &rest[1..];
            }
        }
    }
    lines
}

/// The sample panel: the held-out prompt in grey, the model's continuation in black.
fn draw_sample<'a>(
    area: &DrawingArea<BitMapBackend<'a>, Shift>,
    s: &Sample,
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>> {
    const LEFT: i32 = 8;
    const LINE: i32 = 18;
    const BOTTOM: i32 = 520;
    let grey = BLACK.mix(0.55);
    let heading = (FAMILY, 16).into_font().color(&BLACK);
    let label = (FAMILY, 13).into_font().color(&grey);
    area.draw(&Text::new(
        format!("Sample, temperature {}", s.temperature),
        (LEFT, 28),
        heading,
    ))?;
    let mut y = 60;
    for (title, text, colour) in [
        ("held-out text given to the model:", &s.prompt, grey),
        (
            "what the model wrote next:",
            &s.continuation,
            BLACK.mix(1.0),
        ),
    ] {
        area.draw(&Text::new(title, (LEFT, y), label.clone()))?;
        y += LINE + 4;
        let font = (FAMILY, 14).into_font().color(&colour);
        let lines = wrap(text, SAMPLE_COLUMNS);
        for (i, line) in lines.iter().enumerate() {
            // The last line that fits says the text goes on.
            if y + 2 * LINE > BOTTOM && i + 1 < lines.len() {
                area.draw(&Text::new("…", (LEFT, y), font.clone()))?;
                y += LINE;
                break;
            }
            area.draw(&Text::new(line.as_str(), (LEFT, y), font.clone()))?;
            y += LINE;
        }
        y += LINE;
    }
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
            sample: None,
        };
        curve(&records, &what, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 5_000, "{}", bytes.len());
        assert_eq!(png_width(&bytes), 960);
    }

    /// The IHDR chunk's width.
    fn png_width(png: &[u8]) -> u32 {
        u32::from_be_bytes(png[16..20].try_into().unwrap())
    }

    #[test]
    fn a_language_model_gets_its_sample_beside_the_curve() {
        let records: Vec<MetricsRecord> = (1..=5)
            .map(|i| MetricsRecord {
                step: i * 100,
                epoch: None,
                train_loss: 3.0 / i as f64,
                eval_loss: 3.1 / i as f64,
                eval_accuracy: None,
            })
            .collect();
        let sample = Sample {
            prompt: "In the beginning God created the heaven".into(),
            continuation: "and the earth was without form, and void; \x1b[31m and darkness"
                .repeat(8),
            temperature: 0.8,
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("curve.png");
        let what = Curve {
            title: "char transformer 2×64 on kjv.txt — eval loss",
            metric: Metric::Loss,
            threshold: 2.0,
            sample: Some(&sample),
        };
        curve(&records, &what, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(png_width(&bytes), 1440);
        // The panel holds ink: the image without the sample is smaller.
        let plain = dir.path().join("plain.png");
        curve(
            &records,
            &Curve {
                sample: None,
                ..what
            },
            &plain,
        )
        .unwrap();
        assert!(bytes.len() > std::fs::read(&plain).unwrap().len() + 5_000);
    }

    #[test]
    fn wraps_at_spaces_keeps_line_breaks_and_shows_control_characters() {
        assert_eq!(
            wrap("the quick brown fox\njumps\x1b over", 10),
            ["the quick", "brown fox", "jumps·", "over"].map(String::from)
        );
        assert_eq!(
            wrap("abcdefghijkl", 5),
            ["abcde", "fghij", "kl"].map(String::from)
        );
        assert_eq!(wrap("", 5), [String::new()]);
        assert_eq!(wrap("ab", 0), ["a", "b"].map(String::from));
    }
}
