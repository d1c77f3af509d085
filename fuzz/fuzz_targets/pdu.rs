//! Untrusted PDU bytes, as a federation peer would send them: parsing, verification, redaction
//! and the auth checks must answer every input with a value or an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    hearth_core::testing::exercise_untrusted_pdu(bytes);
});
