//! The `reject` Lambda of the marquee pipeline: see `marquee_lambda::handlers::reject`.

fn main() -> Result<(), marquee_lambda::Error> {
    marquee_lambda::serve("reject", marquee_lambda::handlers::reject)
}
