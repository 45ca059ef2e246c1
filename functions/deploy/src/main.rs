//! The `deploy` Lambda of the marquee pipeline: see `marquee_lambda::handlers::deploy_function`.

fn main() -> Result<(), marquee_lambda::Error> {
    marquee_lambda::serve("deploy", marquee_lambda::handlers::deploy_function)
}
