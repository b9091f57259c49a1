//! The observer pipeline: routes each record to the detectors of its streams
//! and turns their conclusions into window events (SPEC §3, §5).
//!
//! The pipeline never knows where records come from; replay and watch feed it
//! the same way. A stream is one (model, metric) pair; each monitor on that
//! metric has its own detector instance on the stream. Per model it keeps the
//! current version (a change restarts that model's detectors and closes its
//! windows), the last event time (for the out-of-order count) and, per metric,
//! the position within the stream and a bounded history of recent positions,
//! so a window can name the file, line and time of its estimated start.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::detect::{Detector, DetectorConfig, Direction, MAX_COUNT, Outcome};
use crate::record::Record;
use crate::window::{DetectorInfo, EndReason, Event, EventKind, Point, Severity, Subject, Window};

/// How many recent positions each stream remembers for resolving a change
/// start; a start further back keeps its exact index but no file or line.
pub const HISTORY: usize = 4096;

/// One monitor as the pipeline uses it.
struct MonitorSpec {
    slot: usize,
    metric: Arc<str>,
    direction: Direction,
    detector: DetectorConfig,
    info: Arc<DetectorInfo>,
}

/// Where one position of a stream was read. `file` indexes
/// [`Files`]: a plain number, so the hot path never touches the reference
/// count of a name shared with the reader thread.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    file: u32,
    line: u64,
    time_ns: i64,
}

/// The file names the histories refer to, each once.
#[derive(Default)]
struct Files {
    names: Vec<Arc<str>>,
    by_name: HashMap<Arc<str>, u32>,
    /// The index of the last name looked up: records come in file order.
    last: u32,
}

impl Files {
    fn index(&mut self, file: &Arc<str>) -> u32 {
        // Sources share one `Arc` per file, so the pointer usually says it.
        if let Some(last) = self.names.get(self.last as usize)
            && Arc::ptr_eq(last, file)
        {
            return self.last;
        }
        let i = match self.by_name.get(file) {
            Some(&i) => i,
            None => {
                self.names.push(file.clone());
                let i = (self.names.len() - 1) as u32;
                self.by_name.insert(file.clone(), i);
                i
            }
        };
        // Point `last` at this very `Arc`, so the next lookup is a pointer
        // comparison even if another source named the same file.
        self.names[i as usize] = file.clone();
        self.last = i;
        i
    }

    fn name(&self, i: u32) -> Option<Arc<str>> {
        self.names.get(i as usize).cloned()
    }
}

/// The position of one metric of one model.
#[derive(Default)]
struct MetricStream {
    /// Values seen so far; the index of the next one.
    count: u64,
    /// Where recent values were read: value `i` at `ring[i % HISTORY]`, a
    /// ring of `min(count, HISTORY)` entries that is overwritten in place
    /// once full.
    ring: Vec<Seen>,
    /// How many of the latest values `ring` knows: all of them, unless a
    /// restored history was shorter.
    known: usize,
}

impl MetricStream {
    /// A stream at `count` whose latest positions were `history`. Entries
    /// beyond `min(count, HISTORY)` (which no build writes) are dropped,
    /// oldest first.
    fn restored(count: u64, history: &[Seen]) -> MetricStream {
        let size = usize::try_from(count).map_or(HISTORY, |c| c.min(HISTORY));
        let known = history.len().min(size);
        let mut ring = vec![Seen::default(); size];
        let first = count - known as u64;
        for (i, seen) in (first..).zip(&history[history.len() - known..]) {
            ring[(i % HISTORY as u64) as usize] = *seen;
        }
        MetricStream { count, ring, known }
    }

    #[inline]
    fn push(&mut self, seen: Seen) {
        if self.ring.len() < HISTORY {
            self.ring.push(seen);
        } else {
            self.ring[(self.count % HISTORY as u64) as usize] = seen;
        }
        self.count += 1;
        self.known = (self.known + 1).min(HISTORY);
    }

