//! NATS JetStream (SPEC §10), phase 1: `mmon publish` through the binary,
//! and the client layer (reader, leases, members, checkpoints) through the
//! library, each against its own `nats-server` on a free loopback port with
//! its store in a temp folder.
//!
//! Needs Debian's `nats-server` (`.ci/run` installs it): without it these
//! tests print a skip note, and under `CI=true` they fail.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mmon::source::nats::{Client, Message, NatsError, NatsUrl, Timeouts, fair_share};

use super::Mmon;

/// A `nats-server -js` of one test, killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a free port, or `None` (after a skip note) when
    /// `nats-server` is not installed; under `CI=true` that is a failure.
    pub fn start() -> Option<NatsServer> {
        let installed = Command::new(program())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "nats-server is missing: install Debian's package (apt-get install nats-server)"
            );
            eprintln!("skipped: nats-server is not installed (apt-get install nats-server)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = NatsServer {
            child: None,
            port,
            store: tempfile::tempdir().expect("temp dir"),
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.store.path().join("server.log"))
            .expect("server log");
        let child = Command::new(program())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path().join("js"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < until,
                "nats-server did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the server (SIGKILL, as a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// `nats://127.0.0.1:PORT` followed by `rest` (`/metrics.>?stream=S`).
    pub fn url(&self, rest: &str) -> String {
        format!("nats://127.0.0.1:{}{rest}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.store.path().join("server.log")).unwrap_or_default()
    }
}

/// `nats-server` from PATH, else where Debian puts it (not on every PATH).
fn program() -> &'static str {
    const DEBIAN: &str = "/usr/sbin/nats-server";
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("nats-server").is_file())
    });
    if !on_path && Path::new(DEBIAN).is_file() {
        DEBIAN
    } else {
        "nats-server"
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn client(url: &str, instance: &str) -> Client {
    let url = NatsUrl::parse(url).expect("url");
    Client::connect(&url, instance, Timeouts::default()).expect("connect")
}

/// Every message from sequence `from` to the stream's last.
fn read_all(client: &Client, from: u64) -> Vec<Message> {
    let last = client.stream_info().expect("stream info").last_seq;
    let mut reader = client.reader(from).expect("reader");
    let mut out = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while out
        .last()
        .map_or(from.saturating_sub(1), |m: &Message| m.seq)
        < last
    {
        assert!(
            Instant::now() < until,
            "read {} messages, not up to {last}",
            out.len()
        );
        out.extend(
            reader
                .next_batch(1000, Duration::from_millis(500))
                .expect("batch"),
        );
    }
    out
}

/// `mmon generate` of `events` events (and one malformed line in about 100).
fn generate(dir: &Path, events: &str) {
    let out = Mmon::new(&[
        "generate",
        "--events",
        events,
        "--malformed-rate",
        "0.01",
        "--out",
        "m.jsonl",
    ])
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    std::fs::copy(out.path("m.jsonl"), dir.join("m.jsonl")).expect("copy log");
}

/// Records and rejected lines of a log as `mmon replay` counts them.
fn replay_counts(log: &str) -> (u64, u64) {
    let out = Mmon::new(&["replay", "m.jsonl", "--format", "json"])
        .file("m.jsonl", log)
        .run();
    let summary = &out.json()["summary"];
    (
        summary["records"].as_u64().unwrap(),
        summary["rejected"].as_u64().unwrap(),
    )
}

/// The log's lines without blank ones, each with its newline.
fn non_blank(log: &str) -> String {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A message's records hold its subject's model (`default` when absent).
fn check_models(m: &Message) {
    if m.model == "_bad" {
        assert_eq!(m.payload.iter().filter(|b| **b == b'\n').count(), 1);
        return;
    }
    for line in String::from_utf8(m.payload.clone()).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["model_id"].as_str().unwrap_or("default"),
            m.model,
            "{line}"
        );
    }
    assert_eq!(m.subject, format!("metrics.{}", m.model));
}

