//! `marquee datasets list|fetch` end to end against a local HTTP server (no internet): a test
//! catalog, the cache folder, the `--data-dir` hint, and the exit codes of its errors.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

#[path = "support/http_fixture.rs"]
mod http_fixture;
use http_fixture::{sha256_hex, zip_bytes, FixtureServer};

fn marquee(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(args)
        .env_remove("MARQUEE_CACHE_DIR")
        // The fixture server is on 127.0.0.1: never ask a proxy set in the environment.
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .env("NO_COLOR", "1")
        .output()
        .expect("runs marquee")
}

fn text(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn write_catalog(path: &Path, url: &str, sha256: &str, member_sha256: &str) {
    let toml = format!(
        r#"[[dataset]]
name = "fixture"
description = "A small fixture"
license = "CC0"
homepage = "https://example.org"

[[dataset.file]]
url = "{url}"
sha256 = "{sha256}"
member = "pkg/data/ratings.csv"
member_sha256 = "{member_sha256}"
save_as = "ratings.csv"
"#
    );
    std::fs::write(path, toml).unwrap();
}

#[test]
fn datasets_fetch_then_list_against_a_local_server_and_clear_errors() {
    let csv = b"user_id,item_id,rating\n1,10,4\n".as_slice();
    let wheel = zip_bytes(&[("pkg/data/ratings.csv", csv)]);
    let srv = FixtureServer::start(HashMap::from([("/pkg-1.0-py3-none-any.whl".to_string(), wheel.clone())]));
    let url = srv.url("/pkg-1.0-py3-none-any.whl");
    let tmp = tempfile::tempdir().unwrap();
    let (catalog, cache) = (tmp.path().join("catalog.toml"), tmp.path().join("cache"));
    let (catalog_s, cache_s) = (catalog.to_str().unwrap(), cache.to_str().unwrap());
    write_catalog(&catalog, &url, &sha256_hex(&wheel), &sha256_hex(csv));
    let common = ["--catalog", catalog_s, "--cache", cache_s];

    let out = marquee(&[&["datasets", "fetch", "fixture"][..], &common].concat());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(cache.join("fixture/ratings.csv")).unwrap(), csv);
    assert!(text(&out).contains(&format!("marquee eval --data-dir {cache_s}")), "{}", text(&out));

    let out = marquee(&[&["datasets", "list", "--json"][..], &common].concat());
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "fixture");
    assert_eq!(list[0]["fetched"], true);
    assert_eq!(list[0]["path"], cache.join("fixture").to_str().unwrap());

    // A second fetch downloads nothing.
    let out = marquee(&[&["datasets", "fetch", "fixture", "--quiet"][..], &common].concat());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(srv.hits().len(), 1);

    let out = marquee(&[&["datasets", "fetch", "nope"][..], &common].concat());
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("hint: known: fixture"), "{}", text(&out));

    // A catalog digest the server's file does not have: refused, named, nothing written.
    let wrong = "f".repeat(64);
    write_catalog(&catalog, &url, &wrong, &sha256_hex(csv));
    let out = marquee(&[&["datasets", "fetch", "fixture", "--force"][..], &common].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&url) && text(&out).contains(&wrong), "{}", text(&out));
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("fixture")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["ratings.csv"], "the verified file stays, no partial download is left");
}
