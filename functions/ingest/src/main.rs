//! The `ingest` Lambda of the marquee pipeline: see `marquee_lambda::handlers::ingest`.

fn main() -> Result<(), marquee_lambda::Error> {
    marquee_lambda::serve("ingest", marquee_lambda::handlers::ingest)
}
