//! End-to-end tests: the real `mmon` binary in a fresh temp directory.
//!
//! Every test goes through [`Mmon`], which runs the binary with a clean
//! environment and returns exit code, stdout, stderr and the directory so
//! tests can check the files it wrote. One module per command.

mod checkpoint;
mod default_config;
mod eval;
mod generate;
#[cfg(feature = "nats")]
mod nats;
mod newcomer;
mod outputs;
mod parity;
mod replay;
mod reports;
mod retrain;
mod watch;
mod windows;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

struct Mmon {
    /// A program that runs `mmon` (such as `taskset -c 0`), if any.
    under: Vec<String>,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    dir: tempfile::TempDir,
}

impl Mmon {
    fn new(args: &[&str]) -> Mmon {
        Mmon {
            under: Vec::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: None,
            env: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Copies `fixtures/NAME` into the run's directory under the same name.
    fn fixture(self, name: &str) -> Mmon {
        std::fs::copy(Path::new(FIXTURES).join(name), self.dir.path().join(name))
            .expect("copy fixture");
        self
    }

    /// Writes `name` (its folders created) in the run's directory.
    fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Mmon {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(path, contents).expect("write file");
        self
    }

    fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Mmon {
        self.stdin = Some(bytes.into());
        self
    }

    fn env(mut self, key: &str, value: &str) -> Mmon {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs `mmon` through `program` (its name and first arguments).
    fn under(mut self, program: &[&str]) -> Mmon {
        self.under = program.iter().map(|s| s.to_string()).collect();
        self
    }

    fn command(&self) -> Command {
        let mmon = env!("CARGO_BIN_EXE_mmon");
        let mut cmd = match self.under.split_first() {
            Some((program, first)) => {
                let mut cmd = Command::new(program);
                cmd.args(first).arg(mmon);
                cmd
            }
            None => Command::new(mmon),
        };
        cmd.args(&self.args)
            .current_dir(self.dir.path())
            .env_remove("MMON_CONFIG")
            .env_remove("RUST_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts `mmon` without waiting, so a test can signal it.
    fn spawn(self) -> Running {
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mmon");
        Running {
            child,
            dir: self.dir,
        }
    }

    fn run(self) -> Outcome {
        let mut child = self
            .command()
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mmon");
        if let Some(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(bytes).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir: self.dir,
        }
    }
}

/// A `mmon` started by [`Mmon::spawn`].
struct Running {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Running {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits until `cond` holds, for up to 30 s.
    fn wait_for(&self, what: &str, cond: impl Fn(&Running) -> bool) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !cond(self) {
            assert!(
                std::time::Instant::now() < until,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal mmon");
    }

    fn wait(self) -> Outcome {
        let out = self.child.wait_with_output().expect("wait");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir: self.dir,
        }
    }
}

impl Outcome {
    /// Another `mmon` in the same directory, to run after this one.
    fn then(self, args: &[&str]) -> Mmon {
        Mmon {
            under: Vec::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: None,
            env: Vec::new(),
            dir: self.dir,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }

    fn windows(&self) -> Vec<Value> {
        self.json()["windows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn point(index: u64, file: &str, line: u64, timestamp: &str) -> Value {
    serde_json::json!({"index": index, "file": file, "line": line, "timestamp": timestamp})
}

/// A log of one model whose accuracy follows `f(i)`, one record per second.
pub fn accuracy_log(n: usize, f: impl Fn(usize) -> f64) -> String {
    (0..n)
        .map(|i| format!("{{\"timestamp\":{},\"model_id\":\"m\",\"model_version\":\"1.0.0\",\"accuracy\":{}}}\n", 1_709_251_200 + i, f(i)))
        .collect()
}
