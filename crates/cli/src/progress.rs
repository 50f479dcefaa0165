//! The training progress bar (stderr, only on a terminal), fed by the engine's callback.

use std::{io::IsTerminal, sync::Arc};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tensorgrid_train::trainer::{Progress, ProgressFn};

pub fn bar() -> ProgressFn {
    let bar = ProgressBar::with_draw_target(
        Some(0),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps {elapsed_precise} eta {eta} {msg}")
    {
        bar.set_style(style);
    }
    Arc::new(move |p: &Progress| {
        bar.set_length(p.total);
        bar.set_position(p.step);
        if let Some(r) = p.record {
            bar.set_message(format!(
                "eval loss {:.4}{}",
                r.eval_loss,
                r.eval_accuracy
                    .map(|a| format!(" acc {a:.4}"))
                    .unwrap_or_default()
            ));
        }
        if p.step >= p.total {
            bar.finish_and_clear();
        }
    })
}
