//! A small binary codec for fitted parameters (artifact bytes of [`FittedModel::save`]
//! (crate::FittedModel::save)): little-endian integers, `f64` as raw bits (so a round trip is
//! bit-identical, NaN and infinities included), length-prefixed strings and slices. The
//! [`Decoder`] never panics on bad input: a short or malformed buffer is an
//! [`Error::Model`](crate::Error::Model) naming the model kind and what was being read.

use crate::{Error, Result};

/// Appends values to a byte buffer.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty buffer that starts with `tag` (e.g. the model kind), checked by
    /// [`Decoder::new`].
    pub fn new(tag: &str) -> Encoder {
        let mut e = Encoder::default();
        e.str(tag);
        e
    }
    /// A byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// A flag.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    /// An unsigned 64-bit integer.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A size or index.
    pub fn usize(&mut self, v: usize) {
        self.u64(v as u64);
    }
    /// A float, bit for bit.
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    /// A length-prefixed slice of floats.
    pub fn f64s(&mut self, v: &[f64]) {
        self.usize(v.len());
        self.buf.reserve(v.len() * 8);
        for &x in v {
            self.f64(x);
        }
    }
    /// A length-prefixed slice of sizes.
    pub fn usizes(&mut self, v: &[usize]) {
        self.usize(v.len());
        for &x in v {
            self.usize(x);
        }
    }
    /// A length-prefixed slice of 32-bit integers.
    pub fn u32s(&mut self, v: &[u32]) {
        self.usize(v.len());
        for &x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    /// A length-prefixed slice of flags.
    pub fn bools(&mut self, v: &[bool]) {
        self.usize(v.len());
        self.buf.extend(v.iter().map(|&b| u8::from(b)));
    }
    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, v: &str) {
        self.usize(v.len());
        self.buf.extend_from_slice(v.as_bytes());
    }
    /// A matrix: rows, columns, then the values row by row.
    pub fn matrix(&mut self, m: &ndarray::Array2<f64>) {
        self.usize(m.nrows());
        self.usize(m.ncols());
        for &x in m.iter() {
            self.f64(x);
        }
    }
    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads what an [`Encoder`] wrote, in the same order.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
    kind: String,
}

