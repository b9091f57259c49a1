//! Running the training command, and deciding whether a trial succeeded.
//!
//! [`Runner`] is the seam: [`ProcessRunner`] runs the real command, and
//! [`FakeRunner`](super::fake::FakeRunner) plays a script of outcomes without starting anything or
//! sleeping, for tests and the hidden `--fake-training` flag.
//!
//! The real command runs without a shell, in `workdir`, stdin closed, as the
//! leader of a new process group, so that a timeout or shutdown can end the
//! whole tree it started: SIGTERM to the group, `shutdown_grace`, then
//! SIGKILL. When the leader exits on its own, anything it left running in its
//! group gets the same treatment, so nothing writes into an output folder
//! after it has been judged. Stdout and stderr share one pipe into
//! `train.log`, capped at [`LOG_CAP`] bytes: the first half and the last half
//! are kept, with a marker between. The one thread here copies that pipe
//! while the calling thread waits for the command.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The log file mmon writes into every output folder.
pub const TRAIN_LOG: &str = "train.log";
/// The parameters file mmon writes into every output folder first.
pub const PARAMS_JSON: &str = "params.json";
/// Where the command reports its metrics.
pub const METRICS_JSON: &str = "metrics.json";
/// Largest `train.log` kept, in bytes.
pub const LOG_CAP: u64 = 8 << 20;
pub use crate::registry::orphans::{GroupRecord, PGID_FILE};

/// One run of the training command.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The argv with placeholders filled.
    pub argv: Vec<String>,
    pub workdir: PathBuf,
    /// Added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// The trial's staging folder; `train.log` goes here.
    pub output_dir: PathBuf,
    pub timeout: Duration,
    pub grace: Duration,
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    Signaled(i32),
    /// Stopped at the timeout (the group was signalled).
    TimedOut,
    /// Stopped because mmon is shutting down.
    Interrupted,
    /// The command could not be started.
    SpawnFailed(String),
}

/// What the runner observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub termination: Termination,
    pub duration: Duration,
}

/// Runs one training command to its end.
pub trait Runner: Send {
    fn run(&mut self, job: &Job) -> RunReport;
}

/// Runs real processes.
#[derive(Debug, Default)]
pub struct ProcessRunner {
    cancel: Option<Arc<AtomicBool>>,
}

impl ProcessRunner {
    pub fn new() -> ProcessRunner {
        ProcessRunner::default()
    }

    /// Ends the running command (TERM, grace, KILL) as soon as `flag` is set,
    /// e.g. by mmon's SIGINT/SIGTERM handler.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> ProcessRunner {
        self.cancel = Some(flag);
        self
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }
}

impl Runner for ProcessRunner {
    fn run(&mut self, job: &Job) -> RunReport {
        let start = Instant::now();
        let log_path = job.output_dir.join(TRAIN_LOG);
        let failed = |msg: String| {
            let _ = fs::write(&log_path, format!("mmon: {msg}\n"));
            RunReport {
                termination: Termination::SpawnFailed(msg),
                duration: start.elapsed(),
            }
        };
        let log = match File::create(&log_path) {
            Ok(f) => f,
            Err(e) => return failed(format!("cannot create {}: {e}", log_path.display())),
        };
        let (reader, child) = match spawn(job) {
            Ok(pair) => pair,
            Err(e) => {
                let program = job.argv.first().map_or("", String::as_str);
                return failed(format!(
                    "cannot start {program:?} in {}: {e}",
                    job.workdir.display()
                ));
            }
        };
        let copier = std::thread::spawn(move || copy_capped(reader, log, LOG_CAP));
        let mut child = child;
        let pgid = Pid::from_raw(child.id() as i32);
        let record = GroupRecord {
            pgid: pgid.as_raw(),
            mmon_pid: std::process::id(),
            run_id: job
                .env
                .iter()
                .find(|(k, _)| k == "MMON_RUN_ID")
                .map(|(_, v)| v.clone()),
        };
        let pgid_path = job.output_dir.join(PGID_FILE);
        let text = serde_json::to_string(&record).unwrap_or_default();
        if let Err(e) = crate::durable::write_synced(&pgid_path, text.as_bytes()) {
            log::warn!(
                "cannot record the training group in {}: {e}",
                pgid_path.display()
            );
        }
        let deadline = start + job.timeout;
        let termination = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    stop_group(&mut child, pgid, job.grace);
                    break from_status(status);
                }
                Ok(None) => {}
                Err(e) => {
                    stop_group(&mut child, pgid, job.grace);
                    break Termination::SpawnFailed(format!("cannot wait for the command: {e}"));
                }
            }
            if self.cancelled() {
                stop_group(&mut child, pgid, job.grace);
                break Termination::Interrupted;
            }
            if Instant::now() >= deadline {
                stop_group(&mut child, pgid, job.grace);
                break Termination::TimedOut;
            }
            std::thread::sleep(
                Duration::from_millis(5).min(deadline.saturating_duration_since(Instant::now())),
            );
        };
        // The group is gone (stop_group waited for it): nothing to end later.
        let _ = fs::remove_file(&pgid_path);
        if let Ok(Err(e)) = copier.join() {
            log::warn!("writing {}: {e}", log_path.display());
        }
        RunReport {
            termination,
            duration: start.elapsed(),
        }
    }
}

