//! The `summarize` Lambda of the marquee pipeline: see `marquee_lambda::handlers::summarize`.

fn main() -> Result<(), marquee_lambda::Error> {
    marquee_lambda::serve("summarize", marquee_lambda::handlers::summarize)
}
