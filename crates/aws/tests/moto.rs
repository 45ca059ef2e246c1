//! The adapters against a moto server. Skipped (with a message) unless MARQUEE_MOTO_ENDPOINT is
//! set; `scripts/with-moto cargo test -p marquee-aws --test moto` sets it.

use std::time::Duration;

use marquee_aws::sfn::{Executions, ProgressKind};
use marquee_aws::{config, DynamoScoreStore, S3ObjectStore};
use marquee_pipeline::store::{Condition, Item, ObjectStore, ScoreStore, StoreError};
use serde_json::json;

mod common;
use common::{create_bucket, create_table, endpoint, unique};

async fn bucket(ep: &str) -> S3ObjectStore {
    let client = config::s3_client(&config::load(Some(ep)).await);
    let name = create_bucket(&client).await;
    S3ObjectStore::new(client, name)
}

async fn table(ep: &str) -> DynamoScoreStore {
    let client = config::dynamodb_client(&config::load(Some(ep)).await);
    let name = create_table(&client).await;
    DynamoScoreStore::new(client, name)
}

#[tokio::test]
async fn s3_put_get_list_delete_and_missing_keys() {
    let Some(ep) = endpoint() else { return };
    let s3 = bucket(&ep).await;
    s3.put("runs/r1/a.json", b"{\"a\":1}".to_vec()).await.unwrap();
    s3.put("runs/r1/b/c.csv", b"x,y\n1,2\n".to_vec()).await.unwrap();
    s3.put("runs/r2/a.json", b"{}".to_vec()).await.unwrap();
    assert_eq!(s3.get("runs/r1/a.json").await.unwrap(), b"{\"a\":1}");
    assert_eq!(s3.list("runs/r1/").await.unwrap(), vec!["runs/r1/a.json", "runs/r1/b/c.csv"]);
    s3.delete("runs/r1/a.json").await.unwrap();
    assert!(matches!(s3.get("runs/r1/a.json").await, Err(StoreError::NotFound { .. })));
    assert_eq!(s3.get_opt("models/churn/champion.json").await.unwrap(), None);
    assert!(s3.uri("k").starts_with("s3://marquee-test-"));
}

/// Ranged reads: what one scoring worker reads of a table.
#[tokio::test]
async fn s3_reads_byte_ranges() {
    let Some(ep) = endpoint() else { return };
    let s3 = bucket(&ep).await;
    s3.put("runs/r1/validated/t.csv", b"id,x\n1,a\n2,b\n".to_vec()).await.unwrap();
    assert_eq!(s3.get_range("runs/r1/validated/t.csv", 5, 9).await.unwrap(), b"1,a\n");
    assert_eq!(s3.get_range("runs/r1/validated/t.csv", 9, 13).await.unwrap(), b"2,b\n");
    assert!(s3.get_range("runs/r1/validated/t.csv", 9, 9).await.unwrap().is_empty());
    assert!(matches!(s3.get_range("runs/r1/absent.csv", 0, 4).await, Err(StoreError::NotFound { .. })));
}

#[tokio::test]
async fn s3_large_objects_go_up_in_parts_and_come_back_whole() {
    let Some(ep) = endpoint() else { return };
    let s3 = bucket(&ep).await.with_multipart_threshold(marquee_aws::s3::PART_SIZE);
    let big: Vec<u8> = (0..(2 * marquee_aws::s3::PART_SIZE + 12_345)).map(|i| (i % 251) as u8).collect();
    s3.put("runs/r1/prepared/big.bin", big.clone()).await.expect("multipart put");
    let back = s3.get("runs/r1/prepared/big.bin").await.unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "multipart object differs");
}

/// The streaming path ingest uses: HeadObject size, the GetObject body read as a stream, and
/// files stored from disk (one PutObject, or parts read one at a time above the threshold).
#[tokio::test]
async fn s3_streams_objects_from_files_and_back_and_heads_their_size() {
    let Some(ep) = endpoint() else { return };
    let s3 = bucket(&ep).await.with_multipart_threshold(marquee_aws::s3::PART_SIZE);
    let big: Vec<u8> = (0..(2 * marquee_aws::s3::PART_SIZE + 777)).map(|i| (i % 253) as u8).collect();
    let path = std::env::temp_dir().join(unique("marquee-put-file"));
    std::fs::write(&path, &big).unwrap();
    s3.put_file("runs/r1/ingested/big.csv", &path).await.expect("multipart put from a file");
    std::fs::write(&path, b"small").unwrap();
    s3.put_file("runs/r1/ingested/small.csv", &path).await.expect("put from a file");
    let _ = std::fs::remove_file(&path);
    assert_eq!(s3.size("runs/r1/ingested/big.csv").await.unwrap(), Some(big.len() as u64));
    assert_eq!(s3.size("raw/demo/absent.csv").await.unwrap(), None);
    assert_eq!(s3.get("runs/r1/ingested/small.csv").await.unwrap(), b"small");
    let mut body = s3.open("runs/r1/ingested/big.csv").await.unwrap();
    let (mut back, mut buf) = (Vec::new(), vec![0u8; 100_000]);
    loop {
        let mut rb = tokio::io::ReadBuf::new(&mut buf);
        std::future::poll_fn(|cx| body.as_mut().poll_read(cx, &mut rb)).await.unwrap();
        if rb.filled().is_empty() {
            break;
        }
        back.extend_from_slice(rb.filled());
    }
    assert!(back == big, "streamed object differs");
    assert!(matches!(s3.open("raw/demo/absent.csv").await, Err(StoreError::NotFound { .. })));
}

