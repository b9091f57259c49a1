//! NATS JetStream (SPEC §10), phase 2: `mmon replay nats://…` and several
//! `mmon watch nats://…` instances sharing a stream's partitions, each
//! scenario against its own `nats-server` (see [`NatsServer`]).
//!
//! The log is `mmon generate` of three models (churn, fraud, ranker), which
//! the FNV-1a partitioning puts in partitions 2, 1 and 0 of 3: every
//! instance's share is a set of models. Published unbatched, stream
//! sequence k is line k of the file, so windows of the stream and of the
//! file have the same `line`s.
//!
//! `watch` prints its summary only at exit and no progress on the way, so
//! a scenario ends with `watch --once` under the surviving instance's id:
//! it restores the checkpoints and applies what the scenario's instances
//! had not, and its per-model counts (cumulative per partition) must equal
//! what was published, neither less (a record skipped) nor more (a record
//! applied twice).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use super::nats::NatsServer;
use super::{Mmon, Running};

const EVENTS: &str = "20000";
const PARTITIONS: u32 = 3;
const TTL: Duration = Duration::from_secs(2);

/// A window as both sides of a comparison name it.
type WindowKey = (String, String, String, u64, u64);
/// Records per (model_id, model_version).
type Counts = BTreeMap<(String, String), u64>;

/// A scene: a server, a folder with the generated `m.jsonl`, the stream's URL.
struct Scene {
    server: NatsServer,
    dir: tempfile::TempDir,
    url: String,
    lines: Vec<String>,
    partitions: u32,
}

