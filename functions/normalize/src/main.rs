//! The `normalize` Lambda of the marquee pipeline: see `marquee_lambda::handlers::normalize`.

fn main() -> Result<(), marquee_lambda::Error> {
    marquee_lambda::serve("normalize", marquee_lambda::handlers::normalize)
}
