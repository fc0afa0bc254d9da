//! Several sessions driven by structured actions, with the session model's
//! invariants checked after every step.
#![no_main]

use rookery_core::fuzzing::{sessions, Action};

libfuzzer_sys::fuzz_target!(|actions: Vec<Action>| sessions(&actions));
