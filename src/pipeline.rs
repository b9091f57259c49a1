//! The observer pipeline: routes each record to the detectors of its streams
//! and turns their conclusions into window events (SPEC §3, §5).
//!
//! The pipeline never knows where records come from; replay and watch feed it
//! the same way. A stream is one (model, version, metric); each monitor on
//! that metric has its own detector instance on the stream. Each version of a
//! model has its own streams, so a canary interleaved with the stable version
//! never resets either; a version without a record for `version_idle` of its
//! model's records is retired (its windows close with "reset"). With
//! `reset_on_version_change = false` a model's versions share one set of
//! streams. Per model it also keeps the last event time (for the
//! out-of-order count) and the versions named (for the summary); per stream,
//! the position within it and a bounded history of recent positions, so a
//! window can name the file, line and time of its start.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::detect::{Detector, DetectorConfig, DetectorState, Direction, MAX_COUNT, Outcome};
use crate::episode::{self, Episode, Segment, Sums};
use crate::record::{Name, Record};
use crate::window::{
    DetectorInfo, EndReason, Event, EventKind, Levels, Point, Severity, Subject, Window,
};

/// One monitor as the pipeline uses it.
struct MonitorSpec {
    slot: usize,
    metric: Arc<str>,
    direction: Direction,
    detector: DetectorConfig,
    info: Arc<DetectorInfo>,
    /// Whether the detector sees `ln x`; its levels are then geometric.
    log: bool,
}

impl MonitorSpec {
    fn levels(&self) -> Levels {
        if self.log {
            Levels::GeometricMean
        } else {
            Levels::Mean
        }
    }

    /// A mean of this monitor's values in the metric's units.
    fn level(&self, sums: &Sums) -> f64 {
        if self.log {
            sums.mean().exp()
        } else {
            sums.mean()
        }
    }

    /// The sign of a bad change: the later part lower (−1), higher (1), either (0).
    fn bad_sign(&self) -> f64 {
        match self.direction {
            Direction::Decrease => -1.0,
            Direction::Increase => 1.0,
            Direction::Both => 0.0,
        }
    }
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
    by_name: foldhash::HashMap<Name, u32>,
    /// The last name looked up and its index: records come in file order.
    last: Option<(Name, u32)>,
}

impl Files {
    #[inline]
    fn index(&mut self, file: Name) -> u32 {
        if let Some((name, i)) = self.last
            && name == file
        {
            return i;
        }
        let names = &mut self.names;
        let i = *self.by_name.entry(file).or_insert_with(|| {
            names.push(Arc::from(file.as_str()));
            (names.len() - 1) as u32
        });
        self.last = Some((file, i));
        i
    }

    fn name(&self, i: u32) -> Option<Arc<str>> {
        self.names.get(i as usize).cloned()
    }
}

/// One value of a stream and where it was read, in 24 bytes rather than
/// the 32 of a `(Seen, f64)`: the file index and the line share a word, 24
/// and 40 bits. With a thousand models the rings are most of the memory,
/// and every value written is memory traffic.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    file_line: u64,
    time_ns: i64,
    x: f64,
}

const LINE_BITS: u32 = 40;

impl Entry {
    /// `None` past 2^24 files in one run or 2^40 lines in one file.
    #[inline]
    fn new(seen: Seen, x: f64) -> Option<Entry> {
        (seen.file < 1 << (64 - LINE_BITS) && seen.line < 1 << LINE_BITS).then_some(Entry {
            file_line: u64::from(seen.file) << LINE_BITS | seen.line,
            time_ns: seen.time_ns,
            x,
        })
    }

    fn seen(&self) -> Seen {
        Seen {
            file: (self.file_line >> LINE_BITS) as u32,
            line: self.file_line & ((1 << LINE_BITS) - 1),
            time_ns: self.time_ns,
        }
    }
}

/// The position of one metric of one model.
struct MetricStream {
    /// Values seen so far; the index of the next one.
    count: u64,
    /// Recent values and where they were read: value `i` at
    /// `ring[i % size]`, a ring of `min(count, size)` entries that is
    /// overwritten in place once full. One entry holds both, so a value
    /// is written to one place, not two.
    ring: Vec<Entry>,
    /// The ring's size once full: `[report] history`.
    size: u32,
    /// `count % size`, kept without a division per value.
    next: u32,
    /// How many of the latest values `ring` knows: all of them, unless a
    /// restored history was shorter (or a position did not fit an entry).
    known: usize,
}

impl MetricStream {
    /// A stream of no values that will remember `size` of them.
    fn new(size: usize) -> MetricStream {
        MetricStream::restored(0, &[], size)
    }

    /// A stream at `count` whose latest positions were `history`,
    /// remembering `size` values. Entries beyond `min(count, size)` are
    /// dropped, oldest first.
    fn restored(count: u64, history: &[(Seen, f64)], size: usize) -> MetricStream {
        let size = size.clamp(1, u32::MAX as usize) as u32;
        let filled = count.min(u64::from(size)) as usize;
        let saved = history.len().min(filled);
        let mut known = saved;
        let mut ring = vec![Entry::default(); filled];
        let first = count - saved as u64;
        for (n, (i, &(seen, x))) in (first..).zip(&history[history.len() - saved..]).enumerate() {
            match Entry::new(seen, x) {
                Some(entry) => ring[(i % u64::from(size)) as usize] = entry,
                // Only what follows a position that does not fit is known.
                None => known = saved - (n + 1),
            }
        }
        let next = (count % u64::from(size)) as u32;
        MetricStream {
            count,
            ring,
            size,
            next,
            known,
        }
    }

    /// Where value `i` is (or would be) in the ring.
    fn slot(&self, i: u64) -> usize {
        (i % u64::from(self.size)) as usize
    }

    #[inline]
    fn push(&mut self, seen: Seen, x: f64) {
        let entry = Entry::new(seen, x);
        let entry_or_blank = entry.unwrap_or_default();
        let next = self.next as usize;
        if next < self.ring.len() {
            self.ring[next] = entry_or_blank;
        } else {
            self.ring.push(entry_or_blank);
        }
        self.next = if self.next + 1 == self.size {
            0
        } else {
            self.next + 1
        };
        self.count += 1;
        self.known = match entry {
            Some(_) => (self.known + 1).min(self.size as usize),
            None => 0,
        };
    }

