//! The registry and the retrainer together, through the public API, with the
//! fake runner (nothing sleeps): publication, crashes at every step, verify,
//! LATEST repair, gc, aliases, encoded ids, locks, cooldown and dry runs.

use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;
use crate::cli::{RegistryArgs, RegistryCommand, RegistryFormat as Format};
use crate::cmd::registry::run;
use crate::exit_code::ExitCode;
use crate::retrain::{
    ClockMode, FakeRunner, FakeTrial, FixedClock, RetrainConfig, RetrainOutcome, Retrainer, Skip,
};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn config(extra: &str) -> RetrainConfig {
    let cooldown = if extra.contains("cooldown") {
        ""
    } else {
        "cooldown = \"1h\""
    };
    let text = format!(
        "command = [\"train\", \"--lr\", \"{{lr}}\", \"--out\", \"{{output_dir}}\"]\n{cooldown}\n{extra}\n\
         [search]\nseed = 7\nlr = {{ log_uniform = [1e-4, 1e-2] }}\n"
    );
    RetrainConfig::from_toml(&text.parse().unwrap(), "mmon.toml").unwrap()
}

fn retrainer(root: &Path, extra: &str, script: Vec<FakeTrial>) -> Retrainer {
    Retrainer::new(
        config(extra),
        root,
        Box::new(FakeRunner::new(script, "val_accuracy")),
        ClockMode::Replay,
    )
    .with_clock(Box::new(FixedClock(t("2024-06-01T00:00:00Z"))))
}

fn window() -> Value {
    json!({"model_id": "churn", "metric": "accuracy", "detector": {"name": "decay"}, "severity": "drift"})
}

fn published(o: &RetrainOutcome) -> &crate::retrain::Published {
    match o {
        RetrainOutcome::Published(p) => p,
        other => panic!("expected a publication, got {other:?}"),
    }
}

fn verify_all(root: &Path) -> VerifyReport {
    let mut report = VerifyReport::default();
    for m in Registry::new(root).models().unwrap() {
        m.verify(&mut report).unwrap();
    }
    report
}

fn cli(root: &Path, format: Format, command: RegistryCommand) -> (ExitCode, String) {
    let args = RegistryArgs {
        registry: Some(root.to_path_buf()),
        format,
        command,
    };
    let mut out = Vec::new();
    let code = run(&args, Path::new("unused"), &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn decay_trigger_publishes_a_patch_of_the_log_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = retrainer(dir.path(), "", vec![FakeTrial::Ok(Some(0.9))]);
    let o = r.on_drift(
        "churn",
        Some("v1.4.2"),
        &window(),
        t("2024-05-01T10:00:00Z"),
    );
    let p = published(&o);
    assert_eq!(p.version, "1.4.3");
    assert!(!o.is_failure());
    let m = Registry::new(dir.path()).model("churn").unwrap();
    let manifest = Manifest::read(&m.version_dir(&"1.4.3".parse().unwrap())).unwrap();
    assert_eq!(manifest.schema, "mmon.manifest/1");
    assert_eq!(manifest.parent.as_deref(), Some("v1.4.2"));
    assert_eq!(manifest.base_version.as_deref(), Some("1.4.2"));
    assert_eq!(manifest.trigger, window());
    assert_eq!(manifest.metrics, Some(json!({"val_accuracy": 0.9})));
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["metrics.json", "model.json", "params.json", "train.log"]
    );
    assert_eq!(manifest.command[0], "train");
    assert_eq!(
        manifest.command[4],
        p.path
            .display()
            .to_string()
            .replace("1.4.3", &format!(".staging/{}-t1", p.run_id))
    );
    assert_eq!(fs::read_to_string(m.latest_path()).unwrap(), "1.4.3\n");
    assert!(verify_all(dir.path()).is_clean());
    let events = m.events().unwrap();
    assert!(matches!(&events[0].event, Event::Published { version, .. } if version == "1.4.3"));
    assert_eq!(fs::read_dir(m.staging_dir()).unwrap().count(), 0);
    assert_eq!(
        crate::retrain::history::read(&m.history_path())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn versions_follow_the_highest_published_and_cooldown_uses_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = retrainer(dir.path(), "bump = \"minor\"", vec![FakeTrial::Ok(None)]);
    assert_eq!(
        published(&r.on_drift("m", None, &window(), t("2024-05-01T00:00:00Z"))).version,
        "1.0.0"
    );
    // 30 minutes later in event time: inside the 1h cooldown.
    let o = r.on_drift("m", None, &window(), t("2024-05-01T00:30:00Z"));
    assert!(
        matches!(o, RetrainOutcome::Skipped(Skip::Cooldown { .. })),
        "{o:?}"
    );
    assert_eq!(o.to_json()["why"], "cooldown");
    assert_eq!(
        published(&r.on_drift("m", Some("0.9.0"), &window(), t("2024-05-01T01:00:00Z"))).version,
        "1.1.0"
    );
    // A new process remembers the cooldown through events.jsonl.
    let mut again = retrainer(dir.path(), "bump = \"minor\"", vec![FakeTrial::Ok(None)]);
    assert!(matches!(
        again.on_drift("m", None, &window(), t("2024-05-01T01:10:00Z")),
        RetrainOutcome::Skipped(_)
    ));
    assert_eq!(
        published(&again.on_drift("m", Some("1.9.0"), &window(), t("2024-05-02T00:00:00Z")))
            .version,
        "1.10.0"
    );
    assert_eq!(
        published(&again.on_drift("m", Some("1.9.0"), &window(), t("2024-05-03T00:00:00Z")))
            .version,
        "1.11.0"
    );
}

#[test]
fn watch_cooldown_uses_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |now: &str| {
        Retrainer::new(
            config(""),
            dir.path(),
            Box::new(FakeRunner::new(vec![FakeTrial::Ok(None)], "x")),
            ClockMode::Watch,
        )
        .with_clock(Box::new(FixedClock(t(now))))
    };
    published(&mk("2024-06-01T00:00:00Z").on_drift(
        "m",
        None,
        &window(),
        t("2020-01-01T00:00:00Z"),
    ));
    // Event time is a year later, but the wall clock says 10 minutes.
    let o = mk("2024-06-01T00:10:00Z").on_drift("m", None, &window(), t("2021-01-01T00:00:00Z"));
    assert!(matches!(o, RetrainOutcome::Skipped(Skip::Cooldown { .. })));
    published(&mk("2024-06-01T01:10:00Z").on_drift(
        "m",
        None,
        &window(),
        t("2020-01-01T00:00:00Z"),
    ));
}

