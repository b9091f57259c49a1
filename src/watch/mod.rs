//! The file follower of `mmon watch` (SPEC §6): which files, from where,
//! and when to look again. The records it reads go through the same decoder
//! and pipeline as replay; `cmd/watch.rs` drives the loop.

pub mod follow;
pub mod identity;
pub mod wake;

pub use follow::{Flow, Follower};
pub use wake::Wake;

/// Raises the soft open-file limit to the hard limit (thousands of followed
/// files need descriptors) and returns the soft limit in force.
pub fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        log::debug!("open-file limit raised from {soft} to {hard}");
        return hard;
    }
    soft
}
