//! Copies a container's output into the task's rotated log files, the same
//! files the exec driver's shim writes, so `orch alloc logs` reads both the
//! same way.
//!
//! The engine keeps the container's output (json-file); the copy follows it
//! with timestamps and records, per stream, the timestamp of the last entry
//! it wrote (and how many entries had exactly that stamp) in a cursor file
//! beside the task's other private files. A new agent (a new `NodeHost`)
//! follows again from the cursor's second and passes over every entry the
//! cursor covers, so nothing is written twice or missed. The log line is
//! written before the cursor: a kill -9 between the two writes repeats that
//! one line, never loses it. A wall clock stepped backwards while a
//! container writes can make the copy skip lines stamped before the step.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;

use crate::dirs::LogStream;
use crate::host::logs::RotatingLog;

/// The cursor file, in the task's private directory (`.orch/<task>/`).
pub(crate) const CURSOR_FILE: &str = "container-log.cursor";
/// The cursor file's fixed size: rewritten in place with one write.
const CURSOR_LEN: usize = 128;

/// A point in time as the engine stamps log lines: seconds and nanoseconds
/// since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Stamp {
    /// Parses RFC 3339 with optional fractional seconds and a `Z` or
    /// `±hh:mm` offset, as the engine writes them.
    pub(crate) fn parse(text: &str) -> Option<Stamp> {
        let b = text.as_bytes();
        let num = |from: usize, len: usize| -> Option<i64> {
            let s = text.get(from..from + len)?;
            if s.bytes().all(|c| c.is_ascii_digit()) {
                s.parse().ok()
            } else {
                None
            }
        };
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
        let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
        let mut at = 19;
        let mut nanos = 0u32;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while at < b.len() && b[at].is_ascii_digit() {
                at += 1;
            }
            let digits = &text[start..at];
            if digits.is_empty() {
                return None;
            }
            let mut padded: String = digits.chars().take(9).collect();
            while padded.len() < 9 {
                padded.push('0');
            }
            nanos = padded.parse().ok()?;
        }
        let offset = match b.get(at) {
            Some(b'Z') if at + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() && b[at + 3] == b':' => {
                let o = num(at + 1, 2)? * 3600 + num(at + 4, 2)? * 60;
                if sign == b'+' { o } else { -o }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        Some(Stamp {
            secs: days * 86_400 + hour * 3600 + min * 60 + sec - offset,
            nanos,
        })
    }

    pub(crate) fn millis(self) -> u64 {
        if self.secs < 0 {
            return 0;
        }
        (self.secs as u64) * 1000 + u64::from(self.nanos / 1_000_000)
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// How far one stream has been copied: the stamp of the last entry written
/// and how many entries carried exactly that stamp (the parts of a long
/// line share one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mark {
    stamp: Stamp,
    count: u64,
}

/// How far each stream of one container has been copied, kept in a small
/// file that is rewritten in place. Per stream, because the engine stamps
/// each stream on its own: across streams its order is not the stamps'
/// order.
struct Cursor {
    file: File,
    container: String,
    marks: [Option<Mark>; 2],
}

fn index(stream: LogStream) -> usize {
    match stream {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
    }
}

impl Cursor {
    /// A cursor left by another container of the task starts over.
    fn open(path: &Path, container: &str) -> io::Result<Cursor> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut buf = vec![0u8; CURSOR_LEN];
        let n = file.read_at(&mut buf, 0)?;
        let text = String::from_utf8_lossy(&buf[..n]);
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut marks = [None, None];
        if words.first() == Some(&container) {
            for (i, mark) in marks.iter_mut().enumerate() {
                *mark = words
                    .get(1 + 2 * i..3 + 2 * i)
                    .and_then(|w| Some((parse_mark_stamp(w[0])?, w[1].parse().ok()?)))
                    .filter(|&(_, count)| count > 0)
                    .map(|(stamp, count)| Mark { stamp, count });
            }
        }
        Ok(Cursor {
            file,
            container: container.to_owned(),
            marks,
        })
    }

    fn store(&mut self, stream: LogStream, mark: Mark) -> io::Result<()> {
        self.marks[index(stream)] = Some(mark);
        let mut line = self.container.clone();
        for mark in self.marks {
            let Mark { stamp, count } = mark.unwrap_or_default();
            line.push_str(&format!(" {}.{:09} {count}", stamp.secs, stamp.nanos));
        }
        // Padding overwrites whatever a longer earlier record left.
        while line.len() < CURSOR_LEN {
            line.push(' ');
        }
        self.file.write_all_at(line.as_bytes(), 0)
    }
}