    /// Where value `index` was read, if it is recent enough to be known.
    fn seen(&self, index: u64) -> Option<&Seen> {
        let back = self.count.checked_sub(index + 1)?;
        if back >= self.known as u64 {
            return None;
        }
        self.ring.get((index % HISTORY as u64) as usize)
    }

    /// The known positions, oldest first.
    fn history(&self) -> impl Iterator<Item = &Seen> {
        (self.count - self.known as u64..self.count).filter_map(|i| self.seen(i))
    }

    fn point(&self, index: u64, files: &Files) -> Point {
        match self.seen(index) {
            Some(s) => Point {
                index,
                file: files.name(s.file),
                line: Some(s.line),
                timestamp: Some(s.time_ns),
            },
            None => Point {
                index,
                file: None,
                line: None,
                timestamp: None,
            },
        }
    }
}

struct MonitorState {
    detector: Box<dyn Detector>,
    open: Option<Window>,
}

struct ModelState {
    id: Arc<str>,
    version: Option<Arc<str>>,
    last_time: i64,
    /// The file of the record that set `last_time` (run-local).
    last_file: u32,
    metrics: Vec<MetricStream>,
    monitors: Vec<MonitorState>,
}

/// Counters for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub records: u64,
    pub out_of_order: u64,
    pub windows_warning: u64,
    pub windows_drift: u64,
}

pub struct Pipeline {
    monitors: Vec<MonitorSpec>,
    /// Per metric slot, the monitors on it in configuration order.
    by_slot: Vec<Vec<usize>>,
    metric_count: usize,
    merge_gap: u64,
    reset_on_version_change: bool,
    models: Vec<ModelState>,
    by_id: HashMap<Arc<str>, usize>,
    files: Files,
    next_window: u64,
    counts: Counts,
    /// What this run saw, for the summary's `unseen` (not checkpointed).
    seen: RunSeen,
    /// Per pair of files (earlier, later): the records of the later one
    /// older than its model's last record in the earlier one.
    overlaps: Vec<(u32, u32, u64)>,
}

/// What the records of this run carried, against what the config names.
/// Metrics are found from the streams' counts at the end, against those a
/// checkpoint brought in, so the hot path only checks the model id.
#[derive(Default)]
struct RunSeen {
    model_field: bool,
    /// Records and, per model and metric slot, values restored at start.
    restored_records: u64,
    restored: HashMap<Arc<str>, Vec<u64>>,
    metric_names: Vec<String>,
    model_field_name: String,
}

impl Pipeline {
    pub fn new(config: &Config) -> Pipeline {
        let schema = config.schema();
        let monitors: Vec<MonitorSpec> = config
            .monitors
            .iter()
            .map(|m| MonitorSpec {
                slot: schema.slot(&m.metric).unwrap_or(0),
                metric: Arc::from(m.metric.as_str()),
                direction: m.direction,
                detector: m.detector.clone(),
                info: Arc::new(DetectorInfo {
                    name: m.detector.name().to_string(),
                    params: m.detector.params_json(),
                }),
            })
            .collect();
        let by_slot = (0..schema.metrics.len())
            .map(|slot| {
                let on_slot = |k: &usize| monitors[*k].slot == slot;
                (0..monitors.len()).filter(on_slot).collect()
            })
            .collect();
        Pipeline {
            monitors,
            by_slot,
            metric_count: schema.metrics.len(),
            merge_gap: config.report.merge_gap,
            reset_on_version_change: config.report.reset_on_version_change,
            models: Vec::new(),
            by_id: HashMap::new(),
            files: Files::default(),
            next_window: 0,
            counts: Counts::default(),
            seen: RunSeen {
                metric_names: schema.metrics.clone(),
                model_field_name: schema.model_id.clone(),
                ..RunSeen::default()
            },
            overlaps: Vec::new(),
        }
    }