#[test]
fn best_trial_is_published_and_failed_trials_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let script = vec![
        FakeTrial::Ok(Some(0.7)),
        FakeTrial::Exit(1),
        FakeTrial::Ok(Some(0.8)),
        FakeTrial::Timeout,
    ];
    let mut r = retrainer(
        dir.path(),
        "trials = 4\nselect = { metric = \"val_accuracy\", goal = \"max\" }",
        script,
    );
    let o = r.on_drift("m", Some("2.0.0"), &window(), t("2024-05-01T00:00:00Z"));
    let p = published(&o);
    assert_eq!(
        (p.version.as_str(), p.trial, p.value),
        ("2.0.1", 3, Some(0.8))
    );
    assert_eq!(p.failed_trials(), 2);
    assert!(o.is_failure(), "a failed trial makes the run exit 4");
    let m = Registry::new(dir.path()).model("m").unwrap();
    let manifest = Manifest::read(&p.path).unwrap();
    let statuses: Vec<&str> = manifest.trials.iter().map(|t| t.status.as_str()).collect();
    assert_eq!(statuses, ["ok", "failed", "ok", "failed"]);
    assert_eq!(manifest.trials[1].exit_code, Some(1));
    assert!(manifest.trials[3].timed_out);
    assert_eq!(manifest.selected.value, Some(0.8));
    let failed: Vec<String> = fs::read_dir(m.failed_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(failed.len(), 2);
    for f in &failed {
        let d = m.failed_dir().join(f);
        assert!(
            d.join("train.log").is_file()
                && d.join("failure.json").is_file()
                && d.join("params.json").is_file()
        );
    }
    assert_eq!(
        fs::read_dir(m.staging_dir()).unwrap().count(),
        0,
        "losing trials are discarded"
    );
    assert!(verify_all(dir.path()).is_clean());
}

