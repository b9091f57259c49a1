//! A checkpoint's pipeline state, as a re-signed checkpoint could hold it:
//! restoring is a refusal or a pipeline that runs on without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmon::pipeline::{Pipeline, State};
use mmon::source::Format;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let config = common::config();
    let Ok(state) = State::from_json(state) else {
        return;
    };
    if let Ok(mut pipeline) = Pipeline::restore(&config, state) {
        for _ in 0..20 {
            common::feed(&config, &mut pipeline, Format::Jsonl, common::RECORDS);
        }
        let _ = pipeline.save();
    }
});
