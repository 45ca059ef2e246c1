//! Shared by the tests that talk to a moto server: its endpoint, and fresh buckets and tables.
#![allow(dead_code)] // each test binary uses its own subset

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};

/// MARQUEE_MOTO_ENDPOINT, or None with a message (the test then returns early). Under CI (`CI`
/// set, as `.ci/run` does) a missing endpoint fails the test instead: CI never passes a test that
/// did not run.
pub fn endpoint() -> Option<String> {
    let ep = std::env::var("MARQUEE_MOTO_ENDPOINT").ok().filter(|e| !e.is_empty());
    if ep.is_none() {
        assert!(!in_ci(), "MARQUEE_MOTO_ENDPOINT is not set, and CI requires this test to run (run: scripts/test)");
        // Straight to stderr: libtest hides eprintln! output of passing tests.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipping: MARQUEE_MOTO_ENDPOINT is not set (run: scripts/test)");
    }
    ep
}

/// Whether CI runs the tests (`CI` set and not `false`): then a test's data or service must be there.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

pub async fn create_bucket(client: &aws_sdk_s3::Client) -> String {
    let name = unique("marquee-test");
    client.create_bucket().bucket(&name).send().await.expect("create bucket");
    name
}

/// A score table with the template's key schema (pk, sk: strings), on demand.
pub async fn create_table(client: &aws_sdk_dynamodb::Client) -> String {
    let name = unique("marquee-scores");
    let attr = |n: &str| {
        AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
    client
        .create_table()
        .table_name(&name)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    name
}
