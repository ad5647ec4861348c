//! Rendering of reminder emails from the handlebars templates in `templates/`.
//!
//! Each stage has three templates: `reminders/<stage>.subject.hbs`, `reminders/<stage>.html.hbs`
//! and `reminders/<stage>.txt.hbs`. The HTML and plain-text bodies are wrapped in the shared
//! `layout.html.hbs` and `layout.txt.hbs`, which insert the rendered body with `{{{body}}}`. This
//! module formats money and dates in Rust and hands the templates strings only. It checks every
//! template at start-up and rejects a reminder whose required values are empty, because handlebars
//! would otherwise send "Hi ," or "Amount due: ". It does not build or send the email.
//!
//! Template variables, all strings unless noted:
//!
//! | name | example |
//! |---|---|
//! | `account_name` | `Studio Lumen` (the freelancer's business) |
//! | `sender_name` | `Maya Lopez` (the person signing the email) |
//! | `client_name` | `Acme Corp` |
//! | `invoice_number` | `INV-1042` |
//! | `amount` | `$1,250.00` (the outstanding amount) |
//! | `currency` | `USD` |
//! | `issued_on`, `due_on` | `March 5, 2026` |
//! | `due_clause` | `is due today`, `is due in 3 days`, `was due yesterday`, `was due 7 days ago` |
//! | `days_until_due`, `days_overdue` | numbers, 0 when the other one applies |
//! | `pay_url` | `https://pay.example.com/i/1042` |
//! | `stage` | `overdue_7` |
//! | `subject` | the rendered subject (layouts only) |
//! | `body` | the rendered stage body (layouts only, inserted unescaped with `{{{body}}}`) |

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use handlebars::{Handlebars, RenderError, RenderErrorReason};
use serde::Serialize;

use super::money::format_amount;
use crate::reminders::Stage;

const HTML_LAYOUT: &str = "layout.html.hbs";
const TEXT_LAYOUT: &str = "layout.txt.hbs";

/// The raw values of one reminder, before formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderVars {
    /// The account's business name.
    pub account_name: String,
    /// The account's sender display name, which signs the email.
    pub sender_name: String,
    pub client_name: String,
    pub invoice_number: String,
    /// The amount still owed, in minor units of `currency`.
    pub amount_outstanding_minor: i64,
    /// Lowercase ISO 4217 code.
    pub currency: String,
    pub issued_on: NaiveDate,
    pub due_on: NaiveDate,
    /// The link where the client pays the invoice, an absolute http or https URL.
    pub pay_url: String,
    pub stage: Stage,
    /// The send day in the account's time zone, used for "due in 3 days" and "7 days ago".
    pub today: NaiveDate,
}

