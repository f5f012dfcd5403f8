//! `sluice daemon`: the job runner and the scheduler around the store.

pub mod runner;
pub mod scheduler;
