//! The `github` report: workflow commands that GitHub Actions shows as
//! annotations on the files and lines where changes began.
//!
//! GitHub shows at most 10 errors and 10 warnings per step, so mmon writes
//! at most [`MAX_PER_SEVERITY`] of each, most severe first, then one
//! `::notice` that counts the rest. Values are escaped as the runner
//! expects: `%`, CR and LF everywhere, and `:` and `,` in properties.

use std::fmt::Write as _;

use super::view::{self, RunView};
use crate::window::{Severity, Window};

pub const MAX_PER_SEVERITY: usize = 10;

fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

fn command(kind: &str, w: &Window) -> String {
    let mut props = Vec::new();
    if let (Some(file), Some(line)) = (w.start.file.as_deref(), w.start.line) {
        props.push(format!("file={}", property(file)));
        props.push(format!("line={line}"));
    }
    let title = format!(
        "{} {}: {} {}",
        view::severity_word(w.severity),
        w.model_id,
        w.metric,
        view::change(w)
    );
    props.push(format!("title={}", property(&title)));
    format!("::{kind} {}::{}", props.join(","), data(&w.reason))
}

pub fn render(v: &RunView) -> String {
    let mut out = String::new();
    let mut written = 0;
    for (severity, kind) in [(Severity::Drift, "error"), (Severity::Warning, "warning")] {
        for w in v
            .windows
            .iter()
            .filter(|w| w.severity == severity)
            .take(MAX_PER_SEVERITY)
        {
            out.push_str(&command(kind, w));
            out.push('\n');
            written += 1;
        }
    }
    let rest = v.windows.len() - written;
    let mut notice = data(&v.verdict());
    if rest > 0 {
        let _ = write!(
            notice,
            "; {rest} more window{} not annotated",
            view::plural(rest)
        );
    }
    let _ = writeln!(
        out,
        "::notice title=mmon::{notice}. Read {}.",
        data(&v.what_was_read())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(data("50% done\r\nok"), "50%25 done%0D%0Aok");
        assert_eq!(property("logs/a,b:c.jsonl"), "logs/a%2Cb%3Ac.jsonl");
    }
}
