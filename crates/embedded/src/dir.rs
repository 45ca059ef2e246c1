//! A directory as an object store: key `a/b/c` is the file `<root>/a/b/c`.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use marquee_pipeline::store::{ObjectBody, ObjectStore, StoreError, StoreResult};

/// Prefix of in-flight temporary files; never listed as objects.
const TMP_PREFIX: &str = ".tmp-";

/// Object store over a local directory. Writes go to a temp file in the target's directory,
/// are fsynced and renamed over the target, so a reader sees the old or the new object, never half.
#[derive(Debug, Clone)]
pub struct DirObjectStore {
    root: PathBuf,
}

impl DirObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_for(&self, op: &'static str, key: &str) -> StoreResult<PathBuf> {
        validate_key(op, key)?;
        Ok(self.root.join(key))
    }
}

fn backend(op: &'static str, key: &str, message: impl ToString) -> StoreError {
    StoreError::Backend { op, key: key.to_string(), message: message.to_string() }
}

/// Keys are relative, '/'-separated, with no empty, `.` or `..` segments and no backslash.
fn validate_key(op: &'static str, key: &str) -> StoreResult<()> {
    let bad = |why: &str| Err(backend(op, key, format!("invalid key: {why}")));
    if key.is_empty() {
        return bad("empty");
    }
    if key.contains('\\') {
        return bad("contains a backslash");
    }
    if key.contains('\0') {
        return bad("contains NUL");
    }
    if key.starts_with('/') {
        return bad("absolute");
    }
    for seg in key.split('/') {
        match seg {
            "" => return bad("empty segment"),
            "." | ".." => return bad("`.` or `..` segment"),
            s if s.starts_with(TMP_PREFIX) => return bad("segment starts with `.tmp-` (reserved)"),
            _ => {}
        }
    }
    Ok(())
}

fn write_atomic(path: &Path, key: &str, bytes: &[u8]) -> StoreResult<()> {
    write_atomic_with(path, key, |f| f.write_all(bytes))
}

