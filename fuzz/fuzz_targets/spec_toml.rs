//! Any text as a pipeline spec: parsing must never panic; a spec that parses must round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use marquee_pipeline::spec::Spec;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(spec) = Spec::from_toml(text, "fuzz") {
            let again = Spec::from_toml(&spec.to_toml(), "round trip").expect("a valid spec re-parses");
            assert_eq!(again, spec);
        }
    }
});
