use super::*;
use std::collections::HashMap;

#[path = "../../tests/support/http_fixture.rs"]
mod http_fixture;
use http_fixture::{sha256_hex, zip_bytes, FixtureServer};

const PLAIN: &[u8] = b"user_id,item_id,rating\n1,10,4\n2,11,5\n";
const MEMBER_A: &[u8] = b"id,x\n1,0.5\n";
const MEMBER_B: &[u8] = b"id,y\n2,1.5\n";

/// A server with a plain CSV at /plain.csv and a wheel holding two CSVs at /pkg-1.0-py3-none-any.whl.
fn server() -> (FixtureServer, Vec<u8>) {
    let wheel = zip_bytes(&[("pkg/data/a.csv", MEMBER_A), ("pkg/data/b.csv", MEMBER_B)]);
    let files = HashMap::from([
        ("/plain.csv".to_string(), PLAIN.to_vec()),
        ("/pkg-1.0-py3-none-any.whl".to_string(), wheel.clone()),
    ]);
    (FixtureServer::start(files), wheel)
}

/// One `[[dataset.file]]` table; `member` is (path in the archive, its sha256).
fn file_toml(url: &str, sha256: &str, member: Option<(&str, &str)>, save_as: &str) -> String {
    let member = member.map(|(m, s)| format!("member = \"{m}\"\nmember_sha256 = \"{s}\"\n")).unwrap_or_default();
    format!("[[dataset.file]]\nurl = \"{url}\"\nsha256 = \"{sha256}\"\n{member}save_as = \"{save_as}\"\n")
}

fn catalog(name: &str, files: &[String]) -> Catalog {
    let text = format!(
        "[[dataset]]\nname = \"{name}\"\ndescription = \"test\"\nlicense = \"test\"\nhomepage = \"https://example.org\"\n{}",
        files.join("\n")
    );
    Catalog::parse(&text).expect("test catalog parses")
}

/// The plain CSV plus both members of the wheel.
fn three_files(srv: &FixtureServer, wheel: &[u8]) -> Catalog {
    let whl = srv.url("/pkg-1.0-py3-none-any.whl");
    catalog(
        "fixture",
        &[
            file_toml(&srv.url("/plain.csv"), &sha256_hex(PLAIN), None, "ratings.csv"),
            file_toml(&whl, &sha256_hex(wheel), Some(("pkg/data/a.csv", &sha256_hex(MEMBER_A))), "sub/a.csv"),
            file_toml(&whl, &sha256_hex(wheel), Some(("pkg/data/b.csv", &sha256_hex(MEMBER_B))), "b.csv"),
        ],
    )
}

fn direct() -> Fetcher {
    Fetcher::build(false)
}

const QUIET: FetchOptions = FetchOptions { force: false, quiet: true };

