//! How a command fails: a message for a person and Tahoe's exit code.
//!
//! Tahoe's CLI exits 1 for almost every failure and 2 when `ls` finds no such path;
//! scripts written against it test those codes, so we keep them.

use swamp_client::grid::GridError;

/// A failed command.
pub struct Failure {
    /// What went wrong, naming the cap or path and the cause.
    pub message: String,
    /// The process exit code.
    pub code: u8,
    /// Printed as it is, without `error: ` (Tahoe's own wording for this failure).
    pub bare: bool,
}

impl Failure {
    /// Exit code 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
            bare: false,
        }
    }

    /// Exit code 1, the message printed exactly as given (Tahoe's words).
    pub fn said(message: impl Into<String>) -> Self {
        Self {
            bare: true,
            ..Self::new(message)
        }
    }

    /// Only an exit code: what went wrong was said already.
    pub fn silent(code: u8) -> Self {
        Self {
            code,
            ..Self::said("")
        }
    }

    /// What goes to stderr.
    pub fn text(&self) -> String {
        if self.bare {
            self.message.clone()
        } else {
            format!("error: {}", self.message)
        }
    }

    /// A grid error while working on `what` (a cap or path).
    pub fn grid(what: &str, error: &GridError) -> Self {
        Self::new(format!("{what}: {error}"))
    }

    /// The same failure, printed without `error: `.
    pub fn with_bare(self) -> Self {
        Self { bare: true, ..self }
    }

    /// The same failure with another exit code.
    pub fn with_code(self, code: u8) -> Self {
        Self { code, ..self }
    }
}
