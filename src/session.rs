//! The run core: one pipeline, its sinks, and how a run ends.
//!
//! Every source (replay's files, watch's follower, a message stream) only
//! produces records; it hands each to a [`Session`], which runs it through
//! the pipeline and gives the window events to the sinks: the retrain
//! trigger, the main report, the `--report` files and the rejects file.
//! Sinks only observe. A training outcome comes back from the trigger as a
//! note that the session matches to its window by id and puts on the window
//! when it closes, so the pipeline never learns that a sink exists.
//!
//! At the end the session writes the reports and says the exit code, the
//! same way for every source.
//!
//! A source that splits its models into partitions (NATS, where each
//! instance owns some of them) gives each partition its own pipeline, so a
//! partition's state can be saved and handed to another instance on its
//! own. The session numbers their windows `local id × partitions +
//! partition`, which keeps ids unique and, with one partition, unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::config::{Config, FailOn};
use crate::exit_code::{ExitCode, Failure};
use crate::output::{ReportSink, output_failure};
use crate::pipeline::{Counts, Pipeline, VersionSpan};
use crate::record::Record;
use crate::rejects::Rejects;
use crate::report::files::ReportFiles;
use crate::report::{self, Reporter, Summary, Unseen};
use crate::retrain::{ClockMode, RetrainNote};
use crate::settings::Settings;
use crate::signals::Signals;
use crate::source::{BadRecord, FileStats};
use crate::trigger::RetrainTrigger;
use crate::window::{Event, EventKind};

/// One run: the pipelines and every sink of their events.
pub struct Session {
    /// By partition; files have one.
    pipelines: Vec<Option<Pipeline>>,
    trigger: Option<RetrainTrigger>,
    reporter: Reporter<ReportSink>,
    files: ReportFiles,
    rejects: Rejects,
    /// Training outcomes of windows still open, by (session) window id.
    retrains: BTreeMap<u64, RetrainNote>,
    events: Vec<Event>,
    /// Per partition, its pipeline's counts when this run took it over (a
    /// checkpoint's).
    starts: Vec<Counts>,
    /// What partitions handed over during the run counted in it.
    released: Counts,
    /// Whether a training run ended since [`Session::take_retrained`].
    retrained: bool,
    fail_on: FailOn,
}

/// How the main report prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Everything at the end (replay).
    AtEnd,
    /// A table prints each event as it happens (watch).
    Live,
}

impl Session {
    /// A session for `settings` continuing `pipeline` (new, or restored
    /// from a checkpoint with the open windows' `retrains`). Opens the
    /// report and rejects files, so a folder that cannot be written is
    /// found before any input is read (exit 4).
    pub fn new(
        settings: &Settings,
        pipeline: Pipeline,
        retrains: BTreeMap<u64, RetrainNote>,
        clock: ClockMode,
        cancel: Arc<AtomicBool>,
        pace: Pace,
    ) -> anyhow::Result<Session> {
        let mut s = Session::with_slots(settings, 1, clock, cancel, pace)?;
        s.adopt(0, pipeline, retrains);
        Ok(s)
    }

    /// A session of `partitions` pipelines, none owned yet
    /// ([`Session::adopt`] gives one).
    pub fn partitioned(
        settings: &Settings,
        partitions: u32,
        clock: ClockMode,
        cancel: Arc<AtomicBool>,
        pace: Pace,
    ) -> anyhow::Result<Session> {
        Session::with_slots(settings, partitions.max(1) as usize, clock, cancel, pace)
    }

    fn with_slots(
        settings: &Settings,
        slots: usize,
        clock: ClockMode,
        cancel: Arc<AtomicBool>,
        pace: Pace,
    ) -> anyhow::Result<Session> {
        let trigger = if settings.retrain {
            let mut options = settings.trigger.clone();
            options.cancel = Some(cancel);
            Some(RetrainTrigger::new(&settings.config, &options, clock)?)
        } else {
            None
        };
        let files = ReportFiles::new(
            &settings.reports,
            &settings.config,
            settings.fail_on,
            settings.junit_fail_on,
        );
        let out = ReportSink::open(settings.output.as_deref())?;
        let mut reporter = Reporter::new(settings.format, out, !settings.quiet);
        if pace == Pace::Live {
            reporter = reporter.live();
        }
        let rejects = Rejects::new(
            settings.on_bad_record,
            settings.rejects.as_deref(),
            settings.quiet,
        )?;
        Ok(Session {
            starts: vec![Counts::default(); slots],
            released: Counts::default(),
            pipelines: (0..slots).map(|_| None).collect(),
            trigger,
            reporter,
            files,
            rejects,
            retrains: BTreeMap::new(),
            events: Vec::new(),
            retrained: false,
            fail_on: settings.fail_on,
        })
    }

