//! Any bytes as a CSV upload: ingest must never panic, and must account for every row
//! (kept + quarantined = read).
#![no_main]
use libfuzzer_sys::fuzz_target;
use marquee_demo::DEMO_SPEC;
use marquee_pipeline::ingest::ingest_table;
use marquee_pipeline::spec::Spec;
use std::sync::OnceLock;

static SPEC: OnceLock<Spec> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let spec = SPEC.get_or_init(|| Spec::from_toml(DEMO_SPEC, "demo").expect("demo spec"));
    for (name, table) in &spec.tables {
        let t = ingest_table(name, table, &table.file, data, &["churned".to_string()], 1_800_000_000);
        assert_eq!(t.frame.n_rows() + t.quarantined.len(), t.quality.rows_read);
        let _ = t.frame.to_csv();
    }
});
