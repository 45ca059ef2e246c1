//! Time to generate the demo data set (divan):
//! `cargo bench -p marquee-pipeline --bench demo`

use marquee_demo::{generate, DemoConfig};

fn main() {
    divan::main();
}

/// The default demo (5,000 customers), as `marquee run` generates it; reports bytes per second.
#[divan::bench(sample_count = 10)]
fn generate_default_demo(bencher: divan::Bencher) {
    let cfg = DemoConfig::default();
    let bytes: usize = generate(&cfg).iter().map(|(_, b)| b.len()).sum();
    bencher.counter(divan::counter::BytesCount::new(bytes)).bench(|| generate(&cfg));
}