#[test]
fn a_failed_retrain_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = retrainer(dir.path(), "", vec![FakeTrial::Empty]);
    let o = r.on_drift("m", None, &window(), t("2024-05-01T00:00:00Z"));
    let RetrainOutcome::Failed(f) = &o else {
        panic!("{o:?}")
    };
    assert!(f.reason.contains("wrote no file"), "{}", f.reason);
    assert_eq!(o.exit_code(), ExitCode::Training);
    assert_eq!(o.to_json()["status"], "failed");
    let m = Registry::new(dir.path()).model("m").unwrap();
    assert!(m.versions().unwrap().is_empty());
    assert!(!m.latest_path().exists());
    let kinds: Vec<Option<u32>> = m
        .events()
        .unwrap()
        .iter()
        .map(|e| match &e.event {
            Event::Failed { trial, .. } => *trial,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, [Some(1), None]);
}

#[test]
fn a_crash_at_any_publish_step_leaves_all_or_nothing_and_the_next_run_cleans_up() {
    for (i, step) in PublishStep::ALL.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = retrainer(dir.path(), "cooldown = \"0s\"", vec![FakeTrial::Ok(None)]);
        published(&first.on_drift("m", None, &window(), t("2024-05-01T00:00:00Z")));
        let mut crashing = retrainer(dir.path(), "cooldown = \"0s\"", vec![FakeTrial::Ok(None)])
            .with_publish_hook(Box::new(move |s| {
                if s == step {
                    Err(std::io::Error::other("crash"))
                } else {
                    Ok(())
                }
            }));
        let o = crashing.on_drift("m", None, &window(), t("2024-05-02T00:00:00Z"));
        assert!(matches!(o, RetrainOutcome::Failed(_)), "{step:?}: {o:?}");
        drop(crashing);

        let m = Registry::new(dir.path()).model("m").unwrap();
        let report = verify_all(dir.path());
        assert!(report.is_clean(), "{step:?}: {:?}", report.findings);
        let versions: Vec<String> = m
            .versions()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        let renamed = i >= 3;
        assert_eq!(
            versions,
            if renamed {
                vec!["1.0.0", "1.0.1"]
            } else {
                vec!["1.0.0"]
            },
            "{step:?}"
        );
        if !renamed {
            assert!(!m.debris().is_empty(), "{step:?}: staging debris expected");
        }

        let mut next = retrainer(dir.path(), "cooldown = \"0s\"", vec![FakeTrial::Ok(None)]);
        let p = published(&next.on_drift("m", None, &window(), t("2024-05-03T00:00:00Z"))).clone();
        assert_eq!(
            p.version,
            if renamed { "1.0.2" } else { "1.0.1" },
            "{step:?}"
        );
        assert!(m.debris().is_empty(), "{step:?}: {:?}", m.debris());
        assert_eq!(
            fs::read_to_string(m.latest_path()).unwrap().trim(),
            p.version
        );
        let report = verify_all(dir.path());
        assert!(
            report.is_clean() && report.notes.is_empty(),
            "{step:?}: {report:?}"
        );
    }
}

#[test]
fn verify_finds_changed_missing_and_extra_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = retrainer(
        dir.path(),
        "cooldown = \"0s\"",
        vec![FakeTrial::Ok(Some(0.5))],
    );
    let p = published(&r.on_drift("m", None, &window(), t("2024-05-01T00:00:00Z"))).clone();
    let (code, text) = cli(
        dir.path(),
        Format::Table,
        RegistryCommand::Verify { model: None },
    );
    assert_eq!(code, ExitCode::Success, "{text}");
    assert!(
        text.contains("verified 1 model(s), 1 version(s), 4 file(s): ok"),
        "{text}"
    );

    fs::write(p.path.join("model.json"), "tampered").unwrap();
    fs::remove_file(p.path.join("metrics.json")).unwrap();
    fs::create_dir(p.path.join("extra")).unwrap();
    fs::write(p.path.join("extra/notes.txt"), "x").unwrap();
    let (code, text) = cli(
        dir.path(),
        Format::Json,
        RegistryCommand::Verify {
            model: Some("m".into()),
        },
    );
    assert_eq!(code, ExitCode::Training);
    let v: Value = serde_json::from_str(&text).unwrap();
    let kinds: Vec<(&str, &str)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("missing", "metrics.json"),
            ("changed", "model.json"),
            ("extra", "extra/notes.txt")
        ]
    );
    assert_eq!(v["ok"], false);
}