    /// Takes over `partition` with its pipeline (new or restored) and the
    /// training outcomes of its open windows.
    pub fn adopt(
        &mut self,
        partition: u32,
        pipeline: Pipeline,
        retrains: BTreeMap<u64, RetrainNote>,
    ) {
        let p = partition as usize;
        self.starts[p] = pipeline.counts();
        self.pipelines[p] = Some(pipeline);
        self.retrains.extend(retrains);
    }

    /// Hands `partition` over (after its checkpoint was written): its
    /// windows are no longer this run's to report.
    pub fn release(&mut self, partition: u32) {
        let p = partition as usize;
        if let Some(pipeline) = self.pipelines[p].take() {
            let c = since(pipeline.counts(), self.starts[p]);
            self.released = add(self.released, c);
        }
        self.retrains
            .retain(|&id, _| Self::partition_of(id, self.pipelines.len()) != partition);
    }

    /// The partition whose pipeline opened the window `id` (ids are
    /// numbered `local × partitions + partition`, see [`Session::emit`]).
    fn partition_of(id: u64, partitions: usize) -> u32 {
        (id % partitions as u64) as u32
    }

    /// Runs one record through the pipeline and its events to the sinks.
    #[inline]
    pub fn record(&mut self, record: &Record) -> anyhow::Result<()> {
        self.record_in(0, record)
    }

    /// [`Session::record`] for a record of `partition`, which this run owns.
    #[inline]
    pub fn record_in(&mut self, partition: u32, record: &Record) -> anyhow::Result<()> {
        let Some(pipeline) = self.pipelines[partition as usize].as_mut() else {
            return Ok(());
        };
        pipeline.process(record, &mut self.events);
        self.files.observe(record);
        if !self.events.is_empty() {
            self.emit(partition, true)?;
        }
        Ok(())
    }

    /// A record that could not be used: counted, shown, kept in `--rejects`
    /// (or the end of the run, with `--on-bad-record fail`).
    pub fn bad(&mut self, bad: &BadRecord) -> anyhow::Result<()> {
        self.rejects.add(bad)
    }

