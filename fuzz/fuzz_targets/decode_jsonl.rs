//! Any bytes as a JSONL log: bad records, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmon::pipeline::Pipeline;
use mmon::source::Format;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let config = common::config();
    let mut pipeline = Pipeline::new(&config);
    common::feed(&config, &mut pipeline, Format::Jsonl, data);
});
