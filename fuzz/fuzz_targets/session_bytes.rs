//! Arbitrary bytes into one session of the core (see
//! `rookery_core::fuzzing::session_bytes` for the input layout).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rookery_core::fuzzing::session_bytes(data));