#[test]
fn verify_finds_bad_manifests_and_dangling_pointers() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = retrainer(dir.path(), "cooldown = \"0s\"", vec![FakeTrial::Ok(None)]);
    let p = published(&r.on_drift("m", None, &window(), t("2024-05-01T00:00:00Z"))).clone();
    let m = Registry::new(dir.path()).model("m").unwrap();
    fs::write(m.aliases_path(), r#"{"prod": "9.9.9"}"#).unwrap();
    fs::write(m.latest_path(), "3.0.0\n").unwrap();
    fs::create_dir(m.dir().join("2.0.0")).unwrap();
    let mut manifest = Manifest::read(&p.path).unwrap();
    manifest.tree_sha256 = "0".repeat(64);
    fs::remove_file(p.path.join("manifest.json")).unwrap();
    manifest.write(&p.path).unwrap();
    let kinds: Vec<FindingKind> = verify_all(dir.path())
        .findings
        .iter()
        .map(|f| f.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            FindingKind::BadManifest,
            FindingKind::BadManifest,
            FindingKind::DanglingLatest,
            FindingKind::DanglingAlias
        ]
    );
}

#[test]
fn latest_is_rebuilt_when_lost_or_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = retrainer(dir.path(), "cooldown = \"0s\"", vec![FakeTrial::Ok(None)]);
    for day in 1..=2 {
        published(&r.on_drift(
            "m",
            None,
            &window(),
            t(&format!("2024-05-0{day}T00:00:00Z")),
        ));
    }
    let m = Registry::new(dir.path()).model("m").unwrap();
    fs::remove_file(m.latest_path()).unwrap();
    let report = verify_all(dir.path());
    assert!(
        report.is_clean() && report.notes[0].contains("LATEST is missing"),
        "{report:?}"
    );
    assert!(m.repair_latest().unwrap());
    assert_eq!(fs::read_to_string(m.latest_path()).unwrap(), "1.0.1\n");
    fs::write(m.latest_path(), "1.0.0\n").unwrap();
    assert!(
        verify_all(dir.path()).notes[0].contains("stale")
            || verify_all(dir.path()).notes[0].contains("newer")
    );
    assert!(m.repair_latest().unwrap());
    assert!(!m.repair_latest().unwrap());
    assert_eq!(
        m.latest_file(),
        LatestFile::Points("1.0.1".parse().unwrap())
    );
}

#[test]
fn gc_keeps_latest_and_aliased_versions() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = retrainer(dir.path(), "cooldown = \"0s\"", vec![FakeTrial::Ok(None)]);
    for day in 1..=5 {
        published(&r.on_drift(
            "m",
            None,
            &window(),
            t(&format!("2024-05-0{day}T00:00:00Z")),
        ));
    }
    let (code, _) = cli(
        dir.path(),
        Format::Table,
        RegistryCommand::Promote {
            model: "m".into(),
            version: "v1.0.1".into(),
            alias: "prod".into(),
        },
    );
    assert_eq!(code, ExitCode::Success);
    let m = Registry::new(dir.path()).model("m").unwrap();
    fs::create_dir_all(m.staging_dir().join("old-run-t1")).unwrap();

    let (_, text) = cli(
        dir.path(),
        Format::Table,
        RegistryCommand::Gc {
            keep: 0,
            dry_run: true,
            model: None,
        },
    );
    assert!(
        text.contains("m: would remove 1.0.0 1.0.2 1.0.3; kept 1.0.1 1.0.4"),
        "{text}"
    );
    assert_eq!(m.versions().unwrap().len(), 5, "dry run removes nothing");

    let (_, text) = cli(
        dir.path(),
        Format::Json,
        RegistryCommand::Gc {
            keep: 1,
            dry_run: false,
            model: Some("m".into()),
        },
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["models"][0]["removed"],
        json!(["1.0.0", "1.0.2", "1.0.3"])
    );
    let left: Vec<String> = m
        .versions()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(left, ["1.0.1", "1.0.4"]);
    assert!(m.debris().is_empty());
    let removed = m
        .events()
        .unwrap()
        .iter()
        .filter(|e| matches!(e.event, Event::Removed { .. }))
        .count();
    assert_eq!(removed, 3);
    assert!(verify_all(dir.path()).is_clean());
}