/// The three parts of a rendered reminder email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// A single line, trimmed.
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// The error for a template that cannot be loaded or a reminder that cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("failed to read template {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("template {template} has invalid handlebars syntax: {source}")]
    Syntax {
        template: String,
        #[source]
        source: Box<handlebars::TemplateError>,
    },

    #[error("template {template} uses unknown variable \"{variable}\"{}", describe_line(*.line))]
    UnknownVariable {
        template: String,
        variable: String,
        line: Option<usize>,
    },

    #[error("failed to render template {template}: {source}")]
    Render {
        template: String,
        #[source]
        source: Box<RenderError>,
    },

    #[error(
        "template {template} rendered an empty or multi-line subject; a subject must be one non-empty line"
    )]
    InvalidSubject { template: String },

    #[error(
        "reminder value {field} is empty; a reminder needs names, an invoice number, an amount, a due date and a pay link"
    )]
    MissingValue { field: &'static str },

    #[error("reminder value {field} is invalid: {reason}")]
    InvalidValue { field: &'static str, reason: String },
}

fn describe_line(line: Option<usize>) -> String {
    match line {
        Some(line) => format!(" on line {line}"),
        None => String::new(),
    }
}

/// The loaded and checked reminder templates.
///
/// HTML templates escape every `{{value}}`. Subject and plain-text templates do not, because HTML
/// entities would show up literally in a subject line or a text part. Both registries run in
/// strict mode, so a variable that does not exist is an error. Strict mode does not look inside
/// `{{#if}}` and `{{#each}}` conditions, so [`Templates::render`] also checks the values itself.
#[derive(Debug)]
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl Templates {
    /// Loads the layouts and every stage's templates from `dir`, then renders each stage with
    /// sample values, so that a missing file, a syntax error or an unknown variable stops start-up
    /// with an error naming the template.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);

        register(&mut html, dir, HTML_LAYOUT)?;
        register(&mut text, dir, TEXT_LAYOUT)?;
        for stage in Stage::ALL {
            let names = TemplateNames::of(stage);
            register(&mut text, dir, &names.subject)?;
            register(&mut html, dir, &names.html)?;
            register(&mut text, dir, &names.text)?;
        }

        let templates = Templates { html, text };
        for stage in Stage::ALL {
            templates.render(stage, &sample_vars(stage))?;
        }
        Ok(templates)
    }

    /// Renders the subject, HTML and plain-text parts of `stage`'s reminder.
    ///
    /// Fails without rendering when a required value is empty or invalid. Also fails when a
    /// template uses a variable that does not exist, so no email goes out with a blank field.
    pub fn render(
        &self,
        stage: Stage,
        vars: &ReminderVars,
    ) -> Result<RenderedEmail, TemplateError> {
        let values = TemplateValues::from_vars(stage, vars)?;
        let names = TemplateNames::of(stage);

        let subject = render_template(&self.text, &names.subject, &values)?;
        let subject = subject.trim();
        if subject.is_empty() || subject.contains(['\r', '\n']) {
            return Err(TemplateError::InvalidSubject {
                template: names.subject,
            });
        }

        let html_body = render_template(&self.html, &names.html, &values)?;
        let html = render_template(
            &self.html,
            HTML_LAYOUT,
            &LayoutValues {
                values: &values,
                subject,
                body: html_body.trim_end(),
            },
        )?;

        let text_body = render_template(&self.text, &names.text, &values)?;
        let text = render_template(
            &self.text,
            TEXT_LAYOUT,
            &LayoutValues {
                values: &values,
                subject,
                body: text_body.trim_end(),
            },
        )?;

        Ok(RenderedEmail {
            subject: subject.to_owned(),
            html,
            text,
        })
    }
}

/// The template names of one stage, relative to the templates directory.
struct TemplateNames {
    subject: String,
    html: String,
    text: String,
}

impl TemplateNames {
    fn of(stage: Stage) -> TemplateNames {
        let stage = stage.as_str();
        TemplateNames {
            subject: format!("reminders/{stage}.subject.hbs"),
            html: format!("reminders/{stage}.html.hbs"),
            text: format!("reminders/{stage}.txt.hbs"),
        }
    }
}

/// Reads `dir/name` and registers it under `name`, so errors carry the file's relative path.
fn register(
    registry: &mut Handlebars<'static>,
    dir: &Path,
    name: &str,
) -> Result<(), TemplateError> {
    let path = dir.join(name);
    let source = std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
        path: path.clone(),
        source,
    })?;
    registry
        .register_template_string(name, source)
        .map_err(|source| TemplateError::Syntax {
            template: name.to_owned(),
            source: Box::new(source),
        })
}

fn render_template<T: Serialize>(
    registry: &Handlebars<'static>,
    name: &str,
    data: &T,
) -> Result<String, TemplateError> {
    registry
        .render(name, data)
        .map_err(|error| describe_render_error(name, error))
}

/// Turns a strict-mode miss into [`TemplateError::UnknownVariable`] naming the template that
/// contains it, which is the layout rather than `name` when the layout is at fault.
fn describe_render_error(name: &str, error: RenderError) -> TemplateError {
    let template = error
        .template_name
        .clone()
        .unwrap_or_else(|| name.to_owned());
    match error.reason() {
        RenderErrorReason::MissingVariable(variable) => TemplateError::UnknownVariable {
            template,
            // Helpers report a missing parameter without its path.
            variable: variable.clone().unwrap_or_else(|| "(unnamed)".to_owned()),
            line: error.line_no,
        },
        _ => TemplateError::Render {
            template,
            source: Box::new(error),
        },
    }
}

/// The values the stage templates see: formatted strings and two day counts.
#[derive(Debug, Serialize)]
struct TemplateValues {
    account_name: String,
    sender_name: String,
    client_name: String,
    invoice_number: String,
    amount: String,
    currency: String,
    issued_on: String,
    due_on: String,
    due_clause: String,
    days_until_due: i64,
    days_overdue: i64,
    pay_url: String,
    stage: &'static str,
}

/// The values the layouts see: the stage values plus the subject and the rendered body.
#[derive(Serialize)]
struct LayoutValues<'a> {
    #[serde(flatten)]
    values: &'a TemplateValues,
    subject: &'a str,
    body: &'a str,
}

