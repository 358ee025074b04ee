//! Mail templates: built-in English defaults, and overrides read once at start from
//! `HELLOJOHN_EMAIL_TEMPLATES_DIR`.
//!
//! ```text
//! $HELLOJOHN_EMAIL_TEMPLATES_DIR/
//!   verify_email.subject  verify_email.txt  verify_email.html       every tenant
//!   password_reset.subject ...
//!   acme/                                                           tenant `acme` only
//!     verify_email.html ...
//! ```
//!
//! Each part (subject, text, HTML) is looked up on its own: the tenant's file, else the global
//! one, else the built-in default. A file over [`MAX_TEMPLATE_BYTES`] or not UTF-8 stops the
//! start. Variables are `{{email}}`, `{{tenant_name}}`, `{{link}}` and `{{expires_in}}`;
//! rendering is one pass over the template, so a value is never scanned for placeholders
//! (an email address holding `{{link}}` stays text). Values are HTML-escaped in the HTML part;
//! the subject loses every control character (no header injection); an unknown `{{name}}` is
//! left as it is.

use std::collections::HashMap;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auth::ports::MailKind;

/// The largest template file accepted.
pub const MAX_TEMPLATE_BYTES: u64 = 64 * 1024;

/// Every kind of mail, with its template name ([`MailKind::as_str`]).
pub const KINDS: [MailKind; 2] = [MailKind::VerifyEmail, MailKind::PasswordReset];

/// The three parts of a template, or of a rendered mail.
#[derive(Clone, PartialEq, Eq)]
pub struct Parts {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl fmt::Debug for Parts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parts")
            .field("subject", &self.subject)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field("html", &format_args!("<{} bytes>", self.html.len()))
            .finish()
    }
}

/// Why the templates cannot be used: the start stops with this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "email template {}: {} (HELLOJOHN_EMAIL_TEMPLATES_DIR)",
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for TemplateError {}

/// The values a template is rendered with.
#[derive(Clone, Copy)]
pub struct Vars<'a> {
    pub email: &'a str,
    pub tenant_name: &'a str,
    pub link: &'a str,
    pub expires_in: &'a str,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "email" => Some(self.email),
            "tenant_name" => Some(self.tenant_name),
            "link" => Some(self.link),
            "expires_in" => Some(self.expires_in),
            _ => None,
        }
    }
}

/// A part overridden by a file; `None` parts fall back.
#[derive(Debug, Clone, Default)]
struct Overrides {
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
}

/// Every template, resolved at start: built-in, global and per-tenant overrides.
#[derive(Debug, Clone)]
pub struct Templates {
    /// Per kind: the built-in parts with the global overrides applied.
    global: HashMap<&'static str, Parts>,
    /// Per tenant slug, per kind: that tenant's overrides.
    tenants: HashMap<String, HashMap<&'static str, Overrides>>,
}

impl Templates {
    /// The built-in English templates only.
    pub fn builtin() -> Templates {
        Templates {
            global: KINDS.iter().map(|k| (k.as_str(), builtin(*k))).collect(),
            tenants: HashMap::new(),
        }
    }

    /// The built-in templates with the overrides of `dir`, when set.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut templates = Templates::builtin();
        let Some(dir) = dir else {
            return Ok(templates);
        };
        let global = read_dir_overrides(dir, true)?;
        for (kind, o) in global.overrides {
            if let Some(parts) = templates.global.get_mut(kind) {
                apply(parts, o);
            }
        }
        for (slug, path) in global.tenant_dirs {
            let tenant = read_dir_overrides(&path, false)?;
            templates.tenants.insert(slug, tenant.overrides);
        }
        let tenants = templates.tenants.len();
        tracing::info!(dir = %dir.display(), tenants, "email templates loaded");
        Ok(templates)
    }

    /// The parts of `kind` for the tenant with `slug`.
    pub fn parts(&self, kind: MailKind, slug: &str) -> Parts {
        let mut parts = self
            .global
            .get(kind.as_str())
            .cloned()
            .unwrap_or_else(|| builtin(kind));
        if let Some(o) = self.tenants.get(slug).and_then(|t| t.get(kind.as_str())) {
            apply(&mut parts, o.clone());
        }
        parts
    }

    /// Renders `kind` for the tenant with `slug`.
    pub fn render(&self, kind: MailKind, slug: &str, vars: &Vars<'_>) -> Parts {
        let t = self.parts(kind, slug);
        Parts {
            subject: subject_line(&render(&t.subject, vars, Escape::None)),
            text: render(&t.text, vars, Escape::None),
            html: render(&t.html, vars, Escape::Html),
        }
    }
}

