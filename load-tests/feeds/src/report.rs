//! Results: one [`Outcome`] per scenario, printed as a table or as JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// One number.
#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    /// What it is.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// The goal, when it has one, e.g. `<= 16`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Whether the goal is met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
}

/// What one scenario measured.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The scenario.
    pub scenario: String,
    /// Its parameters.
    pub params: serde_json::Value,
    /// Its numbers, in print order.
    pub metrics: Vec<Metric>,
    /// Remarks (errors seen, caveats).
    pub notes: Vec<String>,
}

impl Outcome {
    /// An empty outcome.
    pub fn new(scenario: &str, params: serde_json::Value) -> Self {
        Self {
            scenario: scenario.to_string(),
            params,
            metrics: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a number.
    pub fn add(&mut self, name: &str, value: f64, unit: &'static str) {
        self.metrics.push(Metric {
            name: name.to_string(),
            value,
            unit,
            target: None,
            met: None,
        });
    }

    /// Adds a number with an upper bound as its goal.
    pub fn at_most(&mut self, name: &str, value: f64, unit: &'static str, limit: f64) {
        self.metrics.push(Metric {
            name: name.to_string(),
            value,
            unit,
            target: Some(format!("<= {limit}")),
            met: Some(value <= limit),
        });
    }

    /// Adds a number with a lower bound as its goal.
    pub fn at_least(&mut self, name: &str, value: f64, unit: &'static str, limit: f64) {
        self.metrics.push(Metric {
            name: name.to_string(),
            value,
            unit,
            target: Some(format!(">= {limit}")),
            met: Some(value >= limit),
        });
    }

    /// Adds a remark.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }
}

fn number(v: f64) -> String {
    if (v == v.trunc() && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The human table (Markdown, so it can go into docs as it is).
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let _ = writeln!(out, "\n### {} {}\n", o.scenario, o.params);
        let _ = writeln!(out, "| metric | value | unit | target | met |");
        let _ = writeln!(out, "|---|---:|---|---|---|");
        for m in &o.metrics {
            let met = match m.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                m.name,
                number(m.value),
                m.unit,
                m.target.as_deref().unwrap_or(""),
                met
            );
        }
        for n in &o.notes {
            let _ = writeln!(out, "\n- {n}");
        }
    }
    out
}

/// Adds the CPU use of a window: server, generator, and other processes (noise: the
/// machine is shared, so a busy neighbour shows here).
pub fn add_cpu(out: &mut Outcome, cpu: &crate::stats::CpuUse) {
    if let Some(v) = cpu.server {
        out.add("server CPU", v * 100.0, "% of one core");
    }
    if let Some(v) = cpu.generator {
        out.add("generator CPU", v * 100.0, "% of one core");
    }
    if let Some(v) = cpu.others {
        out.add("other processes' CPU (noise)", v * 100.0, "% of one core");
        if v > 0.25 {
            out.note(format!(
                "other processes used {:.0}% of a core during this measurement: the numbers are disturbed",
                v * 100.0
            ));
        }
    }
}