    /// Where value `index` was read, if it is recent enough to be known.
    fn seen(&self, index: u64) -> Option<Seen> {
        let back = self.count.checked_sub(index + 1)?;
        if back >= self.known as u64 {
            return None;
        }
        self.ring.get(self.slot(index)).map(Entry::seen)
    }

    /// The known positions and values, oldest first.
    fn history(&self) -> impl Iterator<Item = (Seen, f64)> {
        (self.count - self.known as u64..self.count)
            .filter_map(|i| self.ring.get(self.slot(i)).map(|e| (e.seen(), e.x)))
    }

    /// The known values from index `since` on, newest first, as a monitor
    /// sees them (`ln x` for `log`, non-positive values skipped).
    fn recent(&self, since: u64, log: bool) -> impl Iterator<Item = (u64, f64)> + '_ {
        let oldest = since.max(self.count - self.known as u64);
        (oldest..self.count).rev().filter_map(move |i| {
            let x = self.ring.get(self.slot(i))?.x;
            episode::transform(log, x).map(|y| (i, y))
        })
    }

    /// The last value's position.
    fn last(&self, files: &Files) -> Point {
        self.point(self.count.saturating_sub(1), files)
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

/// One monitor's state on one stream. Every value reads the segment's sums
/// and whether a window and an episode are open, so those lead, in the
/// first cache line; a window (about 500 bytes) is boxed, as most monitors
/// have none open. With a thousand models the monitors' states outgrow the
/// CPU's caches and each line touched per value is a miss.
#[repr(C)]
struct MonitorState {
    /// The stream's values since its last boundary, as this monitor sees them.
    segment: Segment,
    open: Option<Box<Window>>,
    /// The measurement of the open window, when it is an episode.
    episode: Option<Episode>,
    detector: DetectorState,
}

/// The streams of one version of a model (of every version, when
/// `reset_on_version_change = false`).
struct VersionStreams {
    /// The version of the records it sees (the latest, when versions share).
    version: Option<Arc<str>>,
    /// The same, as the records name it.
    name: Option<Name>,
    /// The model's record count at this version's latest record.
    last_record: u64,
    metrics: Vec<MetricStream>,
    monitors: Vec<MonitorState>,
}

/// A version the records of a model named, for the summary.
#[derive(Clone)]
struct VersionSeen {
    version: Option<Arc<str>>,
    name: Option<Name>,
    records: u64,
    /// The model record index and position of its first and latest record.
    first: (u64, Seen),
    last: (u64, Seen),
}

struct ModelState {
    id: Arc<str>,
    /// The same, as the records name it.
    name: Name,
    last_time: i64,
    /// The file of the record that set `last_time` (run-local).
    last_file: u32,
    /// Records of this model so far: the clock of `version_idle`.
    records: u64,
    /// The live versions' streams, oldest first.
    versions: Vec<VersionStreams>,
    /// Which of `versions` the latest record went to.
    current: usize,
    /// Every version named, in order of appearance.
    seen: Vec<VersionSeen>,
    /// Which of `seen` the latest record named.
    seen_current: usize,
}

impl ModelState {
    /// Counts a record of `version` read at `seen` for the summary.
    fn note_version(&mut self, version: Option<Name>, seen: Seen) {
        let index = self.records;
        let same = |v: &VersionSeen| v.name == version;
        let i = match self.seen.get(self.seen_current) {
            Some(v) if same(v) => self.seen_current,
            _ => match self.seen.iter().position(same) {
                Some(i) => i,
                None => {
                    self.seen.push(VersionSeen {
                        version: version.map(|v| Arc::from(v.as_str())),
                        name: version,
                        records: 0,
                        first: (index, seen),
                        last: (index, seen),
                    });
                    self.seen.len() - 1
                }
            },
        };
        self.seen_current = i;
        let v = &mut self.seen[i];
        v.records += 1;
        v.last = (index, seen);
    }
}

/// One version of one model in the summary: how many records named it and
/// where the first and the latest were (`index` is the model's record index).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionSpan {
    pub model_id: Arc<str>,
    pub model_version: Option<Arc<str>>,
    pub records: u64,
    pub first: Point,
    pub last: Point,
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
    version_idle: u64,
    /// Values each stream remembers (`[report] history`).
    history: usize,
    models: Vec<ModelState>,
    by_id: foldhash::HashMap<Name, usize>,
    files: Files,
    next_window: u64,
    counts: Counts,
    /// Streams of retired versions that had seen a value.
    retired_streams: u64,
    /// What this run saw, for the summary's `unseen` (not checkpointed).
    seen: RunSeen,
    /// Per pair of files (earlier, later): the records of the later one
    /// older than its model's last record in the earlier one.
    overlaps: Vec<(u32, u32, u64)>,
}