/// Every file in `dir` and below, relative (temporary leftovers would show here).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(tree(&path).into_iter().map(|p| format!("{}/{p}", path.file_name().unwrap().to_string_lossy())));
        } else {
            out.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

#[test]
fn fetch_downloads_verifies_extracts_and_a_second_fetch_skips() {
    let (srv, wheel) = server();
    let cat = three_files(&srv, &wheel);
    let ds = cat.get("fixture").unwrap();
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(cache_state(ds, cache.path()).unwrap(), CacheState { verified: 0, total: 3 });

    let s = fetch(ds, cache.path(), &direct(), QUIET).unwrap();
    assert_eq!((s.fetched, s.skipped), (3, 0));
    let dir = cache.path().join("fixture");
    assert_eq!(fs::read(dir.join("ratings.csv")).unwrap(), PLAIN);
    assert_eq!(fs::read(dir.join("sub/a.csv")).unwrap(), MEMBER_A);
    assert_eq!(fs::read(dir.join("b.csv")).unwrap(), MEMBER_B);
    assert_eq!(tree(&dir), ["b.csv", "ratings.csv", "sub/a.csv"], "only the files, no archive or temporary left");
    assert_eq!(srv.hits(), ["/plain.csv", "/pkg-1.0-py3-none-any.whl"], "the wheel is downloaded once for two members");
    assert_eq!(cache_state(ds, cache.path()).unwrap(), CacheState { verified: 3, total: 3 });

    let s = fetch(ds, cache.path(), &direct(), QUIET).unwrap();
    assert_eq!((s.fetched, s.skipped), (0, 3));
    assert_eq!(srv.hits().len(), 2, "nothing downloaded again");

    let s = fetch(ds, cache.path(), &direct(), FetchOptions { force: true, quiet: true }).unwrap();
    assert_eq!((s.fetched, s.skipped), (3, 0));
    assert_eq!(srv.hits().len(), 4);
}

#[test]
fn a_cached_file_with_another_digest_is_downloaded_again() {
    let (srv, wheel) = server();
    let cat = three_files(&srv, &wheel);
    let ds = cat.get("fixture").unwrap();
    let cache = tempfile::tempdir().unwrap();
    fetch(ds, cache.path(), &direct(), QUIET).unwrap();
    let damaged = cache.path().join("fixture/ratings.csv");
    fs::write(&damaged, b"user_id,item_id,rating\n").unwrap();
    assert_eq!(cache_state(ds, cache.path()).unwrap(), CacheState { verified: 2, total: 3 });

    let s = fetch(ds, cache.path(), &direct(), QUIET).unwrap();
    assert_eq!((s.fetched, s.skipped), (1, 2));
    assert_eq!(fs::read(&damaged).unwrap(), PLAIN);
}

#[test]
fn a_wrong_sha256_is_refused_naming_url_and_digests_and_leaves_no_file() {
    let (srv, wheel) = server();
    let url = srv.url("/plain.csv");
    let wrong = "0".repeat(64);
    let cat = catalog("bad", &[file_toml(&url, &wrong, None, "ratings.csv")]);
    let cache = tempfile::tempdir().unwrap();
    let err = format!("{:#}", fetch(cat.get("bad").unwrap(), cache.path(), &direct(), QUIET).unwrap_err());
    assert!(err.contains(&url) && err.contains(&wrong) && err.contains(&sha256_hex(PLAIN)), "{err}");
    assert!(tree(&cache.path().join("bad")).is_empty(), "the partial download is removed");

    // The same for an extracted member whose digest differs.
    let whl = srv.url("/pkg-1.0-py3-none-any.whl");
    let cat = catalog("bad", &[file_toml(&whl, &sha256_hex(&wheel), Some(("pkg/data/a.csv", &wrong)), "a.csv")]);
    let err = format!("{:#}", fetch(cat.get("bad").unwrap(), cache.path(), &direct(), QUIET).unwrap_err());
    assert!(err.contains("pkg/data/a.csv") && err.contains(&whl) && err.contains(&sha256_hex(MEMBER_A)), "{err}");
    assert!(tree(&cache.path().join("bad")).is_empty(), "neither the member nor the archive is kept");
}

#[test]
fn a_missing_member_and_an_http_404_are_clear_errors_naming_the_url() {
    let (srv, wheel) = server();
    let whl = srv.url("/pkg-1.0-py3-none-any.whl");
    let sha = sha256_hex(MEMBER_A);
    let cat = catalog("m", &[file_toml(&whl, &sha256_hex(&wheel), Some(("pkg/data/nope.csv", &sha)), "x.csv")]);
    let cache = tempfile::tempdir().unwrap();
    let err = format!("{:#}", fetch(cat.get("m").unwrap(), cache.path(), &direct(), QUIET).unwrap_err());
    assert!(err.contains("no member `pkg/data/nope.csv`") && err.contains(&whl), "{err}");

    let gone = srv.url("/gone.csv");
    let cat = catalog("g", &[file_toml(&gone, &sha, None, "x.csv")]);
    let err = format!("{:#}", fetch(cat.get("g").unwrap(), cache.path(), &direct(), QUIET).unwrap_err());
    assert!(err.contains(&gone) && err.contains("404"), "{err}");
    assert!(tree(&cache.path().join("g")).is_empty());
}

#[test]
fn a_tar_gz_member_is_extracted() {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    let mut header = tar::Header::new_gnu();
    header.set_size(MEMBER_B.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, "package/data/b.csv", MEMBER_B).unwrap();
    let tgz = builder.into_inner().unwrap().finish().unwrap();
    let srv = FixtureServer::start(HashMap::from([("/pkg-1.0.tgz".to_string(), tgz.clone())]));
    let entry = file_toml(
        &srv.url("/pkg-1.0.tgz"),
        &sha256_hex(&tgz),
        Some(("package/data/b.csv", &sha256_hex(MEMBER_B))),
        "b.csv",
    );
    let cat = catalog("t", &[entry]);
    let cache = tempfile::tempdir().unwrap();
    fetch(cat.get("t").unwrap(), cache.path(), &direct(), QUIET).unwrap();
    assert_eq!(fs::read(cache.path().join("t/b.csv")).unwrap(), MEMBER_B);
}

#[test]
fn the_shipped_catalog_parses_with_https_urls_and_hex_digests() {
    let cat = Catalog::builtin().unwrap();
    assert!(!cat.datasets.is_empty());
    for d in &cat.datasets {
        assert!(!d.description.is_empty() && !d.license.is_empty(), "{}", d.name);
        assert!(d.homepage.starts_with("https://"), "{}: {}", d.name, d.homepage);
        for f in &d.files {
            assert!(f.url.starts_with("https://"), "{}: {}", d.name, f.url);
            assert!(is_sha256(&f.sha256), "{}: {}", d.name, f.sha256);
            assert!(f.member_sha256.iter().all(|s| is_sha256(s)), "{}: {:?}", d.name, f.member_sha256);
        }
    }
    // The pipeline's data folders use these names: keep the cache usable as `--data-dir`.
    assert!(cat.get("open_bandit_dataset").is_ok());
}

#[test]
fn the_catalog_refuses_entries_that_could_write_elsewhere_or_not_be_checked() {
    let sha = "a".repeat(64);
    let url = "https://example.org/pkg.whl";
    for (file, why) in [
        (file_toml(url, &sha, None, "../escape.csv"), "save_as"),
        (file_toml(url, &sha, None, "/abs.csv"), "save_as"),
        (file_toml(url, "abc", None, "a.csv"), "sha256"),
        (file_toml("ftp://example.org/a.csv", &sha, None, "a.csv"), "http"),
        (file_toml("https://example.org/a.csv", &sha, Some(("m.csv", &sha)), "a.csv"), "archive"),
        (format!("{}member = \"m.csv\"\n", file_toml(url, &sha, None, "a.csv")), "go together"),
    ] {
        let text = format!("[[dataset]]\nname = \"d\"\ndescription = \"\"\nlicense = \"\"\nhomepage = \"\"\n{file}");
        let err = format!("{:#}", Catalog::parse(&text).unwrap_err());
        assert!(err.contains(why), "expected `{why}` in: {err}");
    }
    let missing = catalog("d", &[file_toml(url, &sha, None, "a.csv")]).get("nope").unwrap_err();
    assert_eq!(missing.downcast_ref::<hint::Hinted>().map(|h| h.code), Some(hint::EXIT_NOT_FOUND));
}
