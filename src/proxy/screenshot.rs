//! Page screenshots are decoded and written off the event loop: each proxy that has a
//! screenshot directory owns one writer thread (`shots-PORT`) fed over a bounded crossbeam
//! channel. The loop only checks the message's shape and `try_send`s a `Job`; when the queue
//! is full the screenshot is refused at once (the loop logs an `error` entry and answers the
//! page), so a slow or stuck disk never holds up the loop and never queues without bound.
//!
//! The writer decodes the base64 PNG, checks it, hands it to a `ScreenshotStore` (default
//! [`FileStore`]: create the directory, write the file) and reports the outcome through the
//! job's `done` callback (the proxy's callback posts it back to the loop, which logs the
//! `screenshot` entry and acknowledges the page).

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crossbeam_channel::{Sender, TrySendError};
use parking_lot::Mutex;

use crate::util::base64::base64_decode;

/// Largest screenshot (PNG bytes) accepted from a page.
pub const MAX_SCREENSHOT: usize = 12 * 1024 * 1024;
/// Screenshot files one proxy keeps; older ones are removed first.
pub const MAX_FILES_PER_PROXY: usize = 200;
/// Bytes of screenshot files one proxy keeps; older ones are removed first.
pub const MAX_BYTES_PER_PROXY: usize = 256 * 1024 * 1024;
/// Screenshots that may wait for a proxy's writer by default (each holds up to 16 MiB of
/// base64 while it waits).
pub const DEFAULT_QUEUE: usize = 4;

/// Where screenshot files go. `write` runs on the proxy's screenshot writer thread (never the
/// event loop) and may block.
pub trait ScreenshotStore: Send + Sync {
    /// Stores one PNG at `path` (its directory may not exist yet).
    fn write(&self, path: &Path, png: &[u8]) -> io::Result<()>;
}

/// The default store: creates the directory and writes the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileStore;

impl ScreenshotStore for FileStore {
    fn write(&self, path: &Path, png: &[u8]) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        std::fs::write(path, png)
    }
}

/// What the writer reports for one job: the PNG's size, or why it was not written.
pub(crate) type Outcome = Result<usize, String>;

/// One screenshot to write.
pub(crate) struct Job {
    /// `data:image/png;base64,...` as the page sent it.
    pub data_url: String,
    pub path: PathBuf,
    /// Called on the writer thread with the outcome.
    pub done: Box<dyn FnOnce(Outcome) + Send>,
}

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is full.
    Busy,
    /// The writer has stopped.
    Stopped,
}

/// A proxy's writer thread and the sending end of its bounded queue.
pub(crate) struct ScreenshotWriter {
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    capacity: usize,
}

impl std::fmt::Debug for ScreenshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScreenshotWriter")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl ScreenshotWriter {
    /// Starts the writer thread `name` with a queue of `capacity` jobs (at least 1).
    pub fn start(
        name: String,
        store: Arc<dyn ScreenshotStore>,
        capacity: usize,
    ) -> io::Result<ScreenshotWriter> {
        let capacity = capacity.max(1);
        let (tx, rx) = crossbeam_channel::bounded::<Job>(capacity);
        let thread = crate::thread::spawn(name, 256 * 1024, move || {
            // Ends when the proxy drops the sender (stop, or the proxy gone), after the queue
            // is drained.
            let mut kept = Kept::new(MAX_FILES_PER_PROXY, MAX_BYTES_PER_PROXY);
            for job in rx {
                let outcome = png_base64(&job.data_url)
                    .and_then(decode_png)
                    .and_then(|png| {
                        store
                            .write(&job.path, &png)
                            .map(|()| png.len())
                            .map_err(|e| format!("cannot write {}: {e}", job.path.display()))
                    });
                if let Ok(n) = outcome {
                    for old in kept.add(job.path.clone(), n) {
                        let _ = std::fs::remove_file(old);
                    }
                }
                (job.done)(outcome);
            }
        })?;
        Ok(ScreenshotWriter {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            capacity,
        })
    }

    /// Queues a job without blocking.
    pub fn submit(&self, job: Job) -> Result<(), Refused> {
        let tx = self.tx.lock();
        let Some(tx) = tx.as_ref() else {
            return Err(Refused::Stopped);
        };
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Refused::Busy),
            Err(TrySendError::Disconnected(_)) => Err(Refused::Stopped),
        }
    }

    /// How many jobs may wait.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Closes the queue (jobs already queued are still written) and joins the thread if it
    /// ends within `deadline`; a thread stuck in its store is left to finish on its own.
    pub fn stop(&self, deadline: Duration) {
        self.tx.lock().take();
        let Some(h) = self.thread.lock().take() else {
            return;
        };
        let end = Instant::now() + deadline;
        while !h.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
}

/// The files a writer has written, oldest first, within a count and a byte cap.
#[derive(Debug)]
pub(crate) struct Kept {
    files: std::collections::VecDeque<(PathBuf, usize)>,
    bytes: usize,
    max_files: usize,
    max_bytes: usize,
}

impl Kept {
    pub(crate) fn new(max_files: usize, max_bytes: usize) -> Kept {
        Kept {
            files: Default::default(),
            bytes: 0,
            max_files,
            max_bytes,
        }
    }

    /// Records a new file; returns the oldest ones to remove so the caps hold (the new file
    /// itself is always kept).
    pub(crate) fn add(&mut self, path: PathBuf, bytes: usize) -> Vec<PathBuf> {
        self.files.retain(|(p, _)| *p != path);
        self.files.push_back((path, bytes));
        self.bytes = self.files.iter().map(|(_, n)| n).sum();
        let mut gone = Vec::new();
        while self.files.len() > 1
            && (self.files.len() > self.max_files || self.bytes > self.max_bytes)
        {
            if let Some((p, n)) = self.files.pop_front() {
                self.bytes -= n;
                gone.push(p);
            }
        }
        gone
    }
}