/// Writes `path` through a temp file in its directory: `fill` writes the content, which is then
/// fsynced and renamed over the target.
fn write_atomic_with(
    path: &Path,
    key: &str,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> StoreResult<()> {
    let dir = path.parent().ok_or_else(|| backend("put", key, "key has no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| backend("put", key, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("obj");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{TMP_PREFIX}{name}-{}-{nanos}-{n}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Make the rename durable too (best effort: not every platform can open a directory).
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(backend("put", key, e));
    }
    Ok(())
}

fn walk(dir: &Path, rel: &str, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if name.starts_with(TMP_PREFIX) {
            continue;
        }
        let key = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let ft = entry.file_type()?;
        if ft.is_dir() {
            // Descend only where a key below could still match the prefix.
            let dir_key = format!("{key}/");
            if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                walk(&entry.path(), &key, prefix, out)?;
            }
        } else if ft.is_file() && key.starts_with(prefix) {
            out.push(key);
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for DirObjectStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()> {
        let path = self.path_for("put", key)?;
        write_atomic(&path, key, &bytes)
    }

    async fn get(&self, key: &str) -> StoreResult<Vec<u8>> {
        let path = self.path_for("get", key)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound { key: key.to_string() }),
            Err(e) if path.is_dir() => Err(backend("get", key, format!("is a directory: {e}"))),
            Err(e) => Err(backend("get", key, e)),
        }
    }

    async fn size(&self, key: &str) -> StoreResult<Option<u64>> {
        let path = self.path_for("stat", key)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Err(backend("stat", key, "is a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend("stat", key, e)),
        }
    }

    /// Streams the file (read in chunks as the caller consumes it).
    async fn open(&self, key: &str) -> StoreResult<ObjectBody> {
        let path = self.path_for("get", key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) if path.is_file() => Ok(Box::pin(f)),
            Ok(_) => Err(backend("get", key, "is a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound { key: key.to_string() }),
            Err(e) => Err(backend("get", key, e)),
        }
    }

    /// Seeks to `start` and reads up to `end`.
    async fn get_range(&self, key: &str, start: u64, end: u64) -> StoreResult<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.path_for("get", key)?;
        let mut f = match std::fs::File::open(&path) {
            Ok(f) if path.is_file() => f,
            Ok(_) => return Err(backend("get", key, "is a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { key: key.to_string() })
            }
            Err(e) => return Err(backend("get", key, e)),
        };
        let mut out = Vec::with_capacity(end.saturating_sub(start).min(1 << 30) as usize);
        f.seek(SeekFrom::Start(start))
            .and_then(|_| f.take(end.saturating_sub(start)).read_to_end(&mut out))
            .map_err(|e| backend("get", key, e))?;
        Ok(out)
    }

    /// Copies the file in chunks into a temp file next to the target, then renames it.
    async fn put_file(&self, key: &str, src: &Path) -> StoreResult<()> {
        let path = self.path_for("put", key)?;
        write_atomic_with(&path, key, |f| {
            let mut from = std::fs::File::open(src)?;
            std::io::copy(&mut from, f).map(drop)
        })
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        walk(&self.root, "", prefix, &mut out).map_err(|e| backend("list", prefix, e))?;
        out.sort();
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let path = self.path_for("delete", key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend("delete", key, e)),
        }
    }

    fn uri(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, DirObjectStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = DirObjectStore::new(dir.path().join("store"));
        (dir, s)
    }

    #[tokio::test]
    async fn put_get_overwrite_is_atomic() {
        let (_d, s) = store();
        s.put("runs/r1/model.json", b"one".to_vec()).await.unwrap();
        assert_eq!(s.get("runs/r1/model.json").await.unwrap(), b"one");
        s.put("runs/r1/model.json", b"two, longer".to_vec()).await.unwrap();
        assert_eq!(s.get("runs/r1/model.json").await.unwrap(), b"two, longer");
        // No temp files are left behind next to the object.
        let names: Vec<_> = std::fs::read_dir(s.root().join("runs/r1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["model.json".to_string()]);
        assert!(s.uri("runs/r1/model.json").ends_with("model.json"));
    }

    #[tokio::test]
    async fn get_range_reads_only_the_range() {
        let (_d, s) = store();
        s.put("t.csv", b"id,x\n1,a\n2,b\n".to_vec()).await.unwrap();
        assert_eq!(s.get_range("t.csv", 5, 9).await.unwrap(), b"1,a\n");
        assert_eq!(s.get_range("t.csv", 9, 1000).await.unwrap(), b"2,b\n");
        assert!(s.get_range("t.csv", 13, 20).await.unwrap().is_empty());
        assert!(matches!(s.get_range("absent", 0, 1).await, Err(StoreError::NotFound { .. })));
    }

    #[tokio::test]
    async fn concurrent_readers_never_see_half_an_object() {
        let (_d, s) = store();
        let a = vec![b'a'; 1 << 20];
        let b = vec![b'b'; 1 << 20];
        s.put("k", a.clone()).await.unwrap();
        let reader = {
            let s = s.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                for _ in 0..50 {
                    let got = rt.block_on(s.get("k")).unwrap();
                    assert!(got.len() == 1 << 20 && (got.iter().all(|&c| c == b'a') || got.iter().all(|&c| c == b'b')));
                }
            })
        };
        for i in 0..20 {
            s.put("k", if i % 2 == 0 { b.clone() } else { a.clone() }).await.unwrap();
        }
        reader.join().unwrap();
    }

    #[tokio::test]
    async fn streams_in_and_out_with_size_from_metadata() {
        let (d, s) = store();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let src = d.path().join("src.bin");
        std::fs::write(&src, &big).unwrap();
        s.put_file("runs/r/big.bin", &src).await.unwrap();
        assert_eq!(s.size("runs/r/big.bin").await.unwrap(), Some(big.len() as u64));
        assert_eq!(s.size("runs/r/nope").await.unwrap(), None);
        let mut body = s.open("runs/r/big.bin").await.unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let mut rb = tokio::io::ReadBuf::new(&mut buf);
            std::future::poll_fn(|cx| body.as_mut().poll_read(cx, &mut rb)).await.unwrap();
            if rb.filled().is_empty() {
                break;
            }
            got.extend_from_slice(rb.filled());
        }
        assert!(got == big);
        assert!(matches!(s.open("runs/r/nope").await, Err(StoreError::NotFound { .. })));
        assert_eq!(s.list("runs/r/").await.unwrap(), vec!["runs/r/big.bin"]);
    }

    #[tokio::test]
    async fn missing_is_not_found_and_delete_is_idempotent() {
        let (_d, s) = store();
        assert!(matches!(s.get("nope/x").await, Err(StoreError::NotFound { .. })));
        assert_eq!(s.get_opt("nope/x").await.unwrap(), None);
        s.delete("nope/x").await.unwrap();
        s.put("a/b", b"x".to_vec()).await.unwrap();
        s.delete("a/b").await.unwrap();
        assert!(matches!(s.get("a/b").await, Err(StoreError::NotFound { .. })));
    }

    #[tokio::test]
    async fn list_uses_string_prefix_semantics() {
        let (_d, s) = store();
        assert!(s.list("").await.unwrap().is_empty(), "missing root lists nothing");
        for k in ["runs/a/x", "runs/ab", "runs/a/y/z", "runs/b/x", "other"] {
            s.put(k, b"1".to_vec()).await.unwrap();
        }
        // A stray temp file is never listed.
        std::fs::write(s.root().join("runs/a/.tmp-x-123"), b"half").unwrap();
        assert_eq!(s.list("runs/a").await.unwrap(), vec!["runs/a/x", "runs/a/y/z", "runs/ab"]);
        assert_eq!(s.list("runs/a/").await.unwrap(), vec!["runs/a/x", "runs/a/y/z"]);
        assert_eq!(s.list("runs/").await.unwrap(), vec!["runs/a/x", "runs/a/y/z", "runs/ab", "runs/b/x"]);
        assert_eq!(s.list("").await.unwrap().len(), 5);
        assert!(s.list("zzz").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn invalid_keys_are_rejected() {
        let (_d, s) = store();
        for k in ["", "../x", "/abs", "a//b", "a/../b", "a\\b", "a/", "./a", "a/.tmp-x"] {
            match s.put(k, b"x".to_vec()).await {
                Err(StoreError::Backend { key, .. }) => assert_eq!(key, k),
                other => panic!("key {k:?} accepted: {other:?}"),
            }
            assert!(s.get(k).await.is_err());
        }
    }
}
