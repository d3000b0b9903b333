//! Compressed data files: gzip (`.gz`, `.gzip`) and zstd (`.zst`, `.zstd`), chosen by the last
//! extension; the extension before it decides the format (`events.csv.gz` is CSV,
//! `log.txt.zst` text). Files are decompressed as a stream (a bounded buffer, whatever the
//! file's size), and a corrupt or truncated file is an error naming the file and the line the
//! decompressed text had reached, never a panic or a silently short table.

use crate::{Error, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Bytes of decompressed text buffered ahead of the reader.
const BUFFER: usize = 1 << 20;

/// How a data file is compressed, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (`.gz`, `.gzip`); several concatenated members are read as one stream.
    Gzip,
    /// Zstandard (`.zst`, `.zstd`); several concatenated frames are read as one stream.
    Zstd,
}

impl Compression {
    /// The compression of `path`, by its last extension (case-insensitive).
    pub fn of(path: &Path) -> Compression {
        match last_extension(path).as_str() {
            "gz" | "gzip" => Compression::Gzip,
            "zst" | "zstd" => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The format's name, for messages (`gzip`, `zstd`; `none`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

fn last_extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

/// The extension that decides a data file's format, lowercased: the last one, or for a
/// compressed file the one before the compression's (`events.csv.gz` and `events.csv` give
/// `csv`; `log.zst` gives the empty string).
pub fn format_extension(path: &Path) -> String {
    match Compression::of(path) {
        Compression::None => last_extension(path),
        _ => path.file_stem().map(Path::new).map(last_extension).unwrap_or_default(),
    }
}

/// Whether `path` names a Parquet file (`.parquet`, `.pq`, uncompressed: Parquet compresses its
/// pages itself).
pub fn is_parquet_file(path: &Path) -> bool {
    Compression::of(path) == Compression::None && matches!(format_extension(path).as_str(), "parquet" | "pq")
}

/// A compressed Parquet file (`data.parquet.gz`) cannot be read: the error saying so, or `Ok`.
pub fn refuse_compressed_parquet(path: &Path) -> Result<()> {
    let c = Compression::of(path);
    if c != Compression::None && matches!(format_extension(path).as_str(), "parquet" | "pq") {
        return Err(Error::data(format!(
            "{}: a {} compressed Parquet file cannot be read; Parquet compresses its pages itself: \
             decompress the file (or write it with a Parquet codec)",
            path.display(),
            c.name()
        )));
    }
    Ok(())
}

/// Turns a decoder's errors into messages that say the compressed data is at fault (a
/// decoder's "invalid data" would otherwise read as a text encoding problem).
struct Decoding<R> {
    inner: R,
    format: Compression,
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::Interrupted {
                e
            } else {
                std::io::Error::other(format!("the {} data is corrupt or cut short ({e})", self.format.name()))
            }
        })
    }
}

/// Open the data file `path` for reading, decompressing it as a stream when its extension says
/// it is compressed ([`Compression::of`]); memory does not grow with the file.
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    Ok(match Compression::of(path) {
        Compression::None => Box::new(BufReader::with_capacity(BUFFER, file)),
        Compression::Gzip => {
            let inner = flate2::read::MultiGzDecoder::new(file);
            Box::new(BufReader::with_capacity(BUFFER, Decoding { inner, format: Compression::Gzip }))
        }
        Compression::Zstd => {
            let inner = zstd::stream::read::Decoder::new(file).map_err(io)?;
            Box::new(BufReader::with_capacity(BUFFER, Decoding { inner, format: Compression::Zstd }))
        }
    })
}

/// The bytes of the data file `path`, decompressed when it is compressed. A decompression
/// failure names the file and the line the text had reached.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    if Compression::of(path) == Compression::None {
        return std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source });
    }
    let mut reader = open_text(path)?;
    let mut bytes = Vec::new();
    match reader.read_to_end(&mut bytes) {
        Ok(_) => Ok(bytes),
        Err(e) => Err(Error::DataAt {
            path: path.display().to_string(),
            line: bytes.iter().filter(|&&b| b == b'\n').count() + 1,
            column: "?".into(),
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn text() -> String {
        (0..5000).map(|i| format!("{i},{}\n", i * 7)).collect::<String>()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn extensions_decide_compression_and_format() {
        let p = |s: &str| Path::new(s).to_path_buf();
        assert_eq!(Compression::of(&p("a/events.csv.gz")), Compression::Gzip);
        assert_eq!(Compression::of(&p("log.txt.ZST")), Compression::Zstd);
        assert_eq!(Compression::of(&p("log.txt.zstd")), Compression::Zstd);
        assert_eq!(Compression::of(&p("log.txt")), Compression::None);
        assert_eq!(format_extension(&p("a/events.csv.gz")), "csv");
        assert_eq!(format_extension(&p("t.Parquet")), "parquet");
        assert_eq!(format_extension(&p("log.zst")), "");
        assert!(is_parquet_file(&p("t.pq")) && !is_parquet_file(&p("t.parquet.gz")));
        assert!(refuse_compressed_parquet(&p("t.parquet.gz")).unwrap_err().to_string().contains("Parquet"));
    }

    #[test]
    fn gzip_and_zstd_round_trip_including_concatenated_members() {
        let dir = tempfile::tempdir().unwrap();
        let t = text();
        let gz = dir.path().join("t.csv.gz");
        // Two gzip members, as `cat a.gz b.gz` makes.
        let mut two = gzip(&t.as_bytes()[..1000]);
        two.extend(gzip(&t.as_bytes()[1000..]));
        std::fs::write(&gz, two).unwrap();
        assert_eq!(read_bytes(&gz).unwrap(), t.as_bytes());
        let zst = dir.path().join("t.csv.zst");
        std::fs::write(&zst, zstd::encode_all(t.as_bytes(), 3).unwrap()).unwrap();
        assert_eq!(read_bytes(&zst).unwrap(), t.as_bytes());
    }

    #[test]
    fn truncated_and_corrupt_files_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let t = text();
        let full = gzip(t.as_bytes());
        let cut = dir.path().join("cut.csv.gz");
        std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
        let e = read_bytes(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.csv.gz:") && e.contains("gzip data is corrupt or cut short"), "{e}");
        let zfull = zstd::encode_all(t.as_bytes(), 3).unwrap();
        let zcut = dir.path().join("cut.csv.zst");
        std::fs::write(&zcut, &zfull[..zfull.len() / 2]).unwrap();
        let e = read_bytes(&zcut).unwrap_err().to_string();
        assert!(e.contains("cut.csv.zst:") && e.contains("zstd data is corrupt or cut short"), "{e}");
        let junk = dir.path().join("junk.csv.gz");
        std::fs::write(&junk, b"this is not gzip at all\n").unwrap();
        let e = read_bytes(&junk).unwrap_err().to_string();
        assert!(e.contains("junk.csv.gz:1: ") && e.contains("gzip"), "{e}");
    }
}
