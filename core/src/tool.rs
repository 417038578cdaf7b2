//! What the backends that run a system tool (`iptables`, `pfctl`, `ipfw`)
//! share: how a run ended, how its argv is shown, and how a failed run
//! becomes a [`BackendError`]. Running the tool, and reading which
//! [`ErrorKind`] its messages mean, stay with each backend.

use crate::backend::{BackendError, ErrorKind};

/// How a run of a tool ended, when it ran at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolOutcome {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error, trimmed.
    pub stderr: String,
}

impl ToolOutcome {
    /// Exit 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// From what `std::process` collected.
    pub fn from_output(output: &std::process::Output) -> ToolOutcome {
        ToolOutcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        }
    }
}

/// Shows an argv for messages, quoting words with spaces.
pub fn shown_argv(program: &str, args: &[String]) -> String {
    let mut out = program.to_string();
    for a in args {
        out.push(' ');
        if a.contains(' ') {
            out.push_str(&format!("{a:?}"));
        } else {
            out.push_str(a);
        }
    }
    out
}

/// The error for a run that failed: the argv, the exit status and the
/// tool's stderr, framed. `kind` is what the backend read in the message.
pub fn tool_failure(
    kind: ErrorKind,
    program: &str,
    args: &[String],
    outcome: &ToolOutcome,
) -> BackendError {
    let status = match outcome.code {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_string(),
    };
    BackendError::new(
        kind,
        shown_argv(program, args),
        format!("{status}; {program} said:\n---\n{}\n---", outcome.stderr),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_and_failure_are_shown_whole() {
        let args = vec!["-A".to_string(), "banset f2b".to_string()];
        assert_eq!(shown_argv("iptables", &args), "iptables -A \"banset f2b\"");
        let e = tool_failure(
            ErrorKind::Other,
            "iptables",
            &args,
            &ToolOutcome {
                code: Some(2),
                stderr: "bad rule".into(),
                ..ToolOutcome::default()
            },
        );
        let text = e.to_string();
        assert!(
            text.contains("exit status 2; iptables said:\n---\nbad rule\n---"),
            "{text}"
        );
        let killed = tool_failure(ErrorKind::Other, "pfctl", &[], &ToolOutcome::default());
        assert!(killed.to_string().contains("killed by a signal"));
    }
}