    /// The monitored metrics and `[input]` fields that no record of this
    /// run carried (nothing if the run read no record).
    pub fn unseen(&self) -> crate::report::Unseen {
        let seen = &self.seen;
        if self.counts.records == seen.restored_records {
            return crate::report::Unseen::default();
        }
        let carried = |slot: usize| {
            self.models.iter().any(|m| {
                let before = seen.restored.get(&m.id).and_then(|c| c.get(slot).copied());
                m.metrics[slot].count > before.unwrap_or(0)
            })
        };
        let metrics = seen
            .metric_names
            .iter()
            .enumerate()
            .filter(|&(slot, _)| !carried(slot))
            .map(|(_, m)| m.clone())
            .collect();
        let fields = if seen.model_field {
            Vec::new()
        } else {
            vec![seen.model_field_name.clone()]
        };
        crate::report::Unseen { metrics, fields }
    }

    /// Pairs of files (earlier, later, records) where records of the later
    /// file were older than the last record of their model in the earlier
    /// one: files whose time ranges overlap.
    pub fn overlaps(&self) -> Vec<(Arc<str>, Arc<str>, u64)> {
        let name = |f: u32| self.files.name(f).unwrap_or_else(|| Arc::from(""));
        self.overlaps
            .iter()
            .map(|&(a, b, n)| (name(a), name(b), n))
            .collect()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Streams that have seen at least one value.
    pub fn streams(&self) -> u64 {
        self.models
            .iter()
            .map(|m| m.metrics.iter().filter(|s| s.count > 0).count() as u64)
            .sum()
    }

    fn fresh_monitors(&self) -> Vec<MonitorState> {
        self.monitors
            .iter()
            .map(|m| MonitorState {
                detector: m.detector.build(),
                open: None,
            })
            .collect()
    }

    fn model_index(&mut self, id: &Arc<str>) -> usize {
        // Sources intern model ids, so a pointer comparison usually finds it.
        if let Some(i) = self
            .models
            .iter()
            .take(8)
            .position(|m| Arc::ptr_eq(&m.id, id))
        {
            return i;
        }
        if let Some(&i) = self.by_id.get(id) {
            return i;
        }
        let state = ModelState {
            id: id.clone(),
            version: None,
            last_time: i64::MIN,
            last_file: u32::MAX,
            metrics: (0..self.metric_count)
                .map(|_| MetricStream::default())
                .collect(),
            monitors: self.fresh_monitors(),
        };
        self.models.push(state);
        self.by_id.insert(id.clone(), self.models.len() - 1);
        self.models.len() - 1
    }

    /// Feeds one record; window events are appended to `events`.
    pub fn process(&mut self, record: &Record, events: &mut Vec<Event>) {
        self.counts.records += 1;
        let mi = self.model_index(&record.model);

        if let Some(v) = &record.version {
            let current = &self.models[mi].version;
            // Versions are interned by the source: compare pointers first.
            let changed = current
                .as_ref()
                .is_some_and(|old| !Arc::ptr_eq(old, v) && old != v);
            let first = current.is_none();
            if changed && self.reset_on_version_change {
                self.reset_model(mi, events);
            }
            if changed || first {
                self.models[mi].version = Some(v.clone());
            }
        }

        if !self.seen.model_field && !crate::record::is_default_model(&record.model) {
            self.seen.model_field = true;
        }
        let file = self.files.index(&record.pos.file);
        let model = &mut self.models[mi];
        if record.time_ns < model.last_time {
            self.counts.out_of_order += 1;
            let earlier = model.last_file;
            if earlier != file && earlier != u32::MAX {
                self.note_overlap(earlier, file);
            }
        } else {
            model.last_time = record.time_ns;
            model.last_file = file;
        }

        let seen = Seen {
            file,
            line: record.pos.line,
            time_ns: record.time_ns,
        };
        for (slot, &x) in record.values.iter().enumerate() {
            if x.is_nan() {
                continue;
            }
            let Some(stream) = self.models[mi].metrics.get_mut(slot) else {
                continue;
            };
            stream.push(seen);
            for j in 0..self.by_slot[slot].len() {
                let k = self.by_slot[slot][j];
                self.observe(mi, k, x, record.time_ns, events);
            }
        }
    }

    #[cold]
    fn note_overlap(&mut self, earlier: u32, later: u32) {
        match self
            .overlaps
            .iter_mut()
            .find(|(a, b, _)| (*a, *b) == (earlier, later))
        {
            Some((.., n)) => *n += 1,
            None => self.overlaps.push((earlier, later, 1)),
        }
    }

    /// Runs one detector on one value and updates its window.
    fn observe(&mut self, mi: usize, k: usize, x: f64, time_ns: i64, events: &mut Vec<Event>) {
        let spec = &self.monitors[k];
        let model = &mut self.models[mi];
        let stream = &model.metrics[spec.slot];
        let index = stream.count - 1;
        let state = &mut model.monitors[k];
        let outcome = state.detector.update(x, time_ns);

        if let Some(open) = &mut state.open
            && index - open.end.index > self.merge_gap
        {
            open.close(EndReason::Quiet);
            let window = state.open.take().map(|w| Event {
                kind: EventKind::Closed,
                window: w,
            });
            events.extend(window);
        }
        let (severity, change) = match outcome {
            Outcome::None => return,
            Outcome::Warning(c) => (Severity::Warning, c),
            Outcome::Drift(c) => (Severity::Drift, c),
        };
        let at = stream.point(index, &self.files);
        match &mut state.open {
            Some(open) => {
                if open.extend(severity, at, &change) {
                    self.counts.windows_warning -= 1;
                    self.counts.windows_drift += 1;
                    events.push(Event {
                        kind: EventKind::Escalated,
                        window: open.clone(),
                    });
                }
            }
            None => {
                let start = stream.point(index.saturating_sub(change.lookback), &self.files);
                let subject = Subject {
                    model_id: &model.id,
                    model_version: model.version.as_ref(),
                    metric: &spec.metric,
                    detector: &spec.info,
                    direction: spec.direction,
                };
                let window = Window::open(self.next_window, subject, severity, start, at, &change);
                self.next_window += 1;
                match severity {
                    Severity::Warning => self.counts.windows_warning += 1,
                    Severity::Drift => self.counts.windows_drift += 1,
                }
                events.push(Event {
                    kind: EventKind::Opened,
                    window: window.clone(),
                });
                state.open = Some(window);
            }
        }
    }

    fn reset_model(&mut self, mi: usize, events: &mut Vec<Event>) {
        let fresh = self.fresh_monitors();
        let old = std::mem::replace(&mut self.models[mi].monitors, fresh);
        for mut state in old {
            if let Some(mut w) = state.open.take() {
                w.close(EndReason::Reset);
                events.push(Event {
                    kind: EventKind::Closed,
                    window: w,
                });
            }
        }
    }

    /// Attaches a training outcome to the open window `id`.
    pub fn attach_retrain(&mut self, id: u64, outcome: serde_json::Value) {
        for model in &mut self.models {
            for state in &mut model.monitors {
                if let Some(w) = state.open.as_mut().filter(|w| w.id == id) {
                    w.retrain = Some(outcome);
                    return;
                }
            }
        }
    }

    /// Closes every open window at the end of input, in a stable order.
    pub fn finish(&mut self, events: &mut Vec<Event>) {
        let mut closing: Vec<Window> = Vec::new();
        for model in &mut self.models {
            for state in &mut model.monitors {
                if let Some(mut w) = state.open.take() {
                    w.close(EndReason::Eof);
                    closing.push(w);
                }
            }
        }
        closing.sort_by_key(|w| w.id);
        events.extend(closing.into_iter().map(|window| Event {
            kind: EventKind::Closed,
            window,
        }));
    }
}

/// The saved form of a [`Pipeline`], for checkpoints (SPEC §6).
///
/// File names of the position histories are stored once in `files` and
/// referred to by index, so a checkpoint stays small.
#[derive(Serialize, Deserialize)]
struct Saved {
    next_window: u64,
    counts: Counts,
    files: Vec<Arc<str>>,
    models: Vec<SavedModel>,
}

#[derive(Serialize, Deserialize)]
struct SavedModel {
    id: Arc<str>,
    version: Option<Arc<str>>,
    last_time: i64,
    /// Per metric slot: the count and the history.
    metrics: Vec<(u64, Vec<SavedSeen>)>,
    monitors: Vec<SavedMonitor>,
}

/// One position of a stream's history: (file index, line, time).
type SavedSeen = (u32, u64, i64);

#[derive(Serialize, Deserialize)]
struct SavedMonitor {
    detector: serde_json::Value,
    /// The open window and its id (which the report does not serialise).
    open: Option<(u64, Window)>,
}

/// Why a saved pipeline cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("pipeline state does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("pipeline state does not fit the configuration: {0}")]
    Shape(String),
}

