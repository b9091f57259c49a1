#![allow(dead_code)]
//! What the targets share: a configuration with every detector, and a run
//! of records through a pipeline, so that whatever was decoded or restored
//! is also used.

use std::sync::Arc;

use mmon::config::Config;
use mmon::pipeline::Pipeline;
use mmon::source::lines::LineReader;
use mmon::source::{Decoder, Format, Item};

/// Every detector on one metric, with small windows so they all get busy.
pub const CONFIG: &str = r#"
[report]
merge_gap = 5
[[monitor]]
metric = "accuracy"
detector = "decay"
params = { window = 5, threshold = 0.05 }
[[monitor]]
metric = "accuracy"
detector = "threshold"
params = { statistic = "p90", window = 5, above = 0.95 }
[[monitor]]
metric = "accuracy"
detector = "threshold"
params = { statistic = "mean", window = "10s", below = 0.2 }
[[monitor]]
metric = "accuracy"
detector = "adwin"
params = { clock = 1 }
[[monitor]]
metric = "accuracy"
detector = "page-hinkley"
params = { min_instances = 5, threshold = 1 }
[[monitor]]
metric = "accuracy"
detector = "kswin"
params = { window_size = 20, stat_size = 5 }
[[monitor]]
metric = "correct"
detector = "ddm"
[[monitor]]
metric = "correct"
detector = "eddm"
[[monitor]]
metric = "correct"
detector = "hddm-a"
[[monitor]]
metric = "correct"
detector = "hddm-w"
[[monitor]]
metric = "latency_ms"
detector = "cusum"
params = { warmup = 5, log = true }
[[monitor]]
metric = "latency_ms"
detector = "ewma"
params = { warmup = 5 }
"#;

pub fn config() -> Config {
    Config::parse(CONFIG, "fuzz.toml").expect("the fuzz config is valid")
}

/// Decodes `data` as a file of `format` and feeds every record to `pipeline`.
pub fn feed(config: &Config, pipeline: &mut Pipeline, format: Format, data: &[u8]) {
    let schema = config.schema();
    let mut decoder = Decoder::new(Arc::from("fuzz"), format);
    let mut lines = LineReader::new(data, schema.max_line_bytes, 0, 1);
    let mut events = Vec::new();
    while let Ok(Some(line)) = lines.next_line() {
        if let Some(Item::Record(record)) = decoder.decode(line, &schema) {
            pipeline.process(&record, &mut events);
            events.clear();
        }
    }
    pipeline.finish(&mut events);
}

/// A few records that reach every detector.
pub const RECORDS: &[u8] = b"\
{\"timestamp\":1709251200,\"model_id\":\"m\",\"accuracy\":0.9,\"correct\":1,\"latency_ms\":20}
{\"timestamp\":1709251201,\"model_id\":\"m\",\"accuracy\":0.1,\"correct\":0,\"latency_ms\":900}
{\"timestamp\":1709251202,\"model_id\":\"m\",\"accuracy\":0.5,\"correct\":1,\"latency_ms\":0.5}
{\"timestamp\":1709251203,\"model_id\":\"n\",\"model_version\":\"2\",\"accuracy\":1,\"correct\":0,\"latency_ms\":1e9}
";
