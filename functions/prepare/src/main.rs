//! The `prepare` Lambda of the marquee pipeline: see `marquee_lambda::handlers::prepare`.

fn main() -> Result<(), marquee_lambda::Error> {
    marquee_lambda::serve("prepare", marquee_lambda::handlers::prepare)
}
