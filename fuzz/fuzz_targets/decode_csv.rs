//! Any bytes as a CSV log (the first line its header): bad records, never
//! a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmon::pipeline::Pipeline;
use mmon::source::Format;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let config = common::config();
    let mut pipeline = Pipeline::new(&config);
    common::feed(&config, &mut pipeline, Format::Csv, data);
});
