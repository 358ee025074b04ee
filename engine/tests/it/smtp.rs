//! A real SMTP server on loopback for the mail tests: `scripts/smtp_sink.py` (aiosmtpd), which
//! writes every message it accepts to a directory. Killed when dropped.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message as sent (DATA).
    pub raw: String,
    /// The envelope.
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Decoded by Python's email package: `subject`, `from`, `to`, `message_id`,
    /// `content_type`, `text`, `html`.
    pub message: Value,
}

impl Received {
    /// A decoded field of the message (`""` when absent).
    pub fn field(&self, name: &str) -> &str {
        self.message[name].as_str().unwrap_or("")
    }

    /// The mail's outbox id, from its `Message-ID` (`<id@domain>`).
    pub fn mail_id(&self) -> String {
        let id = self.field("message_id");
        id.trim_start_matches('<')
            .split('@')
            .next()
            .unwrap_or("")
            .to_string()
    }
}

/// The Python that has aiosmtpd: `HJ_TEST_PYTHON`, else the system's (`python3-aiosmtpd` is a
/// Debian package; a `python3` earlier on PATH, such as pyenv's, may lack it).
fn python() -> String {
    if let Ok(p) = std::env::var("HJ_TEST_PYTHON") {
        return p;
    }
    if Path::new("/usr/bin/python3").exists() {
        return "/usr/bin/python3".to_string();
    }
    "python3".to_string()
}

/// `scripts/smtp_sink.py`, running.
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl SmtpSink {
    /// A sink on a free port.
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(0, &[])
    }

    /// A sink on `port` (0: a free one), with extra environment (`SMTP_SINK_SLOW_*`).
    pub fn start_with(port: u16, env: &[(&str, &str)]) -> SmtpSink {
        let dir = testkit::temp_dir("smtp-sink");
        // Its log goes to a file: a pipe nobody reads could fill and stall it.
        let log = std::fs::File::create(dir.join("sink.log")).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(&dir)
            .arg(port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let Some(port) = line
            .trim()
            .strip_prefix("PORT=")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(dir.join("sink.log")).unwrap_or_default();
            panic!(
                "the SMTP sink did not start (is python3-aiosmtpd installed? `bash \
                 scripts/services.sh install-deps`): {line:?} {err}"
            );
        };
        SmtpSink { port, dir, child }
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut out = Vec::new();
        for n in 1.. {
            let eml = self.dir.join(format!("{n}.eml"));
            let Ok(raw) = std::fs::read(&eml) else { break };
            let envelope: Value =
                serde_json::from_slice(&std::fs::read(self.dir.join(format!("{n}.json"))).unwrap())
                    .unwrap();
            out.push(Received {
                raw: String::from_utf8_lossy(&raw).into_owned(),
                mail_from: envelope["mail_from"].as_str().unwrap_or("").to_string(),
                rcpt_tos: envelope["rcpt_tos"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                message: envelope["message"].clone(),
            });
        }
        out
    }

    /// Waits until at least `n` messages have arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < timeout,
                "{} of {n} messages after {timeout:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port where nothing listens (bound, noted, released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
