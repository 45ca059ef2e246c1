//! The `evaluate` Lambda of the marquee pipeline: see `marquee_lambda::handlers::evaluate`.

fn main() -> Result<(), marquee_lambda::Error> {
    marquee_lambda::serve("evaluate", marquee_lambda::handlers::evaluate)
}