/// The PNG in a screenshot's base64: at most [`MAX_SCREENSHOT`] bytes, PNG signature first.
pub fn decode_png(base64: &str) -> Result<Vec<u8>, String> {
    let png = base64_decode(base64).ok_or("screenshot data_url: bad base64")?;
    if png.len() > MAX_SCREENSHOT || !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err("screenshot is not a PNG (or too large)".into());
    }
    Ok(png)
}

/// The base64 part of a PNG data URL.
pub fn png_base64(data_url: &str) -> Result<&str, String> {
    data_url
        .strip_prefix("data:image/png;base64,")
        .ok_or_else(|| "screenshot data_url is not a base64 PNG".into())
}

/// `<proxy>-<name>-<millis>.png`, each part reduced to `[A-Za-z0-9_-]` (no path tricks).
pub fn file_name(proxy_id: &str, name: &str, millis: u128) -> String {
    format!(
        "{}-{}-{millis}.png",
        file_part(proxy_id, 40),
        file_part(name, 60)
    )
}

fn file_part(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect();
    if out.is_empty() { "x".into() } else { out }
}

#[cfg(test)]
mod tests {
    use crossbeam_channel::{Receiver, bounded};

    use super::*;
    use crate::util::base64::base64;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\nrest";

    #[test]
    fn decoding_checks_base64_signature_and_size() {
        assert_eq!(decode_png(&base64(PNG)).unwrap(), PNG);
        assert!(decode_png("@@@").unwrap_err().contains("bad base64"));
        assert!(
            decode_png(&base64(b"GIF89a"))
                .unwrap_err()
                .contains("not a PNG")
        );
        let mut big = PNG.to_vec();
        big.resize(MAX_SCREENSHOT + 1, 0);
        assert!(decode_png(&base64(&big)).is_err());
        assert_eq!(png_base64("data:image/png;base64,QQ==").unwrap(), "QQ==");
        assert!(png_base64("data:image/jpeg;base64,QQ==").is_err());
    }

    #[test]
    fn file_names_cannot_escape_the_directory() {
        assert_eq!(
            file_name("app:web", "../../etc/x y", 7),
            "app_web-______etc_x_y-7.png"
        );
        assert_eq!(file_name("", "", 1), "x-x-1.png");
        assert_eq!(
            file_name("é", &"n".repeat(100), 2).len(),
            "_-".len() + 60 + "-2.png".len()
        );
    }

    /// A store that waits for the test's go-ahead before each write.
    struct Gate(Receiver<()>);

    impl ScreenshotStore for Gate {
        fn write(&self, path: &Path, png: &[u8]) -> io::Result<()> {
            let _ = self.0.recv_timeout(Duration::from_secs(10));
            FileStore.write(path, png)
        }
    }

    fn job(dir: &Path, n: u32, done: &Sender<(u32, Outcome)>) -> Job {
        let done = done.clone();
        Job {
            data_url: format!("data:image/png;base64,{}", base64(PNG)),
            path: dir.join(format!("sub/{n}.png")),
            done: Box::new(move |o| {
                let _ = done.send((n, o));
            }),
        }
    }

    #[test]
    fn a_full_queue_refuses_and_queued_jobs_are_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let (go, gate) = bounded(0);
        let w = ScreenshotWriter::start("shots-test".into(), Arc::new(Gate(gate)), 1).unwrap();
        let (done_tx, done) = crossbeam_channel::unbounded();
        // Job 1 is taken by the writer (blocked in the store), job 2 waits, job 3 is refused.
        w.submit(job(dir.path(), 1, &done_tx)).unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        let mut queued = false;
        while Instant::now() < end && !queued {
            queued = w.submit(job(dir.path(), 2, &done_tx)).is_ok();
        }
        assert!(queued);
        assert_eq!(w.submit(job(dir.path(), 3, &done_tx)), Err(Refused::Busy));
        go.send(()).unwrap();
        go.send(()).unwrap();
        let mut got: Vec<(u32, Outcome)> = (0..2)
            .map(|_| done.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort_by_key(|g| g.0);
        assert_eq!(got, vec![(1, Ok(PNG.len())), (2, Ok(PNG.len()))]);
        assert_eq!(std::fs::read(dir.path().join("sub/2.png")).unwrap(), PNG);
        w.stop(Duration::from_secs(5));
        assert_eq!(
            w.submit(job(dir.path(), 4, &done_tx)),
            Err(Refused::Stopped)
        );
    }

    #[test]
    fn oldest_files_go_first_past_the_caps() {
        let mut k = Kept::new(3, 100);
        let p = |n: u32| PathBuf::from(format!("{n}.png"));
        assert!(k.add(p(1), 10).is_empty());
        assert!(k.add(p(2), 10).is_empty());
        assert!(k.add(p(3), 10).is_empty());
        assert_eq!(k.add(p(4), 10), vec![p(1)]);
        assert_eq!(k.add(p(5), 85), vec![p(2), p(3)]);
        assert_eq!(
            k.add(p(6), 500),
            vec![p(4), p(5)],
            "a big one is kept alone"
        );
    }

    #[test]
    fn write_failures_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let w = ScreenshotWriter::start("shots-test".into(), Arc::new(FileStore), 2).unwrap();
        let (done_tx, done) = crossbeam_channel::unbounded();
        w.submit(job(&file, 1, &done_tx)).unwrap();
        let (_, outcome) = done.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(outcome.unwrap_err().contains("cannot create"));
        w.stop(Duration::from_secs(5));
    }
}
