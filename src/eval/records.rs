//! The logs of an evaluation, parsed once and kept in memory compactly, to
//! be replayed through a fresh [`Pipeline`] for every configuration and grid
//! point.
//!
//! A record costs about 28 bytes plus 8 per monitored metric (its time,
//! model, version, file and line as plain numbers, its values in one flat
//! array), so a 1M-record log of three metrics holds in about 52 MB. Names
//! are stored once, as numbers into lists of interned [`Name`]s.

use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::record::{Name, Position, Record, Schema, Values};
use crate::source::read_ahead;
use crate::source::{FileSource, FileStats, Item};
use crate::window::Event;

/// No version: the record carried none.
const NO_VERSION: u32 = u32::MAX;

/// Every record of the logs, in file order.
#[derive(Debug, Default)]
pub struct Records {
    /// The metric of each value slot (the union of every configuration's).
    pub metrics: Vec<String>,
    time_ns: Vec<i64>,
    model: Vec<u32>,
    version: Vec<u32>,
    file: Vec<u32>,
    line: Vec<u64>,
    values: Vec<f64>,
    pub models: Vec<String>,
    versions: Vec<String>,
    /// Files as records name them (`<stdin>` for `-`).
    pub files: Vec<String>,
    pub rejected: u64,
    pub stats: Vec<FileStats>,
}

/// Hands out one number per distinct name; consecutive records usually
/// share it, so the last one is compared first.
#[derive(Default)]
struct Names {
    last: Option<(Name, u32)>,
    index: HashMap<Name, u32>,
}

impl Names {
    fn number(&mut self, name: Name, list: &mut Vec<String>) -> u32 {
        if let Some((last, i)) = self.last
            && last == name
        {
            return i;
        }
        let i = *self.index.entry(name).or_insert_with(|| {
            list.push(name.to_string());
            (list.len() - 1) as u32
        });
        self.last = Some((name, i));
        i
    }
}

impl Records {
    /// Reads `paths` to their ends as replay does (on a second thread when
    /// there is a CPU for it), skipping bad records and counting them.
    pub fn read(paths: &[String], config: &Config, schema: Schema) -> anyhow::Result<Records> {
        let metrics = schema.metrics.clone();
        let k = metrics.len();
        let mut source = read_ahead::start(FileSource::new(
            paths.to_vec(),
            config.input.format,
            Arc::new(schema),
        ));
        let mut r = Records {
            metrics,
            ..Records::default()
        };
        let (mut models, mut versions, mut files) =
            (Names::default(), Names::default(), Names::default());
        while let Some(batch) = source.next_batch()? {
            for item in batch {
                match item {
                    Item::Record(rec) => {
                        r.time_ns.push(rec.time_ns);
                        r.model.push(models.number(rec.model(), &mut r.models));
                        r.version.push(match rec.version {
                            Some(v) => versions.number(v, &mut r.versions),
                            None => NO_VERSION,
                        });
                        r.file.push(files.number(rec.pos.file, &mut r.files));
                        r.line.push(rec.pos.line);
                        r.values
                            .extend((0..k).map(|s| rec.values.get(s).map_or(f64::NAN, |x| *x)));
                    }
                    Item::Bad(_) => r.rejected += 1,
                }
            }
        }
        r.stats = source.stats().to_vec();
        Ok(r)
    }

    pub fn len(&self) -> usize {
        self.time_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time_ns.is_empty()
    }

