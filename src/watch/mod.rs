//! The file follower of `mmon watch` (SPEC §6): which files, from where,
//! and when to look again. The records it reads go through the same decoder
//! and pipeline as replay; `cmd/watch.rs` drives the loop.

pub mod follow;
pub mod identity;
pub mod wake;

pub use follow::{Flow, Follower};
pub use wake::Wake;
