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
#[cfg(feature = "nats")]
mod nats_cluster;
mod newcomer;
mod outputs;
mod parity;
mod replay;
mod reports;
mod retrain;
mod watch;
mod windows;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// How long [`Running::wait_for`] waits unless [`Mmon::timeout`] says otherwise.
const PATIENCE: Duration = Duration::from_secs(30);

/// The directory a run happens in: a fresh one, removed with the last
/// value that holds it, or one that belongs to someone else.
enum Dir {
    Temp(tempfile::TempDir),
    At(PathBuf),
}

impl Dir {
    fn path(&self) -> &Path {
        match self {
            Dir::Temp(t) => t.path(),
            Dir::At(p) => p,
        }
    }
}

/// One run of `mmon`, built up and then [`run`](Mmon::run) (or
/// [`spawn`](Mmon::spawn)ed); expectations set on it are checked when it ends.
struct Mmon {
    /// A program that runs `mmon` (such as `taskset -c 0`), if any.
    under: Vec<String>,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    env: Vec<(String, String)>,
    dir: Dir,
    code: Option<i32>,
    stderr_contains: Vec<String>,
    timeout: Duration,
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    dir: Dir,
}

impl Mmon {
    /// `mmon ARGS` in a fresh temp directory.
    fn new(args: &[&str]) -> Mmon {
        Mmon::with_dir(Dir::Temp(tempfile::tempdir().expect("temp dir")), args)
    }

    /// `mmon ARGS` in `dir`, which the caller keeps (a second run in the
    /// directory of a first, a scene of several runs).
    fn in_dir(dir: &Path, args: &[&str]) -> Mmon {
        Mmon::with_dir(Dir::At(dir.to_path_buf()), args)
    }

    fn with_dir(dir: Dir, args: &[&str]) -> Mmon {
        Mmon {
            under: Vec::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: None,
            env: Vec::new(),
            dir,
            code: None,
            stderr_contains: Vec::new(),
            timeout: PATIENCE,
        }
    }

    /// More arguments, after those given so far.
    fn args(mut self, more: &[&str]) -> Mmon {
        self.args.extend(more.iter().map(|s| s.to_string()));
        self
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

    /// How long [`Running::wait_for`] waits before failing the test.
    fn timeout(mut self, timeout: Duration) -> Mmon {
        self.timeout = timeout;
        self
    }

    /// The run must end with exit code `code`.
    fn expect_code(mut self, code: i32) -> Mmon {
        self.code = Some(code);
        self
    }

    /// The run's stderr must contain `text`.
    fn stderr_contains(mut self, text: &str) -> Mmon {
        self.stderr_contains.push(text.into());
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

    /// Starts `mmon` without waiting, so a test can watch its output, change
    /// its files and signal it; expectations are checked when it ends.
    fn spawn(self) -> Running {
        self.try_spawn().expect("spawn mmon")
    }

    /// [`Mmon::spawn`], or the error when the program cannot be started
    /// (an [`under`](Mmon::under) program that is not installed).
    fn try_spawn(self) -> std::io::Result<Running> {
        let mut child = self
            .command()
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipes: [(Box<dyn Read + Send>, _); 2] = [
            (
                Box::new(child.stdout.take().expect("stdout")),
                stdout.clone(),
            ),
            (
                Box::new(child.stderr.take().expect("stderr")),
                stderr.clone(),
            ),
        ];
        let readers = pipes
            .into_iter()
            .map(|(mut pipe, sink)| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 << 10];
                    while let Ok(n) = pipe.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        sink.lock().expect("lock").extend_from_slice(&buf[..n]);
                    }
                })
            })
            .collect();
        if let Some(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(bytes).expect("write stdin");
        }
        Ok(Running {
            child,
            stdout,
            stderr,
            readers,
            dir: self.dir,
            code: self.code,
            stderr_contains: self.stderr_contains,
            timeout: self.timeout,
        })
    }

    /// Runs `mmon` to its end.
    fn run(self) -> Outcome {
        self.spawn().wait()
    }
}

/// A `mmon` started by [`Mmon::spawn`]; killed if dropped while running.
struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    dir: Dir,
    code: Option<i32>,
    stderr_contains: Vec<String>,
    timeout: Duration,
}

impl Running {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to stdout so far.
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("lock")).into_owned()
    }

    /// What it wrote to stderr so far.
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("lock")).into_owned()
    }

    /// Waits until `cond` holds, for up to the run's timeout.
    fn wait_for(&self, what: &str, cond: impl Fn(&Running) -> bool) {
        let until = Instant::now() + self.timeout;
        while !cond(self) {
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stderr contains `text`.
    fn wait_stderr(&self, text: &str) {
        self.wait_for(text, |r| r.stderr().contains(text));
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal mmon");
    }

    /// SIGKILL, then what it wrote before it died (no expectations checked).
    fn kill(mut self) -> Outcome {
        let _ = self.child.kill();
        self.code = None;
        self.stderr_contains.clear();
        self.wait()
    }

    /// Waits for the end, then for its output to the end of the pipes (a
    /// few seconds at most, should a child of mmon hold them), and checks
    /// the expectations.
    fn wait(mut self) -> Outcome {
        let status = self.child.wait().expect("wait");
        let until = Instant::now() + Duration::from_secs(10);
        for reader in std::mem::take(&mut self.readers) {
            while !reader.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                reader.join().expect("reader thread");
            }
        }
        let out = Outcome {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout(),
            stderr: self.stderr(),
            dir: std::mem::replace(&mut self.dir, Dir::At(PathBuf::new())),
        };
        if let Some(code) = self.code {
            assert_eq!(
                out.code, code,
                "exit code\nstdout:\n{}\nstderr:\n{}",
                out.stdout, out.stderr
            );
        }
        for text in &self.stderr_contains {
            assert!(
                out.stderr.contains(text.as_str()),
                "stderr does not contain {text:?}:\n{}",
                out.stderr
            );
        }
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Ended already when `wait` ran; a test that failed half-way
        // leaves no mmon behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Outcome {
    /// Another `mmon` in the same directory, to run after this one.
    fn then(self, args: &[&str]) -> Mmon {
        Mmon::with_dir(self.dir, args)
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
