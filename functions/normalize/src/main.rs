//! The `normalize` Lambda of the marquee pipeline: see `marquee_lambda::handlers::normalize`.

fn main() -> Result<(), marquee_lambda::Error> {
    marquee_lambda::serve("normalize", |stores, req| async move {
        marquee_lambda::handlers::normalize(stores, marquee_lambda::execution_status().await, req).await
    })
}
