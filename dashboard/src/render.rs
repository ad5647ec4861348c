//! Rendering: the handlebars templates and static assets, embedded in the binary so that the
//! dashboard needs no files at run time, the layout every page shares, and the security headers
//! of every response.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use handlebars::Handlebars;
use serde::Serialize;

use crate::error::DashboardError;
use crate::session::Session;

/// Name and source of every template. `layout` is a partial that the pages wrap themselves in.
const TEMPLATES: [(&str, &str); 7] = [
    ("layout", include_str!("../templates/layout.hbs")),
    ("login", include_str!("../templates/login.hbs")),
    ("overview", include_str!("../templates/overview.hbs")),
    ("jobs", include_str!("../templates/jobs.hbs")),
    ("job", include_str!("../templates/job.hbs")),
    ("audit", include_str!("../templates/audit.hbs")),
    ("error", include_str!("../templates/error.hbs")),
];

const STYLESHEET: &str = include_str!("../assets/dashboard.css");
const SCRIPT: &str = include_str!("../assets/dashboard.js");

/// Pages load only this origin's stylesheet and script; the chart is inline SVG drawn with
/// presentation attributes, which the policy does not restrict.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

static REGISTRY: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    build_registry()
        .unwrap_or_else(|error| panic!("an embedded dashboard template is invalid: {error}"))
});

fn build_registry() -> Result<Handlebars<'static>, handlebars::TemplateError> {
    let mut registry = Handlebars::new();
    // A missing variable is an error rather than an empty string, as in the email templates.
    registry.set_strict_mode(true);
    registry.register_escape_fn(escape_html);
    for (name, source) in TEMPLATES {
        registry.register_template_string(name, source)?;
    }
    Ok(registry)
}

/// Escapes text for HTML content and double-quoted attributes, which are the only attributes the
/// templates use. Unlike handlebars' default it leaves `=` alone, so query strings in links stay
/// readable.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Renders a page template with its context.
pub fn page<T: Serialize>(name: &str, context: &T) -> Result<Html<String>, DashboardError> {
    REGISTRY.render(name, context).map(Html).map_err(|error| {
        DashboardError::internal(format!("failed to render template {name}: {error}"))
    })
}

/// The parts of the shared layout: the title, the navigation with the active page, the logged-in
/// person with the logout form, and a notice after an action.
#[derive(Debug, Serialize)]
pub struct Layout {
    pub title: String,
    /// `overview`, `jobs`, `audit`, or empty for pages outside the navigation.
    pub active: &'static str,
    pub session: Option<SessionView>,
    pub notice: Option<String>,
}

/// The session as the layout and the forms see it.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub subject: String,
    pub scope: &'static str,
    pub admin: bool,
    pub csrf_token: String,
}

impl Layout {
    /// Builds the layout of a page behind the login.
    pub fn new(title: impl Into<String>, active: &'static str, session: &Session) -> Self {
        Layout {
            title: title.into(),
            active,
            session: Some(SessionView {
                subject: session.subject.clone(),
                scope: session.access.scope(),
                admin: session.is_admin(),
                csrf_token: session.csrf_token.clone(),
            }),
            notice: None,
        }
    }

    /// Builds the layout of a page without navigation: the login and error pages.
    pub fn bare(title: impl Into<String>) -> Self {
        Layout {
            title: title.into(),
            active: "",
            session: None,
            notice: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }
}

/// Serves the embedded stylesheet and script.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "dashboard.css" => ("text/css; charset=utf-8", STYLESHEET),
        "dashboard.js" => ("text/javascript; charset=utf-8", SCRIPT),
        _ => {
            return DashboardError::NotFound(format!("no dashboard asset named {file:?}"))
                .into_response();
        }
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Adds the security headers to every dashboard response; pages are not cached, because they
/// contain the session's CSRF token.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn status_of(error: DashboardError) -> StatusCode {
        error.into_response().status()
    }

    #[test]
    fn embedded_templates_compile() {
        build_registry().expect("the embedded templates compile");
    }

    #[test]
    fn error_page_renders_escaped_message() {
        let html = page(
            "error",
            &serde_json::json!({
                "layout": Layout::bare("Not Found"),
                "status": 404,
                "reason": "Not Found",
                "message": "job <script> not found",
            }),
        )
        .unwrap()
        .0;
        assert!(html.contains("job &lt;script&gt; not found"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x?a=1&b='2'">"#),
            "&lt;a href=&quot;x?a=1&amp;b=&#x27;2&#x27;&quot;&gt;"
        );
    }

    #[test]
    fn errors_map_to_statuses() {
        assert_eq!(
            status_of(DashboardError::CsrfRejected),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status_of(DashboardError::LoginRequired { redirect: false }),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_of(DashboardError::LoginRequired { redirect: true }),
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            status_of(DashboardError::Internal("secret detail".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
