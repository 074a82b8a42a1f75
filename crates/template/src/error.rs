//! `TemplateError`: what went wrong in a template, worded for the task's log.

use std::fmt;
use std::ops::Range;

use minijinja::ErrorKind;

/// Why a template could not be rendered. The `Display` form names the offending thing and the
/// template line, and is meant to be written verbatim into the task's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is not valid Jinja (an unclosed `{{`, an unknown tag, ...).
    #[error("template syntax error{location}: {message}")]
    Syntax { message: String, location: Location },
    /// The template uses a name or attribute that is not defined, e.g. `{{ params.missing }}`.
    #[error("undefined template variable `{name}`{location}")]
    Undefined { name: String, location: Location },
    /// `var.value.NAME`, `var.json.NAME` or `var.value.get(NAME)` names a variable that does not
    /// exist (as in Airflow, this is an error, not an empty string).
    #[error("variable `{name}` does not exist{location}")]
    VariableNotFound { name: String, location: Location },
    /// `conn.ID` or `conn.get(ID)` names a connection that is neither in the environment nor
    /// in the database.
    #[error("connection `{conn_id}` is not defined{location}")]
    ConnectionNotFound { conn_id: String, location: Location },
    /// `var.json.NAME` names a variable whose value is not JSON.
    #[error("variable `{name}` is not valid JSON ({message}){location}")]
    VariableNotJson {
        name: String,
        message: String,
        location: Location,
    },
    /// Anything else that failed while rendering: a macro given a bad date, a method called with
    /// wrong arguments, a template that ran too long, ...
    #[error("template error{location}: {message}")]
    Render { message: String, location: Location },
    /// The rendered text would exceed [`crate::MAX_RENDERED_BYTES`]: refused rather than
    /// exhausting the worker's memory.
    #[error("template output too large: {message}")]
    TooLarge { message: String },
}

/// Where in the template an error happened: the 1-based line and that line's text, when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub line: Option<usize>,
    pub text: Option<String>,
}

/// The detail of a failed variable lookup, carried as the `source` of a minijinja error so that
/// [`TemplateError::from_minijinja`] can report it precisely.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum VariableIssue {
    #[error("variable `{0}` does not exist")]
    NotFound(String),
    #[error("variable `{name}` is not valid JSON ({message})")]
    NotJson { name: String, message: String },
    #[error("connection `{0}` is not defined")]
    ConnectionNotFound(String),
}

impl VariableIssue {
    /// A minijinja error carrying this issue.
    pub(crate) fn into_error(self) -> minijinja::Error {
        minijinja::Error::new(ErrorKind::InvalidOperation, self.to_string()).with_source(self)
    }
}

/// The longest template line quoted in an error message.
const MAX_QUOTED_LINE: usize = 160;

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.text) {
            (Some(line), Some(text)) => write!(f, " at line {line}: `{text}`"),
            (Some(line), None) => write!(f, " at line {line}"),
            (None, _) => Ok(()),
        }
    }
}

/// No line: for errors about the template as a whole.
static NOWHERE: Location = Location {
    line: None,
    text: None,
};

impl Location {
    fn new(line: Option<usize>, template: &str) -> Self {
        let text = line
            .and_then(|line| template.lines().nth(line.checked_sub(1)?))
            .map(|text| {
                let text = text.trim();
                if text.chars().count() > MAX_QUOTED_LINE {
                    let mut short: String = text.chars().take(MAX_QUOTED_LINE).collect();
                    short.push('…');
                    short
                } else {
                    text.to_owned()
                }
            });
        Location { line, text }
    }
}

impl TemplateError {
    /// The location (line and line text) of the error.
    pub fn location(&self) -> &Location {
        match self {
            TemplateError::Syntax { location, .. }
            | TemplateError::Undefined { location, .. }
            | TemplateError::VariableNotFound { location, .. }
            | TemplateError::VariableNotJson { location, .. }
            | TemplateError::ConnectionNotFound { location, .. }
            | TemplateError::Render { location, .. } => location,
            TemplateError::TooLarge { .. } => &NOWHERE,
        }
    }

    /// Translates a minijinja error raised while rendering `template`. What minijinja compiled
    /// has the template's lines but not its columns (its `*`, `+` and `~` are rewritten), so
    /// the error's byte range is taken back to the template's by `original_range`.
    pub(crate) fn from_minijinja(
        err: &minijinja::Error,
        template: &str,
        original_range: impl Fn(Range<usize>) -> Option<Range<usize>>,
    ) -> Self {
        let location = Location::new(err.line(), template);
        if let Some(issue) = variable_issue(err) {
            return match issue {
                VariableIssue::NotFound(name) => TemplateError::VariableNotFound {
                    name: name.clone(),
                    location,
                },
                VariableIssue::NotJson { name, message } => TemplateError::VariableNotJson {
                    name: name.clone(),
                    message: message.clone(),
                    location,
                },
                VariableIssue::ConnectionNotFound(conn_id) => TemplateError::ConnectionNotFound {
                    conn_id: conn_id.clone(),
                    location,
                },
            };
        }
        let message = err
            .detail()
            .map(str::to_owned)
            .unwrap_or_else(|| err.kind().to_string());
        match err.kind() {
            ErrorKind::SyntaxError | ErrorKind::BadEscape => {
                TemplateError::Syntax { message, location }
            }
            ErrorKind::UndefinedError => {
                let name = err
                    .range()
                    .and_then(original_range)
                    .and_then(|range| template.get(range))
                    .map(|expr| expr.trim().to_owned())
                    .filter(|expr| !expr.is_empty())
                    .unwrap_or_else(|| "?".to_owned());
                TemplateError::Undefined { name, location }
            }
            _ => TemplateError::Render { message, location },
        }
    }
}

/// The [`VariableIssue`] somewhere in the source chain of `err`, if any.
fn variable_issue(err: &minijinja::Error) -> Option<&VariableIssue> {
    let mut source = std::error::Error::source(err);
    while let Some(current) = source {
        if let Some(issue) = current.downcast_ref::<VariableIssue>() {
            return Some(issue);
        }
        source = current.source();
    }
    None
}
