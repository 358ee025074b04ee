//! The SQLite threads: one writer, N readers, fed with boxed closures over std channels and
//! answering through `tokio::sync::oneshot`, so no SQLite call ever runs on an executor thread;
//! and a checkpointer, which copies the write-ahead log into the database in the background.
//!
//! SQLite's default is that the commit that takes the WAL past 1,000 pages runs the checkpoint
//! itself, on the writer: it copies the pages and syncs the database file while every write
//! queued behind it waits. Under a sign-in flood, with the cores busy hashing, that took
//! 180-370 ms, and about 1 % of admitted sign-ins waited that much longer than the rest
//! (perf/results/goodput-2026-11-29). So the writer never checkpoints
//! (`wal_autocheckpoint = 0`); the checkpointer runs a `PASSIVE` checkpoint, which never blocks
//! the writer or the readers, every [`CHECKPOINT_INTERVAL`]. Once a checkpoint has copied every
//! frame, the writer's next transaction starts the log over, so it stays small.

use super::error::db;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::{StoreError, StoreFuture};

/// How long a connection waits on a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// Prepared statements kept per connection (the store has a few dozen distinct statements).
const STATEMENT_CACHE: usize = 64;

/// A unit of work for one connection. It answers its caller itself.
type Job = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

/// The job queues and their threads.
///
/// Dropping it closes the readers' queue and joins the reader threads, then closes the
/// writer's queue and joins the writer: every queued job still runs, and the write connection
/// is the last one closed, so SQLite checkpoints the WAL into the database and removes it.
pub(super) struct Pool {
    writer: Option<Sender<Job>>,
    readers: Option<Sender<Job>>,
    writer_thread: Option<JoinHandle<()>>,
    reader_threads: Vec<JoinHandle<()>>,
    /// Dropped to stop the checkpointer.
    checkpoint_stop: Option<Sender<()>>,
    checkpointer: Option<JoinHandle<()>>,
}

impl Pool {
    /// Opens the connections and starts the threads. `readers` is at least 1.
    pub(super) fn start(path: &Path, readers: usize) -> Result<Pool, StoreError> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                store::files::create_private_dir(parent).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
        }
        // Created owner-only before SQLite opens it: SQLite would make it 0644 (less the
        // umask), and it gives the -wal and -shm files the database file's mode.
        let created = store::files::create_private_file(path).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", path.display()))
        })?;
        if !created {
            store::files::warn_if_open_to_others(path, "the database file");
        }
        // The writer first: it creates the file and switches it to WAL before a reader opens.
        let writer = open_writer(path).map_err(|e| in_file(path, e))?;
        let mut reader_conns = Vec::with_capacity(readers);
        for _ in 0..readers {
            reader_conns.push(open_reader(path).map_err(|e| in_file(path, e))?);
        }
        let checkpoint_conn = open_checkpointer(path).map_err(|e| in_file(path, e))?;

        // Filled in step by step: on an early return, dropping it stops what was started.
        let mut pool = Pool {
            writer: None,
            readers: None,
            writer_thread: None,
            reader_threads: Vec::with_capacity(readers),
            checkpoint_stop: None,
            checkpointer: None,
        };
        let (writer_tx, writer_rx) = mpsc::channel::<Job>();
        pool.writer = Some(writer_tx);
        pool.writer_thread = Some(spawn("hj-sqlite-writer".into(), move || {
            serve(writer, || writer_rx.recv().ok())
        })?);
        let (readers_tx, readers_rx) = mpsc::channel::<Job>();
        pool.readers = Some(readers_tx);
        let readers_rx = Arc::new(Mutex::new(readers_rx));
        for (i, conn) in reader_conns.into_iter().enumerate() {
            let queue = Arc::clone(&readers_rx);
            pool.reader_threads
                .push(spawn(format!("hj-sqlite-reader-{i}"), move || {
                    serve(conn, || next_shared(&queue))
                })?);
        }
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        pool.checkpoint_stop = Some(stop_tx);
        pool.checkpointer = Some(spawn("hj-sqlite-ckpt".into(), move || {
            checkpoint_loop(checkpoint_conn, &stop_rx)
        })?);
        Ok(pool)
    }

    /// Runs `f` on a read connection (`query_only`).
    pub(super) fn read<T, F>(&self, f: F) -> StoreFuture<'_, T>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        submit(self.readers.as_ref(), f)
    }

    /// Runs `f` on the single write connection, after every write submitted before it.
    pub(super) fn write<T, F>(&self, f: F) -> StoreFuture<'_, T>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        submit(self.writer.as_ref(), f)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.checkpoint_stop = None;
        if let Some(handle) = self.checkpointer.take() {
            join(handle);
        }
        self.readers = None;
        for handle in self.reader_threads.drain(..) {
            join(handle);
        }
        self.writer = None;
        if let Some(handle) = self.writer_thread.take() {
            join(handle);
        }
    }
}

