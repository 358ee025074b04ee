//! Helpers shared by the `hj` binary's tests: run the binary, start a server, signal it.
#![allow(dead_code)] // Each test binary uses its own subset.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn hj() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hj"));
    // The test process's own HELLOJOHN_* variables must not leak into the child.
    for (k, _) in std::env::vars() {
        if k.starts_with("HELLOJOHN_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    testkit::temp_dir(&format!("cli-{tag}"))
}

/// A server process; killed if the test fails before it exits.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hj serve` on port 0 and finds the port in its "listening" log line.
pub fn start_server(extra: &[(&str, &str)]) -> Server {
    let dir = temp_dir("serve");
    let mut cmd = hj();
    cmd.arg("serve")
        .env("HELLOJOHN_LISTEN", "127.0.0.1:0")
        .env("HELLOJOHN_DATA_DIR", &dir)
        .env("HELLOJOHN_SHARDS", "2")
        .env("HELLOJOHN_WORKERS", "1")
        .env("HELLOJOHN_ARGON2_MEMORY_KIB", "64")
        .env("HELLOJOHN_ARGON2_ITERATIONS", "1")
        .env("HELLOJOHN_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(t) = &tx {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["message"] == "listening" {
                        let addr: SocketAddr = v["addr"].as_str().unwrap().parse().unwrap();
                        let _ = t.send(addr);
                        tx = None;
                    }
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server did not start");
    Server { child, addr, dir }
}

pub fn signal(child: &Child, sig: i32) {
    let rc = unsafe_free_kill(child.id(), sig);
    assert!(rc, "kill failed");
}

/// Sends a signal with the `kill` command, keeping the test free of unsafe code.
pub fn unsafe_free_kill(pid: u32, sig: i32) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
