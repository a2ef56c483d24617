//! Container output in the CRI log format, one line per record:
//! `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>`. `P` marks a
//! partial line (a chunk of a line longer than the buffer, or output cut off
//! without a newline), `F` the end of a line. Owns the log file and its
//! reopening; must not interpret the content.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The longest line content kept in one record; longer lines are split into
/// `P` records, as containerd does.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Splits a byte stream into CRI log records.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; calls `emit(content, full)` for every record completed.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8], bool)) {
        while let Some(newline) = data.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&data[..newline]);
            self.flush_long(emit);
            emit(&self.pending, true);
            self.pending.clear();
            data = &data[newline + 1..];
        }
        self.pending.extend_from_slice(data);
        self.flush_long(emit);
    }

    fn flush_long(&mut self, emit: &mut impl FnMut(&[u8], bool)) {
        while self.pending.len() > MAX_LINE {
            emit(&self.pending[..MAX_LINE], false);
            self.pending.drain(..MAX_LINE);
        }
    }

    /// At end of stream: what is left, as a partial record.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8], bool)) {
        if !self.pending.is_empty() {
            emit(&self.pending, false);
            self.pending.clear();
        }
    }
}

/// Formats one record.
pub fn format_record(now: jiff::Timestamp, stream: Stream, full: bool, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 48);
    let stamp = format!(
        "{}.{:09}Z",
        now.strftime("%Y-%m-%dT%H:%M:%S"),
        now.subsec_nanosecond().max(0)
    );
    out.extend_from_slice(stamp.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(if full { b" F " } else { b" P " });
    out.extend_from_slice(content);
    out.push(b'\n');
    out
}

/// The log file of one container, with a splitter per stream.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    stdout: LineSplitter,
    stderr: LineSplitter,
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogWriter {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(LogWriter {
            path: path.to_path_buf(),
            file: Some(open(path)?),
            stdout: LineSplitter::default(),
            stderr: LineSplitter::default(),
        })
    }

    /// Reopens the file at the same path (after rotation moved it away).
    pub fn reopen(&mut self) -> std::io::Result<()> {
        self.file = Some(open(&self.path)?);
        Ok(())
    }

    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let Self {
            file,
            stdout,
            stderr,
            ..
        } = self;
        let splitter = match stream {
            Stream::Stdout => stdout,
            Stream::Stderr => stderr,
        };
        splitter.feed(data, &mut |content, full| {
            write_record(file, stream, full, content)
        });
    }

    /// Flushes partial lines at end of output.
    pub fn finish(&mut self) {
        let Self {
            file,
            stdout,
            stderr,
            ..
        } = self;
        stdout.finish(&mut |c, full| write_record(file, Stream::Stdout, full, c));
        stderr.finish(&mut |c, full| write_record(file, Stream::Stderr, full, c));
    }
}

fn write_record(file: &mut Option<File>, stream: Stream, full: bool, content: &[u8]) {
    if let Some(f) = file {
        let record = format_record(jiff::Timestamp::now(), stream, full, content);
        // A full disk must not stop the container: the record is dropped.
        let _ = f.write_all(&record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut s = LineSplitter::default();
        for c in chunks {
            s.feed(c, &mut |content, full| {
                out.push((String::from_utf8_lossy(content).into_owned(), full))
            });
        }
        s.finish(&mut |content, full| {
            out.push((String::from_utf8_lossy(content).into_owned(), full))
        });
        out
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        assert_eq!(
            records(&[b"hel", b"lo\nwor", b"ld\n"]),
            vec![("hello".into(), true), ("world".into(), true)]
        );
    }

    #[test]
    fn output_without_final_newline_is_partial() {
        assert_eq!(
            records(&[b"a\nb"]),
            vec![("a".into(), true), ("b".into(), false)]
        );
        assert_eq!(records(&[b"\n"]), vec![("".into(), true)]);
    }

    #[test]
    fn long_lines_become_partial_records() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut data = long.clone();
        data.push(b'\n');
        let r = records(&[&data]);
        assert_eq!(r.len(), 3);
        assert!(!r[0].1 && !r[1].1 && r[2].1);
        assert_eq!(r[0].0.len(), MAX_LINE);
        assert_eq!(r[2].0.len(), 10);
    }

    #[test]
    fn record_format_matches_cri() {
        let t: jiff::Timestamp = "2016-10-06T00:17:09.669794202Z".parse().unwrap();
        let r = format_record(t, Stream::Stderr, true, b"log content");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "2016-10-06T00:17:09.669794202Z stderr F log content\n"
        );
        let t: jiff::Timestamp = "2016-10-06T00:17:09Z".parse().unwrap();
        let r = format_record(t, Stream::Stdout, false, b"x");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "2016-10-06T00:17:09.000000000Z stdout P x\n"
        );
    }

    #[test]
    fn writer_appends_and_reopens_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(Stream::Stdout, b"one\n");
        std::fs::rename(&path, dir.path().join("c/0.log.1")).unwrap();
        w.reopen().unwrap();
        w.write(Stream::Stderr, b"two\n");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with(" stderr F two\n"), "{text}");
        assert!(!text.contains("one"));
    }
}
