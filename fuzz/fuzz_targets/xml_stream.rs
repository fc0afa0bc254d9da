//! The XML stream layer alone: no panic, and the same events however the
//! input is split.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rookery_core::fuzzing::xml_stream(data));
