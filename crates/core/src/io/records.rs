//! The records of a delimited text file, read as a stream: one record in memory at a time,
//! whatever the file's size. A record is a line split at a delimiter (with `"` quoting, `""`
//! for a quote inside quotes, and line ends inside quotes kept), or at runs of whitespace.
//!
//! Lines end at `\n`, `\r\n` or a lone `\r`, and are counted as an editor counts them, so every
//! record carries the line it starts on. Blank lines are skipped. Text that is not UTF-8 and a
//! quote that never closes are errors naming the file and the line.

use crate::{Error, Result};
use std::io::{BufRead, Read};

/// Bytes of a file's start read to detect its delimiter (or its first 50 lines, if fewer).
const SNIFF_BYTES: usize = 1 << 20;

/// How a physical line ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineEnd {
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
    /// A lone `\r`.
    Cr,
    /// The end of the file, after a last line with no line end.
    Eof,
}

impl LineEnd {
    fn text(self) -> &'static str {
        match self {
            LineEnd::Lf => "\n",
            LineEnd::CrLf => "\r\n",
            LineEnd::Cr => "\r",
            LineEnd::Eof => "",
        }
    }
}

/// A stream of records (see the module documentation). [`Records::next_record`] reads the next
/// one; [`Records::field`] and [`Records::len`] look into it.
pub(crate) struct Records<'a> {
    input: Box<dyn BufRead + 'a>,
    name: &'a str,
    /// The delimiter; `b' '` splits at runs of whitespace (and quotes are ordinary text).
    delimiter: u8,
    /// Physical lines read so far: the number of the line in `raw`.
    line: usize,
    /// Bytes read before the line in `raw` (for the place of a bad UTF-8 byte).
    offset: usize,
    /// Bytes of the line end after the line in `raw`.
    end_len: usize,
    /// The last physical line read, without its line end.
    raw: Vec<u8>,
    /// The current record's fields, unescaped, back to back.
    buf: String,
    /// Where each field of the current record ends in `buf`.
    ends: Vec<usize>,
}

impl<'a> Records<'a> {
    /// Records of `input` (a file's text; `name` is used in errors). With no delimiter given,
    /// it is detected from the first lines ([`super::detect_delimiter`]).
    pub(crate) fn new(mut input: Box<dyn BufRead + 'a>, name: &'a str, delimiter: Option<u8>) -> Result<Records<'a>> {
        let io = |e: std::io::Error| Error::DataAt {
            path: name.into(),
            line: 1,
            column: "?".into(),
            message: format!("cannot read: {e}"),
        };
        let delimiter = match delimiter {
            Some(d) => d,
            None => {
                // Read the start, detect, and put it back in front of the rest.
                let mut head = Vec::new();
                loop {
                    let avail = input.fill_buf().map_err(io)?;
                    if avail.is_empty() {
                        break;
                    }
                    head.extend_from_slice(avail);
                    let n = avail.len();
                    input.consume(n);
                    let ends = memchr::memchr2_iter(b'\n', b'\r', &head).count();
                    if ends > 50 || head.len() >= SNIFF_BYTES {
                        break;
                    }
                }
                let d = sniff(&head);
                input = Box::new(std::io::Cursor::new(head).chain(input));
                d
            }
        };
        Ok(Records {
            input,
            name,
            delimiter,
            line: 0,
            offset: 0,
            end_len: 0,
            raw: Vec::new(),
            buf: String::new(),
            ends: Vec::new(),
        })
    }

    /// The delimiter in use (`b' '` for runs of whitespace).
    pub(crate) fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Number of fields of the current record.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `j` of the current record.
    pub(crate) fn field(&self, j: usize) -> &str {
        let start = if j == 0 { 0 } else { self.ends[j - 1] };
        &self.buf[start..self.ends[j]]
    }

    fn error(&self, line: usize, message: String) -> Error {
        Error::DataAt { path: self.name.into(), line, column: "?".into(), message }
    }

    /// Read the next physical line into `raw`; `None` at the end of the file.
    fn physical_line(&mut self) -> Result<Option<LineEnd>> {
        self.offset += self.raw.len() + self.end_len;
        self.end_len = 0;
        self.raw.clear();
        let mut any = false;
        loop {
            let avail = match self.input.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.error(self.line + 1, e.to_string())),
            };
            if avail.is_empty() {
                if !any {
                    return Ok(None);
                }
                self.line += 1;
                return Ok(Some(LineEnd::Eof));
            }
            any = true;
            match memchr::memchr2(b'\n', b'\r', avail) {
                Some(i) => {
                    let cr = avail[i] == b'\r';
                    self.raw.extend_from_slice(&avail[..i]);
                    self.input.consume(i + 1);
                    self.end_len = 1;
                    self.line += 1;
                    if !cr {
                        return Ok(Some(LineEnd::Lf));
                    }
                    // A `\r`: one line end with a `\n` right after it.
                    let next = loop {
                        match self.input.fill_buf() {
                            Ok(a) => break a.first().copied(),
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(self.error(self.line + 1, e.to_string())),
                        }
                    };
                    if next == Some(b'\n') {
                        self.input.consume(1);
                        self.end_len = 2;
                        return Ok(Some(LineEnd::CrLf));
                    }
                    return Ok(Some(LineEnd::Cr));
                }
                None => {
                    let n = avail.len();
                    self.raw.extend_from_slice(avail);
                    self.input.consume(n);
                }
            }
        }
    }

    /// The line in `raw` as text (a UTF-8 byte order mark at the file's start is dropped), or
    /// an error naming the line and the byte of the file that is not UTF-8.
    fn text(&self) -> Result<&str> {
        let skip = if self.offset == 0 && self.raw.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        std::str::from_utf8(&self.raw[skip..]).map_err(|e| {
            self.error(self.line, format!("not valid UTF-8 (byte {})", self.offset + skip + e.valid_up_to()))
        })
    }

    /// Read the next record (blank lines are skipped); its first line, or `None` at the end.
    pub(crate) fn next_record(&mut self) -> Result<Option<usize>> {
        loop {
            let Some(mut end) = self.physical_line()? else { return Ok(None) };
            let first = self.line;
            let mut buf = std::mem::take(&mut self.buf);
            let mut ends = std::mem::take(&mut self.ends);
            buf.clear();
            ends.clear();
            if self.delimiter == b' ' {
                for w in self.text()?.split_whitespace() {
                    buf.push_str(w);
                    ends.push(buf.len());
                }
            } else {
                let d = self.delimiter;
                // Where a quoted field opened, while inside one.
                let mut open: Option<usize> = None;
                let mut field_start = true;
                loop {
                    let s = self.text()?;
                    let b = s.as_bytes();
                    let (mut i, mut seg) = (0, 0);
                    while i < b.len() {
                        if open.is_some() {
                            if b[i] == b'"' {
                                buf.push_str(&s[seg..i]);
                                if b.get(i + 1) == Some(&b'"') {
                                    buf.push('"');
                                    i += 1;
                                } else {
                                    open = None;
                                }
                                seg = i + 1;
                            }
                        } else if b[i] == d {
                            buf.push_str(&s[seg..i]);
                            ends.push(buf.len());
                            seg = i + 1;
                            field_start = true;
                            i += 1;
                            continue;
                        } else if b[i] == b'"' && field_start {
                            open = Some(self.line);
                            seg = i + 1;
                        }
                        field_start = false;
                        i += 1;
                    }
                    buf.push_str(&s[seg..]);
                    let Some(opened) = open else { break };
                    // A line end inside quotes belongs to the field.
                    buf.push_str(end.text());
                    match (end, self.physical_line()?) {
                        (LineEnd::Eof, _) | (_, None) => {
                            return Err(self.error(
                                opened,
                                "a quoted field opens here and is never closed (unterminated `\"`)".into(),
                            ));
                        }
                        (_, Some(e)) => end = e,
                    }
                }
                ends.push(buf.len());
            }
            let blank = ends.is_empty() || (ends.len() == 1 && buf.trim().is_empty());
            self.buf = buf;
            self.ends = ends;
            if !blank {
                return Ok(Some(first));
            }
        }
    }
}