/// What the records of this run carried, against what the config names.
#[derive(Default)]
struct RunSeen {
    model_field: bool,
    /// Records restored from a checkpoint at start.
    restored_records: u64,
    /// Per metric slot, the values this run read.
    values: Vec<u64>,
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
                log: m.detector.log_values(),
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
            version_idle: config.report.version_idle,
            history: config.report.history,
            models: Vec::new(),
            by_id: foldhash::HashMap::default(),
            files: Files::default(),
            next_window: 0,
            counts: Counts::default(),
            retired_streams: 0,
            seen: RunSeen {
                values: vec![0; schema.metrics.len()],
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
        let metrics = seen
            .metric_names
            .iter()
            .zip(&seen.values)
            .filter(|&(_, &n)| n == 0)
            .map(|(m, _)| m.clone())
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

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Streams that have seen at least one value, retired ones included.
    pub fn streams(&self) -> u64 {
        let live: u64 = self
            .models
            .iter()
            .flat_map(|m| &m.versions)
            .map(|v| v.metrics.iter().filter(|s| s.count > 0).count() as u64)
            .sum();
        live + self.retired_streams
    }

    /// Each model's versions with their first and latest positions, models
    /// and versions in order of appearance.
    pub fn versions(&self) -> Vec<VersionSpan> {
        let point = |(index, s): (u64, Seen)| Point {
            index,
            file: self.files.name(s.file),
            line: Some(s.line),
            timestamp: Some(s.time_ns),
        };
        self.models
            .iter()
            .flat_map(|m| {
                m.seen.iter().map(|v| VersionSpan {
                    model_id: m.id.clone(),
                    model_version: v.version.clone(),
                    records: v.records,
                    first: point(v.first),
                    last: point(v.last),
                })
            })
            .collect()
    }

    fn fresh_monitors(&self) -> Vec<MonitorState> {
        self.monitors
            .iter()
            .map(|m| MonitorState {
                detector: m.detector.build(),
                open: None,
                segment: Segment::default(),
                episode: None,
            })
            .collect()
    }

    fn fresh_version(&self, version: Option<Name>) -> VersionStreams {
        VersionStreams {
            version: version.map(|v| Arc::from(v.as_str())),
            name: version,
            last_record: 0,
            metrics: (0..self.metric_count)
                .map(|_| MetricStream::new(self.history))
                .collect(),
            monitors: self.fresh_monitors(),
        }
    }

    fn model_index(&mut self, id: Name) -> usize {
        // Logs interleave a handful of models: a short scan usually finds it.
        if let Some(i) = self.models.iter().take(8).position(|m| m.name == id) {
            return i;
        }
        if let Some(&i) = self.by_id.get(&id) {
            return i;
        }
        let state = ModelState {
            id: Arc::from(id.as_str()),
            name: id,
            last_time: i64::MIN,
            last_file: u32::MAX,
            records: 0,
            versions: vec![self.fresh_version(None)],
            current: 0,
            seen: Vec::new(),
            seen_current: 0,
        };
        self.models.push(state);
        self.by_id.insert(id, self.models.len() - 1);
        self.models.len() - 1
    }

    /// Feeds one record; window events are appended to `events`.
    pub fn process(&mut self, record: &Record, events: &mut Vec<Event>) {
        self.counts.records += 1;
        let mi = self.model_index(record.model());
        let vi = self.version_index(mi, record.version);

        let seen = Seen {
            file: self.files.index(record.pos.file),
            line: record.pos.line,
            time_ns: record.time_ns,
        };
        if !self.seen.model_field && record.model_id.is_some() {
            self.seen.model_field = true;
        }
        let model = &mut self.models[mi];
        if record.time_ns < model.last_time {
            self.counts.out_of_order += 1;
            let earlier = model.last_file;
            if earlier != seen.file && earlier != u32::MAX {
                self.note_overlap(earlier, seen.file);
            }
        } else {
            model.last_time = record.time_ns;
            model.last_file = seen.file;
        }
        let model = &mut self.models[mi];
        model.note_version(record.version, seen);
        model.records += 1;
        model.versions[vi].last_record = model.records;
        if model.versions.len() > 1 {
            self.retire_idle(mi, events);
        }
        let vi = self.models[mi].current;

        for (slot, &x) in record.values.iter().enumerate() {
            if x.is_nan() {
                continue;
            }
            if let Some(n) = self.seen.values.get_mut(slot) {
                *n += 1;
            }
            let Some(stream) = self.models[mi].versions[vi].metrics.get_mut(slot) else {
                continue;
            };
            stream.push(seen, x);
            for j in 0..self.by_slot[slot].len() {
                let k = self.by_slot[slot][j];
                self.observe(mi, vi, k, x, record.time_ns, events);
            }
        }
    }

    /// The streams a record of `version` goes to, made if it is new.
    ///
    /// A record without a version goes to the latest record's streams; the
    /// first version named adopts the streams of the records without one.
    fn version_index(&mut self, mi: usize, version: Option<Name>) -> usize {
        let shared = !self.reset_on_version_change;
        let model = &mut self.models[mi];
        let Some(v) = version else {
            return model.current;
        };
        let same = |s: &VersionStreams| s.name == Some(v);
        let alone = model.versions.len() == 1;
        let current = &mut model.versions[model.current];
        if same(current) {
            return model.current;
        }
        if shared || (current.version.is_none() && alone) {
            current.version = Some(Arc::from(v.as_str()));
            current.name = Some(v);
            return model.current;
        }
        let vi = match model.versions.iter().position(same) {
            Some(vi) => vi,
            None => {
                let fresh = self.fresh_version(Some(v));
                let model = &mut self.models[mi];
                model.versions.push(fresh);
                model.versions.len() - 1
            }
        };
        self.models[mi].current = vi;
        vi
    }

    /// Retires the versions of model `mi` that have had no record for
    /// `version_idle` of its records: their windows close with "reset".
    fn retire_idle(&mut self, mi: usize, events: &mut Vec<Event>) {
        let model = &mut self.models[mi];
        let now = model.records;
        let idle = |v: &VersionStreams| now.saturating_sub(v.last_record) >= self.version_idle;
        if !model.versions.iter().any(idle) {
            return;
        }
        let current = model.current;
        let mut kept = Vec::with_capacity(model.versions.len());
        let mut closing = Vec::new();
        for (i, v) in std::mem::take(&mut model.versions).into_iter().enumerate() {
            if i == current || !idle(&v) {
                if i == current {
                    model.current = kept.len();
                }
                kept.push(v);
                continue;
            }
            self.retired_streams += v.metrics.iter().filter(|s| s.count > 0).count() as u64;
            for (spec, mut state) in self.monitors.iter().zip(v.monitors) {
                let stream = &v.metrics[spec.slot];
                closing.extend(close_open(
                    spec,
                    stream,
                    &mut state,
                    &self.files,
                    EndReason::Reset,
                ));
            }
        }
        model.versions = kept;
        closing.sort_by_key(|w| w.id);
        events.extend(closing.into_iter().map(|window| Event {
            kind: EventKind::Closed,
            window,
        }));
    }

    /// Runs one detector on one value and updates its window.
    fn observe(
        &mut self,
        mi: usize,
        vi: usize,
        k: usize,
        x: f64,
        time_ns: i64,
        events: &mut Vec<Event>,
    ) {
        let spec = &self.monitors[k];
        let model = &mut self.models[mi];
        let streams = &mut model.versions[vi];
        let stream = &streams.metrics[spec.slot];
        let index = stream.count - 1;
        let state = &mut streams.monitors[k];
        let y = episode::transform(spec.log, x);
        if let Some(y) = y {
            state.segment.sums.push(y);
        }
        // `y` is `ln x` for a `log = true` monitor: its detector takes it.
        let outcome = state.detector.update_logged(x, y, time_ns);

        if state.episode.is_none()
            && let Some(open) = &mut state.open
            && index - open.end.index > self.merge_gap
        {
            open.close(EndReason::Quiet);
            let window = state.open.take().map(|w| Event {
                kind: EventKind::Closed,
                window: *w,
            });
            events.extend(window);
        }
        if let (Some(e), Some(y)) = (&mut state.episode, y)
            && e.update(y, &state.segment.sums)
        {
            events.extend(recover(spec, stream, state, &self.files));
        }
        let (severity, change) = match outcome {
            Outcome::None => return,
            Outcome::Warning(c) => (Severity::Warning, c),
            Outcome::Drift(c) => (Severity::Drift, c),
        };
        let at = stream.point(index, &self.files);
        match &mut state.open {
            Some(open) if state.episode.is_some() => open.extend_episode(at),
            Some(open) => {
                if open.extend(severity, at, &change) {
                    self.counts.windows_warning -= 1;
                    self.counts.windows_drift += 1;
                    // From now on an episode, from the start it keeps.
                    if self.merge_gap > 0 {
                        let start = open.start.index;
                        state.episode = episode_from(spec, stream, &state.segment, start);
                        if let Some(e) = &state.episode {
                            let after = e.after(&state.segment.sums);
                            open.measured(spec.level(&e.before), spec.level(&after), spec.levels());
                        }
                    }
                    events.push(Event {
                        kind: EventKind::Escalated,
                        window: Window::clone(open),
                    });
                }
            }
            None => {
                let mut start = index.saturating_sub(change.lookback);
                let mut measured = None;
                if severity == Severity::Drift && self.merge_gap > 0 {
                    let segment = &state.segment;
                    let newest_first: Vec<(u64, f64)> =
                        stream.recent(segment.since, spec.log).collect();
                    let sign = spec.bad_sign();
                    if let Some(split) =
                        episode::locate(&segment.sums, newest_first.iter().copied(), sign)
                    {
                        start = split.at;
                        let inflation = episode::inflation(&newest_first, split.at);
                        let e = Episode::new(split.before, inflation);
                        let after = e.after(&segment.sums);
                        measured = Some((spec.level(&split.before), spec.level(&after)));
                        state.episode = Some(e);
                    }
                }
                let start = stream.point(start, &self.files);
                let subject = Subject {
                    model_id: &model.id,
                    model_version: streams.version.as_ref(),
                    metric: &spec.metric,
                    detector: &spec.info,
                    direction: spec.direction,
                };
                let mut window =
                    Window::open(self.next_window, subject, severity, start, at, &change);
                if let Some((before, after)) = measured {
                    window.measured(before, after, spec.levels());
                }
                self.next_window += 1;
                match severity {
                    Severity::Warning => self.counts.windows_warning += 1,
                    Severity::Drift => self.counts.windows_drift += 1,
                }
                events.push(Event {
                    kind: EventKind::Opened,
                    window: window.clone(),
                });
                state.open = Some(Box::new(window));
            }
        }
    }

    /// Closes every open window at the end of input, in a stable order.
    pub fn finish(&mut self, events: &mut Vec<Event>) {
        let mut closing: Vec<Window> = Vec::new();
        for streams in self.models.iter_mut().flat_map(|m| &mut m.versions) {
            for (spec, state) in self.monitors.iter().zip(&mut streams.monitors) {
                let stream = &streams.metrics[spec.slot];
                closing.extend(close_open(spec, stream, state, &self.files, EndReason::Eof));
            }
        }
        closing.sort_by_key(|w| w.id);
        events.extend(closing.into_iter().map(|window| Event {
            kind: EventKind::Closed,
            window,
        }));
    }
}

/// The episode of a window that starts at `start`, if the stream still
/// knows its values from there on.
fn episode_from(
    spec: &MonitorSpec,
    stream: &MetricStream,
    segment: &Segment,
    start: u64,
) -> Option<Episode> {
    if start < segment.since || start < stream.count - stream.known as u64 {
        return None;
    }
    let newest_first: Vec<(u64, f64)> = stream.recent(start, spec.log).collect();
    let mut after = Sums::default();
    for &(_, y) in &newest_first {
        after.push(y);
    }
    let before = segment.sums.minus(&after);
    let all: Vec<(u64, f64)> = stream.recent(segment.since, spec.log).collect();
    Some(Episode::new(before, episode::inflation(&all, start)))
}

/// Closes the open episode of `state` as recovered: its end is the best
/// split of the values since its start, and the stream's new boundary is
/// just after it.
fn recover(
    spec: &MonitorSpec,
    stream: &MetricStream,
    state: &mut MonitorState,
    files: &Files,
) -> Option<Event> {
    let e = state.episode.take()?;
    let mut w = *state.open.take()?;
    let after = e.after(&state.segment.sums);
    // The later part is the one back toward the level before.
    let sign = (e.before.mean() - after.mean()).signum();
    let newest = stream.count - 1;
    let (end, kept, rest) =
        match episode::locate(&after, stream.recent(w.start.index, spec.log), sign) {
            Some(split) => (split.at - 1, split.before, after.minus(&split.before)),
            None => (newest, after, Sums::default()),
        };
    state.segment = Segment {
        since: end + 1,
        sums: rest,
    };
    // An end located before the detection (a late detection of a short
    // dip) is put at the detection, so start <= detected <= end.
    w.end = stream.point(end.max(w.detected.index), files);
    w.measured(spec.level(&e.before), spec.level(&kept), spec.levels());
    w.close(EndReason::Recovered);
    Some(Event {
        kind: EventKind::Closed,
        window: w,
    })
}

/// Closes an open window at the end of its input or version: an episode
/// ends at the stream's last value, with its final level after.
fn close_open(
    spec: &MonitorSpec,
    stream: &MetricStream,
    state: &mut MonitorState,
    files: &Files,
    reason: EndReason,
) -> Option<Window> {
    let mut w = *state.open.take()?;
    if let Some(e) = state.episode.take() {
        w.end = stream.last(files);
        let after = e.after(&state.segment.sums);
        w.measured(spec.level(&e.before), spec.level(&after), spec.levels());
    }
    w.close(reason);
    Some(w)
}

/// The version of the saved pipeline's shape inside a checkpoint; a state
/// of another version is refused (the run says to pass `--reset-state`).
///
/// Bump it with any change to [`State`] or to a detector's saved fields
/// (3: detector states are tagged with the detector's name).
pub const STATE_FORMAT: u32 = 3;

/// The saved form of a [`Pipeline`], for checkpoints (SPEC §6): written by
/// [`Pipeline::save`], read back with [`State::from_json`] and checked
/// against the configuration by [`Pipeline::restore`].
///
/// File names of the position histories are stored once in `files` and
/// referred to by index, so a checkpoint stays small.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    format: u32,
    next_window: u64,
    counts: Counts,
    retired_streams: u64,
    files: Vec<Arc<str>>,
    models: Vec<SavedModel>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedModel {
    id: Arc<str>,
    last_time: i64,
    records: u64,
    current: usize,
    versions: Vec<SavedVersion>,
    seen_current: usize,
    /// Per version named: (version, records, first, last), the positions
    /// as (model record index, position).
    seen: Vec<(Option<Arc<str>>, u64, SavedAt, SavedAt)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedVersion {
    version: Option<Arc<str>>,
    last_record: u64,
    /// Per metric slot: the count and the history.
    metrics: Vec<(u64, Vec<SavedValue>)>,
    monitors: Vec<SavedMonitor>,
}

/// One value of a stream's history: (file index, line, time, value).
type SavedValue = (u32, u64, i64, f64);

/// One position of a stream's history: (file index, line, time).
type SavedSeen = (u32, u64, i64);

/// A model record index and its position.
type SavedAt = (u64, SavedSeen);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedMonitor {
    detector: DetectorState,
    /// The open window and its id (which the report does not serialise).
    open: Option<(u64, Window)>,
    segment: Segment,
    episode: Option<Episode>,
}

/// Why a saved pipeline cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "pipeline state format {found} is not this mmon's ({STATE_FORMAT}); pass --reset-state to start over"
    )]
    Format { found: String },
    #[error("pipeline state does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("pipeline state does not fit the configuration: {0}")]
    Shape(String),
}