impl<'a> Decoder<'a> {
    /// Start reading `bytes` saved by model kind `kind`; the leading tag must be `kind`.
    pub fn new(bytes: &'a [u8], kind: &str) -> Result<Decoder<'a>> {
        let mut d = Decoder { bytes, pos: 0, kind: kind.to_string() };
        let tag = d.str("the kind tag")?;
        if tag != kind {
            return Err(Error::model(kind, format!("these bytes were saved by `{tag}`, not by `{kind}`")));
        }
        Ok(d)
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.bytes.len() - self.pos < n {
            return Err(Error::model(
                &self.kind,
                format!(
                    "saved parameters are truncated or corrupt: reading {what} needs {n} bytes at offset {}, {} left",
                    self.pos,
                    self.bytes.len() - self.pos
                ),
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// A length that must fit in the remaining bytes at `width` bytes per item.
    fn len(&mut self, width: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(width as u64) > left {
            return Err(Error::model(
                &self.kind,
                format!("saved parameters are truncated or corrupt: {what} claims {n} items, {left} bytes left"),
            ));
        }
        Ok(n as usize)
    }
    /// A byte.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    /// A flag.
    pub fn bool(&mut self, what: &str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Error::model(&self.kind, format!("saved parameters are corrupt: {what} is {v}, not a flag"))),
        }
    }
    /// An unsigned 64-bit integer.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    /// A size or index.
    pub fn usize(&mut self, what: &str) -> Result<usize> {
        let v = self.u64(what)?;
        usize::try_from(v)
            .map_err(|_| Error::model(&self.kind, format!("saved parameters are corrupt: {what} = {v} is too large")))
    }
    /// A float.
    pub fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    /// A slice of floats.
    pub fn f64s(&mut self, what: &str) -> Result<Vec<f64>> {
        let n = self.len(8, what)?;
        let raw = self.take(n * 8, what)?;
        Ok(raw.chunks_exact(8).map(|c| f64::from_bits(u64::from_le_bytes(c.try_into().expect("8 bytes")))).collect())
    }
    /// A slice of sizes.
    pub fn usizes(&mut self, what: &str) -> Result<Vec<usize>> {
        let n = self.len(8, what)?;
        (0..n).map(|_| self.usize(what)).collect()
    }
    /// A slice of 32-bit integers.
    pub fn u32s(&mut self, what: &str) -> Result<Vec<u32>> {
        let n = self.len(4, what)?;
        let raw = self.take(n * 4, what)?;
        Ok(raw.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }
    /// A slice of flags.
    pub fn bools(&mut self, what: &str) -> Result<Vec<bool>> {
        let n = self.len(1, what)?;
        (0..n).map(|_| self.bool(what)).collect()
    }
    /// A string.
    pub fn str(&mut self, what: &str) -> Result<String> {
        let n = self.len(1, what)?;
        let raw = self.take(n, what)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| Error::model(&self.kind, format!("saved parameters are corrupt: {what} is not UTF-8")))
    }
    /// A matrix written by [`Encoder::matrix`].
    pub fn matrix(&mut self, what: &str) -> Result<ndarray::Array2<f64>> {
        let (r, c) = (self.usize(what)?, self.usize(what)?);
        let n = r.checked_mul(c).filter(|&n| n.saturating_mul(8) <= self.bytes.len() - self.pos).ok_or_else(|| {
            Error::model(&self.kind, format!("saved parameters are truncated or corrupt: {what} claims {r}x{c} values"))
        })?;
        let raw = self.take(n * 8, what)?;
        let v = raw.chunks_exact(8).map(|c| f64::from_bits(u64::from_le_bytes(c.try_into().expect("8 bytes"))));
        ndarray::Array2::from_shape_vec((r, c), v.collect()).map_err(|e| {
            Error::model(&self.kind, format!("saved parameters are corrupt: {what} claims {r}x{c} values ({e})"))
        })
    }
    /// An error for a value that was read but makes no sense (e.g. an index out of range).
    pub fn corrupt(&self, what: impl std::fmt::Display) -> Error {
        Error::model(&self.kind, format!("saved parameters are corrupt: {what}"))
    }
    /// Whether every byte was read (an optional trailing section is absent).
    pub fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
    /// Check that every byte was read.
    pub fn finish(&self) -> Result<()> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.corrupt(format!("{} unread bytes after the parameters", self.bytes.len() - self.pos)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut e = Encoder::new("x.model");
        e.f64(f64::NAN);
        e.f64s(&[1.5, f64::INFINITY, -0.0]);
        e.usizes(&[3, 4]);
        e.u32s(&[7]);
        e.bools(&[true, false]);
        e.str("hé");
        e.matrix(&ndarray::array![[1.0, 2.0], [3.0, 4.0]]);
        let bytes = e.finish();
        let mut d = Decoder::new(&bytes, "x.model").unwrap();
        assert!(d.f64("a").unwrap().is_nan());
        let v = d.f64s("b").unwrap();
        assert_eq!((v[0], v[1], v[2].to_bits()), (1.5, f64::INFINITY, (-0.0f64).to_bits()));
        assert_eq!(d.usizes("c").unwrap(), vec![3, 4]);
        assert_eq!(d.u32s("d").unwrap(), vec![7]);
        assert_eq!(d.bools("e").unwrap(), vec![true, false]);
        assert_eq!(d.str("f").unwrap(), "hé");
        assert_eq!(d.matrix("g").unwrap(), ndarray::array![[1.0, 2.0], [3.0, 4.0]]);
        d.finish().unwrap();
        for cut in [0, 5, 20, bytes.len() - 1] {
            let r = Decoder::new(&bytes[..cut], "x.model").and_then(|mut d| {
                d.f64("a")?;
                d.f64s("b")?;
                d.usizes("c")?;
                d.u32s("d")?;
                d.bools("e")?;
                d.str("f")?;
                d.matrix("g").map(|_| ())
            });
            assert!(r.unwrap_err().to_string().contains("truncated"), "cut {cut}");
        }
        let e = Decoder::new(&bytes, "y.model").unwrap_err().to_string();
        assert!(e.contains("saved by `x.model`"), "{e}");
    }
}