    /// The end of the input: every open window closes (`"eof"`). A watch
    /// with a checkpoint never calls it: its windows go on next run.
    pub fn end_of_input(&mut self) -> anyhow::Result<()> {
        for p in 0..self.pipelines.len() {
            if let Some(pipeline) = self.pipelines[p].as_mut() {
                pipeline.finish(&mut self.events);
                self.emit(p as u32, false)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, partition: u32, retrain: bool) -> anyhow::Result<()> {
        let n = self.pipelines.len() as u64;
        let mut events = std::mem::take(&mut self.events);
        for mut event in events.drain(..) {
            event.window.id = event.window.id * n + u64::from(partition);
            if retrain && let Some(t) = &mut self.trigger {
                let before = t.counts();
                if let Some(note) = t.observe(&event) {
                    self.retrains.insert(event.window.id, note);
                }
                self.retrained |= t.counts() != before;
            }
            if event.kind == EventKind::Closed {
                event.window.retrain = self.retrains.remove(&event.window.id);
            }
            self.files.event(&event);
            self.reporter.event(&event).map_err(output_failure)?;
        }
        self.events = events;
        Ok(())
    }

    /// Whether a training run was published or failed since the last call
    /// (watch writes its checkpoint after every one).
    pub fn take_retrained(&mut self) -> bool {
        std::mem::take(&mut self.retrained)
    }

    /// The pipeline of a run over files (partition 0).
    pub fn pipeline(&self) -> &Pipeline {
        self.pipelines[0]
            .as_ref()
            .expect("a session over files has its one pipeline")
    }

    /// The pipeline of `partition`, if this run owns it.
    pub fn pipeline_of(&self, partition: u32) -> Option<&Pipeline> {
        self.pipelines.get(partition as usize)?.as_ref()
    }

    /// The training outcomes of windows still open, for a checkpoint.
    pub fn retrains(&self) -> &BTreeMap<u64, RetrainNote> {
        &self.retrains
    }

    /// [`Session::retrains`] of one partition's windows.
    pub fn retrains_of(&self, partition: u32) -> BTreeMap<u64, RetrainNote> {
        self.retrains
            .iter()
            .filter(|&(&id, _)| Self::partition_of(id, self.pipelines.len()) == partition)
            .map(|(id, note)| (*id, note.clone()))
            .collect()
    }

    fn owned(&self) -> impl Iterator<Item = (usize, &Pipeline)> {
        self.pipelines
            .iter()
            .enumerate()
            .filter_map(|(p, pipeline)| Some((p, pipeline.as_ref()?)))
    }

    pub fn rejected(&self) -> u64 {
        self.rejects.count()
    }

    /// This run's counts: the pipeline's less what a checkpoint carried in.
    pub fn counts(&self) -> Counts {
        self.owned()
            .map(|(p, pipeline)| since(pipeline.counts(), self.starts[p]))
            .fold(self.released, add)
    }

    /// The summary of this run so far, which read `bytes` from `inputs`.
    pub fn summary(&self, elapsed_s: f64, bytes: u64, inputs: Vec<FileStats>) -> Summary {
        let counts = self.counts();
        let (streams, unseen, versions) = self.streams_seen();
        Summary {
            files: inputs.len() as u64,
            bytes,
            records: counts.records,
            rejected: self.rejects.count(),
            out_of_order: counts.out_of_order,
            streams,
            windows: report::WindowCounts {
                warning: counts.windows_warning,
                drift: counts.windows_drift,
            },
            retrains: self
                .trigger
                .as_ref()
                .map(RetrainTrigger::counts)
                .unwrap_or_default(),
            unseen,
            versions,
            elapsed_s,
            interrupted: None,
            records_per_s: if elapsed_s > 0.0 {
                counts.records as f64 / elapsed_s
            } else {
                0.0
            },
            inputs,
            partitions: None,
        }
    }

    /// The streams, what no record carried and the versions seen, over
    /// every pipeline owned.
    fn streams_seen(&self) -> (u64, Unseen, Vec<VersionSpan>) {
        let (mut streams, mut versions) = (0, Vec::new());
        // Unseen by the run: by every pipeline that read a record in it.
        let mut unseen: Option<Unseen> = None;
        for (p, pipeline) in self.owned() {
            streams += pipeline.streams();
            versions.extend(pipeline.versions());
            if since(pipeline.counts(), self.starts[p]).records == 0 {
                continue;
            }
            let this = pipeline.unseen();
            unseen = Some(match unseen {
                None => this,
                Some(mut all) => {
                    all.metrics.retain(|m| this.metrics.contains(m));
                    all.fields.retain(|f| this.fields.contains(f));
                    all
                }
            });
        }
        (streams, unseen.unwrap_or_default(), versions)
    }

    /// Whether any `--report` file is asked for.
    pub fn has_report_files(&self) -> bool {
        !self.files.is_empty()
    }

    /// Rewrites the `--report` files with what is known so far (watch does
    /// it after each checkpoint).
    pub fn write_report_files(&self, summary: &Summary) -> anyhow::Result<()> {
        self.files.write(summary, false)
    }

    /// Puts the rejects file in place and says how many were not shown.
    pub fn close_rejects(&mut self) -> anyhow::Result<()> {
        self.rejects.finish()
    }

    /// Writes the main report and the `--report` files of the finished run
    /// (`interrupted` marks the files of a run stopped by a signal), and returns
    /// the exit code: 1 for a window at the `--fail-on` level, 4 if a
    /// training failed, whichever is worse. The caller decides first
    /// whether the run had any input at all.
    pub fn finish(
        self,
        summary: &Summary,
        config: &Config,
        interrupted: bool,
    ) -> anyhow::Result<ExitCode> {
        warn_unseen(summary, config);
        let counts = self.counts();
        self.reporter
            .finish(summary)
            .map_err(output_failure)?
            .commit()?;
        self.files.write(summary, interrupted)?;
        let found = match self.fail_on {
            FailOn::None => false,
            FailOn::Warning => counts.windows_warning + counts.windows_drift > 0,
            FailOn::Drift => counts.windows_drift > 0,
        };
        let mut code = if found {
            ExitCode::WindowFound
        } else {
            ExitCode::Success
        };
        if self
            .trigger
            .as_ref()
            .is_some_and(RetrainTrigger::any_failed)
        {
            code = code.worst(ExitCode::Training);
        }
        Ok(code)
    }
}

impl Session {
    /// How a replay ends, whatever it read from: the report of what was
    /// read (marked interrupted after a signal), exit 3 when no usable
    /// record was read from `input`, else the signal's exit code or the
    /// run's.
    pub fn conclude_replay(
        self,
        mut summary: Summary,
        config: &Config,
        signals: &Signals,
        input: &str,
    ) -> anyhow::Result<ExitCode> {
        summary.interrupted = signals.name();
        if let Some(signal) = summary.interrupted {
            let seen = summary.records + summary.rejected;
            log::warn!("{signal}: stopped after {seen} records; reporting what was read");
        }
        let rejected = self.rejected();
        let code = self.finish(&summary, config, summary.interrupted.is_some())?;
        if summary.records == 0 && summary.interrupted.is_none() {
            return Err(no_usable_record(input, rejected));
        }
        Ok(signals.exit_code().unwrap_or(code))
    }
}

/// `now` less `start`, for counts that a checkpoint carried in.
fn since(now: Counts, start: Counts) -> Counts {
    Counts {
        records: now.records - start.records,
        out_of_order: now.out_of_order - start.out_of_order,
        windows_warning: now.windows_warning.saturating_sub(start.windows_warning),
        windows_drift: now.windows_drift.saturating_sub(start.windows_drift),
    }
}

fn add(a: Counts, b: Counts) -> Counts {
    Counts {
        records: a.records + b.records,
        out_of_order: a.out_of_order + b.out_of_order,
        windows_warning: a.windows_warning + b.windows_warning,
        windows_drift: a.windows_drift + b.windows_drift,
    }
}

/// The input error of a run that read no usable record (exit 3): a CI gate
/// must not pass on garbage. `input` names what was read.
pub fn no_usable_record(input: &str, rejected: u64) -> anyhow::Error {
    let e = if rejected > 0 {
        let all = if rejected == 1 {
            "its one record was rejected".to_string()
        } else {
            format!("all {rejected} records were rejected")
        };
        anyhow::anyhow!("no usable record in {input}: {all} (the first are shown above)")
    } else {
        anyhow::anyhow!("no record in {input}: nothing to monitor")
    };
    Failure::new(ExitCode::Input, e).into()
}

/// How a message names the files of a run: the one file, stdin, or a count.
pub fn inputs_name(files: &[String]) -> String {
    match files {
        [one] if one == "-" => "stdin".to_string(),
        [one] => one.clone(),
        many => format!("{} files", many.len()),
    }
}

/// Warns, once at the end of a run, about what the configuration names and
/// no record carried: a typo in a metric or field name is never a silent
/// miss.
fn warn_unseen(summary: &Summary, config: &Config) {
    let source = if config.source == crate::config::EMBEDDED {
        "the embedded default; `mmon init` writes it to a file to edit".to_string()
    } else {
        config.source.clone()
    };
    for metric in &summary.unseen.metrics {
        log::warn!(
            "no record had the monitored metric {metric:?}, so its monitors saw nothing \
             (check [[monitor]] metric in {source})"
        );
    }
    for field in &summary.unseen.fields {
        log::warn!(
            "no record had the model-id field {field:?}, so every record was counted as model \
             \"default\" (check [input] model_id in {source}; a dotted name such as \
             \"labels.region\" reads a nested field)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::tests::{config, record as record_of};
    use crate::rejects::OnBadRecord;
    use crate::trigger::TriggerOptions;

    /// A decay monitor on `accuracy` over 5 values: five 1.0s then 0.5s drift.
    fn settings(output: &std::path::Path) -> Settings {
        Settings {
            config: config(""),
            format: report::Format::Jsonl,
            output: Some(output.to_path_buf()),
            fail_on: FailOn::None,
            junit_fail_on: FailOn::Drift,
            reports: Vec::new(),
            rejects: None,
            on_bad_record: OnBadRecord::Skip,
            retrain: false,
            trigger: TriggerOptions::default(),
            progress: false,
            quiet: true,
        }
    }

    fn session(settings: &Settings, partitions: u32) -> Session {
        let cancel = Arc::new(AtomicBool::new(false));
        Session::partitioned(settings, partitions, ClockMode::Watch, cancel, Pace::AtEnd).unwrap()
    }

    fn record(i: u64, model: &str, x: f64) -> Record {
        record_of(i, model, "1", x)
    }

    /// 15 records of `model`: five at 1.0, then ten at 0.5 (one drift).
    fn drifting(model: &str) -> Vec<Record> {
        (0..15)
            .map(|i| record(i, model, if i < 5 { 1.0 } else { 0.5 }))
            .collect()
    }

    fn note(model: &str) -> RetrainNote {
        RetrainNote::Failed {
            model_id: model.to_string(),
            version: None,
            run_id: None,
            reason: "test".to_string(),
        }
    }

    /// (event, model) of every line of a JSONL report.
    fn events(path: &std::path::Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                Some((
                    v["event"].as_str()?.to_string(),
                    v["model_id"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    #[test]
    fn only_owned_partitions_run_and_report_and_their_records_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report.jsonl");
        let settings = settings(&out);
        let mut s = session(&settings, 3);
        s.adopt(0, Pipeline::new(&settings.config), BTreeMap::new());
        s.adopt(2, Pipeline::new(&settings.config), BTreeMap::new());
        for (p, model) in [(0, "a"), (1, "b"), (2, "c")] {
            for r in drifting(model) {
                s.record_in(p, &r).unwrap();
            }
        }
        assert!(s.pipeline_of(1).is_none());
        assert_eq!(s.counts().records, 30, "partition 1 is not this run's");
        assert_eq!(s.counts().windows_drift, 2);
        s.end_of_input().unwrap();
        let summary = s.summary(0.0, 0, Vec::new());
        assert_eq!(summary.records, 30);
        let code = s.finish(&summary, &settings.config, false).unwrap();
        assert_eq!(code, ExitCode::Success);
        let got = events(&out);
        let want: Vec<(String, String)> = [
            ("opened", "a"),
            ("opened", "c"),
            ("closed", "a"),
            ("closed", "c"),
        ]
        .iter()
        .map(|(e, m)| (e.to_string(), m.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_adopted_checkpoint_counts_only_what_follows_and_a_released_partition_keeps_its_count() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(&dir.path().join("report.jsonl"));
        let mut s = session(&settings, 2);
        // A pipeline that another run already fed 15 records (a checkpoint's).
        let mut earlier = Pipeline::new(&settings.config);
        let mut ignored = Vec::new();
        for r in drifting("a") {
            earlier.process(&r, &mut ignored);
        }
        assert_eq!(earlier.counts().records, 15);
        s.adopt(1, earlier, BTreeMap::new());
        assert_eq!(s.counts(), Counts::default());
        for i in 15..18 {
            s.record_in(1, &record(i, "a", 0.5)).unwrap();
        }
        assert_eq!(s.counts().records, 3);
        s.release(1);
        assert!(s.pipeline_of(1).is_none());
        assert_eq!(
            s.counts().records,
            3,
            "a released partition's records still count"
        );
        s.record_in(1, &record(18, "a", 0.5)).unwrap();
        assert_eq!(s.counts().records, 3, "nor does it run once released");
    }

    #[test]
    fn training_notes_belong_to_the_partition_their_window_id_names_and_leave_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(&dir.path().join("report.jsonl"));
        let mut s = session(&settings, 3);
        // Session ids are `local × 3 + partition`.
        let of = |ids: &[u64]| -> BTreeMap<u64, RetrainNote> {
            ids.iter().map(|&id| (id, note("m"))).collect()
        };
        s.adopt(0, Pipeline::new(&settings.config), of(&[3, 6]));
        s.adopt(2, Pipeline::new(&settings.config), of(&[5]));
        let keys = |m: &BTreeMap<u64, RetrainNote>| m.keys().copied().collect::<Vec<_>>();
        assert_eq!(keys(&s.retrains_of(0)), [3, 6]);
        assert_eq!(keys(&s.retrains_of(1)), Vec::<u64>::new());
        assert_eq!(keys(&s.retrains_of(2)), [5]);
        s.release(0);
        assert_eq!(keys(s.retrains()), [5]);
    }
}
