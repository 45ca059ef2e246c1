//! One writer per working folder: `marquee run` (and `churn cutoff --apply`) hold an exclusive
//! lock on `<workdir>/marquee.lock` while they write, so a second one waits or stops with a
//! clear busy error instead of meeting a locked database halfway. The lock is the operating
//! system's (flock): a process that dies releases it, so it never goes stale. The file says who
//! holds it, for the message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use marquee_pipeline::Error;

/// An exclusive hold on a working folder, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct WorkdirLock {
    _file: File,
    path: PathBuf,
}

impl WorkdirLock {
    /// The lock file of `workdir`.
    pub fn path_in(workdir: &Path) -> PathBuf {
        workdir.join("marquee.lock")
    }

    /// Takes the lock for `holder` (e.g. "run 20261202T1015Z-ab12cd"), or says who has it.
    pub fn try_acquire(workdir: &Path, holder: &str) -> Result<Self, Error> {
        let (mut file, path) = open(workdir)?;
        match file.try_lock() {
            Ok(()) => Self::held(file, path, holder),
            Err(TryLockError::WouldBlock) => Err(busy(&path, &read_holder(&mut file))),
            Err(TryLockError::Error(e)) => Err(Error::Invalid(format!("locking {}: {e}", path.display()))),
        }
    }

    /// Takes the lock for `holder`, waiting for the current holder to finish; `on_wait` is told
    /// who that is once, before waiting.
    pub fn acquire_waiting(workdir: &Path, holder: &str, on_wait: impl FnOnce(&str)) -> Result<Self, Error> {
        let (mut file, path) = open(workdir)?;
        match file.try_lock() {
            Ok(()) => return Self::held(file, path, holder),
            Err(TryLockError::WouldBlock) => on_wait(&read_holder(&mut file)),
            Err(TryLockError::Error(e)) => return Err(Error::Invalid(format!("locking {}: {e}", path.display()))),
        }
        file.lock().map_err(|e| Error::Invalid(format!("locking {}: {e}", path.display())))?;
        Self::held(file, path, holder)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn held(mut file: File, path: PathBuf, holder: &str) -> Result<Self, Error> {
        let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        let line = format!("{holder} (pid {}, since {since})\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(line.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|e| Error::Invalid(format!("writing {}: {e}", path.display())))?;
        Ok(Self { _file: file, path })
    }
}

fn open(workdir: &Path) -> Result<(File, PathBuf), Error> {
    std::fs::create_dir_all(workdir).map_err(|e| Error::Invalid(format!("creating {}: {e}", workdir.display())))?;
    let path = WorkdirLock::path_in(workdir);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::Invalid(format!("opening {}: {e}", path.display())))?;
    Ok((file, path))
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    match text.trim() {
        "" => "another marquee process".to_string(),
        t => t.to_string(),
    }
}

fn busy(path: &Path, holder: &str) -> Error {
    Error::Busy {
        what: format!("working folder {}", path.parent().unwrap_or(path).display()),
        holder: holder.to_string(),
        hint: "wait for it to finish (`marquee run --wait` waits), or use another --workdir".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_told_who_holds_the_folder_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkdirLock::try_acquire(dir.path(), "run r1").unwrap();
        let err = WorkdirLock::try_acquire(dir.path(), "run r2").unwrap_err().to_string();
        assert!(err.starts_with(&format!("working folder {} is busy: run r1 (pid {}", dir.path().display(), std::process::id())), "{err}");
        assert!(err.contains("--wait"), "{err}");
        drop(first);
        let second = WorkdirLock::try_acquire(dir.path(), "run r2").unwrap();
        assert!(std::fs::read_to_string(second.path()).unwrap().starts_with("run r2 (pid"));
    }

    #[test]
    fn a_waiting_writer_gets_the_folder_when_the_holder_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkdirLock::try_acquire(dir.path(), "run r1").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            WorkdirLock::acquire_waiting(&path, "run r2", |holder| tx.send(holder.to_string()).unwrap()).map(|_| ())
        });
        let told = rx.recv().unwrap();
        assert!(told.starts_with("run r1 (pid"), "{told}");
        drop(first);
        waiter.join().unwrap().unwrap();
    }
}