fn spawn(job: &Job) -> io::Result<(io::PipeReader, Child)> {
    let (program, args) = job
        .argv
        .split_first()
        .ok_or_else(|| io::Error::other("empty command"))?;
    let (reader, writer) = io::pipe()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&job.workdir)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    for (k, v) in &job.env {
        cmd.env(k, v);
    }
    let child = cmd.spawn()?;
    // `cmd` holds our copies of the pipe's write end; dropping it lets the
    // copier see end-of-file once the command's processes are gone.
    drop(cmd);
    Ok((reader, child))
}

fn from_status(status: ExitStatus) -> Termination {
    match (status.code(), status.signal()) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(sig)) => Termination::Signaled(sig),
        (None, None) => Termination::Exited(-1),
    }
}

/// Ends every process of the group: SIGTERM if any is left, up to `grace`
/// for them to go, then SIGKILL. Reaps the leader.
fn stop_group(child: &mut Child, pgid: Pid, grace: Duration) {
    let alive = || killpg(pgid, None).is_ok();
    if alive() {
        let _ = killpg(pgid, Signal::SIGTERM);
        let until = Instant::now() + grace;
        loop {
            let _ = child.try_wait();
            if !alive() {
                break;
            }
            if Instant::now() >= until {
                log::warn!(
                    "training processes still running {grace:?} after SIGTERM; sending SIGKILL"
                );
                let _ = killpg(pgid, Signal::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = child.wait();
}

/// Copies `from` into `to`, keeping the first and last `cap / 2` bytes.
fn copy_capped(mut from: impl Read, mut to: File, cap: u64) -> io::Result<()> {
    let half = (cap / 2) as usize;
    let mut written = 0usize;
    let mut tail: VecDeque<u8> = VecDeque::new();
    let mut dropped = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut chunk = &buf[..n];
        if written < half {
            let k = chunk.len().min(half - written);
            to.write_all(&chunk[..k])?;
            written += k;
            chunk = &chunk[k..];
        }
        tail.extend(chunk);
        if tail.len() > half {
            let excess = tail.len() - half;
            tail.drain(..excess);
            dropped += excess as u64;
        }
    }
    if dropped > 0 {
        writeln!(
            to,
            "\n[mmon: train.log capped at {cap} bytes; {dropped} bytes omitted here]"
        )?;
    }
    let (a, b) = tail.as_slices();
    to.write_all(a)?;
    to.write_all(b)?;
    to.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrain::config::{Goal, Select};
    use crate::retrain::verdict::{TrialFailure, judge};
    use std::path::Path;

    fn job(dir: &Path, argv: &[&str], timeout_ms: u64, grace_ms: u64) -> Job {
        Job {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            workdir: dir.to_path_buf(),
            env: vec![("MMON_TEST_VALUE".into(), "42".into())],
            output_dir: dir.to_path_buf(),
            timeout: Duration::from_millis(timeout_ms),
            grace: Duration::from_millis(grace_ms),
        }
    }

    fn select() -> Select {
        Select {
            metric: "val_accuracy".into(),
            goal: Goal::Max,
        }
    }

    #[test]
    fn success_needs_output_and_a_finite_metric() {
        let dir = tempfile::tempdir().unwrap();
        let script = "echo out; echo err >&2; echo $MMON_TEST_VALUE > model.txt; \
                      printf '{\"val_accuracy\": 0.75}' > metrics.json; read x || echo stdin-closed";
        let j = job(dir.path(), &["sh", "-c", script], 5000, 1000);
        let r = ProcessRunner::new().run(&j);
        assert_eq!(r.termination, Termination::Exited(0));
        let log = fs::read_to_string(dir.path().join(TRAIN_LOG)).unwrap();
        assert!(
            log.contains("out\n") && log.contains("err\n") && log.contains("stdin-closed"),
            "{log}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("model.txt")).unwrap(),
            "42\n"
        );
        let ok = judge(&r, &j, Some(&select())).unwrap();
        assert_eq!(ok.value, Some(0.75));
    }

    #[test]
    fn failures_are_judged() {
        let dir = tempfile::tempdir().unwrap();
        let j = job(dir.path(), &["sh", "-c", "exit 3"], 5000, 1000);
        let r = ProcessRunner::new().run(&j);
        assert_eq!(judge(&r, &j, None), Err(TrialFailure::Exited(3)));

        let j = job(dir.path(), &["sh", "-c", "true"], 5000, 1000);
        let r = ProcessRunner::new().run(&j);
        assert_eq!(judge(&r, &j, None), Err(TrialFailure::NoOutput));

        fs::write(
            dir.path().join("metrics.json"),
            r#"{"val_accuracy": "n/a"}"#,
        )
        .unwrap();
        assert!(matches!(
            judge(&r, &j, Some(&select())),
            Err(TrialFailure::MetricNotFinite { .. })
        ));
        fs::write(dir.path().join("metrics.json"), "[1]").unwrap();
        assert!(matches!(
            judge(&r, &j, Some(&select())),
            Err(TrialFailure::MetricsInvalid(_))
        ));
        fs::remove_file(dir.path().join("metrics.json")).unwrap();
        fs::write(dir.path().join("model.bin"), "w").unwrap();
        assert_eq!(judge(&r, &j, None).unwrap().value, None);
        assert_eq!(
            judge(&r, &j, Some(&select())),
            Err(TrialFailure::MetricsMissing("val_accuracy".into()))
        );

        let j = job(dir.path(), &["/nonexistent/trainer"], 5000, 1000);
        let r = ProcessRunner::new().run(&j);
        assert!(matches!(r.termination, Termination::SpawnFailed(_)));
        assert!(
            fs::read_to_string(dir.path().join(TRAIN_LOG))
                .unwrap()
                .contains("cannot start")
        );
    }

    #[test]
    fn timeout_kills_the_whole_group_including_a_grandchild_that_ignores_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        // The grandchild ignores TERM, records its pid, and would outlive the
        // leader; SIGKILL after the grace must end it too.
        let script = "sh -c 'trap \"\" TERM; echo $$ > grandchild.pid; while :; do sleep 0.05; done' & \
                      while [ ! -s grandchild.pid ]; do sleep 0.01; done; echo started; sleep 30";
        let j = job(dir.path(), &["sh", "-c", script], 300, 200);
        let t = Instant::now();
        let r = ProcessRunner::new().run(&j);
        assert_eq!(r.termination, Termination::TimedOut);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "took {:?}",
            t.elapsed()
        );
        let pid: i32 = fs::read_to_string(dir.path().join("grandchild.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!process_alive(pid), "grandchild {pid} survived");
        assert_eq!(
            judge(&r, &j, None),
            Err(TrialFailure::TimedOut(Duration::from_millis(300)))
        );
    }

    #[test]
    fn leftover_processes_are_ended_after_a_clean_exit() {
        let dir = tempfile::tempdir().unwrap();
        let script = "sh -c 'echo $$ > straggler.pid; exec sleep 30' & \
                      while [ ! -s straggler.pid ]; do sleep 0.01; done; echo done > model.txt";
        let j = job(dir.path(), &["sh", "-c", script], 5000, 1000);
        let t = Instant::now();
        let r = ProcessRunner::new().run(&j);
        assert_eq!(r.termination, Termination::Exited(0));
        assert!(t.elapsed() < Duration::from_secs(3));
        let pid: i32 = fs::read_to_string(dir.path().join("straggler.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!process_alive(pid));
    }

    #[test]
    fn cancel_stops_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let flag = Arc::new(AtomicBool::new(true));
        let j = job(dir.path(), &["sleep", "30"], 10_000, 500);
        let r = ProcessRunner::new().with_cancel(flag).run(&j);
        assert_eq!(r.termination, Termination::Interrupted);
        assert!(r.duration < Duration::from_secs(3));
    }

    #[test]
    fn log_is_capped_keeping_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, mut w) = io::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            w.write_all(b"HEAD").unwrap();
            w.write_all(&vec![b'x'; 10_000]).unwrap();
            w.write_all(b"TAIL").unwrap();
        });
        let f = File::create(dir.path().join("log")).unwrap();
        let reader = std::thread::spawn(move || copy_capped(&mut r, f, 100));
        writer.join().unwrap();
        reader.join().unwrap().unwrap();
        let text = fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(text.starts_with("HEAD") && text.ends_with("TAIL"));
        assert!(text.contains("9908 bytes omitted"), "{text}");
        assert!(text.len() < 200);
    }

    fn process_alive(pid: i32) -> bool {
        // A zombie still answers kill(0); check its state instead.
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }
}