#[test]
fn promote_and_show_by_alias() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "cooldown = \"0s\"\nselect = { metric = \"val_accuracy\", goal = \"max\" }";
    let mut r = retrainer(dir.path(), extra, vec![FakeTrial::Ok(Some(0.75))]);
    published(&r.on_drift("m", Some("1.0.0"), &window(), t("2024-05-01T00:00:00Z")));
    let promote = |version: &str, alias: &str| RegistryCommand::Promote {
        model: "m".into(),
        version: version.into(),
        alias: alias.into(),
    };
    let (_, text) = cli(dir.path(), Format::Table, promote("1.0.1", "prod"));
    assert_eq!(text, "m prod -> 1.0.1\n");
    let (_, text) = cli(
        dir.path(),
        Format::Json,
        RegistryCommand::Show {
            target: "m@prod".into(),
        },
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["version"].as_str(), v["parent"].as_str()),
        (Some("1.0.1"), Some("1.0.0"))
    );
    let (_, text) = cli(
        dir.path(),
        Format::Table,
        RegistryCommand::Show { target: "m".into() },
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "model         m");
    assert_eq!(lines[2], "parent        1.0.0");
    assert_eq!(lines[4], "aliases       prod");
    assert_eq!(lines[7], "trigger       drift of accuracy, by decay");
    assert_eq!(
        lines[10],
        "selected      trial 1: val_accuracy = 0.75 (max)"
    );
    assert_eq!(lines[17], "FILE          BYTES  SHA256");
    assert!(lines[18].starts_with("metrics.json  21     "), "{text}");
    let (_, text) = cli(dir.path(), Format::Table, RegistryCommand::List);
    assert_eq!(
        text,
        "MODEL  VERSIONS  LATEST  ALIASES\nm      1         1.0.1   prod=1.0.1\n"
    );

    let args = RegistryArgs {
        registry: Some(dir.path().into()),
        format: Format::Table,
        command: promote("1.0.1", "1.2.3"),
    };
    let err = run(&args, Path::new("x"), &mut Vec::new()).unwrap_err();
    assert_eq!(crate::exit_code::code_of(&err), ExitCode::Usage);
    let args = RegistryArgs {
        registry: Some(dir.path().into()),
        format: Format::Table,
        command: promote("7.0.0", "prod"),
    };
    let err = run(&args, Path::new("x"), &mut Vec::new()).unwrap_err();
    assert_eq!(crate::exit_code::code_of(&err), ExitCode::Input);
    assert!(err.to_string().contains("no version 7.0.0"));
}

#[test]
fn unsafe_model_ids_get_encoded_folders() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = retrainer(dir.path(), "", vec![FakeTrial::Ok(None)]);
    for id in ["../escape", "fraud model/eu", ".hidden"] {
        published(&r.on_drift(id, None, &window(), t("2024-05-01T00:00:00Z")));
    }
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["%2E.%2Fescape", "%2Ehidden", "fraud%20model%2Feu"]);
    let ids: Vec<String> = Registry::new(dir.path())
        .models()
        .unwrap()
        .iter()
        .map(|m| m.id().to_string())
        .collect();
    assert_eq!(ids, ["../escape", ".hidden", "fraud model/eu"]);
    assert!(verify_all(dir.path()).is_clean());
    assert!(!dir.path().parent().unwrap().join("escape").exists());
}

