//! SQLite as a score store: one `scores` table keyed like the DynamoDB table (pk, sk).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use marquee_pipeline::store::{Condition, Item, ScoreStore, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{Map, Value};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS scores (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    attrs TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID";

const UPSERT: &str = "INSERT INTO scores (pk, sk, attrs) VALUES (?1, ?2, ?3)
    ON CONFLICT (pk, sk) DO UPDATE SET attrs = excluded.attrs";

/// Score store over one SQLite database (WAL journal, busy timeout, one connection behind a mutex).
pub struct SqliteScoreStore {
    conn: Mutex<Connection>,
    name: String,
}

impl std::fmt::Debug for SqliteScoreStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteScoreStore").field("db", &self.name).finish()
    }
}

fn backend(op: &'static str, key: impl Into<String>, e: impl ToString) -> StoreError {
    StoreError::Backend { op, key: key.into(), message: e.to_string() }
}

impl SqliteScoreStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| backend("open", &name, e))?;
        }
        let conn = Connection::open(path).map_err(|e| backend("open", &name, e))?;
        Self::init(conn, name, true)
    }

    /// A private in-memory database (for tests).
    pub fn open_in_memory() -> StoreResult<Self> {
        let conn = Connection::open_in_memory().map_err(|e| backend("open", ":memory:", e))?;
        Self::init(conn, ":memory:".into(), false)
    }

    fn init(conn: Connection, name: String, wal: bool) -> StoreResult<Self> {
        let err = |e: rusqlite::Error| backend("open", &name, e);
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        if wal {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(err)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(backend("open", &name, format!("could not enable WAL journal mode (got `{mode}`)")));
            }
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        }
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self { conn: Mutex::new(conn), name })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied transaction behind (SQLite
        // rolls back an unfinished transaction when it is dropped), so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn key_of(pk: &str, sk: &str) -> String {
    format!("{pk}/{sk}")
}

fn attrs_json(item: &Item) -> StoreResult<String> {
    serde_json::to_string(&item.attrs).map_err(|e| backend("put", key_of(&item.pk, &item.sk), e))
}

fn row_to_item(pk: String, sk: String, attrs: String) -> StoreResult<Item> {
    let attrs: Map<String, Value> = serde_json::from_str(&attrs).map_err(|e| backend("decode", key_of(&pk, &sk), e))?;
    Ok(Item { pk, sk, attrs })
}