fn shape(ok: bool, what: impl FnOnce() -> String) -> Result<(), RestoreError> {
    if ok {
        Ok(())
    } else {
        Err(RestoreError::Shape(what()))
    }
}

impl Pipeline {
    /// The whole state: every stream's position and history, every
    /// detector, every open window, the window counter and the counts.
    pub fn save(&self) -> serde_json::Value {
        // Only the names the histories still refer to, renumbered.
        let mut files: Vec<Arc<str>> = Vec::new();
        let mut file_index: HashMap<u32, u32> = HashMap::new();
        let mut index_of = |f: u32| -> u32 {
            *file_index.entry(f).or_insert_with(|| {
                files.push(self.files.name(f).unwrap_or_else(|| Arc::from("")));
                (files.len() - 1) as u32
            })
        };
        let models = self
            .models
            .iter()
            .map(|m| SavedModel {
                id: m.id.clone(),
                version: m.version.clone(),
                last_time: m.last_time,
                metrics: m
                    .metrics
                    .iter()
                    .map(|s| {
                        let history = s
                            .history()
                            .map(|h| (index_of(h.file), h.line, h.time_ns))
                            .collect();
                        (s.count, history)
                    })
                    .collect(),
                monitors: m
                    .monitors
                    .iter()
                    .map(|st| SavedMonitor {
                        detector: st.detector.save(),
                        open: st.open.as_ref().map(|w| (w.id, w.clone())),
                    })
                    .collect(),
            })
            .collect();
        let saved = Saved {
            next_window: self.next_window,
            counts: self.counts,
            files,
            models,
        };
        serde_json::to_value(&saved).unwrap_or(serde_json::Value::Null)
    }