fn spawn(name: String, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StoreError> {
    thread::Builder::new()
        .name(name)
        .spawn(body)
        .map_err(|e| StoreError::Unavailable(format!("cannot start a sqlite thread: {e}")))
}

fn join(handle: JoinHandle<()>) {
    // Never join oneself (the store dropped from inside one of its own jobs).
    if handle.thread().id() == thread::current().id() {
        return;
    }
    if handle.join().is_err() {
        tracing::error!("a sqlite thread panicked");
    }
}

/// Queues the job when the future is first polled (futures stay lazy) and awaits its answer.
fn submit<T, F>(queue: Option<&Sender<Job>>, f: F) -> StoreFuture<'_, T>
where
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    Box::pin(async move {
        let closed = || StoreError::Unavailable("the sqlite store is shut down".into());
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone away (a cancelled request): nothing to tell then.
            let _ = answer.send(f(conn));
        });
        queue.ok_or_else(closed)?.send(job).map_err(|_| closed())?;
        answered
            .await
            .map_err(|_| StoreError::Internal("a sqlite job panicked".into()))?
    })
}

/// The next job of a queue shared by several threads; `None` once the queue is closed.
fn next_shared(queue: &Mutex<Receiver<Job>>) -> Option<Job> {
    // recv() never panics, so a poisoned lock still holds a sound receiver.
    let receiver = queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    receiver.recv().ok()
}

/// A thread's loop: run jobs until the queue closes, then close the connection.
fn serve(mut conn: Connection, mut next: impl FnMut() -> Option<Job>) {
    while let Some(job) = next() {
        // A panicking job must not take the connection (for the writer: every write) down.
        if panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err() {
            tracing::error!("a sqlite job panicked");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing a sqlite connection failed");
    }
}

fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "cannot switch to WAL (journal_mode is {mode})"
        )));
    }
    // Checkpoints are the checkpointer's (see the module documentation).
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL;")
        .map_err(db)?;
    Ok(conn)
}

/// Every [`CHECKPOINT_INTERVAL`] until `stop` is dropped: a `PASSIVE` checkpoint (as many
/// frames as no reader still needs, without waiting for anyone), then the connection closes.
fn checkpoint_loop(conn: Connection, stop: &Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite checkpoint failed; the next one retries");
        }
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing a sqlite connection failed");
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    // Read-write at the file level (a WAL reader may have to recover the -shm index), but
    // `query_only` refuses any write on it.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(db)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA query_only = ON;",
    )
    .map_err(db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn in_file(path: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("{}: {m}", path.display())),
        StoreError::Internal(m) => StoreError::Internal(format!("{}: {m}", path.display())),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames in the WAL now (the log's length as `wal_checkpoint` reports it), read on the
    /// writer; its own `PASSIVE` checkpoint there is the last thing the test does.
    async fn wal_frames(pool: &Pool) -> i64 {
        pool.write(|c| {
            c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                row.get::<_, i64>(1)
            })
            .map_err(db)
        })
        .await
        .unwrap()
    }

    /// The writer never checkpoints, the checkpointer does: after 2,500 commits and a few
    /// intervals, the log has started over and holds only the one commit made since. (Were the
    /// writer checkpointing at SQLite's default 1,000 pages, some 500 frames would remain; with
    /// no checkpoint at all, 2,501.)
    #[tokio::test]
    async fn the_checkpointer_keeps_the_write_ahead_log_short() {
        let dir = std::env::temp_dir().join(format!("hj-ckpt-{}", uuid::Uuid::new_v4().simple()));
        let pool = Pool::start(&dir.join("hj.db"), 1).unwrap();
        let autocheckpoint: i64 = pool
            .write(|c| {
                c.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
                    .map_err(db)
            })
            .await
            .unwrap();
        assert_eq!(autocheckpoint, 0, "the writer does not checkpoint");
        pool.write(|c| {
            c.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
                .map_err(db)
        })
        .await
        .unwrap();
        const COMMITS: i64 = 2500;
        pool.write(|c| {
            for v in 0..COMMITS {
                c.execute("INSERT INTO t (v) VALUES (?1)", [v])
                    .map_err(db)?;
            }
            Ok(())
        })
        .await
        .unwrap();
        tokio::time::sleep(CHECKPOINT_INTERVAL * 3).await;
        pool.write(|c| {
            c.execute("INSERT INTO t (v) VALUES (-1)", [])
                .map(|_| ())
                .map_err(db)
        })
        .await
        .unwrap();
        let rows: i64 = pool
            .read(|c| {
                c.query_row("SELECT count(*) FROM t", [], |row| row.get(0))
                    .map_err(db)
            })
            .await
            .unwrap();
        assert_eq!(rows, COMMITS + 1);
        let frames = wal_frames(&pool).await;
        assert!(frames < 10, "the log started over: {frames} frames");
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }
}