impl TemplateValues {
    fn from_vars(stage: Stage, vars: &ReminderVars) -> Result<TemplateValues, TemplateError> {
        if vars.stage != stage {
            return Err(TemplateError::InvalidValue {
                field: "stage",
                reason: format!(
                    "the values are for stage {} but stage {stage} was requested",
                    vars.stage
                ),
            });
        }

        let account_name = required("account_name", &vars.account_name)?;
        let sender_name = required("sender_name", &vars.sender_name)?;
        let client_name = required("client_name", &vars.client_name)?;
        let invoice_number = required("invoice_number", &vars.invoice_number)?;
        let currency = required("currency", &vars.currency)?;
        let pay_url = checked_pay_url(&vars.pay_url)?;

        if vars.amount_outstanding_minor <= 0 {
            return Err(TemplateError::InvalidValue {
                field: "amount_outstanding_minor",
                reason: format!(
                    "{} is not a positive amount; a reminder is only sent for money still owed",
                    vars.amount_outstanding_minor
                ),
            });
        }
        let amount = format_amount(vars.amount_outstanding_minor, currency).map_err(|error| {
            TemplateError::InvalidValue {
                field: "currency",
                reason: error.to_string(),
            }
        })?;

        let days_after_due = (vars.today - vars.due_on).num_days();
        Ok(TemplateValues {
            account_name: account_name.to_owned(),
            sender_name: sender_name.to_owned(),
            client_name: client_name.to_owned(),
            invoice_number: invoice_number.to_owned(),
            amount,
            currency: currency.to_ascii_uppercase(),
            issued_on: format_date(vars.issued_on),
            due_on: format_date(vars.due_on),
            due_clause: due_clause(days_after_due),
            days_until_due: (-days_after_due).max(0),
            days_overdue: days_after_due.max(0),
            pay_url: pay_url.to_owned(),
            stage: stage.as_str(),
        })
    }
}

/// Returns `value` trimmed, or an error when nothing but whitespace is left.
fn required<'a>(field: &'static str, value: &'a str) -> Result<&'a str, TemplateError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(TemplateError::MissingValue { field });
    }
    Ok(trimmed)
}

fn checked_pay_url(value: &str) -> Result<&str, TemplateError> {
    let pay_url = required("pay_url", value)?;
    let parsed = url::Url::parse(pay_url).map_err(|error| TemplateError::InvalidValue {
        field: "pay_url",
        reason: format!("{pay_url:?} is not an absolute URL: {error}"),
    })?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(TemplateError::InvalidValue {
            field: "pay_url",
            reason: format!("{pay_url:?} must use https or http"),
        });
    }
    Ok(pay_url)
}

/// Formats a date in English, such as `March 5, 2026`.
fn format_date(date: NaiveDate) -> String {
    date.format("%B %-d, %Y").to_string()
}

/// Describes the due date relative to the send day, such as `is due in 3 days` or
/// `was due yesterday`. `days_after_due` is negative before the due date.
fn due_clause(days_after_due: i64) -> String {
    match days_after_due {
        0 => "is due today".to_owned(),
        -1 => "is due tomorrow".to_owned(),
        1 => "was due yesterday".to_owned(),
        days if days < 0 => format!("is due in {} days", -days),
        days => format!("was due {days} days ago"),
    }
}

