//! Training groups that outlived the mmon that started them (SPEC §7).
//!
//! While a trial runs, its staging folder holds [`PGID_FILE`] naming the
//! command's process group. The runner removes it once the group is gone,
//! so one that is still there after its run died (`kill -9`, a crash, a
//! power cut of the terminal) points at a group that may still be training,
//! writing into staging and competing with the next run. The next run that
//! takes the model's `.train.lock` (or `registry gc`) ends such a group
//! before it clears the debris: SIGTERM, `grace`, SIGKILL.
//!
//! A process group id can be reused once the group is gone, so a group is
//! only ended if one of its live processes carries the recorded
//! `MMON_RUN_ID` in its environment.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::ModelDir;

/// The file in a trial's output folder that names the command's process
/// group while it runs.
pub const PGID_FILE: &str = ".mmon-pgid";

/// What [`PGID_FILE`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The process group (the command's pid: it leads its own group).
    pub pgid: i32,
    /// The mmon that started it.
    pub mmon_pid: u32,
    /// `MMON_RUN_ID` in the command's environment, which tells its
    /// processes apart from a later group that reuses the number.
    pub run_id: Option<String>,
}

/// A training group of an earlier run that is still alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub record: GroupRecord,
    /// The staging folder it was training into.
    pub staging: PathBuf,
}

/// The live processes of group `pgid` (zombies aside), by pid, that carry
/// `MMON_RUN_ID=<run_id>` when a run id is given.
fn members(pgid: i32, run_id: Option<&str>) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let marker = run_id.map(|r| format!("MMON_RUN_ID={r}").into_bytes());
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces): state, ppid, pgrp.
        let mut rest = stat.rsplit(')').next().unwrap_or("").split_whitespace();
        let state = rest.next().unwrap_or("Z");
        let pgrp = rest.nth(1).and_then(|g| g.parse::<i32>().ok());
        if pgrp != Some(pgid) || state == "Z" || state == "X" {
            continue;
        }
        if let Some(marker) = &marker {
            let env = fs::read(entry.path().join("environ")).unwrap_or_default();
            if !env.split(|&b| b == 0).any(|v| v == marker.as_slice()) {
                continue;
            }
        }
        out.push(pid);
    }
    out
}

/// Ends group `pgid`: SIGTERM, up to `grace` for it to go, then SIGKILL.
pub fn stop_group(pgid: i32, grace: Duration) {
    let group = Pid::from_raw(pgid);
    let alive = || !members(pgid, None).is_empty();
    if killpg(group, Signal::SIGTERM).is_err() {
        return;
    }
    let until = Instant::now() + grace;
    while alive() {
        if Instant::now() >= until {
            let _ = killpg(group, Signal::SIGKILL);
            // SIGKILL is delivered asynchronously: wait (briefly) until the
            // processes are gone, so nothing writes into staging after this.
            let until = Instant::now() + Duration::from_secs(5);
            while alive() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl ModelDir {
    /// Training groups recorded in staging folders that are still alive.
    pub fn orphans(&self) -> Vec<Orphan> {
        let Ok(entries) = fs::read_dir(self.staging_dir()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let staging = entry.path();
            let Some(record) = read_record(&staging.join(PGID_FILE)) else {
                continue;
            };
            if !members(record.pgid, record.run_id.as_deref()).is_empty() {
                out.push(Orphan { record, staging });
            }
        }
        out.sort_by(|a, b| a.staging.cmp(&b.staging));
        out
    }

    /// Ends every orphaned training group of this model, saying so, and
    /// returns them. The caller holds `.train.lock`.
    pub fn stop_orphans(&self, grace: Duration) -> Vec<Orphan> {
        let orphans = self.orphans();
        for o in &orphans {
            log::warn!(
                "{}: training process group {} of an earlier run ({}, mmon pid {}) is still running in {}; stopping it (SIGTERM, SIGKILL after {})",
                self.id(),
                o.record.pgid,
                o.record.run_id.as_deref().unwrap_or("unknown run"),
                o.record.mmon_pid,
                o.staging.display(),
                humantime::format_duration(grace)
            );
            stop_group(o.record.pgid, grace);
        }
        orphans
    }
}

fn read_record(path: &Path) -> Option<GroupRecord> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn training_group(run_id: &str) -> std::process::Child {
        std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30 & wait"])
            .env("MMON_RUN_ID", run_id)
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn record(model: &ModelDir, trial: &str, pgid: i32, run_id: &str) {
        let staging = model.staging_dir().join(trial);
        fs::create_dir_all(&staging).unwrap();
        let r = GroupRecord {
            pgid,
            mmon_pid: 1,
            run_id: Some(run_id.into()),
        };
        fs::write(staging.join(PGID_FILE), serde_json::to_string(&r).unwrap()).unwrap();
    }

    #[test]
    fn an_orphaned_training_group_is_ended_even_when_it_ignores_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let model = super::super::Registry::new(dir.path()).model("m").unwrap();
        let mut child = training_group("run-1");
        let pgid = child.id() as i32;
        // Wait until the shell has started its sleep (two members).
        let until = Instant::now() + Duration::from_secs(10);
        while members(pgid, Some("run-1")).len() < 2 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        record(&model, "run-1-t1", pgid, "run-1");
        assert_eq!(model.orphans().len(), 1);
        let stopped = model.stop_orphans(Duration::from_millis(200));
        assert_eq!(stopped[0].record.pgid, pgid);
        let _ = child.wait();
        assert!(members(pgid, None).is_empty(), "group {pgid} survived");
        assert!(model.orphans().is_empty());
    }

    #[test]
    fn a_group_of_another_run_with_a_reused_number_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let model = super::super::Registry::new(dir.path()).model("m").unwrap();
        let mut child = training_group("someone-else");
        let pgid = child.id() as i32;
        record(&model, "run-1-t1", pgid, "run-1");
        assert!(model.orphans().is_empty());
        assert!(model.stop_orphans(Duration::from_millis(100)).is_empty());
        assert!(!members(pgid, None).is_empty());
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        let _ = child.wait();
    }
}