impl State {
    /// Refuses a saved pipeline of another [`STATE_FORMAT`] before its
    /// shape is read, so that an old checkpoint is named as old (with the
    /// way out, `--reset-state`) rather than as unreadable.
    pub fn check_format(state: &serde_json::Value) -> Result<(), RestoreError> {
        let format = state.get("format").and_then(serde_json::Value::as_u64);
        if format == Some(u64::from(STATE_FORMAT)) {
            return Ok(());
        }
        let found = format.map_or_else(|| "1 (no format field)".into(), |f| f.to_string());
        Err(RestoreError::Format { found })
    }

    /// Reads a saved pipeline: [`State::check_format`], then its shape.
    pub fn from_json(state: serde_json::Value) -> Result<State, RestoreError> {
        State::check_format(&state)?;
        Ok(serde_json::from_value(state)?)
    }
}

fn shape(message: String) -> RestoreError {
    RestoreError::Shape(message)
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), RestoreError> {
    if ok { Ok(()) } else { Err(shape(what())) }
}

impl Pipeline {
    /// The whole state: every stream's position and history, every
    /// detector, every open window, the window counter and the counts.
    pub fn save(&self) -> State {
        // Only the names the histories still refer to, renumbered.
        let mut files: Vec<Arc<str>> = Vec::new();
        let mut file_index: HashMap<u32, u32> = HashMap::new();
        let mut index_of = |f: u32| -> u32 {
            *file_index.entry(f).or_insert_with(|| {
                files.push(self.files.name(f).unwrap_or_else(|| Arc::from("")));
                (files.len() - 1) as u32
            })
        };
        let mut models = Vec::with_capacity(self.models.len());
        for m in &self.models {
            let mut versions = Vec::with_capacity(m.versions.len());
            for v in &m.versions {
                let metrics = v
                    .metrics
                    .iter()
                    .map(|s| {
                        let history = s
                            .history()
                            .map(|(h, x)| (index_of(h.file), h.line, h.time_ns, x))
                            .collect();
                        (s.count, history)
                    })
                    .collect();
                let monitors = v
                    .monitors
                    .iter()
                    .map(|st| SavedMonitor {
                        detector: st.detector.save(),
                        open: st.open.as_ref().map(|w| (w.id, Window::clone(w))),
                        segment: st.segment,
                        episode: st.episode,
                    })
                    .collect();
                versions.push(SavedVersion {
                    version: v.version.clone(),
                    last_record: v.last_record,
                    metrics,
                    monitors,
                });
            }
            let mut at = |(i, s): (u64, Seen)| (i, (index_of(s.file), s.line, s.time_ns));
            let seen = m
                .seen
                .iter()
                .map(|v| (v.version.clone(), v.records, at(v.first), at(v.last)))
                .collect();
            models.push(SavedModel {
                id: m.id.clone(),
                last_time: m.last_time,
                records: m.records,
                current: m.current,
                versions,
                seen_current: m.seen_current,
                seen,
            });
        }
        State {
            format: STATE_FORMAT,
            next_window: self.next_window,
            counts: self.counts,
            retired_streams: self.retired_streams,
            files,
            models,
        }
    }