    /// The slot of a metric, if some configuration monitors it.
    pub fn slot(&self, metric: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m == metric)
    }

    pub fn model_number(&self, name: &str) -> Option<u32> {
        self.models.iter().position(|m| m == name).map(|i| i as u32)
    }

    pub fn file_number(&self, name: &str) -> Option<u32> {
        self.files.iter().position(|f| f == name).map(|i| i as u32)
    }

    fn value(&self, i: usize, slot: usize) -> f64 {
        self.values[i * self.metrics.len() + slot]
    }

    /// The model of the record read at `line` of file `file`, if there is one.
    pub fn model_at(&self, file: u32, line: u64) -> Option<&str> {
        // Records are in file order: a binary search for the first at or
        // after (file, line).
        let (mut i, mut hi) = (0, self.len());
        while i < hi {
            let mid = i + (hi - i) / 2;
            if (self.file[mid], self.line[mid]) < (file, line) {
                i = mid + 1;
            } else {
                hi = mid;
            }
        }
        (i < self.len() && self.file[i] == file && self.line[i] == line)
            .then(|| self.models[self.model[i] as usize].as_str())
    }

    /// How many values each (model, slot) stream has: the length of the
    /// stream a window's `index` counts in, `[model][slot]`.
    pub fn stream_lengths(&self) -> Vec<Vec<u64>> {
        let k = self.metrics.len();
        let mut counts = vec![vec![0u64; k]; self.models.len()];
        for i in 0..self.len() {
            let m = self.model[i] as usize;
            for (s, c) in counts[m].iter_mut().enumerate() {
                if !self.value(i, s).is_nan() {
                    *c += 1;
                }
            }
        }
        counts
    }

    /// Resolves each query to the position, in its (model, slot) stream, of
    /// the first value at or after its [`Spot`]; `None` when the stream has
    /// no value there. Positions count a model's values of one metric over
    /// all its versions, as the pipeline counts a window's `index`.
    pub fn locate(&self, queries: &[(u32, usize, Spot)]) -> Vec<Option<u64>> {
        let k = self.metrics.len();
        let lengths = self.stream_lengths();
        let mut answers = vec![None; queries.len()];
        // Per stream: line queries in file order (records come in it) and
        // time queries by time (records need not).
        let mut by_line: Vec<Vec<(u32, u64, usize)>> = vec![Vec::new(); self.models.len() * k];
        let mut by_time: Vec<BinaryHeap<std::cmp::Reverse<(i64, usize)>>> =
            vec![BinaryHeap::new(); self.models.len() * k];
        for (q, &(model, slot, spot)) in queries.iter().enumerate() {
            let Some(len) = lengths.get(model as usize).and_then(|l| l.get(slot)) else {
                continue;
            };
            let stream = model as usize * k + slot;
            match spot {
                Spot::Index(i) => answers[q] = (i < *len).then_some(i),
                Spot::Line { file, line } => by_line[stream].push((file, line, q)),
                Spot::Time(t) => by_time[stream].push(std::cmp::Reverse((t, q))),
            }
        }
        for list in &mut by_line {
            list.sort_unstable_by(|a, b| b.cmp(a)); // popped from the back, earliest first
        }
        let mut counts = vec![0u64; self.models.len() * k];
        for i in 0..self.len() {
            let m = self.model[i] as usize;
            for s in 0..k {
                if self.value(i, s).is_nan() {
                    continue;
                }
                let stream = m * k + s;
                let index = counts[stream];
                counts[stream] += 1;
                let lines = &mut by_line[stream];
                while let Some(&(file, line, q)) = lines.last() {
                    if (file, line) > (self.file[i], self.line[i]) {
                        break;
                    }
                    answers[q] = Some(index);
                    lines.pop();
                }
                let times = &mut by_time[stream];
                while let Some(std::cmp::Reverse((t, q))) = times.peek().copied() {
                    if t > self.time_ns[i] {
                        break;
                    }
                    answers[q] = Some(index);
                    times.pop();
                }
            }
        }
        answers
    }

    /// Feeds every record, in order, through a fresh pipeline for `config`
    /// and hands each window event to `sink`.
    pub fn replay(&self, config: &Config, mut sink: impl FnMut(Event)) {
        let names = |list: &[String]| -> Vec<Name> { list.iter().map(|s| Name::new(s)).collect() };
        let (models, versions, files) = (
            names(&self.models),
            names(&self.versions),
            names(&self.files),
        );
        let slots: Vec<usize> = config
            .schema()
            .metrics
            .iter()
            .map(|m| self.slot(m).unwrap_or(usize::MAX))
            .collect();
        let k = self.metrics.len();
        let mut pipeline = Pipeline::new(config);
        let mut events = Vec::new();
        let Some(first_model) = models.first() else {
            return;
        };
        let mut record = Record {
            time_ns: 0,
            model_id: Some(*first_model),
            version: None,
            values: Values::new(),
            pos: Position {
                file: files.first().copied().unwrap_or_else(|| Name::new("")),
                line: 0,
                offset: 0,
            },
        };
        let (mut model, mut version, mut file) = (0u32, NO_VERSION, 0u32);
        for i in 0..self.len() {
            record.time_ns = self.time_ns[i];
            if self.model[i] != model {
                model = self.model[i];
                record.model_id = Some(models[model as usize]);
            }
            if self.version[i] != version {
                version = self.version[i];
                record.version = versions.get(version as usize).copied();
            }
            if self.file[i] != file {
                file = self.file[i];
                record.pos.file = files[file as usize];
            }
            record.pos.line = self.line[i];
            record.values.clear();
            let row = &self.values[i * k..(i + 1) * k];
            record.values.extend(
                slots
                    .iter()
                    .map(|&s| row.get(s).copied().unwrap_or(f64::NAN)),
            );
            pipeline.process(&record, &mut events);
            for e in events.drain(..) {
                sink(e);
            }
        }
        pipeline.finish(&mut events);
        for e in events.drain(..) {
            sink(e);
        }
    }
}

