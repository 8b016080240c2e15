//! Procfile parsing: `name: command` lines, `#` comments and blank lines.
//! Bad names, duplicate names and the reserved `run` (one-off dynos' name)
//! are errors that carry the line number.

use paas_wire::ProcessType;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Procfile line {line}: {message}")]
pub struct ProcfileError {
    pub line: usize,
    pub message: String,
}

/// Parses a Procfile into process type -> command.
/// The most process types one Procfile may declare.
pub const MAX_TYPES: usize = 50;

pub fn parse(text: &str) -> Result<BTreeMap<String, String>, ProcfileError> {
    let mut types = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |message: String| ProcfileError { line, message };
        let Some((name, command)) = trimmed.split_once(':') else {
            return Err(err(format!("expected `name: command`, found {trimmed:?}")));
        };
        let name = name.trim();
        let command = command.trim();
        let name = ProcessType::parse(name).map_err(|e| err(e.to_string()))?;
        if command.is_empty() {
            return Err(err(format!("process type {:?} has no command", name.as_str())));
        }
        if name.as_str() == "run" {
            return Err(err(
                "process type \"run\" is reserved: one-off dynos (`paas run`) are named run.N; give it another name".into(),
            ));
        }
        if types.insert(name.to_string(), command.to_owned()).is_some() {
            return Err(err(format!("process type {:?} is defined twice", name.as_str())));
        }
        if types.len() > MAX_TYPES {
            return Err(err(format!("a Procfile may declare at most {MAX_TYPES} process types")));
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_fifty_types() {
        let text: String = (0..=MAX_TYPES).map(|i| format!("t{i}: run-{i}\n")).collect();
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, MAX_TYPES + 1);
        assert!(e.message.contains("at most 50 process types"), "{}", e.message);
        assert_eq!(parse(&text.lines().take(MAX_TYPES).map(|l| format!("{l}\n")).collect::<String>()).unwrap().len(), MAX_TYPES);
    }

    #[test]
    fn parses_types_comments_and_blank_lines() {
        let text = "# web first\nweb: ./server --port $PORT\n\n  worker:  run-worker --x=1:2  \n";
        let types = parse(text).unwrap();
        assert_eq!(types["web"], "./server --port $PORT");
        assert_eq!(types["worker"], "run-worker --x=1:2");
        assert_eq!(types.len(), 2);
    }

    #[test]
    fn errors_carry_line_numbers() {
        assert_eq!(parse("web: a\nweb: b\n").unwrap_err().line, 2);
        let e = parse("# c\n\nWeb Server: x\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().starts_with("Procfile line 3: process type \"Web Server\" is invalid"));
        assert_eq!(parse("web\n").unwrap_err().line, 1);
        assert!(parse("web:   \n").unwrap_err().message.contains("no command"));
        // One-off dynos are run.N: a process type of that name would share them.
        let e = parse("web: a\nrun: b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("reserved"), "{e}");
    }
}