impl Scene {
    /// `None` when nats-server is not installed (outside CI).
    fn new(stream: &str, partitions: u32) -> Option<Scene> {
        let server = NatsServer::start()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Mmon::in_dir(
            dir.path(),
            &[
                "generate",
                "--events",
                EVENTS,
                "--models",
                "3",
                "--drift-at",
                "0.5,0.8",
                "-q",
                "--out",
                "m.jsonl",
            ],
        )
        .run();
        assert_eq!(out.code, 0, "{}", out.stderr);
        let log = std::fs::read_to_string(dir.path().join("m.jsonl")).expect("log");
        let lines: Vec<String> = log.lines().map(str::to_string).collect();
        assert!(lines.iter().all(|l| !l.trim().is_empty()));
        let url = server.url(&format!(
            "/metrics.>?stream={stream}&partitions={partitions}"
        ));
        Some(Scene {
            server,
            dir,
            url,
            lines,
            partitions,
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes lines `from..to` (0-based) of the log to `name`.
    fn part(&self, name: &str, from: usize, to: usize) {
        let text: String = self.lines[from..to]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(self.path().join(name), text).expect("write part");
    }

    /// Writes the log in `n` consecutive parts p1.jsonl … pN.jsonl.
    fn parts(&self, n: usize) -> Vec<String> {
        let len = self.lines.len();
        (0..n)
            .map(|i| {
                let name = format!("p{}.jsonl", i + 1);
                self.part(&name, len * i / n, len * (i + 1) / n);
                name
            })
            .collect()
    }

    /// `mmon publish URL FILE…`, which must succeed.
    fn publish(&self, files: &[&str]) {
        let mut args = vec!["publish", self.url.as_str()];
        args.extend_from_slice(files);
        let out = Mmon::in_dir(self.path(), &args).run();
        assert_eq!(out.code, 0, "publish {files:?}\n{}", out.stderr);
    }

    /// `mmon publish` started in the background.
    fn publish_in_background(&self, files: &[&str]) -> Running {
        let mut args = vec!["publish", self.url.as_str()];
        args.extend_from_slice(files);
        Mmon::in_dir(self.path(), &args).expect_code(0).spawn()
    }

    /// `mmon watch URL --instance ID`, TTL 2 s, checkpoints every 200 ms.
    fn watch(&self, id: &str) -> Running {
        Mmon::in_dir(
            self.path(),
            &[
                "watch",
                &self.url,
                "--instance",
                id,
                "--lease-ttl",
                "2s",
                "--checkpoint-interval",
                "200ms",
                "--format",
                "jsonl",
                "-v",
            ],
        )
        .timeout(Duration::from_secs(8))
        .spawn()
    }

    /// `mmon watch URL --once --instance ID` to its end (exit 0).
    fn once(&self, id: &str) -> super::Outcome {
        let out = Mmon::in_dir(
            self.path(),
            &[
                "watch",
                &self.url,
                "--once",
                "--instance",
                id,
                "--lease-ttl",
                "2s",
                "--format",
                "jsonl",
                "-v",
            ],
        )
        .timeout(Duration::from_secs(8))
        .run();
        assert_eq!(
            out.code, 0,
            "watch --once --instance {id}\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        out
    }

    /// Once every instance has gone (withdrawn, or expired after the TTL)
    /// and every lease is free, `watch --once --instance ID`, which then
    /// claims every partition: it applies what the others had not.
    /// Once every instance is gone: `survivor` catches up with `watch
    /// --once` and applies nothing; no run in `counted` (nor the catch-up)
    /// counted a model's records more than were published, and the last
    /// one counted all of them; and the windows opened by `outputs` and the
    /// catch-up are those of one replay.
    fn assert_all_applied_once(
        &self,
        survivor: &str,
        outputs: &[&super::Outcome],
        counted: &[(&str, &Value)],
        windows: &BTreeSet<WindowKey>,
        published: &Counts,
    ) {
        let rest = self.catch_up(survivor);
        let sr = summary(&rest.stderr);
        assert_eq!(sr["records"].as_u64(), Some(0), "nothing was left to apply");
        let once = format!("{survivor} --once");
        let mut runs = counted.to_vec();
        runs.push((&once, &sr));
        assert_counted_once(&runs, published);
        let got: BTreeSet<WindowKey> = outputs
            .iter()
            .chain([&&rest])
            .flat_map(|out| opened(&out.stdout))
            .collect();
        assert_eq!(&got, windows);
    }

    fn catch_up(&self, id: &str) -> super::Outcome {
        let probe = super::nats::client(&self.url, "probe");
        let leases = probe.leases(TTL).expect("lease bucket");
        within(
            TTL + Duration::from_secs(2),
            "every instance gone and every lease free",
            || {
                leases.members().expect("members").is_empty()
                    && leases.holders().expect("holders").is_empty()
            },
            || format!("{:?} {:?}", leases.members(), leases.holders()),
        );
        let out = self.once(id);
        eprintln!(
            "the catch-up applied {} records",
            summary(&out.stderr)["records"]
        );
        for p in all() {
            assert!(
                out.stderr.contains(&format!("claimed partition {p}")),
                "{}",
                out.stderr
            );
        }
        out
    }

    /// Waits until every partition's checkpoint (its `seq`, the last
    /// sequence read, SPEC §10) is at or past the partition's last message:
    /// the instances applied everything published. (A checkpoint moves with
    /// the reader, past messages of other partitions.)
    /// `running` are the instances whose logs a failure shows.
    fn wait_checkpointed(&self, running: &[&Running]) {
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            let v: Value = serde_json::from_str(line).expect("a record");
            let model = v["model_id"].as_str().unwrap_or("default");
            let p = mmon::source::nats::partition_of(model, self.partitions);
            last.insert(p, i as u64 + 1);
        }
        let probe = super::nats::client(&self.url, "probe");
        let checkpoints = probe.checkpoints().expect("checkpoint bucket");
        let seqs = || -> BTreeMap<u32, u64> {
            last.keys()
                .map(|p| {
                    let seq = checkpoints
                        .load(*p)
                        .expect("load")
                        .and_then(|c| serde_json::from_slice::<Value>(&c.bytes).ok())
                        .and_then(|v| v["seq"].as_u64())
                        .unwrap_or(0);
                    (*p, seq)
                })
                .collect()
        };
        // Generous: a newly joined instance's reads can stall for seconds
        // (async-nats' ordered consumer on the shared machine); what is
        // checked is that everything is applied once, not how fast.
        within(
            Duration::from_secs(30),
            "every partition checkpointed at its last message",
            || seqs().iter().all(|(p, seq)| *seq >= last[p]),
            || {
                let logs: Vec<String> = running.iter().map(|r| r.stderr()).collect();
                format!(
                    "checkpoints at {:?}, last messages {last:?}\n{}",
                    seqs(),
                    logs.join("\n----\n")
                )
            },
        );
    }

    /// Opened windows and per-model counts of `mmon replay m.jsonl`.
    fn reference(&self) -> (BTreeSet<WindowKey>, Counts) {
        let out = Mmon::in_dir(self.path(), &["replay", "m.jsonl", "--format", "jsonl"]).run();
        assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
        let windows = opened(&out.stdout);
        assert!(windows.len() >= 2, "the log has drifts: {}", out.stdout);
        (windows, counts(&summary(&out.stderr)))
    }
}

/// The partitions an instance owns by its log so far: `claimed partition P`
/// adds P, `released partition P` and `lost partition P` remove it.
fn owned(stderr: &str) -> BTreeSet<u32> {
    let mut owned = BTreeSet::new();
    for line in stderr.lines() {
        for (word, claims) in [("claimed", true), ("released", false), ("lost", false)] {
            if let Some(p) = partition_after(line, &format!("{word} partition ")) {
                if claims {
                    owned.insert(p);
                } else {
                    owned.remove(&p);
                }
            }
        }
    }
    owned
}

/// The partition number after `prefix` in `line`, if any.
fn partition_after(line: &str, prefix: &str) -> Option<u32> {
    let at = line.find(prefix)? + prefix.len();
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// How many times stderr says `WORD partition P` for some P.
fn mentions(stderr: &str, word: &str) -> usize {
    stderr
        .lines()
        .filter(|l| partition_after(l, &format!("{word} partition ")).is_some())
        .count()
}

fn all() -> BTreeSet<u32> {
    (0..PARTITIONS).collect()
}

/// The opened windows among JSONL events.
fn opened(stdout: &str) -> BTreeSet<WindowKey> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{stdout}"))
        })
        .filter(|v| v["event"] == "opened")
        .map(|v| {
            (
                v["model_id"].as_str().unwrap().to_string(),
                v["model_version"].as_str().unwrap_or("").to_string(),
                v["metric"].as_str().unwrap().to_string(),
                v["start"]["line"].as_u64().unwrap(),
                v["detected"]["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The `{"summary":…}` line of stderr.
fn summary(stderr: &str) -> Value {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("{\"summary\""))
        .unwrap_or_else(|| panic!("no summary line in stderr:\n{stderr}"));
    serde_json::from_str::<Value>(line).expect("summary JSON")["summary"].clone()
}

fn counts(summary: &Value) -> Counts {
    summary["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("no versions in {summary}"))
        .iter()
        .map(|v| {
            (
                (
                    v["model_id"].as_str().unwrap().to_string(),
                    v["model_version"].as_str().unwrap_or("").to_string(),
                ),
                v["records"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The summary's `partitions` (owned at exit).
fn partitions(summary: &Value) -> BTreeSet<u32> {
    summary["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no partitions in {summary}"))
        .iter()
        .map(|p| p.as_u64().unwrap() as u32)
        .collect()
}

/// Per model, no run counted more than was published, and the last run
/// that reported it counted all of it.
fn assert_counted_once(runs: &[(&str, &Value)], published: &Counts) {
    let mut last: Counts = BTreeMap::new();
    for (name, s) in runs {
        for (k, n) in counts(s) {
            let want = published.get(&k).copied().unwrap_or(0);
            assert!(
                n <= want,
                "{name} counted {n} records of {k:?}, {want} published: {s}"
            );
            last.insert(k, n);
        }
    }
    assert_eq!(&last, published, "counts of the last runs of each model");
}

/// Per published model, the count of the instance that owned its
/// partition at exit: everything published, once.
fn assert_owners_counted_all(owners: &[(&str, &Value)], published: &Counts, partitions_of: u32) {
    for ((model, version), n) in published {
        let p = mmon::source::nats::partition_of(model, partitions_of);
        let (name, s) = owners
            .iter()
            .find(|(_, s)| partitions(s).contains(&p))
            .unwrap_or_else(|| panic!("no instance owned partition {p} at exit"));
        let got = counts(s).get(&(model.clone(), version.clone())).copied();
        assert_eq!(
            got,
            Some(*n),
            "{name}'s count of {model} {version} (partition {p}): {s}"
        );
    }
}

/// Waits until `cond` holds for up to `limit`; how long it took.
fn within(
    limit: Duration,
    what: &str,
    cond: impl Fn() -> bool,
    log: impl Fn() -> String,
) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < limit,
            "not within {limit:?}: {what}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

/// Waits until `a` and `b` hold disjoint shares (2 and 1) covering every partition.
fn wait_split(a: &Running, b: &Running) {
    within(
        Duration::from_secs(8),
        "a split of the partitions between a and b",
        || {
            let (pa, pb) = (owned(&a.stderr()), owned(&b.stderr()));
            pa.is_disjoint(&pb)
                && pa.len() + pb.len() == PARTITIONS as usize
                && !pb.is_empty()
                && !pa.is_empty()
        },
        || format!("a:\n{}\nb:\n{}", a.stderr(), b.stderr()),
    );
}

fn wait_exit(r: Running, code: i32) -> super::Outcome {
    let out = r.wait();
    assert_eq!(
        out.code, code,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out
}

/// Purges every message of `stream` (its sequences go on from the last).
fn purge(port: u16, stream: &str) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).expect("INFO");
    write!(
        tcp,
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB _INBOX.purge 1\r\nPUB $JS.API.STREAM.PURGE.{stream} _INBOX.purge 0\r\n\r\n"
    )
    .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("reply");
        if line.starts_with("PING") {
            tcp.write_all(b"PONG\r\n").unwrap();
        } else if line.starts_with("MSG") {
            let size: usize = line.split_whitespace().last().unwrap().parse().unwrap();
            let mut body = vec![0; size + 2];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains("\"success\":true"), "purge: {body}");
            return;
        } else if line.starts_with("-ERR") {
            panic!("purge: {line}");
        }
    }
}

/// Drops what describes the source rather than the records.
fn normalize(v: &mut Value, url: &str) {
    match v {
        Value::Object(map) => {
            map.remove("elapsed_s");
            map.remove("records_per_s");
            if let Some(Value::Object(s)) = map.get_mut("summary") {
                for k in ["inputs", "bytes", "files"] {
                    s.remove(k);
                }
            }
            for (k, x) in map.iter_mut() {
                if k == "file" && x.as_str() == Some(url) {
                    *x = Value::String("m.jsonl".into());
                } else {
                    normalize(x, url);
                }
            }
        }
        Value::Array(xs) => xs.iter_mut().for_each(|x| normalize(x, url)),
        _ => {}
    }
}

fn normalized(text: &str, url: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    normalize(&mut v, url);
    v
}

#[test]
fn nats_cluster_replay_of_the_stream_equals_replay_of_the_file_in_json_jsonl_and_csv() {
    let Some(scene) = Scene::new("EQ", 1) else {
        return;
    };
    scene.publish(&["m.jsonl"]);
    let url = scene.url.as_str();
    let run = |source: &str, format: &str| {
        Mmon::in_dir(scene.path(), &["replay", source, "--format", format]).run()
    };

    let (file, stream) = (run("m.jsonl", "json"), run(url, "json"));
    assert_eq!(stream.code, file.code, "{}", stream.stderr);
    assert!(!file.windows().is_empty());
    assert_eq!(
        normalized(&stream.stdout, url),
        normalized(&file.stdout, url)
    );

    let (file, stream) = (run("m.jsonl", "jsonl"), run(url, "jsonl"));
    assert_eq!(stream.code, file.code, "{}", stream.stderr);
    let events = |out: &super::Outcome| -> Vec<Value> {
        out.stdout.lines().map(|l| normalized(l, url)).collect()
    };
    assert!(
        stream
            .stdout
            .contains(&format!("\"file\":{}", Value::from(url)))
    );
    assert_eq!(events(&stream), events(&file));
    let sum = |out: &super::Outcome| {
        let mut s = serde_json::json!({ "summary": summary(&out.stderr) });
        normalize(&mut s, url);
        s
    };
    assert_eq!(sum(&stream), sum(&file));

    let (file, stream) = (run("m.jsonl", "csv"), run(url, "csv"));
    assert_eq!(stream.code, file.code, "{}", stream.stderr);
    assert!(stream.stdout.contains(url), "{}", stream.stdout);
    assert_eq!(stream.stdout.replace(url, "m.jsonl"), file.stdout);
}

#[test]
fn nats_cluster_two_instances_split_the_partitions_and_count_every_record_once() {
    let Some(scene) = Scene::new("SPLIT", PARTITIONS) else {
        return;
    };
    let (windows, published) = scene.reference();
    scene.publish(&["m.jsonl"]);
    let a = scene.watch("a");
    let b = scene.watch("b");
    wait_split(&a, &b);
    scene.wait_checkpointed(&[&a, &b]);
    let (pa, pb) = (owned(&a.stderr()), owned(&b.stderr()));
    // Both stopped before either is told to end, so neither takes the
    // other's released partitions on the way out.
    for r in [&a, &b] {
        r.signal(Signal::SIGSTOP);
    }
    for r in [&a, &b] {
        r.signal(Signal::SIGTERM);
        r.signal(Signal::SIGCONT);
    }
    let (a, b) = (wait_exit(a, 143), wait_exit(b, 143));
    let (sa, sb) = (summary(&a.stderr), summary(&b.stderr));
    assert_eq!((partitions(&sa), partitions(&sb)), (pa.clone(), pb.clone()));
    assert!(pa.is_disjoint(&pb));
    assert_eq!(&pa | &pb, all());
    assert_eq!(
        sa["records"].as_u64().unwrap() + sb["records"].as_u64().unwrap(),
        scene.lines.len() as u64,
        "records applied by a and b"
    );
    assert_owners_counted_all(&[("a", &sa), ("b", &sb)], &published, PARTITIONS);
    scene.assert_all_applied_once(
        "a",
        &[&a, &b],
        &[("a", &sa), ("b", &sb)],
        &windows,
        &published,
    );
}

#[test]
fn nats_cluster_kill_9_of_one_instance_hands_all_its_partitions_to_the_other_within_ttl() {
    let Some(scene) = Scene::new("CRASH", PARTITIONS) else {
        return;
    };
    let (windows, published) = scene.reference();
    let parts = scene.parts(4);
    scene.publish(&[&parts[0]]);
    let a = scene.watch("a");
    let b = scene.watch("b");
    wait_split(&a, &b);
    scene.publish(&[&parts[1]]);
    let publishing = scene.publish_in_background(&[&parts[2], &parts[3]]);
    let killed = Instant::now();
    let a = a.kill();
    within(
        TTL + Duration::from_secs(1),
        "b owns every partition",
        || owned(&b.stderr()) == all(),
        || b.stderr(),
    );
    eprintln!(
        "b owned every partition {:?} after the kill",
        killed.elapsed()
    );
    wait_exit(publishing, 0);
    scene.wait_checkpointed(&[&b]);
    b.signal(Signal::SIGTERM);
    let b = wait_exit(b, 143);
    let sb = summary(&b.stderr);
    assert_eq!(partitions(&sb), all());
    assert_eq!(counts(&sb), published, "the survivor's counts");
    scene.assert_all_applied_once("b", &[&a, &b], &[], &windows, &published);
}

#[test]
fn nats_cluster_a_zombie_past_its_ttl_loses_its_partitions_and_emits_nothing_more() {
    let Some(scene) = Scene::new("ZOMBIE", PARTITIONS) else {
        return;
    };
    let (windows, published) = scene.reference();
    let parts = scene.parts(3);
    scene.publish(&[&parts[0]]);
    let a = scene.watch("a");
    let b = scene.watch("b");
    wait_split(&a, &b);
    let mine = owned(&a.stderr());
    a.signal(Signal::SIGSTOP);
    let stopped = Instant::now();
    // What it wrote before it stopped reaches the pipe's reader.
    std::thread::sleep(Duration::from_millis(100));
    let before = a.stdout();
    // Records of a's partitions (the drift at half the log) arrive while it sleeps.
    scene.publish(&[&parts[1]]);
    within(
        TTL + Duration::from_secs(2),
        "b takes over a's partitions",
        || owned(&b.stderr()) == all(),
        || b.stderr(),
    );
    // a's lease, renewed up to TTL/3 before it stopped, expired first.
    assert!(stopped.elapsed() >= TTL / 2, "{:?}", stopped.elapsed());
    // Stopped past its TTL: its own lease deadline has passed too.
    std::thread::sleep(TTL.saturating_sub(stopped.elapsed()));
    a.signal(Signal::SIGCONT);
    within(
        Duration::from_secs(5),
        "a logs `lost partition` for each of its partitions",
        || {
            let s = a.stderr();
            mine.iter()
                .all(|p| s.contains(&format!("lost partition {p}")))
        },
        || a.stderr(),
    );
    // Until it claims a partition again (b hands a fair share back), a
    // writes nothing more: not what it had read before it stopped, nor
    // anything from its stale state.
    let reclaimed = |r: &Running| {
        r.stderr()
            .lines()
            .skip_while(|l| !l.contains("lost partition"))
            .any(|l| l.contains("claimed partition"))
    };
    let mut after = a.stdout();
    eprintln!(
        "a lost {mine:?}; it claimed again before the check: {}",
        reclaimed(&a)
    );
    for _ in 0..2 {
        if !reclaimed(&a) {
            assert_eq!(
                after, before,
                "a emitted events after it lost its partitions"
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        after = a.stdout();
    }
    assert!(
        opened(&after[before.len()..]).is_subset(&windows),
        "{}",
        &after[before.len()..]
    );
    scene.publish(&[&parts[2]]);
    scene.wait_checkpointed(&[&a, &b]);
    for r in [&a, &b] {
        r.signal(Signal::SIGSTOP);
    }
    for r in [&a, &b] {
        r.signal(Signal::SIGTERM);
        r.signal(Signal::SIGCONT);
    }
    let (a, b) = (wait_exit(a, 143), wait_exit(b, 143));
    let (sa, sb) = (summary(&a.stderr), summary(&b.stderr));
    assert!(partitions(&sa).is_disjoint(&partitions(&sb)));
    assert_owners_counted_all(&[("a", &sa), ("b", &sb)], &published, PARTITIONS);
    scene.assert_all_applied_once(
        "b",
        &[&a, &b],
        &[("a", &sa), ("b", &sb)],
        &windows,
        &published,
    );
}

#[test]
fn nats_cluster_sigterm_hands_partitions_over_at_once_and_a_newcomer_takes_its_share() {
    let Some(scene) = Scene::new("HANDOVER", PARTITIONS) else {
        return;
    };
    let (windows, published) = scene.reference();
    let parts = scene.parts(3);
    scene.publish(&[&parts[0]]);
    let a = scene.watch("a");
    let b = scene.watch("b");
    wait_split(&a, &b);
    let mine = owned(&a.stderr());
    let term = Instant::now();
    a.signal(Signal::SIGTERM);
    let a = wait_exit(a, 143);
    for p in &mine {
        assert!(
            a.stderr.contains(&format!("released partition {p}")),
            "{}",
            a.stderr
        );
    }
    // No waiting for the TTL: within three quarters of it of the signal.
    within(
        (TTL * 3 / 4).saturating_sub(term.elapsed()),
        "b claims a's partitions well before the TTL",
        || owned(&b.stderr()) == all(),
        || b.stderr(),
    );
    eprintln!(
        "b owned every partition {:?} after a's SIGTERM",
        term.elapsed()
    );
    scene.publish(&[&parts[1]]);
    let c = scene.watch("c");
    within(
        Duration::from_secs(6),
        "partitions move from b to the newcomer c",
        || {
            let (pb, pc) = (owned(&b.stderr()), owned(&c.stderr()));
            !pc.is_empty() && pb.is_disjoint(&pc) && pb.len() + pc.len() == PARTITIONS as usize
        },
        || format!("b:\n{}\nc:\n{}", b.stderr(), c.stderr()),
    );
    assert!(mentions(&b.stderr(), "released") >= 1, "{}", b.stderr());
    assert!(mentions(&c.stderr(), "claimed") >= 1, "{}", c.stderr());
    scene.publish(&[&parts[2]]);
    scene.wait_checkpointed(&[&b, &c]);
    for r in [&b, &c] {
        r.signal(Signal::SIGSTOP);
    }
    for r in [&b, &c] {
        r.signal(Signal::SIGTERM);
        r.signal(Signal::SIGCONT);
    }
    let (b, c) = (wait_exit(b, 143), wait_exit(c, 143));
    let (sa, sb, sc) = (summary(&a.stderr), summary(&b.stderr), summary(&c.stderr));
    assert_eq!(partitions(&sa), mine);
    assert!(partitions(&sb).is_disjoint(&partitions(&sc)));
    assert_owners_counted_all(&[("b", &sb), ("c", &sc)], &published, PARTITIONS);
    scene.assert_all_applied_once(
        "b",
        &[&a, &b, &c],
        &[("a", &sa), ("b", &sb), ("c", &sc)],
        &windows,
        &published,
    );
}

#[test]
fn nats_cluster_an_instance_keeps_going_across_a_server_restart() {
    let Some(mut scene) = Scene::new("RESTART", PARTITIONS) else {
        return;
    };
    let (windows, published) = scene.reference();
    let parts = scene.parts(2);
    scene.publish(&[&parts[0]]);
    let mut a = scene.watch("a");
    a.wait_for("a owns every partition", |r| owned(&r.stderr()) == all());
    // Let a checkpoint what it read.
    std::thread::sleep(Duration::from_millis(500));
    scene.server.restart();
    scene.publish(&[&parts[1]]);
    // Every window is in the second half of the log: a read it after the restart.
    within(
        Duration::from_secs(8),
        "a's windows after the restart",
        || opened(&a.stdout()) == windows,
        || format!("stdout:\n{}\nstderr:\n{}", a.stdout(), a.stderr()),
    );
    assert!(
        a.child.try_wait().unwrap().is_none(),
        "a ended at the restart:\n{}",
        a.stderr()
    );
    assert_eq!(owned(&a.stderr()), all(), "{}", a.stderr());
    scene.wait_checkpointed(&[&a]);
    a.signal(Signal::SIGTERM);
    let a = wait_exit(a, 143);
    let sa = summary(&a.stderr);
    assert_eq!(partitions(&sa), all());
    assert_eq!(sa["records"].as_u64(), Some(scene.lines.len() as u64));
    assert_eq!(counts(&sa), published);
    scene.assert_all_applied_once("a", &[&a], &[], &windows, &published);
}

#[test]
fn nats_cluster_a_stream_trimmed_past_a_checkpoint_exits_3_naming_the_gap() {
    let Some(scene) = Scene::new("GAP", 1) else {
        return;
    };
    let parts = scene.parts(3);
    let len = scene.lines.len() as u64;
    let (end1, end2) = (len / 3, len * 2 / 3);
    scene.publish(&[&parts[0]]);
    let first = scene.once("a");
    assert_eq!(summary(&first.stderr)["records"].as_u64(), Some(end1));
    scene.publish(&[&parts[1]]);
    purge(scene.server.port, "GAP");
    scene.publish(&[&parts[2]]);
    let out = Mmon::in_dir(
        scene.path(),
        &[
            "watch",
            &scene.url,
            "--once",
            "--instance",
            "a",
            "--lease-ttl",
            "2s",
        ],
    )
    .timeout(Duration::from_secs(8))
    .run();
    assert_eq!(
        out.code, 3,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    let numbers: BTreeSet<u64> = out
        .stderr
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    // The checkpoint's sequence (or the next one) and the stream's first.
    assert!(out.stderr.contains("sequence"), "{}", out.stderr);
    assert!(
        numbers.contains(&end1) || numbers.contains(&(end1 + 1)),
        "{end1} not named: {}",
        out.stderr
    );
    assert!(
        numbers.contains(&(end2 + 1)) || numbers.contains(&end2),
        "{} not named: {}",
        end2 + 1,
        out.stderr
    );
}

#[test]
fn nats_cluster_a_duplicate_publish_is_counted_once() {
    let Some(scene) = Scene::new("DUP", PARTITIONS) else {
        return;
    };
    let (windows, published) = scene.reference();
    scene.publish(&["m.jsonl"]);
    scene.publish(&["m.jsonl"]);
    let out = scene.once("a");
    let s = summary(&out.stderr);
    assert_eq!(s["records"].as_u64(), Some(scene.lines.len() as u64));
    assert_eq!(counts(&s), published);
    assert_eq!(opened(&out.stdout), windows);
    let replay = Mmon::in_dir(scene.path(), &["replay", &scene.url, "--format", "json"]).run();
    assert_eq!(
        replay.json()["summary"]["records"].as_u64(),
        Some(scene.lines.len() as u64),
        "{}",
        replay.stderr
    );
}