/// The delimiter of a file that starts with `head`: [`super::detect_delimiter`] on its complete
/// lines; a comma when they are all blank.
fn sniff(head: &[u8]) -> u8 {
    let complete = match memchr::memrchr2(b'\n', b'\r', head) {
        Some(i) if head.len() >= SNIFF_BYTES => &head[..i],
        _ => head,
    };
    let text = String::from_utf8_lossy(complete);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() { b',' } else { super::detect_delimiter(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record with its line, read through a buffer of `capacity` bytes.
    fn records(text: &[u8], capacity: usize, delimiter: Option<u8>) -> Result<Vec<(usize, Vec<String>)>> {
        let input = Box::new(std::io::BufReader::with_capacity(capacity, text));
        let mut r = Records::new(input, "t.csv", delimiter)?;
        let mut out = Vec::new();
        while let Some(line) = r.next_record()? {
            out.push((line, (0..r.len()).map(|j| r.field(j).to_string()).collect()));
        }
        Ok(out)
    }

    /// A buffer of one byte splits every `\r\n`, quote pair and UTF-8 character across reads;
    /// the records are those read from one buffer holding the whole text.
    #[test]
    fn records_do_not_depend_on_where_reads_split_the_text() {
        let text = "\u{feff}a,b,c\r\n1,\"x\r\ny\",\"say \"\"hi\"\"\"\r\n\r\n  \n2,é,\"\"\r3,\"ab\"cd,\n4,5,6";
        let whole = records(text.as_bytes(), 1 << 16, None).unwrap();
        let expected: Vec<(usize, Vec<String>)> = vec![
            (1, vec!["a".into(), "b".into(), "c".into()]),
            (2, vec!["1".into(), "x\r\ny".into(), "say \"hi\"".into()]),
            (6, vec!["2".into(), "é".into(), "".into()]),
            (7, vec!["3".into(), "abcd".into(), "".into()]),
            (8, vec!["4".into(), "5".into(), "6".into()]),
        ];
        assert_eq!(whole, expected);
        for capacity in [1, 2, 3, 7] {
            assert_eq!(records(text.as_bytes(), capacity, None).unwrap(), expected, "capacity {capacity}");
        }
        let ws = records(b" id  n\r 1 2\r\n\r 3\t4", 1, Some(b' ')).unwrap();
        assert_eq!(
            ws,
            vec![
                (1, vec!["id".into(), "n".into()]),
                (2, vec!["1".into(), "2".into()]),
                (4, vec!["3".into(), "4".into()])
            ]
        );
    }

    #[test]
    fn bad_utf8_and_open_quotes_name_their_line() {
        let e = records(b"a,b\n1,2\r\n3,\xff\n", 1, None).unwrap_err().to_string();
        assert_eq!(e, "t.csv:3: column `?`: not valid UTF-8 (byte 11)");
        let e = records(b"a,b\n1,\"2\n3,4\n", 1, None).unwrap_err().to_string();
        assert!(e.starts_with("t.csv:2:") && e.contains("never closed"), "{e}");
    }
}
