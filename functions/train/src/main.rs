//! The `train` Lambda of the marquee pipeline: see `marquee_lambda::handlers::train`.

fn main() -> Result<(), marquee_lambda::Error> {
    marquee_lambda::serve("train", marquee_lambda::handlers::train)
}