fn parse_mark_stamp(text: &str) -> Option<Stamp> {
    let (secs, nanos) = text.split_once('.')?;
    Some(Stamp {
        secs: secs.parse().ok()?,
        nanos: nanos.parse().ok()?,
    })
}

/// Where one task's copy writes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub logs_dir: PathBuf,
    pub task: String,
    pub cursor: PathBuf,
    pub max_bytes: u64,
    pub max_files: u32,
}

struct Writer {
    stdout: RotatingLog,
    stderr: RotatingLog,
    cursor: Cursor,
    /// Per stream, entries at the mark's own stamp still to pass over in
    /// this read: they were written by an earlier read.
    skip_at_mark: [u64; 2],
}

impl Writer {
    /// Starts a read of the engine's copy from [`Writer::since`].
    fn begin(&mut self) {
        for (skip, mark) in self.skip_at_mark.iter_mut().zip(self.cursor.marks) {
            *skip = mark.map_or(0, |m| m.count);
        }
    }

    /// One log entry as the engine sends it: `<timestamp> <bytes>`.
    fn entry(&mut self, stream: LogStream, message: &[u8]) -> io::Result<()> {
        let split = message.iter().position(|&c| c == b' ');
        let (stamp, data) = match split {
            Some(i) => (
                std::str::from_utf8(&message[..i])
                    .ok()
                    .and_then(Stamp::parse),
                &message[i + 1..],
            ),
            None => (None, message),
        };
        let Some(stamp) = stamp else {
            // Not what timestamps=true produces; keep the bytes rather than
            // drop them.
            return self.log(stream).write_all(message);
        };
        let i = index(stream);
        let mark = match self.cursor.marks[i] {
            Some(mark) if stamp < mark.stamp => return Ok(()),
            Some(mark) if stamp == mark.stamp => {
                if self.skip_at_mark[i] > 0 {
                    self.skip_at_mark[i] -= 1;
                    return Ok(());
                }
                Mark {
                    stamp,
                    count: mark.count + 1,
                }
            }
            _ => Mark { stamp, count: 1 },
        };
        self.log(stream).write_all(data)?;
        self.cursor.store(stream, mark)
    }

    fn log(&mut self, stream: LogStream) -> &mut RotatingLog {
        match stream {
            LogStream::Stdout => &mut self.stdout,
            LogStream::Stderr => &mut self.stderr,
        }
    }

    /// Where to ask the engine to start: the earlier stream's second (the
    /// engine's `since` is whole seconds; the rest is skipped entry by
    /// entry), or the beginning while a stream has nothing copied.
    fn since(&self) -> i32 {
        let [Some(out), Some(err)] = self.cursor.marks else {
            return 0;
        };
        i32::try_from(out.stamp.secs.min(err.stamp.secs)).unwrap_or(0)
    }
}

