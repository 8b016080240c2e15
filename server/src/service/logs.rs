//! Reading an app's log: the query both the API's streams and the
//! dashboard's log view take (lines, process or dyno, source), and the
//! history the dashboard shows before it goes live.

use crate::http::{ApiError, ApiResult, AppState};
use crate::logs::{Filter, Source};
use crate::store::AppRow;

/// The most history lines one request may ask for.
const MAX_LINES: usize = 10_000;

#[derive(Debug, Default, serde::Deserialize)]
pub struct LogQuery {
    /// History lines first (default 100).
    pub lines: Option<usize>,
    /// Keep the stream open for new lines.
    #[serde(default)]
    pub tail: bool,
    /// A process type (`web`) or a dyno (`web.1`).
    pub ps: Option<String>,
    /// `app` or `paas`.
    pub source: Option<String>,
}

impl LogQuery {
    pub fn filter(&self) -> ApiResult<Filter> {
        let source = match self.source.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(Source::parse(s).ok_or_else(|| ApiError::bad_request(format!("source {s:?} is not one of app, paas")))?),
        };
        let ps = match self.ps.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(p) => {
                super::dynos::parse_target(p)?;
                Some(p.to_owned())
            }
        };
        Ok(Filter { ps, source })
    }

    pub fn lines(&self) -> usize {
        self.lines.unwrap_or(100).min(MAX_LINES)
    }
}

/// The app's newest lines that pass the query's filter, as `paas logs`
/// prints them.
pub fn history(state: &AppState, app: &AppRow, q: &LogQuery) -> ApiResult<Vec<String>> {
    let filter = q.filter()?;
    Ok(state.logs.history(&app.name, &filter, q.lines()).iter().map(|l| l.heroku().to_owned()).collect())
}