/// The numbers of `mmon publish`'s summary line, in order.
fn summary_numbers(stdout: &str) -> Vec<u64> {
    stdout
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn publish_stores_a_message_per_record_and_publishing_again_stores_nothing() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    generate(work.path(), "3000");
    let log = std::fs::read_to_string(work.path().join("m.jsonl")).unwrap();
    let (records, bad) = replay_counts(&log);
    assert!(bad > 0, "the log has malformed lines");
    let url = server.url("/metrics.>?stream=METRICS");
    let first = Mmon::new(&["publish", &url, "m.jsonl"])
        .file("m.jsonl", &log)
        .run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("created stream METRICS (subjects metrics.>"),
        "{}",
        first.stderr
    );
    let n = summary_numbers(&first.stdout);
    assert!(
        first.stdout.starts_with(&format!(
            "published {} messages ({records} records, {bad} bad lines on metrics._bad) to stream METRICS on nats://127.0.0.1:{}; 0 duplicate messages dropped by the server;",
            records + bad,
            server.port
        )),
        "{}",
        first.stdout
    );
    assert_eq!(n[0], records + bad);
    let c = client(&url, "t");
    let info = c.stream_info().unwrap();
    assert_eq!(
        (info.first_seq, info.last_seq, info.messages),
        (1, records + bad, records + bad)
    );

    let again = first.then(&["publish", &url, "m.jsonl"]).run();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.starts_with(&format!(
            "published 0 messages ({records} records, {bad} bad lines on metrics._bad) to stream METRICS on nats://127.0.0.1:{}; {} duplicate messages dropped by the server;",
            server.port,
            records + bad
        )),
        "{}",
        again.stdout
    );
    assert_eq!(c.stream_info().unwrap().messages, records + bad);

    // The messages are the file's lines, in order, each on its model's subject.
    let messages = read_all(&c, 1);
    assert_eq!(messages.len() as u64, records + bad);
    let mut joined = Vec::new();
    for m in &messages {
        check_models(m);
        joined.extend_from_slice(&m.payload);
    }
    assert_eq!(String::from_utf8(joined).unwrap(), non_blank(&log));
    assert_eq!(
        messages.iter().filter(|m| m.model == "_bad").count() as u64,
        bad
    );
}

#[test]
fn publish_batch_puts_up_to_n_consecutive_records_of_a_model_in_a_message() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    generate(work.path(), "5000");
    let log = std::fs::read_to_string(work.path().join("m.jsonl")).unwrap();
    let (records, bad) = replay_counts(&log);
    let url = server.url("/metrics.>?stream=BATCHED");
    let out = Mmon::new(&["publish", &url, "m.jsonl", "--batch", "100"])
        .file("m.jsonl", &log)
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = client(&url, "t");
    let messages = read_all(&c, 1);
    assert_eq!(summary_numbers(&out.stdout)[0], messages.len() as u64);
    assert!(
        (messages.len() as u64) < records,
        "{} messages",
        messages.len()
    );
    // Concatenated, the payloads are the file again; each message holds up
    // to 100 records of one model, or one bad line.
    let mut joined = Vec::new();
    for m in &messages {
        check_models(m);
        assert!(m.payload.iter().filter(|b| **b == b'\n').count() <= 100);
        joined.extend_from_slice(&m.payload);
    }
    assert_eq!(String::from_utf8(joined).unwrap(), non_blank(&log));
    // A message of fewer than 100 records ends a run of its model.
    for pair in messages.windows(2) {
        if pair[0].model == pair[1].model && pair[0].model != "_bad" {
            assert_eq!(pair[0].payload.iter().filter(|b| **b == b'\n').count(), 100);
        }
    }
    let bad_messages = messages.iter().filter(|m| m.model == "_bad").count() as u64;
    assert_eq!(bad_messages, bad);
    assert!(records > 0);
}