/// Where a known change is, before it is resolved to a stream position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spot {
    /// A position in the stream.
    Index(u64),
    /// The first value of the stream at or after this line of this file.
    Line { file: u32, line: u64 },
    /// The first value of the stream whose time is at or after this.
    Time(i64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::EventKind;

    const CONFIG: &str = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n\
                          params = { window = 20, threshold = 0.2 }\n\
                          [report]\nmerge_gap = 0\nreset_on_version_change = false\n";

    /// Two models, the second with two interleaved versions, and records
    /// without the metric: a drop to 0.5 for model b from its record 300.
    fn log() -> String {
        let mut text = String::new();
        let mut b = 0;
        for i in 0..1500u64 {
            let (model, version) = match i % 3 {
                0 => ("a", "1"),
                1 => ("b", "1"),
                _ => ("b", "2"),
            };
            let acc = if model == "b" && b >= 300 { 0.5 } else { 0.9 };
            if model == "b" {
                b += 1;
            }
            if i % 7 == 0 {
                text.push_str(&format!("{{\"timestamp\":{i},\"model_id\":\"{model}\"}}\n"));
            }
            text.push_str(&format!(
                "{{\"timestamp\":{i},\"model_id\":\"{model}\",\"model_version\":\"{version}\",\"accuracy\":{acc}}}\n"
            ));
        }
        text
    }

    #[test]
    fn truth_lines_map_to_the_index_the_pipeline_reports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, log()).unwrap();
        let config = Config::parse(CONFIG, "t.toml").unwrap();
        let paths = vec![path.display().to_string()];
        let records = Records::read(&paths, &config, config.schema()).unwrap();
        assert_eq!(records.len(), 1500 + 1500usize.div_ceil(7));
        let mut windows = Vec::new();
        records.replay(&config, |e| {
            if e.kind == EventKind::Closed {
                windows.push(e.window);
            }
        });
        assert!(!windows.is_empty());
        let b = records.model_number("b").unwrap();
        let queries: Vec<(u32, usize, Spot)> = windows
            .iter()
            .flat_map(|w| {
                let line = Spot::Line {
                    file: 0,
                    line: w.detected.line.unwrap(),
                };
                let time = Spot::Time(w.detected.timestamp.unwrap());
                [(b, 0, line), (b, 0, time)]
            })
            .collect();
        let found = records.locate(&queries);
        for (w, pair) in windows.iter().zip(found.chunks(2)) {
            assert_eq!(&*w.model_id, "b");
            assert_eq!(pair, [Some(w.detected.index), Some(w.detected.index)]);
        }
        // A line that is not b's (nor has the metric) resolves to b's next value.
        let next = records.locate(&[(b, 0, Spot::Line { file: 0, line: 1 })]);
        assert_eq!(next, [Some(0)]);
        assert_eq!(records.stream_lengths()[b as usize][0], 1000);
        assert_eq!(records.locate(&[(b, 0, Spot::Index(1000))]), [None]);
    }
}
