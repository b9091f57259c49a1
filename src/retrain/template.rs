//! `{name}` placeholders in the training command's argv.
//!
//! Each argv element is parsed once, at config load, so an unknown
//! placeholder or an unbalanced brace is a configuration error and filling
//! in values later cannot fail. `{{` and `}}` stand for literal braces.

use std::collections::BTreeMap;

/// One argv element, split into literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A malformed argv element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed '{{' (write '{{{{' for a literal brace)")]
    Unclosed,
    #[error("unmatched '}}' (write '}}}}' for a literal brace)")]
    Unmatched,
    #[error("empty placeholder {{}}")]
    Empty,
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(TemplateError::Unmatched),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            None | Some('{') => return Err(TemplateError::Unclosed),
                            Some('}') => break,
                            Some(c) => name.push(c),
                        }
                    }
                    if name.is_empty() {
                        return Err(TemplateError::Empty);
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Var(name));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

    /// The placeholder names, in order of appearance.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(n) => Some(n.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// The element with every placeholder replaced. A name without a value
    /// (impossible after config validation) is left as `{name}`.
    pub fn fill(&self, values: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(n) => match values.get(n) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(n);
                        out.push('}');
                    }
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_and_escapes() {
        let t = Template::parse("--lr={learning_rate}/{{x}}").unwrap();
        assert_eq!(t.names().collect::<Vec<_>>(), ["learning_rate"]);
        let values = BTreeMap::from([("learning_rate".to_string(), "0.01".to_string())]);
        assert_eq!(t.fill(&values), "--lr=0.01/{x}");
    }

    #[test]
    fn malformed_elements() {
        assert_eq!(Template::parse("{a"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("a}"), Err(TemplateError::Unmatched));
        assert_eq!(Template::parse("{}"), Err(TemplateError::Empty));
    }
}