/// Copies until the container has stopped and its output is drained.
pub(crate) async fn copy(docker: Docker, id: String, target: Target) -> Result<(), String> {
    let open = |stream| {
        RotatingLog::open(
            &target.logs_dir,
            &target.task,
            stream,
            target.max_bytes,
            target.max_files,
        )
        .map_err(|e| format!("cannot open the {} log: {e}", stream.as_str()))
    };
    let mut writer = Writer {
        stdout: open(LogStream::Stdout)?,
        stderr: open(LogStream::Stderr)?,
        cursor: Cursor::open(&target.cursor, &id)
            .map_err(|e| format!("cannot open {}: {e}", target.cursor.display()))?,
        skip_at_mark: [0, 0],
    };
    let mut complained = false;
    loop {
        if let Err(e) = pass(&docker, &id, &mut writer, true).await
            && !complained
        {
            tracing::warn!(container = %id, error = %e, "following the container's output failed; retrying");
            complained = true;
        }
        let running = match docker.inspect_container(&id, None).await {
            Ok(c) => c.state.and_then(|s| s.running).unwrap_or(false),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            Err(_) => true,
        };
        if !running {
            // The follow can end a moment before the engine has handed
            // over the last lines: one more read from the cursor.
            return pass(&docker, &id, &mut writer, false)
                .await
                .map_err(|e| e.to_string());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn pass(
    docker: &Docker,
    id: &str,
    writer: &mut Writer,
    follow: bool,
) -> Result<(), bollard::errors::Error> {
    writer.begin();
    let options = LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        since: writer.since(),
        until: 0,
        timestamps: true,
        tail: "all".to_owned(),
    };
    let mut stream = docker.logs(id, Some(options));
    while let Some(item) = stream.next().await {
        let written = match item? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                writer.entry(LogStream::Stdout, &message)
            }
            LogOutput::StdErr { message } => writer.entry(LogStream::Stderr, &message),
            LogOutput::StdIn { .. } => Ok(()),
        };
        if let Err(e) = written {
            tracing::warn!(container = %id, error = %e, "cannot write the container's output to the task's log files");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        let a = Stamp::parse("2024-03-01T12:00:00.123456789Z").unwrap();
        assert_eq!(a.secs, 1_709_294_400);
        assert_eq!(a.nanos, 123_456_789);
        let b = Stamp::parse("2024-03-01T12:00:00.1234Z").unwrap();
        assert!(b < a);
        assert_eq!(
            Stamp::parse("2024-03-01T13:00:00+01:00").unwrap().secs,
            1_709_294_400
        );
        assert_eq!(Stamp::parse("1970-01-01T00:00:01Z").unwrap().millis(), 1000);
        assert!(Stamp::parse("0001-01-01T00:00:00Z").unwrap().secs < 0);
        assert!(Stamp::parse("yesterday").is_none());
    }

    #[test]
    fn cursor_survives_reopen_and_belongs_to_one_container() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CURSOR_FILE);
        let mut c = Cursor::open(&path, "abc").unwrap();
        assert_eq!(c.marks, [None, None]);
        let mark = Mark {
            stamp: Stamp { secs: 5, nanos: 7 },
            count: 2,
        };
        c.store(LogStream::Stderr, mark).unwrap();
        assert_eq!(
            Cursor::open(&path, "abc").unwrap().marks,
            [None, Some(mark)]
        );
        assert_eq!(Cursor::open(&path, "other").unwrap().marks, [None, None]);
    }

    fn writer(dir: &Path) -> Writer {
        let open = |stream| RotatingLog::open(dir, "t", stream, 1 << 20, 2).unwrap();
        Writer {
            stdout: open(LogStream::Stdout),
            stderr: open(LogStream::Stderr),
            cursor: Cursor::open(&dir.join(CURSOR_FILE), "c1").unwrap(),
            skip_at_mark: [0, 0],
        }
    }

    #[test]
    fn a_second_read_writes_only_what_is_new_per_stream_and_keeps_parts_of_a_long_line() {
        let dir = tempfile::tempdir().unwrap();
        // As the engine sends them: stderr's stamp earlier than stdout's
        // entry before it; two parts of one long line with one stamp.
        let entries: [(LogStream, &[u8]); 5] = [
            (LogStream::Stdout, b"2024-01-01T00:00:01.000000002Z a\n"),
            (LogStream::Stderr, b"2024-01-01T00:00:01.000000001Z e\n"),
            (LogStream::Stdout, b"2024-01-01T00:00:01.000000003Z long-"),
            (LogStream::Stdout, b"2024-01-01T00:00:01.000000003Z part\n"),
            (LogStream::Stdout, b"2024-01-01T00:00:02Z b\n"),
        ];
        let mut w = writer(dir.path());
        w.begin();
        for (stream, entry) in &entries[..4] {
            w.entry(*stream, entry).unwrap();
        }
        drop(w);
        // A new agent reads everything again, then more.
        let mut w = writer(dir.path());
        w.begin();
        for (stream, entry) in &entries {
            w.entry(*stream, entry).unwrap();
        }
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("t.stdout.0"), "a\nlong-part\nb\n");
        assert_eq!(read("t.stderr.0"), "e\n");
    }
}
