//! Email through SMTP (Airflow's `SmtpNotifier` and `email_on_failure`), with `lettre`. The
//! connection (`smtp_default` unless named) gives the server, the login and, in its extra,
//! Airflow's `SmtpHook` settings: `from_email`, `disable_ssl` (else implicit TLS, port 465),
//! `disable_tls` (with `disable_ssl`: else STARTTLS, port 587; both off: plain, port 25).

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use updraft_template::TemplateConnection;

use super::DeliveryError;

pub(super) struct Mail<'a> {
    pub to: &'a [String],
    pub cc: &'a [String],
    pub bcc: &'a [String],
    pub from_email: Option<&'a str>,
    pub subject: &'a str,
    pub html_content: &'a str,
}

fn permanent(what: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::Permanent(what.to_string())
}

fn mailbox(address: &str) -> Result<Mailbox, DeliveryError> {
    address
        .trim()
        .parse()
        .map_err(|e| permanent(format!("bad email address {address:?}: {e}")))
}

pub(super) async fn send(
    connection: &TemplateConnection,
    mail: &Mail<'_>,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    let extra: serde_json::Value = connection
        .extra
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| permanent(format!("the SMTP connection's extra is not JSON: {e}")))?
        .unwrap_or_default();
    let flag = |key: &str| match &extra[key] {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let from = mail
        .from_email
        .map(str::to_string)
        .or_else(|| extra["from_email"].as_str().map(str::to_string))
        .or_else(|| connection.login.clone().filter(|l| l.contains('@')))
        .ok_or_else(|| {
            permanent("no sender: give `from_email`, or `from_email` in the connection's extra")
        })?;
    let mut message = Message::builder()
        .from(mailbox(&from)?)
        .subject(mail.subject);
    for to in mail.to {
        message = message.to(mailbox(to)?);
    }
    for cc in mail.cc {
        message = message.cc(mailbox(cc)?);
    }
    for bcc in mail.bcc {
        message = message.bcc(mailbox(bcc)?);
    }
    let message = message
        .header(ContentType::TEXT_HTML)
        .body(mail.html_content.to_string())
        .map_err(|e| permanent(format!("cannot make the email: {e}")))?;

    let host = connection
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            permanent(format!(
                "the connection `{}` has no host",
                connection.conn_id
            ))
        })?;
    let (builder, default_port) = if !flag("disable_ssl") {
        (AsyncSmtpTransport::<Tokio1Executor>::relay(&host), 465)
    } else if !flag("disable_tls") {
        (
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host),
            587,
        )
    } else {
        (
            Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &host,
            )),
            25,
        )
    };
    let mut builder = builder
        .map_err(|e| permanent(format!("SMTP server {host}: {e}")))?
        .port(connection.port.map_or(default_port, |p| p as u16))
        .timeout(Some(timeout));
    if let (Some(login), Some(password)) = (&connection.login, &connection.password) {
        if !login.is_empty() {
            builder = builder.credentials(Credentials::new(login.clone(), password.clone()));
        }
    }
    let transport = builder.build();
    match transport.send(message).await {
        Ok(_) => Ok(()),
        // A refusal of the message or its recipients (5xx) will be refused again.
        Err(e) if e.is_permanent() => Err(permanent(format!("SMTP server {host}: {e}"))),
        Err(e) => Err(DeliveryError::Transient(format!("SMTP server {host}: {e}"))),
    }
}
