//! How `paas` ends: an exit code per kind of failure, so scripts can tell a
//! mistake in the command line from a server that cannot be reached, a
//! request the server refused, and a change that did not work.

use std::fmt;

/// Exit codes, as `paas --help` lists them.
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const UNREACHABLE: i32 = 3;
pub const REFUSED: i32 = 4;

/// The help text's section on exit codes.
pub const HELP: &str = "\
Exit codes:
  0  done
  1  failed: the server took the request but it did not work (dynos that did not come up, a restart that failed)
  2  usage: the command line or its input is wrong (clap's own errors too)
  3  unreachable: the server could not be reached (no login, connection refused, TLS)
  4  refused: the server refused the request (bad token, no such app, invalid input)
`paas run` leaves with its command's own exit code.";

/// A failure that knows its exit code; other errors exit [`FAILED`].
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn failure(code: i32, message: impl Into<String>) -> anyhow::Error {
    Failure { code, message: message.into() }.into()
}

/// The command line or its input is wrong.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    failure(USAGE, message)
}

/// The server could not be reached.
pub fn unreachable(message: impl Into<String>) -> anyhow::Error {
    failure(UNREACHABLE, message)
}

/// The server refused the request.
pub fn refused(message: impl Into<String>) -> anyhow::Error {
    failure(REFUSED, message)
}

/// `bail!` for usage errors.
macro_rules! bail_usage {
    ($($t:tt)*) => { return Err($crate::exit::usage(format!($($t)*))) };
}
pub(crate) use bail_usage;

/// The exit code for an error: the first [`Failure`] in its chain, a name
/// that breaks a rule (usage), or [`FAILED`].
pub fn code_of(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code;
        }
        if cause.downcast_ref::<paas_wire::NameError>().is_some() {
            return USAGE;
        }
    }
    FAILED
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_come_from_the_chain() {
        assert_eq!(code_of(&usage("x")), USAGE);
        assert_eq!(code_of(&Err::<(), _>(refused("no")).context("while asking").unwrap_err()), REFUSED);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), FAILED);
        assert_eq!(code_of(&paas_wire::AppName::parse("Bad_Name").unwrap_err().into()), USAGE);
    }
}