    /// A pipeline for `config` continuing from a state written by
    /// [`Pipeline::save`], checked against `config` (SPEC §6): every count
    /// within [`MAX_COUNT`], every open window inside its stream, every
    /// detector state one that the configured detector can be in. The
    /// configuration is the truth: monitors, metrics and detector
    /// parameters come from it, never from the checkpoint.
    pub fn restore(config: &Config, state: serde_json::Value) -> Result<Pipeline, RestoreError> {
        let saved: Saved = serde_json::from_value(state)?;
        let mut p = Pipeline::new(config);
        let c = saved.counts;
        shape(
            saved.next_window <= MAX_COUNT && c.records <= MAX_COUNT,
            || {
                format!(
                    "{} windows and {} records are beyond any log",
                    saved.next_window, c.records
                )
            },
        )?;
        shape(c.out_of_order <= c.records, || {
            format!("{} out of order of {} records", c.out_of_order, c.records)
        })?;
        shape(
            c.windows_warning.saturating_add(c.windows_drift) <= saved.next_window,
            || {
                format!(
                    "{} warning and {} drift windows, but only {} were opened",
                    c.windows_warning, c.windows_drift, saved.next_window
                )
            },
        )?;
        p.next_window = saved.next_window;
        p.counts = c;
        p.seen.restored_records = c.records;
        let mut open_warnings = 0u64;
        for m in saved.models {
            if m.metrics.len() != p.metric_count || m.monitors.len() != p.monitors.len() {
                return Err(RestoreError::Shape(format!(
                    "model {} has {} metrics and {} monitors, the configuration {} and {}",
                    m.id,
                    m.metrics.len(),
                    m.monitors.len(),
                    p.metric_count,
                    p.monitors.len()
                )));
            }
            shape(!p.by_id.contains_key(&m.id), || {
                format!("model {} is saved twice", m.id)
            })?;
            let mut metrics = Vec::with_capacity(m.metrics.len());
            for (count, history) in m.metrics {
                shape(count <= c.records, || {
                    format!(
                        "model {}: a stream of {count} values from {} records",
                        m.id, c.records
                    )
                })?;
                let mut seen = Vec::with_capacity(history.len());
                for (f, line, time_ns) in history {
                    let name = saved.files.get(f as usize).ok_or_else(|| {
                        RestoreError::Shape(format!("file index {f} out of range"))
                    })?;
                    seen.push(Seen {
                        file: p.files.index(name),
                        line,
                        time_ns,
                    });
                }
                metrics.push(MetricStream::restored(count, &seen));
            }
            let mut monitors = Vec::with_capacity(m.monitors.len());
            for (k, (spec, sm)) in p.monitors.iter().zip(m.monitors).enumerate() {
                let detector = spec.detector.restore(sm.detector).map_err(|e| {
                    RestoreError::Shape(format!(
                        "model {}, monitor[{k}] ({} on {}): {e}",
                        m.id,
                        spec.detector.name(),
                        spec.metric
                    ))
                })?;
                let count = metrics[spec.slot].count;
                let open = match sm.open {
                    None => None,
                    Some((id, mut w)) => {
                        let (start, detected, end) = (w.start.index, w.detected.index, w.end.index);
                        shape(start <= end && detected <= end && end < count, || {
                            format!(
                                "model {}, monitor[{k}]: an open window at {start}..{end} in a stream of {count} values",
                                m.id
                            )
                        })?;
                        shape(id < saved.next_window && w.detections <= MAX_COUNT, || {
                            format!(
                                "model {}, monitor[{k}]: window {id} of {}",
                                m.id, saved.next_window
                            )
                        })?;
                        if w.severity == Severity::Warning {
                            open_warnings += 1;
                        }
                        w.id = id;
                        w.model_id = m.id.clone();
                        w.metric = spec.metric.clone();
                        w.direction = spec.direction;
                        w.detector = spec.info.clone();
                        w.end_reason = None;
                        Some(w)
                    }
                };
                monitors.push(MonitorState { detector, open });
            }
            let id = m.id;
            let counts = metrics.iter().map(|s: &MetricStream| s.count).collect();
            p.seen.restored.insert(id.clone(), counts);
            p.by_id.insert(id.clone(), p.models.len());
            p.models.push(ModelState {
                id,
                version: m.version,
                last_time: m.last_time,
                last_file: u32::MAX,
                metrics,
                monitors,
            });
        }
        // Each open warning window is counted until it escalates.
        shape(open_warnings <= c.windows_warning, || {
            format!(
                "{open_warnings} open warning windows but {} counted",
                c.windows_warning
            )
        })?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Position, Values};

