//! One figure beside its baseline, medians and the printed table.

use serde::{Deserialize, Serialize};

/// Whether more is better (rates) or less (latencies, bytes, times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// A munggoggo figure and the baseline measured in the same run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    /// What is measured, such as `embedded one-way`.
    pub name: String,
    /// The unit of both values, such as `msg/s`.
    pub unit: String,
    /// munggoggo's median.
    pub ours: f64,
    /// What the baseline is, such as `tokio mpsc + JSON`.
    pub baseline_name: String,
    /// The baseline's median.
    pub baseline: f64,
    /// `ours / baseline`.
    pub ratio: f64,
    pub better: Better,
    /// How many runs the medians are of.
    pub runs: usize,
}

impl Figure {
    /// A figure from the values of each run (medians taken here).
    pub fn new(
        name: &str,
        unit: &str,
        better: Better,
        ours: Vec<f64>,
        baseline_name: &str,
        baseline: Vec<f64>,
    ) -> Figure {
        let runs = ours.len();
        let (ours, baseline) = (median(ours), median(baseline));
        Figure {
            name: name.to_owned(),
            unit: unit.to_owned(),
            ours,
            baseline_name: baseline_name.to_owned(),
            baseline,
            ratio: if baseline == 0.0 {
                f64::NAN
            } else {
                ours / baseline
            },
            better,
            runs,
        }
    }

    /// How munggoggo fares against the baseline, 1.0 being as good and
    /// more being better, whichever way the unit goes.
    pub fn merit(&self) -> f64 {
        match self.better {
            Better::Higher => self.ratio,
            Better::Lower => 1.0 / self.ratio,
        }
    }
}

/// The median (the upper one of an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Per second, of `n` in `d`.
pub fn rate(n: u64, d: std::time::Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// A value with a readable scale (`1.53M`, `84.0`, `0.012`).
pub fn human(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// Prints the figures as a table.
pub fn print(figures: &[Figure], runs: usize) {
    println!("median of {runs} run(s):");
    for f in figures {
        println!(
            "  {:<34} {:>9} {:<8} | {:<34} {:>9} | ratio {:.2} ({} is better)",
            f.name,
            human(f.ours),
            f.unit,
            f.baseline_name,
            human(f.baseline),
            f.ratio,
            match f.better {
                Better::Higher => "higher",
                Better::Lower => "lower",
            }
        );
    }
}
