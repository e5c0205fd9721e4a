use serde::Serialize;
use std::fmt::Write as _;

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not run, because a check it depends on failed.
    Skip,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: String,
    pub outcome: Outcome,
    pub detail: String,
}

/// What the suite found about one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plugin: String,
    pub digest: Option<String>,
    pub world: Option<String>,
    pub passed: bool,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub(crate) fn new(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_owned(),
            digest: None,
            world: None,
            passed: true,
            checks: Vec::new(),
        }
    }

    fn push(&mut self, check: &str, outcome: Outcome, detail: String) {
        if outcome != Outcome::Pass {
            self.passed = false;
        }
        self.checks.push(CheckResult {
            check: check.to_owned(),
            outcome,
            detail,
        });
    }

    pub(crate) fn pass(&mut self, check: &str, detail: impl Into<String>) {
        self.push(check, Outcome::Pass, detail.into());
    }

    pub(crate) fn fail(&mut self, check: &str, detail: impl Into<String>) {
        self.push(check, Outcome::Fail, detail.into());
    }

    pub(crate) fn skip(&mut self, check: &str, detail: impl Into<String>) {
        self.push(check, Outcome::Skip, detail.into());
    }

    /// Marks every check of `all` not yet reported as skipped.
    pub(crate) fn skip_rest(mut self, all: &[&str]) -> Self {
        for check in all {
            if !self.checks.iter().any(|c| c.check == *check) {
                self.skip(check, "not run: an earlier check failed");
            }
        }
        self
    }

    /// The result of `check`, if it ran.
    pub fn check(&self, check: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.check == check)
    }

    /// The report as a table for people: one line per check.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "plugin  {}", self.plugin);
        if let Some(d) = &self.digest {
            let _ = writeln!(out, "digest  {d}");
        }
        if let Some(w) = &self.world {
            let _ = writeln!(out, "world   {w}");
        }
        out.push('\n');
        let width = self
            .checks
            .iter()
            .map(|c| c.check.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(out, "{:<width$}  {:<6}  DETAIL", "CHECK", "RESULT");
        for c in &self.checks {
            let outcome = match c.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            let _ = writeln!(out, "{:<width$}  {outcome:<6}  {}", c.check, c.detail);
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .count();
        let skipped = self
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Skip)
            .count();
        let passed = self.checks.len() - failed - skipped;
        let _ = writeln!(
            out,
            "\n{passed} passed, {failed} failed, {skipped} skipped: {}",
            if self.passed {
                "conforms"
            } else {
                "does NOT conform"
            }
        );
        out
    }
}