fn apply(parts: &mut Parts, o: Overrides) {
    if let Some(s) = o.subject {
        parts.subject = s;
    }
    if let Some(t) = o.text {
        parts.text = t;
    }
    if let Some(h) = o.html {
        parts.html = h;
    }
}

struct DirOverrides {
    overrides: HashMap<&'static str, Overrides>,
    /// Subdirectories (tenant slugs), from the top directory only.
    tenant_dirs: Vec<(String, PathBuf)>,
}

fn error(path: &Path, reason: impl Into<String>) -> TemplateError {
    TemplateError {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads the template files of one directory.
fn read_dir_overrides(dir: &Path, top: bool) -> Result<DirOverrides, TemplateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| error(dir, format!("cannot read: {e}")))?;
    let mut out = DirOverrides {
        overrides: HashMap::new(),
        tenant_dirs: Vec::new(),
    };
    for entry in entries {
        let entry = entry.map_err(|e| error(dir, format!("cannot read: {e}")))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            tracing::warn!(path = %path.display(), "ignoring an email template file with a non-UTF-8 name");
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // Follows symbolic links (a mounted ConfigMap is made of them).
        let meta =
            std::fs::metadata(&path).map_err(|e| error(&path, format!("cannot read: {e}")))?;
        if meta.is_dir() {
            if top {
                out.tenant_dirs.push((name, path));
            } else {
                tracing::warn!(path = %path.display(), "ignoring a directory inside a tenant's email templates");
            }
            continue;
        }
        let known = name.rsplit_once('.').and_then(|(stem, ext)| {
            let kind = KINDS.iter().find(|k| k.as_str() == stem)?.as_str();
            matches!(ext, "subject" | "txt" | "html").then_some((kind, ext))
        });
        let Some((kind, ext)) = known else {
            tracing::warn!(
                path = %path.display(),
                "ignoring an unknown email template file (expected <kind>.subject, .txt or .html \
                 with kind verify_email or password_reset)"
            );
            continue;
        };
        let text = read_template(&path, meta.len())?;
        let o = out.overrides.entry(kind).or_default();
        match ext {
            "subject" => o.subject = Some(text),
            "txt" => o.text = Some(text),
            _ => o.html = Some(text),
        }
    }
    Ok(out)
}