/// Returns complete values for the start-up check, sent on the stage's nominal day.
fn sample_vars(stage: Stage) -> ReminderVars {
    let due_on = NaiveDate::from_ymd_opt(2026, 3, 5).expect("March 5, 2026 is a valid date");
    ReminderVars {
        account_name: "Sample Studio".to_owned(),
        sender_name: "Sam Sample".to_owned(),
        client_name: "Sample Client".to_owned(),
        invoice_number: "INV-0001".to_owned(),
        amount_outstanding_minor: 125_000,
        currency: "usd".to_owned(),
        issued_on: due_on - chrono::Days::new(30),
        due_on,
        pay_url: "https://pay.example.com/i/INV-0001".to_owned(),
        stage,
        today: due_on + chrono::TimeDelta::days(stage.days_from_due()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field name and a change that makes that field empty or invalid.
    type Case = (&'static str, fn(&mut ReminderVars));

    fn templates_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates")
    }

    fn load_templates() -> Templates {
        Templates::load(&templates_dir()).expect("the shipped templates load")
    }

    fn vars(stage: Stage) -> ReminderVars {
        let due_on = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
        ReminderVars {
            account_name: "Studio Lumen".to_owned(),
            sender_name: "Maya Lopez".to_owned(),
            client_name: "Acme Corp".to_owned(),
            invoice_number: "INV-1042".to_owned(),
            amount_outstanding_minor: 125_000,
            currency: "usd".to_owned(),
            issued_on: NaiveDate::from_ymd_opt(2026, 2, 3).unwrap(),
            due_on,
            pay_url: "https://pay.example.com/i/1042".to_owned(),
            stage,
            today: due_on + chrono::TimeDelta::days(stage.days_from_due()),
        }
    }

    /// Copies the shipped templates into a fresh temporary directory.
    fn copy_templates() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("duespark-templates-{}", uuid::Uuid::new_v4()));
        let reminders = dir.join("reminders");
        std::fs::create_dir_all(&reminders).unwrap();
        for name in [HTML_LAYOUT, TEXT_LAYOUT] {
            std::fs::copy(templates_dir().join(name), dir.join(name)).unwrap();
        }
        for entry in std::fs::read_dir(templates_dir().join("reminders")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), reminders.join(entry.file_name())).unwrap();
        }
        dir
    }

    #[test]
    fn every_stage_shows_number_amount_date_and_link() {
        let templates = load_templates();
        for stage in Stage::ALL {
            let email = templates.render(stage, &vars(stage)).unwrap();
            let everything = format!("{}\n{}\n{}", email.subject, email.html, email.text);

            assert!(everything.contains("INV-1042"), "{stage}: invoice number");
            assert!(
                email.text.contains("INV-1042"),
                "{stage}: invoice number in text"
            );
            assert!(
                email.html.contains("INV-1042"),
                "{stage}: invoice number in HTML"
            );
            assert!(email.text.contains("$1,250.00"), "{stage}: amount in text");
            assert!(email.html.contains("$1,250.00"), "{stage}: amount in HTML");
            assert!(
                email.text.contains("March 5, 2026"),
                "{stage}: due date in text"
            );
            assert!(
                email.html.contains("March 5, 2026"),
                "{stage}: due date in HTML"
            );
            assert!(
                email.text.contains("https://pay.example.com/i/1042"),
                "{stage}: pay link in text"
            );
            assert!(
                email
                    .html
                    .contains("href=\"https://pay.example.com/i/1042\""),
                "{stage}: pay link in HTML"
            );
            assert!(email.text.contains("Acme Corp"), "{stage}: client name");
            assert!(email.text.contains("Maya Lopez"), "{stage}: sender name");
            assert!(!email.subject.contains('\n'), "{stage}: one-line subject");
        }
    }

    #[test]
    fn every_stage_subject_names_the_invoice() {
        let templates = load_templates();
        for stage in Stage::ALL {
            let email = templates.render(stage, &vars(stage)).unwrap();
            assert!(
                email.subject.contains("INV-1042"),
                "{stage}: {}",
                email.subject
            );
        }
    }

    #[test]
    fn overdue_stage_counts_days_since_due() {
        let templates = load_templates();
        let mut late = vars(Stage::Overdue7);
        late.today = NaiveDate::from_ymd_opt(2026, 3, 14).unwrap();

        let email = templates.render(Stage::Overdue7, &late).unwrap();

        assert!(email.text.contains("9 days ago"), "{}", email.text);
    }

    #[test]
    fn plain_text_and_subject_are_not_html_escaped() {
        let templates = load_templates();
        let mut values = vars(Stage::Due);
        values.account_name = "O'Brien & Sons".to_owned();
        values.invoice_number = "INV<7>".to_owned();

        let email = templates.render(Stage::Due, &values).unwrap();

        assert!(email.text.contains("O'Brien & Sons"), "{}", email.text);
        assert!(email.subject.contains("INV<7>"), "{}", email.subject);
        assert!(
            email.html.contains("O&#x27;Brien &amp; Sons"),
            "{}",
            email.html
        );
        assert!(email.html.contains("INV&lt;7&gt;"), "{}", email.html);
    }

    #[test]
    fn client_name_with_braces_is_escaped_in_html() {
        let templates = load_templates();
        let mut values = vars(Stage::Due);
        values.client_name = "{{account_name}} <script>alert(1)</script>".to_owned();

        let email = templates.render(Stage::Due, &values).unwrap();

        assert!(
            email
                .html
                .contains("{{account_name}} &lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            email.html
        );
        assert!(!email.html.contains("<script>"));
        assert!(
            email.text.contains("{{account_name}} <script>"),
            "{}",
            email.text
        );
    }

    #[test]
    fn unknown_variable_fails_load_naming_template() {
        let dir = copy_templates();
        let path = dir.join("reminders/due.html.hbs");
        let original = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{original}\n<p>{{{{amount_owed}}}}</p>\n")).unwrap();

        let error = Templates::load(&dir).unwrap_err();

        match &error {
            TemplateError::UnknownVariable {
                template, variable, ..
            } => {
                assert_eq!(template, "reminders/due.html.hbs");
                assert_eq!(variable, "amount_owed");
            }
            other => panic!("expected an unknown-variable error, got {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.starts_with(
                "template reminders/due.html.hbs uses unknown variable \"amount_owed\""
            ),
            "{message}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_variable_in_layout_names_layout() {
        let dir = copy_templates();
        let path = dir.join(TEXT_LAYOUT);
        let original = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{original}\n{{{{unsubscribe_url}}}}\n")).unwrap();

        let error = Templates::load(&dir).unwrap_err();

        assert!(
            error
                .to_string()
                .starts_with("template layout.txt.hbs uses unknown variable \"unsubscribe_url\""),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_template_file_fails_load() {
        let dir = copy_templates();
        std::fs::remove_file(dir.join("reminders/final.txt.hbs")).unwrap();

        let error = Templates::load(&dir).unwrap_err();

        assert!(
            matches!(&error, TemplateError::Read { path, .. } if path.ends_with("reminders/final.txt.hbs")),
            "{error:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn syntax_error_fails_load_naming_template() {
        let dir = copy_templates();
        std::fs::write(dir.join("reminders/upcoming.subject.hbs"), "{{#if stage}}").unwrap();

        let error = Templates::load(&dir).unwrap_err();

        assert!(
            matches!(&error, TemplateError::Syntax { template, .. } if template == "reminders/upcoming.subject.hbs"),
            "{error:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn empty_required_values_are_rejected() {
        let templates = load_templates();
        let cases: [Case; 6] = [
            ("account_name", |v| v.account_name = " ".to_owned()),
            ("sender_name", |v| v.sender_name.clear()),
            ("client_name", |v| v.client_name.clear()),
            ("invoice_number", |v| v.invoice_number = "\t".to_owned()),
            ("currency", |v| v.currency.clear()),
            ("pay_url", |v| v.pay_url.clear()),
        ];
        for (expected_field, blank) in cases {
            let mut values = vars(Stage::Due);
            blank(&mut values);

            let error = templates.render(Stage::Due, &values).unwrap_err();

            assert!(
                matches!(error, TemplateError::MissingValue { field } if field == expected_field),
                "{expected_field}: {error:?}"
            );
        }
    }

    #[test]
    fn invalid_values_are_rejected() {
        let templates = load_templates();
        let cases: [Case; 5] = [
            ("amount_outstanding_minor", |v| {
                v.amount_outstanding_minor = 0
            }),
            ("amount_outstanding_minor", |v| {
                v.amount_outstanding_minor = -5
            }),
            ("currency", |v| v.currency = "xyz".to_owned()),
            ("pay_url", |v| v.pay_url = "javascript:alert(1)".to_owned()),
            ("pay_url", |v| v.pay_url = "/relative/path".to_owned()),
        ];
        for (expected_field, break_value) in cases {
            let mut values = vars(Stage::Due);
            break_value(&mut values);

            let error = templates.render(Stage::Due, &values).unwrap_err();

            assert!(
                matches!(error, TemplateError::InvalidValue { field, .. } if field == expected_field),
                "{expected_field}: {error:?}"
            );
        }
    }

    #[test]
    fn stage_mismatch_is_rejected() {
        let templates = load_templates();

        let error = templates
            .render(Stage::Final, &vars(Stage::Due))
            .unwrap_err();

        assert!(
            matches!(error, TemplateError::InvalidValue { field: "stage", .. }),
            "{error:?}"
        );
    }

    #[test]
    fn templates_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Templates>();
    }

    #[test]
    fn due_clause_wording() {
        assert_eq!(due_clause(-3), "is due in 3 days");
        assert_eq!(due_clause(-1), "is due tomorrow");
        assert_eq!(due_clause(0), "is due today");
        assert_eq!(due_clause(1), "was due yesterday");
        assert_eq!(due_clause(30), "was due 30 days ago");
    }

    #[test]
    fn dates_are_written_in_english() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
        assert_eq!(format_date(date), "March 5, 2026");
        let date = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert_eq!(format_date(date), "December 31, 2026");
    }
}
