//! [`BoundedLines`]: splits a byte stream into lines of bounded length, for the IPC channel.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// One item of a [`BoundedLines`] stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Line {
    /// A complete line, without its `\n`.
    Line(BytesMut),
    /// A line longer than the limit; its bytes were discarded as they arrived, up to and
    /// including its `\n`.
    TooLong,
}

/// A newline decoder that never buffers more than its limit (plus one read).
///
/// Unlike `LinesCodec`, an overlong line or bytes that are not UTF-8 do not end the stream:
/// the line is reported as [`Line::TooLong`] (or handed on raw) and the next one is read, so
/// one bad message cannot cut a worker's heartbeats off.
#[derive(Debug)]
pub(super) struct BoundedLines {
    max: usize,
    /// Bytes of the buffer already searched for `\n`.
    searched: usize,
    /// Inside an overlong line: drop bytes until its end.
    discarding: bool,
}

impl BoundedLines {
    /// A decoder of lines up to `max` bytes (without the newline).
    pub(super) fn new(max: usize) -> Self {
        Self { max, searched: 0, discarding: false }
    }
}

impl Decoder for BoundedLines {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, Self::Error> {
        loop {
            let newline = buf[self.searched..].iter().position(|&b| b == b'\n');
            match (self.discarding, newline) {
                (false, Some(at)) => {
                    let end = self.searched + at;
                    self.searched = 0;
                    if end > self.max {
                        let _ = buf.split_to(end + 1);
                        return Ok(Some(Line::TooLong));
                    }
                    let mut line = buf.split_to(end + 1);
                    line.truncate(end);
                    return Ok(Some(Line::Line(line)));
                }
                (false, None) if buf.len() > self.max => {
                    buf.clear();
                    self.searched = 0;
                    self.discarding = true;
                    return Ok(Some(Line::TooLong));
                }
                (false, None) => {
                    self.searched = buf.len();
                    return Ok(None);
                }
                (true, Some(at)) => {
                    let _ = buf.split_to(self.searched + at + 1);
                    self.searched = 0;
                    self.discarding = false;
                }
                (true, None) => {
                    buf.clear();
                    self.searched = 0;
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, Self::Error> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        // A last line without its newline still counts; the rest of an overlong one does not.
        self.searched = 0;
        if self.discarding || buf.is_empty() {
            buf.clear();
            return Ok(None);
        }
        Ok(Some(Line::Line(buf.split())))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::FramedRead;

    use super::*;

    fn decode_all(d: &mut BoundedLines, buf: &mut BytesMut) -> Vec<Line> {
        std::iter::from_fn(|| d.decode(buf).unwrap()).collect()
    }

    fn line(s: &str) -> Line {
        Line::Line(BytesMut::from(s))
    }

    #[test]
    fn splits_lines_across_reads() {
        let mut d = BoundedLines::new(16);
        let mut buf = BytesMut::from("{\"a\":1}\n{\"b\"");
        assert_eq!(decode_all(&mut d, &mut buf), vec![line("{\"a\":1}")]);
        buf.extend_from_slice(b":2}\n\n");
        assert_eq!(decode_all(&mut d, &mut buf), vec![line("{\"b\":2}"), line("")]);
        assert!(buf.is_empty());
    }

    #[test]
    fn an_overlong_line_is_dropped_as_it_arrives_and_the_next_one_is_read() {
        let mut d = BoundedLines::new(8);
        let mut buf = BytesMut::from("0123456789");
        assert_eq!(decode_all(&mut d, &mut buf), vec![Line::TooLong]);
        assert!(buf.is_empty(), "the overlong bytes are not kept");
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'x'; 4096]);
            assert_eq!(decode_all(&mut d, &mut buf), vec![]);
            assert!(buf.is_empty(), "a line without end never grows the buffer");
        }
        buf.extend_from_slice(b"xxx\nok\n");
        assert_eq!(decode_all(&mut d, &mut buf), vec![line("ok")]);
        // Exactly at the limit is fine; one more byte with its newline in the same read is not.
        buf.extend_from_slice(b"12345678\n123456789\nend\n");
        assert_eq!(
            decode_all(&mut d, &mut buf),
            vec![line("12345678"), Line::TooLong, line("end")]
        );
    }

    #[tokio::test]
    async fn reads_a_stream_to_its_end() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            tx.write_all(b"one\n").await.unwrap();
            tx.write_all(&[b'z'; 1000]).await.unwrap();
            tx.write_all(b"\ntwo\nlast").await.unwrap();
        });
        let lines: Vec<Line> =
            FramedRead::new(rx, BoundedLines::new(100)).map(Result::unwrap).collect().await;
        writer.await.unwrap();
        assert_eq!(lines, vec![line("one"), Line::TooLong, line("two"), line("last")]);
    }
}