#[test]
fn a_held_train_lock_skips_and_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let m = Registry::new(dir.path()).model("m").unwrap();
    let held = m.try_train_lock("other-run").unwrap();
    let mut r = retrainer(dir.path(), "", vec![FakeTrial::Ok(None)]);
    let o = r.on_drift("m", None, &window(), t("2024-05-01T00:00:00Z"));
    match &o {
        RetrainOutcome::Skipped(Skip::Locked { holder: Some(h) }) => {
            assert_eq!(h.pid, std::process::id());
            assert_eq!(h.run_id.as_deref(), Some("other-run"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!o.is_failure());
    assert_eq!(o.to_json()["why"], "locked");
    let args = RegistryArgs {
        registry: Some(dir.path().into()),
        format: Format::Table,
        command: RegistryCommand::Unlock {
            model: "m".into(),
            force: false,
        },
    };
    let err = run(&args, Path::new("x"), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("pass --force"), "{err}");
    drop(held);
    // The skip did not start a cooldown: the next drift trains.
    published(&r.on_drift("m", None, &window(), t("2024-05-01T00:01:00Z")));
    let (_, text) = cli(
        dir.path(),
        Format::Table,
        RegistryCommand::Unlock {
            model: "m".into(),
            force: true,
        },
    );
    assert_eq!(text, "m: .train.lock: not locked\nm: .lock: not locked\n");
}

#[test]
fn dry_run_plans_without_running_or_writing() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRunner::new(vec![FakeTrial::Ok(None)], "x");
    let jobs = fake.jobs();
    let cfg = config("trials = 2\nselect = { metric = \"x\", goal = \"min\" }");
    let mut r = Retrainer::new(cfg, dir.path(), Box::new(fake), ClockMode::Replay).dry_run(true);
    let o = r.on_drift("m", Some("1.4.2"), &window(), t("2024-05-01T00:00:00Z"));
    let RetrainOutcome::DryRun(plan) = &o else {
        panic!("{o:?}")
    };
    assert_eq!(plan.version, "1.4.3");
    assert_eq!(plan.trials.len(), 2);
    let env: std::collections::BTreeMap<_, _> = plan.trials[1].env.iter().cloned().collect();
    assert_eq!(env["MMON_TRIAL"], "2");
    assert_eq!(env["MMON_PARENT_VERSION"], "1.4.2");
    assert_eq!(env["MMON_NEW_VERSION"], "1.4.3");
    assert_eq!(
        serde_json::from_str::<Value>(&env["MMON_TRIGGER"]).unwrap(),
        window()
    );
    let lr: f64 = plan.trials[0].argv[2].parse().unwrap();
    assert!((1e-4..=1e-2).contains(&lr));
    assert_eq!(
        plan.trials[0].argv[4],
        env["MMON_OUTPUT_DIR"].replace("-t2", "-t1")
    );
    assert!(jobs.lock().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a dry run writes nothing"
    );
    assert!(matches!(
        r.on_drift("m", None, &window(), t("2024-05-01T00:10:00Z")),
        RetrainOutcome::Skipped(_)
    ));
}

#[test]
fn each_trial_gets_the_documented_environment() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRunner::new(vec![FakeTrial::Ok(None)], "x");
    let jobs = fake.jobs();
    let mut r = Retrainer::new(config(""), dir.path(), Box::new(fake), ClockMode::Replay);
    let p =
        published(&r.on_drift("m", Some("v2.0.0"), &window(), t("2024-05-01T00:00:00Z"))).clone();
    let job = jobs.lock().unwrap()[0].clone();
    let names: Vec<&str> = job.env.iter().map(|(k, _)| k.as_str()).collect();
    for n in [
        "MMON_MODEL_ID",
        "MMON_PARENT_VERSION",
        "MMON_NEW_VERSION",
        "MMON_OUTPUT_DIR",
        "MMON_PARAMS",
        "MMON_TRIGGER",
        "MMON_RUN_ID",
        "MMON_TRIAL",
        "MMON_SEED",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    assert!(job.output_dir.is_absolute());
    let params: Value =
        serde_json::from_str(&fs::read_to_string(p.path.join("params.json")).unwrap()).unwrap();
    let env_params: Value =
        serde_json::from_str(&job.env.iter().find(|(k, _)| k == "MMON_PARAMS").unwrap().1).unwrap();
    assert_eq!(params, env_params);
}

#[test]
fn failed_trials_beyond_keep_failed_are_removed_so_a_bad_spell_cannot_fill_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = retrainer(
        dir.path(),
        "cooldown = \"0s\"\nkeep_failed = 2",
        vec![FakeTrial::Exit(1)],
    );
    for day in 1..=5 {
        let o = r.on_drift(
            "m",
            None,
            &window(),
            t(&format!("2024-05-0{day}T00:00:00Z")),
        );
        assert!(o.is_failure(), "{o:?}");
        // Distinct modification times, so "newest" is well defined.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let m = Registry::new(dir.path()).model("m").unwrap();
    let kept = m.failed_trials();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept[0].ends_with("-5-t1") && kept[1].ends_with("-4-t1"),
        "{kept:?}"
    );

    // gc --keep applies to .failed/ too.
    let (_, text) = cli(
        dir.path(),
        Format::Table,
        RegistryCommand::Gc {
            keep: 1,
            dry_run: true,
            model: None,
        },
    );
    assert!(
        text.contains(&format!("m: would remove failed trial .failed/{}", kept[1])),
        "{text}"
    );
    assert_eq!(m.failed_trials().len(), 2, "a dry run removes nothing");
    let (_, text) = cli(
        dir.path(),
        Format::Json,
        RegistryCommand::Gc {
            keep: 1,
            dry_run: false,
            model: None,
        },
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["models"][0]["failed"], json!([kept[1]]));
    assert_eq!(m.failed_trials(), [kept[0].clone()]);
}
