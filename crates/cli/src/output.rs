//! `--output display|json|json-compact`, the same for every command (Solana CLI convention):
//! a command builds one serialisable report and says how a person reads it.

use anyhow::Result;
use clap::ValueEnum;
use serde::Serialize;

#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Text for a person.
    #[default]
    Display,
    /// Pretty-printed JSON.
    Json,
    /// JSON on one line.
    JsonCompact,
}

/// A command's result.
pub trait Report: Serialize {
    /// The text a person reads (`--output display`).
    fn display(&self) -> String;
}

impl OutputFormat {
    pub fn is_json(self) -> bool {
        self != OutputFormat::Display
    }

    pub fn emit<R: Report>(self, report: &R) -> Result<()> {
        let text = match self {
            OutputFormat::Display => report.display(),
            OutputFormat::Json => serde_json::to_string_pretty(report)?,
            OutputFormat::JsonCompact => serde_json::to_string(report)?,
        };
        println!("{}", text.trim_end());
        Ok(())
    }

    /// A progress line for a person (stderr, so that JSON on stdout stays parseable).
    pub fn note(self, line: impl AsRef<str>) {
        if !self.is_json() {
            eprintln!("{}", crate::describe::clean(line.as_ref()));
        }
    }
}

/// `label  value` lines, aligned.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}
