//! Task logs: the shim writes each stream into numbered files that rotate
//! by size (`<task>.stdout.0`, `.1`, …, the oldest deleted beyond a count),
//! and [`read_log`] follows them with a cursor that survives rotation.
//!
//! A file `N + 1` is only created once file `N` is full, so a reader that
//! reaches the end of `N` while `N + 1` exists knows `N` is complete.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dirs::{self, LogStream};
use crate::host::HostError;

/// A position in a task's log stream: which rotated file, and the byte
/// offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCursor {
    pub file: u64,
    pub offset: u64,
}

/// Bytes read from a log stream and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub data: Vec<u8>,
    pub next: LogCursor,
}

/// Reads up to `max_bytes` of a task's `stream`, from `cursor` (or from the
/// oldest file still kept), following rotations. If the cursor's file has
/// been rotated away, reading goes on at the oldest file that is left.
/// An empty chunk whose `next` equals the cursor means nothing new yet.
pub fn read_log(
    data_dir: &Path,
    alloc_id: &str,
    task: &str,
    stream: LogStream,
    cursor: Option<LogCursor>,
    max_bytes: usize,
) -> Result<LogChunk, HostError> {
    let dir = dirs::logs_dir(data_dir, alloc_id)?;
    dirs::check_name("task name", task)?;
    let indices = log_indices(&dir, task, stream)
        .map_err(|source| HostError::io("list the log directory", &dir, source))?;
    let Some(&oldest) = indices.first() else {
        return Ok(LogChunk {
            data: Vec::new(),
            next: cursor.unwrap_or_default(),
        });
    };
    let mut at = match cursor {
        Some(c) if c.file >= oldest => c,
        _ => LogCursor {
            file: oldest,
            offset: 0,
        },
    };
    let mut data = Vec::new();
    while data.len() < max_bytes {
        let path = dir.join(dirs::log_file_name(task, stream, at.file));
        let read = match File::open(&path) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(at.offset))
                    .map_err(|source| HostError::io("seek in", &path, source))?;
                let want = (max_bytes - data.len()) as u64;
                let before = data.len();
                file.take(want)
                    .read_to_end(&mut data)
                    .map_err(|source| HostError::io("read", &path, source))?;
                Some(data.len() - before)
            }
            // Rotated away since the listing: go on with the next file.
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(HostError::io("open", &path, source)),
        };
        if let Some(n) = read {
            at.offset += n as u64;
            if data.len() >= max_bytes {
                break;
            }
        }
        // At the end of this file: move on only if a newer one exists,
        // which means this one is complete.
        match indices.iter().find(|&&i| i > at.file) {
            Some(&next) => {
                at = LogCursor {
                    file: next,
                    offset: 0,
                }
            }
            None => break,
        }
    }
    Ok(LogChunk { data, next: at })
}

/// The indices of a stream's log files, oldest first.
pub(crate) fn log_indices(dir: &Path, task: &str, stream: LogStream) -> io::Result<Vec<u64>> {
    let prefix = format!("{task}.{}.", stream.as_str());
    let mut indices = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(indices),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(index) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.parse::<u64>().ok())
        {
            indices.push(index);
        }
    }
    indices.sort_unstable();
    Ok(indices)
}

/// The shim's writer for one stream.
pub(crate) struct RotatingLog {
    dir: PathBuf,
    task: String,
    stream: LogStream,
    max_bytes: u64,
    max_files: u32,
    index: u64,
    file: File,
    written: u64,
}

impl RotatingLog {
    /// Continues the newest existing file (a restarted task appends to its
    /// earlier output), or starts at `.0`.
    pub(crate) fn open(
        dir: &Path,
        task: &str,
        stream: LogStream,
        max_bytes: u64,
        max_files: u32,
    ) -> io::Result<RotatingLog> {
        let index = log_indices(dir, task, stream)?.last().copied().unwrap_or(0);
        let path = dir.join(dirs::log_file_name(task, stream, index));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(RotatingLog {
            dir: dir.to_owned(),
            task: task.to_owned(),
            stream,
            max_bytes: max_bytes.max(1),
            max_files: max_files.max(1),
            index,
            file,
            written,
        })
    }

    pub(crate) fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            if self.written >= self.max_bytes {
                self.rotate()?;
            }
            let room = usize::try_from(self.max_bytes - self.written).unwrap_or(usize::MAX);
            let n = buf.len().min(room);
            self.file.write_all(&buf[..n])?;
            self.written += n as u64;
            buf = &buf[n..];
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.index += 1;
        let path = self
            .dir
            .join(dirs::log_file_name(&self.task, self.stream, self.index));
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        self.written = 0;
        let keep_from = (self.index + 1).saturating_sub(u64::from(self.max_files));
        for old in log_indices(&self.dir, &self.task, self.stream)? {
            if old < keep_from {
                let path = self
                    .dir
                    .join(dirs::log_file_name(&self.task, self.stream, old));
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_at_most_max_files_and_the_cursor_follows() {
        let data = tempfile::tempdir().unwrap();
        let logs = dirs::logs_dir(data.path(), "a1").unwrap();
        fs::create_dir_all(&logs).unwrap();
        let mut log = RotatingLog::open(&logs, "web", LogStream::Stdout, 10, 3).unwrap();
        log.write_all(b"0123456789abcdefghij").unwrap();
        let first = read_log(data.path(), "a1", "web", LogStream::Stdout, None, 15).unwrap();
        assert_eq!(first.data, b"0123456789abcde");
        assert_eq!(first.next, LogCursor { file: 1, offset: 5 });
        log.write_all(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ").unwrap();
        assert_eq!(
            log_indices(&logs, "web", LogStream::Stdout).unwrap(),
            [2, 3, 4]
        );
        // File 1 is gone: the reader skips to the oldest file kept.
        let rest = read_log(
            data.path(),
            "a1",
            "web",
            LogStream::Stdout,
            Some(first.next),
            100,
        )
        .unwrap();
        assert_eq!(rest.data, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        assert_eq!(rest.next, LogCursor { file: 4, offset: 6 });
        let none = read_log(
            data.path(),
            "a1",
            "web",
            LogStream::Stdout,
            Some(rest.next),
            100,
        )
        .unwrap();
        assert!(none.data.is_empty());
        assert_eq!(none.next, rest.next);
        // Another stream and another task are not mixed in.
        let other = read_log(data.path(), "a1", "web", LogStream::Stderr, None, 100).unwrap();
        assert!(other.data.is_empty());
    }
}