    /// A pipeline for `config` continuing from a state written by [`Pipeline::save`].
    pub fn restore(config: &Config, saved: State) -> Result<Pipeline, RestoreError> {
        if saved.format != STATE_FORMAT {
            return Err(RestoreError::Format {
                found: saved.format.to_string(),
            });
        }
        let mut p = Pipeline::new(config);
        let c = saved.counts;
        check(
            saved.next_window <= MAX_COUNT && c.records <= MAX_COUNT,
            || {
                format!(
                    "{} windows and {} records are beyond any log",
                    saved.next_window, c.records
                )
            },
        )?;
        check(c.out_of_order <= c.records, || {
            format!("{} out of order of {} records", c.out_of_order, c.records)
        })?;
        check(
            c.windows_warning.saturating_add(c.windows_drift) <= saved.next_window,
            || {
                format!(
                    "{} warning and {} drift windows, but only {} were opened",
                    c.windows_warning, c.windows_drift, saved.next_window
                )
            },
        )?;
        check(saved.retired_streams <= MAX_COUNT, || {
            format!("{} retired streams", saved.retired_streams)
        })?;
        p.next_window = saved.next_window;
        p.counts = c;
        p.seen.restored_records = c.records;
        let mut open_warnings = 0u64;
        p.retired_streams = saved.retired_streams;
        let files = &saved.files;
        let seen_at = |(f, line, time_ns): SavedSeen, p: &mut Pipeline| {
            let name = files
                .get(f as usize)
                .ok_or_else(|| shape(format!("file index {f} out of range")))?;
            Ok::<Seen, RestoreError>(Seen {
                file: p.files.index(Name::new(name)),
                line,
                time_ns,
            })
        };
        for m in saved.models {
            check(!p.by_id.contains_key(&Name::new(&m.id)), || {
                format!("model {} is saved twice", m.id)
            })?;
            check(m.records <= c.records, || {
                format!(
                    "model {}: {} records of {} in all",
                    m.id, m.records, c.records
                )
            })?;
            if m.versions.is_empty() || m.current >= m.versions.len() {
                return Err(shape(format!(
                    "model {} has no current version stream",
                    m.id
                )));
            }
            let mut versions = Vec::with_capacity(m.versions.len());
            for v in m.versions {
                if v.metrics.len() != p.metric_count || v.monitors.len() != p.monitors.len() {
                    return Err(shape(format!(
                        "model {} has {} metrics and {} monitors, the configuration {} and {}",
                        m.id,
                        v.metrics.len(),
                        v.monitors.len(),
                        p.metric_count,
                        p.monitors.len()
                    )));
                }
                check(v.last_record <= m.records, || {
                    format!(
                        "model {}: a version's last record {} of {}",
                        m.id, v.last_record, m.records
                    )
                })?;
                let mut metrics = Vec::with_capacity(v.metrics.len());
                for (count, history) in v.metrics {
                    check(count <= m.records, || {
                        format!(
                            "model {}: a stream of {count} values from {} records",
                            m.id, m.records
                        )
                    })?;
                    let mut seen = Vec::with_capacity(history.len());
                    for (f, line, time_ns, x) in history {
                        seen.push((seen_at((f, line, time_ns), &mut p)?, x));
                    }
                    metrics.push(MetricStream::restored(count, &seen, p.history));
                }
                let mut monitors = Vec::with_capacity(v.monitors.len());
                for (k, (spec, sm)) in p.monitors.iter().zip(v.monitors).enumerate() {
                    let detector = spec.detector.restore(sm.detector).map_err(|e| {
                        shape(format!(
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
                            let (start, detected, end) =
                                (w.start.index, w.detected.index, w.end.index);
                            check(start <= end && detected <= end && end < count, || {
                                format!(
                                    "model {}, monitor[{k}]: an open window at {start}..{end} in a stream of {count} values",
                                    m.id
                                )
                            })?;
                            check(id < saved.next_window && w.detections <= MAX_COUNT, || {
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
                    if sm.episode.is_some() && open.is_none() {
                        return Err(shape(format!(
                            "model {}: an episode without a window",
                            m.id
                        )));
                    }
                    monitors.push(MonitorState {
                        detector,
                        open: open.map(Box::new),
                        segment: sm.segment,
                        episode: sm.episode,
                    });
                }
                versions.push(VersionStreams {
                    name: v.version.as_deref().map(Name::new),
                    version: v.version,
                    last_record: v.last_record,
                    metrics,
                    monitors,
                });
            }
            let mut seen = Vec::with_capacity(m.seen.len());
            for (version, records, (fi, f), (li, l)) in m.seen {
                seen.push(VersionSeen {
                    name: version.as_deref().map(Name::new),
                    version,
                    records,
                    first: (fi, seen_at(f, &mut p)?),
                    last: (li, seen_at(l, &mut p)?),
                });
            }
            let id = m.id;
            p.by_id.insert(Name::new(&id), p.models.len());
            p.models.push(ModelState {
                name: Name::new(&id),
                id,
                last_time: m.last_time,
                last_file: u32::MAX,
                records: m.records,
                versions,
                current: m.current,
                seen,
                seen_current: m.seen_current,
            });
        }
        // Each open warning window is counted until it escalates.
        check(open_warnings <= c.windows_warning, || {
            format!(
                "{open_warnings} open warning windows but {} counted",
                c.windows_warning
            )
        })?;
        Ok(p)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{Position, Values};

    /// A decay monitor on `accuracy` over 5 values (threshold 0.1), then `extra`.
    pub(crate) fn config(extra: &str) -> Config {
        let text = format!(
            "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = {{ window = 5, threshold = 0.1 }}\n{extra}"
        );
        Config::parse(&text, "t.toml").unwrap()
    }

    /// Record `i` (time `i`, line `i + 1` of `f.jsonl`) with one value.
    pub(crate) fn record(i: u64, model: &str, version: &str, x: f64) -> Record {
        let mut values = Values::new();
        values.push(x);
        Record {
            time_ns: i as i64,
            model_id: Some(Name::new(model)),
            version: Some(Name::new(version)),
            values,
            pos: Position {
                file: Name::new("f.jsonl"),
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
    fn a_drift_window_is_an_episode_from_the_located_change_to_the_end() {
        let mut p = Pipeline::new(&config("[report]\nmerge_gap = 10\n"));
        // Five at 1.0 (reference), then 0.5 forever: drift at 5 (the first
        // current window 1..=5 has mean 0.9: 0.1 below). The decay rule puts
        // the start at 1; the values say 5, and the window stays open.
        let mut recs: Vec<Record> = (0..5).map(|i| record(i, "m", "1", 1.0)).collect();
        recs.extend((5..40).map(|i| record(i, "m", "1", 0.5)));
        let events = run(&mut p, &recs);
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventKind::Opened, EventKind::Closed]);
        let w = &events[0].window;
        assert_eq!((w.start.index, w.detected.index, w.end.index), (5, 5, 5));
        assert_eq!((w.before, w.after, w.levels), (1.0, 0.5, Levels::Mean));
        let w = &events[1].window;
        assert_eq!((w.start.index, w.detected.index, w.end.index), (5, 5, 39));
        assert_eq!(w.start.line, Some(6));
        assert_eq!(w.end_reason, Some(EndReason::Eof));
        assert_eq!((w.before, w.after, w.events), (1.0, 0.5, 35));
        assert_eq!(p.counts().windows_drift, 1);
    }

    #[test]
    fn an_episode_closes_where_the_stream_recovered() {
        let mut p = Pipeline::new(&config("[report]\nmerge_gap = 10\n"));
        let level = |i: u64| match i {
            0..20 => 1.0,
            20..50 => 0.5,
            _ => 0.95,
        };
        let recs: Vec<Record> = (0..80).map(|i| record(i, "m", "1", level(i))).collect();
        let events = run(&mut p, &recs);
        let closed: Vec<&Window> = events
            .iter()
            .filter(|e| e.kind == EventKind::Closed)
            .map(|e| &e.window)
            .collect();
        let w = closed[0];
        assert_eq!(w.end_reason, Some(EndReason::Recovered));
        assert_eq!((w.start.index, w.end.index), (20, 49));
        assert!((w.before - 1.0).abs() < 1e-9 && (w.after - 0.5).abs() < 1e-9);
    }

    #[test]
    fn merge_gap_zero_keeps_the_detectors_pulses() {
        let mut p = Pipeline::new(&config("[report]\nmerge_gap = 0\n"));
        let mut recs: Vec<Record> = (0..5).map(|i| record(i, "m", "1", 1.0)).collect();
        recs.extend((5..40).map(|i| record(i, "m", "1", 0.5)));
        let events = run(&mut p, &recs);
        let w = &events[1].window;
        assert_eq!((w.start.index, w.detected.index, w.end.index), (1, 5, 5));
        assert_eq!(w.end_reason, Some(EndReason::Quiet));
        assert_eq!(w.levels, Levels::Detector);
    }

    #[test]
    fn an_idle_version_is_retired_and_its_windows_close_with_reset() {
        let mut p = Pipeline::new(&config("[report]\nmerge_gap = 100\nversion_idle = 3\n"));
        let mut recs: Vec<Record> = (0..5).map(|i| record(i, "m", "1", 1.0)).collect();
        recs.push(record(5, "m", "1", 0.5));
        recs.extend((6..12).map(|i| record(i, "m", "2", 0.5)));
        let events = run(&mut p, &recs);
        assert_eq!(events.len(), 2);
        // Retired at the third record of version 2 (index 8), not at eof.
        assert_eq!(events[1].window.end_reason, Some(EndReason::Reset));
        assert_eq!(events[1].window.model_version.as_deref(), Some("1"));
        assert_eq!(p.streams(), 2);
        let spans = p.versions();
        assert_eq!(spans.len(), 2);
        assert_eq!(
            (spans[0].records, spans[0].first.index, spans[0].last.index),
            (6, 0, 5)
        );
        assert_eq!(
            (spans[1].records, spans[1].first.index, spans[1].last.index),
            (6, 6, 11)
        );
        assert_eq!(spans[1].last.line, Some(12));
    }

    #[test]
    fn interleaved_versions_keep_their_own_detectors() {
        // Version 1 at 1.0 then 0.5, version 2 always at 0.5, interleaved
        // one to one: with one stream per version only version 1 drifts,
        // and nothing is reset while both keep receiving records.
        let cfg = config("[report]\nmerge_gap = 100\nversion_idle = 3\n");
        let recs: Vec<Record> = (0..60)
            .map(|i| match (i % 2, i < 20) {
                (0, true) => record(i, "m", "1", 1.0),
                (0, false) => record(i, "m", "1", 0.5),
                _ => record(i, "m", "2", 0.5),
            })
            .collect();
        let events = run(&mut Pipeline::new(&cfg), &recs);
        let closed: Vec<&Window> = events
            .iter()
            .filter(|e| e.kind == EventKind::Closed)
            .map(|e| &e.window)
            .collect();
        assert_eq!(closed.len(), 1, "{events:#?}");
        assert_eq!(closed[0].model_version.as_deref(), Some("1"));
        assert_eq!(closed[0].end_reason, Some(EndReason::Eof));
        // Shared streams: the flips do not reset, and the two levels mix.
        let shared = config("[report]\nreset_on_version_change = false\n");
        let mut p = Pipeline::new(&shared);
        run(&mut p, &recs);
        assert_eq!(p.streams(), 1);
        assert_eq!(p.versions().len(), 2);
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
            let state = State::from_json(serde_json::from_str(&text).unwrap()).unwrap();
            let mut second = Pipeline::restore(&cfg, state).unwrap();
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

    #[test]
    fn a_state_of_the_older_format_is_refused_with_the_way_out() {
        let cfg = config("");
        let mut state = serde_json::to_value(Pipeline::new(&cfg).save()).unwrap();
        state.as_object_mut().unwrap().remove("format");
        let e = State::from_json(state.clone()).err().unwrap();
        assert!(matches!(e, RestoreError::Format { .. }));
        assert!(e.to_string().contains("--reset-state"), "{e}");
        // Format 2 held detector states untagged: named as old, not unreadable.
        state["format"] = 2.into();
        let e = State::from_json(state).err().unwrap();
        assert_eq!(
            e.to_string(),
            "pipeline state format 2 is not this mmon's (3); pass --reset-state to start over"
        );
    }

    #[test]
    fn a_typed_state_of_another_format_is_refused_too() {
        let cfg = config("");
        let mut state = Pipeline::new(&cfg).save();
        state.format = 2;
        let e = Pipeline::restore(&cfg, state).err().unwrap();
        assert!(matches!(e, RestoreError::Format { .. }), "{e}");
    }

    #[test]
    fn a_detector_state_of_another_detector_is_refused_naming_both() {
        let cfg = config("");
        let mut s = saved_with_an_open_window(&cfg);
        assert_eq!(cfg.monitors[0].detector.name(), "decay");
        let adwin = crate::detect::DetectorConfig::from_params(
            "adwin",
            Direction::Both,
            &mut crate::detect::Params::new(toml::Table::new(), "monitor[0].params"),
        )
        .unwrap()
        .unwrap();
        s["models"][0]["versions"][0]["monitors"][0]["detector"] =
            serde_json::to_value(adwin.build().save()).unwrap();
        let e = State::from_json(s)
            .and_then(|s| Pipeline::restore(&cfg, s))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("monitor[0] (decay on accuracy)")
                && e.contains("\"adwin\"")
                && e.contains("\"decay\""),
            "{e}"
        );
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
        serde_json::to_value(p.save()).unwrap()
    }

    fn restore(cfg: &Config, state: serde_json::Value) -> Result<Pipeline, RestoreError> {
        Pipeline::restore(cfg, State::from_json(state)?)
    }

    fn refused(cfg: &Config, state: serde_json::Value, why: &str) {
        match restore(cfg, state) {
            Ok(_) => panic!("{why}: restored"),
            Err(e) => assert!(e.to_string().contains("does not fit"), "{why}: {e}"),
        }
    }

    #[test]
    fn a_restored_state_that_does_not_fit_is_refused_instead_of_overflowing_later() {
        let cfg = config("[report]\nmerge_gap = 100\n");
        let good = saved_with_an_open_window(&cfg);
        restore(&cfg, good.clone()).unwrap();

        let mut s = good.clone();
        s["models"][0]["versions"][0]["monitors"][0]["open"][1]["end"]["index"] = 1000.into();
        refused(&cfg, s, "an open window beyond its stream");

        let mut s = good.clone();
        s["counts"]["records"] = u64::MAX.into();
        refused(&cfg, s, "records at u64::MAX");

        let mut s = good.clone();
        s["counts"]["out_of_order"] = 100.into();
        refused(&cfg, s, "more out of order than records");

        let mut s = good.clone();
        s["models"][0]["versions"][0]["metrics"][0][0] = 100.into();
        refused(&cfg, s, "a stream longer than the records");

        // An open warning window that the counts do not hold would make its
        // escalation subtract from zero.
        let mut s = good.clone();
        s["models"][0]["versions"][0]["monitors"][0]["open"][1]["severity"] = "warning".into();
        refused(&cfg, s, "an uncounted warning window");

        let mut s = good.clone();
        let model = s["models"][0].clone();
        s["models"].as_array_mut().unwrap().push(model);
        refused(&cfg, s, "a model saved twice");

        let mut s = good;
        s["models"][0]["versions"][0]["monitors"][0]["detector"]["decay"]["reference_count"] =
            99.into();
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

    const HISTORY: usize = crate::config::DEFAULT_HISTORY;

    #[test]
    fn the_ring_keeps_exactly_the_latest_positions() {
        for size in [16, 100, HISTORY] {
            let mut s = MetricStream::new(size);
            let h = size as u64;
            for n in [0, 1, h - 1, h, h + 1, 3 * h + 17] {
                while s.count < n {
                    s.push(seen(s.count), s.count as f64);
                }
                let oldest = n.saturating_sub(h);
                for i in [
                    0,
                    oldest.saturating_sub(1),
                    oldest,
                    n.saturating_sub(1),
                    n,
                    n + 1,
                ] {
                    let want = (i >= oldest && i < n).then_some(i + 1);
                    assert_eq!(line(&s, i), want, "value {i} of {n}, size {size}");
                }
                let lines: Vec<u64> = s.history().map(|(h, _)| h.line).collect();
                assert_eq!(lines, (oldest + 1..=n).collect::<Vec<_>>(), "{n}");
                let values: Vec<f64> = s.recent(0, false).map(|(_, x)| x).collect();
                let want: Vec<f64> = (oldest..n).rev().map(|i| i as f64).collect();
                assert_eq!(values, want, "{n}, size {size}");
            }
        }
    }

    #[test]
    fn a_restored_stream_goes_on_as_the_saved_one() {
        // Restored at the same size, or at another `[report] history`: the
        // latest values that fit are known, and it goes on from there.
        for (size, again) in [(HISTORY, HISTORY), (100, 100), (100, 37), (37, 100)] {
            let (h, k) = (size as u64, again as u64);
            for n in [0, 5, h, h + 5, 2 * h + 1] {
                let mut a = MetricStream::new(size);
                for i in 0..n {
                    a.push(seen(i), i as f64);
                }
                let history: Vec<(Seen, f64)> = a.history().collect();
                let mut b = MetricStream::restored(a.count, &history, again);
                let mut c = MetricStream::new(again);
                for i in 0..n {
                    c.push(seen(i), i as f64);
                }
                for i in n..n + h.max(k) + 3 {
                    a.push(seen(i), i as f64);
                    b.push(seen(i), i as f64);
                    c.push(seen(i), i as f64);
                    for j in [
                        i.saturating_sub(h.max(k)),
                        i.saturating_sub(h.min(k)),
                        i / 2,
                        i,
                    ] {
                        if size == again {
                            assert_eq!(line(&a, j), line(&b, j), "{n}: value {j} at {i}");
                        }
                        // Knows no more than a stream of its own size, and
                        // all of that once the saved part is past.
                        let (got, full) = (line(&b, j), line(&c, j));
                        assert!(
                            got.is_none() || got == full,
                            "{size}->{again} {n}: {j} at {i}"
                        );
                        if i >= n + k {
                            assert_eq!(got, full, "{size}->{again} {n}: {j} at {i}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_position_too_big_for_an_entry_forgets_what_came_before_it() {
        let mut s = MetricStream::new(HISTORY);
        for i in 0..10 {
            s.push(seen(i), i as f64);
        }
        let far = Seen {
            file: 1 << 24,
            line: 11,
            time_ns: 70,
        };
        s.push(far, 10.0);
        assert_eq!((line(&s, 9), line(&s, 10)), (None, None));
        assert_eq!(s.recent(0, false).count(), 0);
        s.push(seen(11), 11.0);
        assert_eq!(line(&s, 11), Some(12));
        assert_eq!(s.history().map(|(_, x)| x).collect::<Vec<_>>(), [11.0]);
        // The largest that fit are kept exactly.
        let edge = Seen {
            file: (1 << 24) - 1,
            line: (1 << 40) - 1,
            time_ns: -5,
        };
        s.push(edge, 12.0);
        let got = s.seen(12).unwrap();
        assert_eq!(
            (got.file, got.line, got.time_ns),
            (edge.file, edge.line, -5)
        );
        // A restored history knows only what follows its last misfit.
        let mut history: Vec<(Seen, f64)> = (0..5).map(|i| (seen(i), i as f64)).collect();
        history[1].0.line = 1 << 40;
        let r = MetricStream::restored(5, &history, HISTORY);
        assert_eq!(
            (line(&r, 1), line(&r, 2), line(&r, 4)),
            (None, Some(3), Some(5))
        );
    }

    #[test]
    fn a_shorter_saved_history_knows_only_what_it_holds() {
        let history: Vec<(Seen, f64)> = (95..100).map(|i| (seen(i), i as f64)).collect();
        let mut s = MetricStream::restored(100, &history, HISTORY);
        assert_eq!(line(&s, 94), None);
        assert_eq!(line(&s, 95), Some(96));
        assert_eq!(line(&s, 99), Some(100));
        s.push(seen(100), 100.0);
        assert_eq!(line(&s, 100), Some(101));
        assert_eq!(line(&s, 94), None);
        // A history longer than the count keeps only the latest `count`.
        let s = MetricStream::restored(2, &history, HISTORY);
        assert_eq!(
            s.history().map(|(h, _)| h.line).collect::<Vec<_>>(),
            [99, 100]
        );
        assert_eq!(line(&s, 1), Some(100));
    }
}