/// One template file: at most [`MAX_TEMPLATE_BYTES`], UTF-8.
fn read_template(path: &Path, len: u64) -> Result<String, TemplateError> {
    let too_big = || {
        error(
            path,
            format!(
                "larger than {MAX_TEMPLATE_BYTES} bytes ({} KiB)",
                MAX_TEMPLATE_BYTES / 1024
            ),
        )
    };
    if len > MAX_TEMPLATE_BYTES {
        return Err(too_big());
    }
    let file = std::fs::File::open(path).map_err(|e| error(path, format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_TEMPLATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        error(
            path,
            format!(
                "not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Html,
}

/// Replaces `{{name}}` (spaces inside the braces allowed) in one pass: values are copied, never
/// scanned again. Unknown names are left as they are.
fn render(template: &str, vars: &Vars<'_>, escape: Escape) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            rest = &rest[open..];
            break;
        };
        let name = after[..close].trim();
        match vars.get(name) {
            Some(value) => {
                match escape {
                    Escape::None => out.push_str(value),
                    Escape::Html => html_escape(value, &mut out),
                }
                rest = &after[close + 2..];
            }
            None => {
                // Leave `{{` as text and go on after it: `{{{{link}}` still finds `{{link}}`.
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A subject header's text: CR, LF and every other control character removed, trimmed.
fn subject_line(s: &str) -> String {
    let line: String = s.chars().filter(|c| !c.is_control()).collect();
    line.trim().to_string()
}

/// A link's life for people: `48 hours`, `1 hour`, `30 minutes`, `7 days`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    // Whole units only (`u64::is_multiple_of` is newer than the workspace's rust-version).
    let whole = |unit: u64| secs / unit * unit == secs;
    let (n, unit) = if whole(86_400) && secs / 86_400 > 2 {
        (secs / 86_400, "day")
    } else if whole(3600) {
        (secs / 3600, "hour")
    } else if whole(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// The built-in English template of `kind`.
fn builtin(kind: MailKind) -> Parts {
    let (subject, text, html) = match kind {
        MailKind::VerifyEmail => (VERIFY_SUBJECT, VERIFY_TEXT, VERIFY_HTML),
        MailKind::PasswordReset => (RESET_SUBJECT, RESET_TEXT, RESET_HTML),
    };
    Parts {
        subject: subject.to_string(),
        text: text.to_string(),
        html: html.to_string(),
    }
}

const VERIFY_SUBJECT: &str = "Confirm your email address for {{tenant_name}}";

const VERIFY_TEXT: &str = "Hello,

please confirm that {{email}} is your email address for {{tenant_name}} by opening this link:

{{link}}

The link works once, for {{expires_in}}.

If you did not sign up for {{tenant_name}}, you can ignore this message.
";

const VERIFY_HTML: &str = r#"<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Confirm your email address</title></head>
<body style="font-family: sans-serif; line-height: 1.5; color: #222;">
<p>Hello,</p>
<p>please confirm that <strong>{{email}}</strong> is your email address for {{tenant_name}}.</p>
<p><a href="{{link}}" style="display: inline-block; padding: 10px 18px; background: #2d5be3; color: #fff; text-decoration: none; border-radius: 4px;">Confirm my email address</a></p>
<p>Or open this link: <a href="{{link}}">{{link}}</a></p>
<p>The link works once, for {{expires_in}}.</p>
<p style="color: #666;">If you did not sign up for {{tenant_name}}, you can ignore this message.</p>
</body>
</html>
"#;

const RESET_SUBJECT: &str = "Reset your password for {{tenant_name}}";

const RESET_TEXT: &str = "Hello,

someone asked to reset the password of {{email}} for {{tenant_name}}. To choose a new password, open this link:

{{link}}

The link works once, for {{expires_in}}.

If you did not ask for this, you can ignore this message: your password stays as it is.
";

const RESET_HTML: &str = r#"<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Reset your password</title></head>
<body style="font-family: sans-serif; line-height: 1.5; color: #222;">
<p>Hello,</p>
<p>someone asked to reset the password of <strong>{{email}}</strong> for {{tenant_name}}.</p>
<p><a href="{{link}}" style="display: inline-block; padding: 10px 18px; background: #2d5be3; color: #fff; text-decoration: none; border-radius: 4px;">Choose a new password</a></p>
<p>Or open this link: <a href="{{link}}">{{link}}</a></p>
<p>The link works once, for {{expires_in}}.</p>
<p style="color: #666;">If you did not ask for this, you can ignore this message: your password stays as it is.</p>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(email: &'a str, link: &'a str) -> Vars<'a> {
        Vars {
            email,
            tenant_name: "Acme & Co",
            link,
            expires_in: "48 hours",
        }
    }

    #[test]
    fn one_pass_never_rescans_values() {
        let v = vars("{{link}}@example.com", "https://a.test/v?token=T&x=1");
        assert_eq!(
            render("to {{email}} {{ link }} {{nope}} {{", &v, Escape::None),
            "to {{link}}@example.com https://a.test/v?token=T&x=1 {{nope}} {{"
        );
        assert_eq!(
            render("{{{{link}}", &v, Escape::None),
            "{{https://a.test/v?token=T&x=1"
        );
        assert_eq!(render("}}{{email", &v, Escape::None), "}}{{email");
    }

    #[test]
    fn html_values_are_escaped() {
        let v = vars("<script>@x.test", "https://a.test/v?token=T&x=\"1'");
        assert_eq!(
            render(
                r#"<a href="{{link}}">{{email}}</a> {{tenant_name}}"#,
                &v,
                Escape::Html
            ),
            "<a href=\"https://a.test/v?token=T&amp;x=&quot;1&#39;\">&lt;script&gt;@x.test</a> \
             Acme &amp; Co"
        );
    }

    #[test]
    fn subjects_lose_line_breaks() {
        let t = Templates::builtin();
        let mut v = vars("a@b.test", "L");
        v.tenant_name = "Evil\r\nBcc: x@y.test";
        let p = t.render(MailKind::VerifyEmail, "any", &v);
        assert_eq!(
            p.subject,
            "Confirm your email address for EvilBcc: x@y.test"
        );
        assert!(p.text.contains("L\n"));
    }

    #[test]
    fn durations_read_as_people_write_them() {
        for (secs, text) in [
            (48 * 3600, "48 hours"),
            (3600, "1 hour"),
            (1800, "30 minutes"),
            (7 * 86_400, "7 days"),
            (90, "90 seconds"),
            (60, "1 minute"),
        ] {
            assert_eq!(human_duration(Duration::from_secs(secs)), text);
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "hj-templates-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn overrides_per_part_global_then_tenant() {
        let d = dir("ok");
        std::fs::write(d.join("verify_email.subject"), "Global {{tenant_name}}\n").unwrap();
        std::fs::write(d.join("verify_email.txt"), "global text {{link}}").unwrap();
        std::fs::create_dir(d.join("acme")).unwrap();
        std::fs::write(d.join("acme/verify_email.txt"), "acme text {{link}}").unwrap();
        std::fs::write(d.join("README"), "ignored").unwrap();
        let t = Templates::load(Some(&d)).unwrap();
        let v = vars("a@b.test", "L");
        let acme = t.render(MailKind::VerifyEmail, "acme", &v);
        assert_eq!(acme.subject, "Global Acme & Co");
        assert_eq!(acme.text, "acme text L");
        assert!(acme.html.contains("href=\"L\""), "built-in HTML");
        let other = t.render(MailKind::VerifyEmail, "other", &v);
        assert_eq!(other.text, "global text L");
        let reset = t.render(MailKind::PasswordReset, "acme", &v);
        assert_eq!(reset.subject, "Reset your password for Acme & Co");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn big_or_binary_templates_stop_the_start() {
        let d = dir("big");
        std::fs::create_dir(d.join("acme")).unwrap();
        std::fs::write(
            d.join("acme/password_reset.html"),
            vec![b'a'; MAX_TEMPLATE_BYTES as usize + 1],
        )
        .unwrap();
        let e = Templates::load(Some(&d)).unwrap_err();
        assert!(e.path.ends_with("acme/password_reset.html"), "{e}");
        assert!(e.to_string().contains("larger than 65536 bytes"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();

        let d = dir("bin");
        std::fs::write(d.join("verify_email.txt"), b"ok \xff\xfe").unwrap();
        let e = Templates::load(Some(&d)).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();

        let missing = std::env::temp_dir().join("hj-templates-missing-dir-xyz");
        let e = Templates::load(Some(&missing)).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
        // Exactly the limit is fine.
        let d = dir("limit");
        std::fs::write(
            d.join("verify_email.txt"),
            vec![b'a'; MAX_TEMPLATE_BYTES as usize],
        )
        .unwrap();
        assert!(Templates::load(Some(&d)).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