#[test]
fn publish_sends_lines_that_are_not_records_alone_to_the_bad_subject() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let t = r#""timestamp":"2024-03-01T00:00:00Z""#;
    let log = format!(
        "{{{t},\"model_id\":\"a\",\"accuracy\":0.9}}\n\
         {{oops\n\
         \n\
         {{{t},\"model_id\":\"a.b\"}}\n\
         {{{t},\"accuracy\":0.8}}\n\
         {{\"model_id\":\"a\"}}\n\
         {{{t},\"model_id\":\"a\",\"accuracy\":0.7}}\r\n"
    );
    let url = server.url("/ml.prod.*?stream=ML");
    let out = Mmon::new(&["publish", &url, "-", "--batch", "10"])
        .stdin(log)
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("(3 records, 3 bad lines on ml.prod._bad) to stream ML"),
        "{}",
        out.stdout
    );
    let c = client(&url, "t");
    let got: Vec<(String, String)> = read_all(&c, 1)
        .into_iter()
        .map(|m| (m.subject, String::from_utf8(m.payload).unwrap()))
        .collect();
    let want = [
        (
            "ml.prod.a",
            format!("{{{t},\"model_id\":\"a\",\"accuracy\":0.9}}\n"),
        ),
        ("ml.prod._bad", "{oops\n".to_string()),
        ("ml.prod._bad", format!("{{{t},\"model_id\":\"a.b\"}}\n")),
        ("ml.prod.default", format!("{{{t},\"accuracy\":0.8}}\n")),
        ("ml.prod._bad", "{\"model_id\":\"a\"}\n".to_string()),
        (
            "ml.prod.a",
            format!("{{{t},\"model_id\":\"a\",\"accuracy\":0.7}}\n"),
        ),
    ];
    let want: Vec<(String, String)> = want.into_iter().map(|(s, p)| (s.to_string(), p)).collect();
    assert_eq!(got, want);
}

#[test]
fn publish_to_a_server_that_is_not_there_exits_4_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}/metrics.>");
    let out = Mmon::new(&["publish", &url, "m.jsonl"])
        .file("m.jsonl", "{\"timestamp\":1}\n")
        .run();
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "mmon: cannot connect to nats://127.0.0.1:{port}: "
        )),
        "{}",
        out.stderr
    );
    let bad = Mmon::new(&["publish", "nats://h/metrics", "m.jsonl"])
        .file("m.jsonl", "")
        .run();
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("subject \"metrics\": expected PREFIX.> or PREFIX.*"),
        "{}",
        bad.stderr
    );
}

#[test]
fn reader_from_sequence_k_returns_exactly_k_to_the_last() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let log: String = (0..50)
        .map(|i| format!("{{\"timestamp\":{i},\"model_id\":\"m{}\"}}\n", i % 3))
        .collect();
    let url = server.url("/metrics.>");
    let out = Mmon::new(&["publish", &url, "-"]).stdin(log).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = client(&url, "r");
    let info = c.stream_info().unwrap();
    assert_eq!((info.first_seq, info.last_seq), (1, 50));
    let mut reader = c.reader(20).unwrap();
    let mut seqs = Vec::new();
    loop {
        let batch = reader.next_batch(7, Duration::from_millis(300)).unwrap();
        assert!(batch.len() <= 7);
        if batch.is_empty() {
            break;
        }
        seqs.extend(batch.iter().map(|m| m.seq));
    }
    assert_eq!(seqs, (20..=50).collect::<Vec<u64>>());
    assert_eq!(reader.next_seq(), 51);
    let last = read_all(&c, 50);
    assert_eq!(last.len(), 1);
    assert_eq!(
        (last[0].seq, last[0].model.as_str(), last[0].pending),
        (50, "m1", 0)
    );
}

#[test]
fn a_missing_stream_is_named_with_what_to_do() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let c = client(&server.url("/metrics.>?stream=NOPE"), "r");
    let err = c.stream_info().unwrap_err();
    assert!(matches!(err, NatsError::NoStream { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "stream NOPE does not exist on nats://127.0.0.1:{0}: create it, or publish with `mmon publish nats://127.0.0.1:{0}/SUBJECT?stream=NOPE FILE`",
            server.port
        )
    );
    assert!(matches!(
        c.reader(1).err().unwrap(),
        NatsError::NoStream { .. }
    ));
}

