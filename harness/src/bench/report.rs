//! The bench's results: one [`Row`] per measurement with its same-run reference and their ratio,
//! and the machine facts that say how comparable the run is (cores, load average, build
//! profile, version, commit). Printed as a table and written as JSON (`--json FILE`).

use serde::Serialize;

use super::RowName;

/// One measured figure beside its reference.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub row: RowName,
    /// What was measured, in words.
    pub what: String,
    pub figure: f64,
    pub unit: &'static str,
    pub reference: String,
    pub reference_figure: f64,
    /// `figure / reference_figure`.
    pub ratio: f64,
    /// Whether a larger figure is better (a rate) or worse (a time).
    pub higher_is_better: bool,
    /// Further figures of the row (percentiles, counts).
    pub detail: serde_json::Value,
}

impl Row {
    /// A row whose ratio is computed; a reference of zero (nothing measured) is refused.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        row: RowName,
        what: impl Into<String>,
        figure: f64,
        unit: &'static str,
        reference: impl Into<String>,
        reference_figure: f64,
        higher_is_better: bool,
        detail: serde_json::Value,
    ) -> anyhow::Result<Self> {
        let reference = reference.into();
        anyhow::ensure!(
            reference_figure > 0.0 && reference_figure.is_finite() && figure.is_finite(),
            "{}: the reference '{reference}' measured {reference_figure}",
            row.as_str()
        );
        Ok(Self {
            row,
            what: what.into(),
            figure,
            unit,
            reference,
            reference_figure,
            ratio: figure / reference_figure,
            higher_is_better,
            detail,
        })
    }
}

/// The machine and build a run was measured on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    /// 1/5/15-minute load averages at the start and at the end of the run.
    pub load_average_start: Option<[f64; 3]>,
    pub load_average_end: Option<[f64; 3]>,
    /// `debug` or `release`: debug figures are only comparable to debug figures.
    pub profile: &'static str,
    pub version: &'static str,
    pub git_commit: Option<String>,
    pub quick: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub rows: Vec<Row>,
}

impl Report {
    pub(super) fn start(quick: bool) -> Self {
        Self {
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
                load_average_start: ppvnet_common::bench::load_average(),
                load_average_end: None,
                profile: if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                },
                version: env!("CARGO_PKG_VERSION"),
                git_commit: git_commit(),
                quick,
            },
            rows: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub(super) fn finish(&mut self) {
        self.machine.load_average_end = ppvnet_common::bench::load_average();
        self.rows.sort_by_key(|r| r.row);
    }

    /// The table `ppvnet bench` prints: row, figure, unit, reference, its figure, the ratio.
    pub fn table(&self) -> String {
        let m = &self.machine;
        let load = |l: Option<[f64; 3]>| {
            l.map_or_else(
                || "unknown".to_string(),
                |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"),
            )
        };
        let mut out = format!(
            "ppvnet {} bench ({} build{}), {} cores, load average {} at start, {} at end\n",
            m.version,
            m.profile,
            if m.quick { ", --quick" } else { "" },
            m.cores,
            load(m.load_average_start),
            load(m.load_average_end),
        );
        let header = [
            "row",
            "figure",
            "unit",
            "reference",
            "reference figure",
            "ratio",
        ];
        let lines: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.row.as_str().to_string(),
                    number(r.figure),
                    r.unit.to_string(),
                    r.reference.clone(),
                    number(r.reference_figure),
                    format!(
                        "{:.2}x {}",
                        r.ratio,
                        if r.higher_is_better {
                            "(higher is better)"
                        } else {
                            "(lower is better)"
                        }
                    ),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..6)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut line = |cells: [&str; 6]| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                // Numbers right-aligned, words left-aligned.
                if i == 1 || i == 4 {
                    text.push_str(&format!("{cell:>w$}  ", w = widths[i]));
                } else {
                    text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(header);
        for l in &lines {
            line([&l[0], &l[1], &l[2], &l[3], &l[4], &l[5]]);
        }
        out
    }
}

/// A figure with three significant digits or more, without an exponent.
fn number(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The checkout's commit, when the bench runs inside one with git installed.
fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(crate::paths::checkout_root(&std::env::current_dir().ok()?)?)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
}