fn collect_items(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    op: &'static str,
    key: &str,
) -> StoreResult<Vec<Item>> {
    let rows = stmt
        .query_map(params, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .map_err(|e| backend(op, key, e))?;
    let mut out = Vec::new();
    for row in rows {
        let (pk, sk, attrs) = row.map_err(|e| backend(op, key, e))?;
        out.push(row_to_item(pk, sk, attrs)?);
    }
    Ok(out)
}

#[async_trait]
impl ScoreStore for SqliteScoreStore {
    async fn put_items(&self, items: Vec<Item>) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let encoded = items.iter().map(attrs_json).collect::<StoreResult<Vec<_>>>()?;
        let key = format!("{} items", items.len());
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| backend("put_items", &key, e))?;
        {
            let mut stmt = tx.prepare_cached(UPSERT).map_err(|e| backend("put_items", &key, e))?;
            for (item, attrs) in items.iter().zip(&encoded) {
                stmt.execute(params![item.pk, item.sk, attrs])
                    .map_err(|e| backend("put_items", key_of(&item.pk, &item.sk), e))?;
            }
        }
        tx.commit().map_err(|e| backend("put_items", &key, e))
    }

    async fn put_conditional(&self, item: Item, condition: Condition) -> StoreResult<()> {
        let key = key_of(&item.pk, &item.sk);
        let attrs = attrs_json(&item)?;
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| backend("put_conditional", &key, e))?;
        let current: Option<String> = tx
            .query_row("SELECT attrs FROM scores WHERE pk = ?1 AND sk = ?2", params![item.pk, item.sk], |r| r.get(0))
            .optional()
            .map_err(|e| backend("put_conditional", &key, e))?;
        let failed = |reason: String| StoreError::ConditionFailed { pk: item.pk.clone(), sk: item.sk.clone(), reason };
        match &condition {
            Condition::NotExists => {
                if current.is_some() {
                    return Err(failed("item already exists".into()));
                }
            }
            Condition::AttrEquals { name, value } => {
                let stored = match &current {
                    Some(json) => row_to_item(item.pk.clone(), item.sk.clone(), json.clone())?.attrs.remove(name),
                    None => None,
                };
                if stored.as_ref() != value.as_ref() {
                    let show = |v: Option<&Value>| v.map_or_else(|| "absent".to_string(), Value::to_string);
                    return Err(failed(format!(
                        "attribute `{name}` is {}, expected {}",
                        show(stored.as_ref()),
                        show(value.as_ref())
                    )));
                }
            }
        }
        tx.execute(UPSERT, params![item.pk, item.sk, attrs]).map_err(|e| backend("put_conditional", &key, e))?;
        tx.commit().map_err(|e| backend("put_conditional", &key, e))
    }

    async fn get_item(&self, pk: &str, sk: &str) -> StoreResult<Option<Item>> {
        let key = key_of(pk, sk);
        let conn = self.lock();
        let attrs: Option<String> = conn
            .query_row("SELECT attrs FROM scores WHERE pk = ?1 AND sk = ?2", params![pk, sk], |r| r.get(0))
            .optional()
            .map_err(|e| backend("get_item", &key, e))?;
        attrs.map(|a| row_to_item(pk.to_string(), sk.to_string(), a)).transpose()
    }

    async fn query(&self, pk: &str) -> StoreResult<Vec<Item>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT pk, sk, attrs FROM scores WHERE pk = ?1 ORDER BY sk")
            .map_err(|e| backend("query", pk, e))?;
        collect_items(&mut stmt, params![pk], "query", pk)
    }

    async fn scan_sk(&self, pk_prefix: &str, sk: &str) -> StoreResult<Vec<Item>> {
        let key = format!("{pk_prefix}*/{sk}");
        let conn = self.lock();
        // substr() counts characters, so the prefix length must be too; no LIKE wildcards to escape.
        let mut stmt = conn
            .prepare_cached("SELECT pk, sk, attrs FROM scores WHERE sk = ?1 AND substr(pk, 1, ?2) = ?3 ORDER BY pk")
            .map_err(|e| backend("scan_sk", &key, e))?;
        let len = pk_prefix.chars().count() as i64;
        collect_items(&mut stmt, params![sk, len, pk_prefix], "scan_sk", &key)
    }

    async fn scan_all(&self) -> StoreResult<Vec<Item>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT pk, sk, attrs FROM scores ORDER BY pk, sk")
            .map_err(|e| backend("scan_all", "*", e))?;
        collect_items(&mut stmt, params![], "scan_all", "*")
    }

    async fn delete_item(&self, pk: &str, sk: &str) -> StoreResult<()> {
        let key = key_of(pk, sk);
        let conn = self.lock();
        conn.execute("DELETE FROM scores WHERE pk = ?1 AND sk = ?2", params![pk, sk])
            .map_err(|e| backend("delete_item", &key, e))?;
        Ok(())
    }

    async fn delete_items(&self, keys: Vec<(String, String)>) -> StoreResult<()> {
        let what = format!("{} items", keys.len());
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| backend("delete_items", &what, e))?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM scores WHERE pk = ?1 AND sk = ?2")
                .map_err(|e| backend("delete_items", &what, e))?;
            for (pk, sk) in &keys {
                stmt.execute(params![pk, sk]).map_err(|e| backend("delete_items", key_of(pk, sk), e))?;
            }
        }
        tx.commit().map_err(|e| backend("delete_items", &what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn count(s: &SqliteScoreStore) -> i64 {
        s.lock().query_row("SELECT COUNT(*) FROM scores", [], |r| r.get(0)).unwrap()
    }

    #[tokio::test]
    async fn upsert_is_idempotent() {
        let s = SqliteScoreStore::open_in_memory().unwrap();
        let item = Item::new("CUSTOMER#C00001", "CHURN", json!({"p": 0.7, "band": "high"}));
        s.put_items(vec![item.clone()]).await.unwrap();
        s.put_items(vec![item.clone(), item.clone()]).await.unwrap();
        assert_eq!(count(&s), 1);
        assert_eq!(s.get_item("CUSTOMER#C00001", "CHURN").await.unwrap(), Some(item));
        let newer = Item::new("CUSTOMER#C00001", "CHURN", json!({"p": 0.2}));
        s.put_items(vec![newer.clone()]).await.unwrap();
        assert_eq!(count(&s), 1);
        assert_eq!(s.get_item("CUSTOMER#C00001", "CHURN").await.unwrap(), Some(newer));
        assert_eq!(s.get_item("CUSTOMER#C00001", "OTHER").await.unwrap(), None);
        s.delete_item("CUSTOMER#C00001", "CHURN").await.unwrap();
        s.delete_item("CUSTOMER#C00001", "CHURN").await.unwrap();
        assert_eq!(count(&s), 0);
    }

    #[tokio::test]
    async fn thousand_items_in_one_call() {
        let s = SqliteScoreStore::open_in_memory().unwrap();
        let items: Vec<_> = (0..1000)
            .map(|i| Item::new(format!("CUSTOMER#C{i:05}"), "CHURN", json!({"p": i as f64 / 1000.0})))
            .collect();
        s.put_items(items).await.unwrap();
        assert_eq!(count(&s), 1000);
        let got = s.get_item("CUSTOMER#C00999", "CHURN").await.unwrap().unwrap();
        assert_eq!(got.attr("p"), Some(&json!(0.999)));
    }

    #[tokio::test]
    async fn query_is_sorted_by_sk_and_scan_matches_prefix() {
        let s = SqliteScoreStore::open_in_memory().unwrap();
        let items = vec![
            Item::new("CUSTOMER#C2", "SEGMENT", json!({"s": 1})),
            Item::new("CUSTOMER#C1", "SEGMENT", json!({"s": 0})),
            Item::new("CUSTOMER#C1", "CHURN", json!({"p": 0.1})),
            Item::new("CUSTOMER#C1", "RECS", json!({"t": ["T1"]})),
            Item::new("CUSTOMER_X", "CHURN", json!({"p": 0.5})),
            Item::new("CUSTOMERS", "CHURN", json!({"p": 0.5})),
            Item::new("CUSTOMER#C2", "CHURN", json!({"p": 0.9})),
            Item::new("TITLE#T1", "CHURN", json!({})),
            Item::new("100%", "CHURN", json!({})),
            Item::new("100x", "CHURN", json!({})),
        ];
        s.put_items(items).await.unwrap();
        let sks: Vec<_> = s.query("CUSTOMER#C1").await.unwrap().into_iter().map(|i| i.sk).collect();
        assert_eq!(sks, vec!["CHURN", "RECS", "SEGMENT"]);
        assert!(s.query("CUSTOMER#C9").await.unwrap().is_empty());
        let pks: Vec<_> = s.scan_sk("CUSTOMER#", "CHURN").await.unwrap().into_iter().map(|i| i.pk).collect();
        assert_eq!(pks, vec!["CUSTOMER#C1", "CUSTOMER#C2"]);
        // `_` and `%` are literal characters, not wildcards.
        let pks: Vec<_> = s.scan_sk("CUSTOMER_", "CHURN").await.unwrap().into_iter().map(|i| i.pk).collect();
        assert_eq!(pks, vec!["CUSTOMER_X"]);
        let pks: Vec<_> = s.scan_sk("100%", "CHURN").await.unwrap().into_iter().map(|i| i.pk).collect();
        assert_eq!(pks, vec!["100%"]);
        assert_eq!(s.scan_sk("", "CHURN").await.unwrap().len(), 7);
        let all: Vec<(String, String)> = s.scan_all().await.unwrap().into_iter().map(|i| (i.pk, i.sk)).collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!((all.len(), &all), (10, &sorted));
    }

    #[tokio::test]
    async fn conditional_not_exists() {
        let s = SqliteScoreStore::open_in_memory().unwrap();
        let item = Item::new("MODEL#churn", "CHAMPION", json!({"run": "r1"}));
        s.put_conditional(item.clone(), Condition::NotExists).await.unwrap();
        let again = Item::new("MODEL#churn", "CHAMPION", json!({"run": "r2"}));
        let err = s.put_conditional(again, Condition::NotExists).await.unwrap_err();
        assert!(matches!(err, StoreError::ConditionFailed { .. }), "{err}");
        assert_eq!(s.get_item("MODEL#churn", "CHAMPION").await.unwrap(), Some(item));
    }

    #[tokio::test]
    async fn conditional_attr_equals() {
        let s = SqliteScoreStore::open_in_memory().unwrap();
        let cond = |v: Option<Value>| Condition::AttrEquals { name: "run".into(), value: v };
        let item = |run: &str| Item::new("MODEL#churn", "CHAMPION", json!({"run": run}));
        // Absent item, expected None: ok.
        s.put_conditional(item("r1"), cond(None)).await.unwrap();
        // Present attribute, expected None: fails.
        assert!(matches!(s.put_conditional(item("r2"), cond(None)).await, Err(StoreError::ConditionFailed { .. })));
        // Wrong expected value: fails and leaves the item alone.
        assert!(matches!(
            s.put_conditional(item("r2"), cond(Some(json!("r0")))).await,
            Err(StoreError::ConditionFailed { .. })
        ));
        assert_eq!(s.get_item("MODEL#churn", "CHAMPION").await.unwrap(), Some(item("r1")));
        // Right expected value: ok.
        s.put_conditional(item("r2"), cond(Some(json!("r1")))).await.unwrap();
        assert_eq!(s.get_item("MODEL#churn", "CHAMPION").await.unwrap(), Some(item("r2")));
        // Item present but attribute absent counts as None.
        s.put_items(vec![Item::new("MODEL#seg", "CHAMPION", json!({"other": 1}))]).await.unwrap();
        let seg = Item::new("MODEL#seg", "CHAMPION", json!({"run": "s1"}));
        s.put_conditional(seg.clone(), cond(None)).await.unwrap();
        assert_eq!(s.get_item("MODEL#seg", "CHAMPION").await.unwrap(), Some(seg));
        // Absent item, expected a value: fails.
        let err = s.put_conditional(Item::new("MODEL#x", "CHAMPION", json!({})), cond(Some(json!("r1")))).await;
        assert!(matches!(err, Err(StoreError::ConditionFailed { .. })));
    }

    #[tokio::test]
    async fn persists_across_reopen_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db/scores.sqlite");
        {
            let s = SqliteScoreStore::open(&path).unwrap();
            let mode: String = s.lock().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
            assert_eq!(mode.to_lowercase(), "wal");
            s.put_items(vec![Item::new("A", "B", json!({"x": [1, 2, {"y": null}]}))]).await.unwrap();
        }
        let s = SqliteScoreStore::open(&path).unwrap();
        let got = s.get_item("A", "B").await.unwrap().unwrap();
        assert_eq!(got.attrs, json!({"x": [1, 2, {"y": null}]}).as_object().unwrap().clone());
    }

    #[tokio::test]
    async fn put_items_is_all_or_nothing() {
        let s = SqliteScoreStore::open_in_memory().unwrap();
        // Make the 3rd insert fail inside the transaction with a trigger.
        s.lock()
            .execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON scores WHEN NEW.pk = 'BAD'
                 BEGIN SELECT RAISE(ABORT, 'boom'); END",
            )
            .unwrap();
        let items =
            vec![Item::new("A", "1", json!({})), Item::new("A", "2", json!({})), Item::new("BAD", "3", json!({}))];
        assert!(s.put_items(items).await.is_err());
        assert_eq!(count(&s), 0);
    }
}