#[test]
fn leases_claim_renew_conflict_and_expire_after_the_ttl() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let url = server.url("/metrics.>?partitions=4");
    let (a, b) = (client(&url, "a"), client(&url, "b"));
    let ttl = Duration::from_secs(1);
    let (la, lb) = (a.leases(ttl).unwrap(), b.leases(ttl).unwrap());
    assert_eq!(la.bucket(), "mmon-leases-METRICS");
    let held = la.claim(0).unwrap();
    match lb.claim(0) {
        Err(NatsError::Held {
            partition: 0,
            holder,
            ..
        }) => assert_eq!(holder, "a"),
        other => panic!("claimed a held partition: {other:?}"),
    }
    let renewed = la.renew(&held).unwrap();
    assert!(renewed.revision > held.revision);
    // A writer with the old revision is stale.
    assert!(matches!(la.renew(&held), Err(NatsError::Conflict { .. })));
    let b1 = lb.claim(1).unwrap();
    let holders: Vec<(u32, String)> = la
        .holders()
        .unwrap()
        .into_iter()
        .map(|h| (h.partition, h.instance))
        .collect();
    assert_eq!(holders, vec![(0, "a".to_string()), (1, "b".to_string())]);
    // Renewing every TTL/3 keeps a lease past its TTL; b's lapses.
    let mut kept = renewed;
    let started = Instant::now();
    while started.elapsed() < ttl * 2 {
        std::thread::sleep(ttl / 3);
        kept = la.renew(&kept).unwrap();
    }
    let expired = Instant::now();
    let taken = loop {
        match la.claim(1) {
            Ok(lease) => break lease,
            Err(NatsError::Held { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(
            expired.elapsed() < Duration::from_secs(3),
            "b's lease never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(matches!(lb.renew(&b1), Err(NatsError::Conflict { .. })));
    // Released, a lease can be claimed at once; a stale release is refused.
    la.release(taken).unwrap();
    assert!(matches!(la.release(taken), Err(NatsError::Conflict { .. })));
    lb.claim(1).unwrap();
    // An unrenewed lease can be claimed by another within TTL + 1 s of its
    // last write (the server removes it by the bucket's max_age).
    lb.claim(2).unwrap();
    let written = Instant::now();
    loop {
        match la.claim(2) {
            Ok(_) => break,
            Err(NatsError::Held { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = written.elapsed();
    eprintln!("an unrenewed lease of TTL {ttl:?} was claimable after {after:?}");
    assert!(
        after >= ttl && after < ttl + Duration::from_secs(1),
        "{after:?}"
    );
    // Another TTL is refused: it is a property of the bucket.
    match b.leases(Duration::from_secs(30)) {
        Err(e @ NatsError::TtlMismatch { .. }) => {
            assert!(
                e.to_string()
                    .contains("use the same lease TTL on every instance"),
                "{e}"
            )
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened with another TTL"),
    }
}

#[test]
fn members_announce_themselves_withdraw_and_expire() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let url = server.url("/metrics.>?partitions=5");
    let ttl = Duration::from_secs(1);
    let ids = ["i1", "i2", "i3"];
    let clients: Vec<Client> = ids.iter().map(|id| client(&url, id)).collect();
    let leases: Vec<_> = clients.iter().map(|c| c.leases(ttl).unwrap()).collect();
    for l in &leases {
        l.announce().unwrap();
    }
    let members = leases[0].members().unwrap();
    assert_eq!(members, ids);
    let shares: Vec<u32> = ids.iter().map(|id| fair_share(5, &members, id)).collect();
    assert_eq!(shares, vec![2, 2, 1]);
    leases[2].withdraw().unwrap();
    assert_eq!(leases[0].members().unwrap(), ["i1", "i2"]);
    // i2 stops announcing: gone after the TTL; i1 keeps announcing.
    let started = Instant::now();
    while started.elapsed() < ttl * 2 {
        std::thread::sleep(ttl / 3);
        leases[0].announce().unwrap();
    }
    assert_eq!(leases[0].members().unwrap(), ["i1"]);
}

#[test]
fn checkpoint_save_with_a_stale_revision_is_a_conflict() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let url = server.url("/metrics.>?stream=S1&partitions=2");
    let (a, b) = (client(&url, "a"), client(&url, "b"));
    let (ca, cb) = (a.checkpoints().unwrap(), b.checkpoints().unwrap());
    assert_eq!(ca.bucket(), "mmon-checkpoints-S1");
    assert_eq!(ca.load(0).unwrap(), None);
    let r1 = ca.save(0, b"first", None).unwrap();
    // Creating what exists is stale too.
    assert!(matches!(
        cb.save(0, b"b", None),
        Err(NatsError::Conflict { expected: None, .. })
    ));
    let r2 = cb.save(0, b"second", Some(r1)).unwrap();
    match ca.save(0, b"stale", Some(r1)) {
        Err(e @ NatsError::Conflict { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "mmon-checkpoints-S1/partition.0: written by someone else since revision {r1}: this instance no longer owns it"
            )
        ),
        other => panic!("a stale write was accepted: {other:?}"),
    }
    let stored = ca.load(0).unwrap().unwrap();
    assert_eq!(
        (stored.bytes.as_slice(), stored.revision),
        (&b"second"[..], r2)
    );
    assert_eq!(ca.load(1).unwrap(), None);
    // Big checkpoints are compressed; what cannot fit is refused by size.
    let big = "a checkpoint line that repeats\n"
        .repeat(100_000)
        .into_bytes();
    let r3 = ca.save(1, &big, None).unwrap();
    assert_eq!(cb.load(1).unwrap().unwrap().bytes, big);
    let mut noise = Vec::with_capacity(2 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 2 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    match ca.save(1, &noise, Some(r3)) {
        Err(e @ NatsError::TooLarge { partition: 1, .. }) => {
            assert!(
                e.to_string().contains("over the server's max_payload"),
                "{e}"
            )
        }
        other => panic!("an oversized checkpoint was sent: {other:?}"),
    }
}

#[test]
fn a_reader_resumes_from_its_next_sequence_after_a_server_restart() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let url = server.url("/metrics.>");
    let log: String = (0..30)
        .map(|i| format!("{{\"timestamp\":{i},\"model_id\":\"m\"}}\n"))
        .collect();
    assert_eq!(
        Mmon::new(&["publish", &url, "-"])
            .stdin(log.clone())
            .run()
            .code,
        0
    );
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(1),
    };
    let c = Client::connect(&NatsUrl::parse(&url).unwrap(), "r", timeouts).unwrap();
    let mut reader = c.reader(1).unwrap();
    let first = reader.next_batch(10, Duration::from_secs(2)).unwrap();
    assert_eq!(
        first.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    // A blocking call to a dead server times out; it does not hang.
    server.kill();
    let started = Instant::now();
    let err = c.stream_info().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");
    assert!(
        matches!(err, NatsError::Timeout { .. } | NatsError::Server { .. }),
        "{err}"
    );
    server.restart();
    let more: String = (30..40)
        .map(|i| format!("{{\"timestamp\":{i},\"model_id\":\"m\"}}\n"))
        .collect();
    assert_eq!(Mmon::new(&["publish", &url, "-"]).stdin(more).run().code, 0);
    // The file store kept the stream; a reader made from next_seq gets the rest.
    let until = Instant::now() + Duration::from_secs(8);
    let info = loop {
        match c.stream_info() {
            Ok(info) => break info,
            Err(e) => assert!(Instant::now() < until, "no reconnect: {e}"),
        }
    };
    assert_eq!(info.last_seq, 40);
    let mut reader = c.reader(reader.next_seq()).unwrap();
    let mut seqs = Vec::new();
    while seqs.last() != Some(&40) {
        assert!(Instant::now() < until, "read {seqs:?}");
        seqs.extend(
            reader
                .next_batch(100, Duration::from_millis(500))
                .unwrap()
                .iter()
                .map(|m| m.seq),
        );
    }
    assert_eq!(seqs, (11..=40).collect::<Vec<_>>());
}