    fn config(extra: &str) -> Config {
        let text = format!(
            "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = {{ window = 5, threshold = 0.1 }}\n{extra}"
        );
        Config::parse(&text, "t.toml").unwrap()
    }

    fn record(i: u64, model: &str, version: &str, x: f64) -> Record {
        let mut values = Values::new();
        values.push(x);
        Record {
            time_ns: i as i64,
            model: Arc::from(model),
            version: Some(Arc::from(version)),
            values,
            pos: Position {
                file: Arc::from("f.jsonl"),
                line: i + 1,
                offset: i * 10,
            },
        }
    }

    fn run(p: &mut Pipeline, records: &[Record]) -> Vec<Event> {
        let mut events = Vec::new();
        for r in records {
            p.process(r, &mut events);
        }
        p.finish(&mut events);
        events
    }

    #[test]
    fn detections_within_the_gap_merge_and_the_window_closes_quietly() {
        let mut p = Pipeline::new(&config("[report]\nmerge_gap = 10\n"));
        // Five at 1.0 (reference), then 0.5 forever: drift at 5 (the first
        // current window 1..=5 has mean 0.9: 0.1 below) and again every 5
        // values after re-learning (reference 0.5, no drop): one detection.
        let mut recs: Vec<Record> = (0..5).map(|i| record(i, "m", "1", 1.0)).collect();
        recs.extend((5..40).map(|i| record(i, "m", "1", 0.5)));
        let events = run(&mut p, &recs);
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventKind::Opened, EventKind::Closed]);
        let w = &events[1].window;
        assert_eq!((w.start.index, w.detected.index, w.end.index), (1, 5, 5));
        assert_eq!(w.start.line, Some(2));
        assert_eq!(w.end_reason, Some(EndReason::Quiet));
        assert_eq!(p.counts().windows_drift, 1);
    }

    #[test]
    fn a_version_change_closes_windows_and_restarts_detectors() {
        let mut p = Pipeline::new(&config("[report]\nmerge_gap = 100\n"));
        let mut recs: Vec<Record> = (0..5).map(|i| record(i, "m", "1", 1.0)).collect();
        recs.push(record(5, "m", "1", 0.5));
        recs.extend((6..12).map(|i| record(i, "m", "2", 0.5)));
        let events = run(&mut p, &recs);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].window.end_reason, Some(EndReason::Reset));
        assert_eq!(events[1].window.model_version.as_deref(), Some("1"));
    }

    #[test]
    fn a_restored_pipeline_continues_exactly_like_an_uninterrupted_one() {
        let cfg = config("[report]\nmerge_gap = 10\n");
        let mut recs: Vec<Record> = (0..5).map(|i| record(i, "m", "1", 1.0)).collect();
        recs.extend((5..40).map(|i| record(i, "m", "1", if i < 7 { 1.0 } else { 0.5 })));
        let whole = run(&mut Pipeline::new(&cfg), &recs);
        for cut in [0, 3, 8, 9, 12, 25, 40] {
            let mut first = Pipeline::new(&cfg);
            let mut events = Vec::new();
            for r in &recs[..cut] {
                first.process(r, &mut events);
            }
            let text = serde_json::to_string(&first.save()).unwrap();
            let mut second = Pipeline::restore(&cfg, serde_json::from_str(&text).unwrap()).unwrap();
            for r in &recs[cut..] {
                second.process(r, &mut events);
            }
            second.finish(&mut events);
            assert_eq!(events, whole, "cut at {cut}");
            assert_eq!(second.counts(), {
                let mut p = Pipeline::new(&cfg);
                run(&mut p, &recs);
                p.counts()
            });
        }
    }

    /// A pipeline with one open drift window, saved.
    fn saved_with_an_open_window(cfg: &Config) -> serde_json::Value {
        let mut p = Pipeline::new(cfg);
        let mut recs: Vec<Record> = (0..5).map(|i| record(i, "m", "1", 1.0)).collect();
        recs.extend((5..8).map(|i| record(i, "m", "1", 0.5)));
        let mut events = Vec::new();
        for r in &recs {
            p.process(r, &mut events);
        }
        assert_eq!(p.counts().windows_drift, 1);
        p.save()
    }

    fn refused(cfg: &Config, state: serde_json::Value, why: &str) {
        match Pipeline::restore(cfg, state) {
            Ok(_) => panic!("{why}: restored"),
            Err(e) => assert!(e.to_string().contains("does not fit"), "{why}: {e}"),
        }
    }

    #[test]
    fn a_restored_state_that_does_not_fit_is_refused_instead_of_overflowing_later() {
        let cfg = config("[report]\nmerge_gap = 100\n");
        let good = saved_with_an_open_window(&cfg);
        Pipeline::restore(&cfg, good.clone()).unwrap();

        let mut s = good.clone();
        s["models"][0]["monitors"][0]["open"][1]["end"]["index"] = 1000.into();
        refused(&cfg, s, "an open window beyond its stream");

        let mut s = good.clone();
        s["counts"]["records"] = u64::MAX.into();
        refused(&cfg, s, "records at u64::MAX");

        let mut s = good.clone();
        s["counts"]["out_of_order"] = 100.into();
        refused(&cfg, s, "more out of order than records");

        let mut s = good.clone();
        s["models"][0]["metrics"][0][0] = 100.into();
        refused(&cfg, s, "a stream longer than the records");

        // An open warning window that the counts do not hold would make its
        // escalation subtract from zero.
        let mut s = good.clone();
        s["models"][0]["monitors"][0]["open"][1]["severity"] = "warning".into();
        refused(&cfg, s, "an uncounted warning window");

        let mut s = good.clone();
        let model = s["models"][0].clone();
        s["models"].as_array_mut().unwrap().push(model);
        refused(&cfg, s, "a model saved twice");

        let mut s = good;
        s["models"][0]["monitors"][0]["detector"]["reference_count"] = 99.into();
        refused(&cfg, s, "a detector state beyond its window");
    }

    #[test]
    fn models_are_separate_streams_and_out_of_order_is_counted() {
        let mut p = Pipeline::new(&config(""));
        let mut recs = vec![
            record(10, "a", "1", 0.9),
            record(5, "b", "1", 0.9),
            record(7, "a", "1", 0.9),
        ];
        recs[2].time_ns = 3;
        run(&mut p, &recs);
        assert_eq!(p.streams(), 2);
        assert_eq!(p.counts().out_of_order, 1);
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    fn seen(i: u64) -> Seen {
        Seen {
            file: (i % 3) as u32,
            line: i + 1,
            time_ns: i as i64 * 7,
        }
    }

    /// The line of value `i` if the stream still knows it.
    fn line(s: &MetricStream, i: u64) -> Option<u64> {
        s.seen(i).map(|s| s.line)
    }

    #[test]
    fn the_ring_keeps_exactly_the_latest_positions() {
        let mut s = MetricStream::default();
        for n in [
            0,
            1,
            HISTORY as u64 - 1,
            HISTORY as u64,
            3 * HISTORY as u64 + 17,
        ] {
            while s.count < n {
                s.push(seen(s.count));
            }
            let oldest = n.saturating_sub(HISTORY as u64);
            for i in [
                0,
                oldest.saturating_sub(1),
                oldest,
                n.saturating_sub(1),
                n,
                n + 1,
            ] {
                let want = (i >= oldest && i < n).then_some(i + 1);
                assert_eq!(line(&s, i), want, "value {i} of {n}");
            }
            let lines: Vec<u64> = s.history().map(|h| h.line).collect();
            assert_eq!(lines, (oldest + 1..=n).collect::<Vec<_>>(), "{n}");
        }
    }

    #[test]
    fn a_restored_stream_goes_on_as_the_saved_one() {
        for n in [
            0,
            5,
            HISTORY as u64,
            HISTORY as u64 + 5,
            2 * HISTORY as u64 + 1,
        ] {
            let mut a = MetricStream::default();
            for i in 0..n {
                a.push(seen(i));
            }
            let history: Vec<Seen> = a.history().copied().collect();
            let mut b = MetricStream::restored(a.count, &history);
            for i in n..n + HISTORY as u64 + 3 {
                a.push(seen(i));
                b.push(seen(i));
                for j in [i.saturating_sub(HISTORY as u64), i / 2, i] {
                    assert_eq!(line(&a, j), line(&b, j), "{n}: value {j} at {i}");
                }
            }
        }
    }

    #[test]
    fn a_shorter_saved_history_knows_only_what_it_holds() {
        let history: Vec<Seen> = (95..100).map(seen).collect();
        let mut s = MetricStream::restored(100, &history);
        assert_eq!(line(&s, 94), None);
        assert_eq!(line(&s, 95), Some(96));
        assert_eq!(line(&s, 99), Some(100));
        s.push(seen(100));
        assert_eq!(line(&s, 100), Some(101));
        assert_eq!(line(&s, 94), None);
        // A history longer than the count keeps only the latest `count`.
        let s = MetricStream::restored(2, &history);
        assert_eq!(s.history().map(|h| h.line).collect::<Vec<_>>(), [99, 100]);
        assert_eq!(line(&s, 1), Some(100));
    }
}
