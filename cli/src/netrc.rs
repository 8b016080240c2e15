//! The one `~/.netrc` entry `paas login` owns (`machine HOST login paas
//! password TOKEN`, so `git push` authenticates as with Heroku), replaced
//! in place: every other byte of the file (other machines, `default`,
//! comments, `macdef` bodies, blank lines) is left exactly as it was.
//! No netrc crate on crates.io writes a file back unchanged, so the edit
//! works on the text: it finds the entry's tokens and removes only them.

/// A token of the file and where it is.
struct Token<'a> {
    start: usize,
    end: usize,
    text: &'a str,
}

/// The file's tokens, without comments (`#` to the end of the line) and
/// without `macdef` bodies (from the line after `macdef NAME` to the first
/// empty line), which are never entries.
fn tokens(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut out: Vec<Token<'_>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if bytes[i] == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        out.push(Token { start, end: i, text: &text[start..i] });
        // `macdef NAME`: skip the body, up to an empty line.
        if out.len() >= 2 && out[out.len() - 2].text == "macdef" {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            i += 1;
            while i < bytes.len() {
                let line_end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                let empty = text[i..line_end].trim().is_empty();
                i = line_end + 1;
                if empty {
                    break;
                }
            }
        }
    }
    out
}

/// The byte ranges of every entry for `host`: `machine HOST` and the
/// tokens after it, up to the next `machine`, `default` or `macdef`.
fn entries(text: &str, host: &str) -> Vec<Vec<(usize, usize)>> {
    let toks = tokens(text);
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        if toks[i].text == "machine" && toks[i + 1].text == host {
            let mut j = i + 2;
            while j < toks.len() && !matches!(toks[j].text, "machine" | "default" | "macdef") {
                j += 1;
            }
            found.push(toks[i..j].iter().map(|t| (t.start, t.end)).collect());
            i = j;
        } else {
            i += 1;
        }
    }
    found
}

/// `text` without the entries for `host`. A line holding nothing but an
/// entry's tokens goes whole; anything else on a line stays.
pub fn without_machine(text: &str, host: &str) -> String {
    let spans: Vec<(usize, usize)> = entries(text, host).into_iter().flatten().collect();
    if spans.is_empty() {
        return text.to_owned();
    }
    let in_span = |pos: usize| spans.iter().any(|(s, e)| pos >= *s && pos < *e);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let offset = line.as_ptr() as usize - text.as_ptr() as usize;
        let touched = line.char_indices().any(|(i, _)| in_span(offset + i));
        if !touched {
            out.push_str(line);
            continue;
        }
        let only_entry = line.char_indices().all(|(i, c)| c.is_whitespace() || in_span(offset + i));
        if only_entry {
            continue;
        }
        // Keep what else the line holds.
        let kept: String = line.char_indices().filter(|(i, _)| !in_span(offset + i)).map(|(_, c)| c).collect();
        out.push_str(&kept);
    }
    out
}

/// The file with this host's entry set to `login paas password TOKEN`,
/// at the end; nothing else changes.
pub fn with_machine(text: &str, host: &str, token: &str) -> String {
    let mut out = without_machine(text, host);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("machine {host}\n  login paas\n  password {token}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# my machines\nmachine a login x password 1\n\nmachine h login paas password old\nmacdef init\nmachine h login evil password in-a-macro\n\n# keep me\nmachine b\n  login y # inline\n  password 2\ndefault login anonymous password me@\n";

    #[test]
    fn only_the_hosts_entry_changes() {
        let out = with_machine(FILE, "h", "new");
        let expected = FILE.replace("machine h login paas password old\n", "") + "machine h\n  login paas\n  password new\n";
        assert_eq!(out, expected);
        // Again: still one entry, the rest byte for byte.
        let again = with_machine(&out, "h", "newer");
        assert_eq!(again, expected.replace("password new", "password newer"));
    }

    #[test]
    fn a_macro_body_and_comments_are_not_entries() {
        let out = without_machine(FILE, "h");
        assert!(out.contains("macdef init\nmachine h login evil password in-a-macro\n\n"), "{out}");
        assert!(out.contains("# my machines") && out.contains("# keep me") && out.contains("# inline"));
    }

    #[test]
    fn an_entry_sharing_a_line_leaves_the_rest_of_the_line() {
        let out = without_machine("machine a login x machine h login paas password t\n", "h");
        assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["machine", "a", "login", "x"]);
        assert_eq!(with_machine("", "h", "t"), "machine h\n  login paas\n  password t\n");
    }
}