#[tokio::test]
async fn dynamodb_batches_of_more_than_25_items_and_reads() {
    let Some(ep) = endpoint() else { return };
    let db = table(&ep).await;
    let mut items: Vec<Item> = (0..60)
        .map(|i| {
            Item::new(
                format!("CUSTOMER#c{i:03}"),
                "CHURN",
                json!({"probability": i as f64 / 60.0, "at_risk": i > 40, "cutoff": 0.66, "model_version": "r1"}),
            )
        })
        .collect();
    items.push(Item::new(
        "CUSTOMER#c000",
        "RECS",
        json!({"items": [{"title_id": "t1", "score": 4.5}, {"title_id": "t2", "score": 3.25}], "model_version": "r1"}),
    ));
    items.push(Item::new(
        "CUSTOMER#c001",
        "CHURN",
        json!({"probability": 0.5, "at_risk": false, "cutoff": 0.66, "model_version": "r2"}),
    )); // duplicate key: last wins
    db.put_items(items).await.expect("batch write");

    let churn = db.scan_sk("CUSTOMER#", "CHURN").await.unwrap();
    assert_eq!(churn.len(), 60);
    assert_eq!(churn[1].attr("model_version"), Some(&json!("r2")));
    let all = db.scan_all().await.unwrap();
    let keys: Vec<(&str, &str)> = all.iter().map(|i| (i.pk.as_str(), i.sk.as_str())).collect();
    assert_eq!(
        (keys.len(), keys[0], keys[1], keys[2]),
        (61, ("CUSTOMER#c000", "CHURN"), ("CUSTOMER#c000", "RECS"), ("CUSTOMER#c001", "CHURN"))
    );
    assert_eq!(all[2].attr("model_version"), Some(&json!("r2")));
    let c0 = db.query("CUSTOMER#c000").await.unwrap();
    assert_eq!(c0.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(), vec!["CHURN", "RECS"]);
    assert_eq!(
        c0[1].attr("items"),
        Some(&json!([{"title_id": "t1", "score": 4.5}, {"title_id": "t2", "score": 3.25}]))
    );
    let p =
        db.get_item("CUSTOMER#c030", "CHURN").await.unwrap().unwrap().attr("probability").unwrap().as_f64().unwrap();
    assert!((p - 0.5).abs() < 1e-12);
    db.delete_item("CUSTOMER#c030", "CHURN").await.unwrap();
    assert_eq!(db.get_item("CUSTOMER#c030", "CHURN").await.unwrap(), None);
}

#[tokio::test]
async fn dynamodb_conditional_champion_flip() {
    let Some(ep) = endpoint() else { return };
    let db = table(&ep).await;
    let champion = |v: &str| Item::new("MODEL#churn", "CHAMPION", json!({"version": v, "value": 0.91}));
    let expect = |v: Option<&str>| Condition::AttrEquals { name: "version".into(), value: v.map(|v| json!(v)) };

    db.put_conditional(champion("r1"), expect(None)).await.expect("first champion");
    // A second deployment that also saw "no champion" loses the race.
    match db.put_conditional(champion("r2"), expect(None)).await {
        Err(StoreError::ConditionFailed { pk, reason, .. }) => {
            assert_eq!(pk, "MODEL#churn");
            assert!(reason.contains("version"), "{reason}");
        }
        other => panic!("expected ConditionFailed, got {other:?}"),
    }
    db.put_conditional(champion("r2"), expect(Some("r1"))).await.expect("flip r1 -> r2");
    assert!(matches!(
        db.put_conditional(champion("r3"), expect(Some("r1"))).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    assert!(matches!(
        db.put_conditional(champion("r3"), Condition::NotExists).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    db.put_conditional(Item::new("MODEL#segment", "CHAMPION", json!({"version": "r1"})), Condition::NotExists)
        .await
        .unwrap();
    let now = db.get_item("MODEL#churn", "CHAMPION").await.unwrap().unwrap();
    assert_eq!(now.attr("version"), Some(&json!("r2")));
}

#[tokio::test]
async fn step_functions_start_and_follow_to_the_end() {
    let Some(ep) = endpoint() else { return };
    let sdk = config::load(Some(&ep)).await;
    let client = config::sfn_client(&sdk);
    let definition = json!({"StartAt": "Normalize", "States": {
        "Normalize": {"Type": "Pass", "Result": {"run_id": "r1"}, "Next": "Gate"},
        "Gate": {"Type": "Choice", "Choices": [{"Variable": "$.run_id", "StringEquals": "r1", "Next": "Done"}], "Default": "Failed"},
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "Error": "X", "Cause": "y"}
    }});
    let arn = client
        .create_state_machine()
        .name(unique("marquee-follow"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/marquee")
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn()
        .to_string();
    let executions = Executions::new(client);
    let execution =
        executions.start(&arn, Some("run-r1"), &json!({"spec_key": "raw/demo/pipeline.toml"})).await.unwrap();
    let mut seen = Vec::new();
    let outcome =
        executions.follow(&execution, Duration::from_millis(200), &mut |p| seen.push(p.clone())).await.unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    let entered: Vec<String> = seen
        .iter()
        .filter_map(|p| if let ProgressKind::Entered { state } = &p.kind { Some(state.clone()) } else { None })
        .collect();
    assert_eq!(entered, vec!["Normalize", "Gate", "Done"], "{seen:?}");
    assert!(matches!(seen.last().map(|p| &p.kind), Some(ProgressKind::Ended { status }) if status == "SUCCEEDED"));
}
