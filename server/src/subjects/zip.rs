//! A small ZIP writer (deflate, with ZIP64 left out): an export's archive is built in memory,
//! entry by entry, and read by any unzip tool.
//!
//! Limits: entries and the archive stay under 4 GiB and 65,535 entries (the export refuses
//! more before it gets here); names are UTF-8 (general purpose flag bit 11); times are the
//! DOS epoch's 1980-01-01, since an export's entries carry their own times inside.

use std::io::Write;

use flate2::write::DeflateEncoder;
use flate2::Compression;

/// The most entries an archive without ZIP64 holds.
/// (65,535 itself means "see ZIP64" to strict readers.)
pub const MAX_ENTRIES: usize = u16::MAX as usize - 1;
/// The largest archive without ZIP64 (0xFFFFFFFF itself means "see ZIP64").
pub const MAX_BYTES: u64 = u32::MAX as u64 - 1;

/// Why an entry could not be added.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// Past the format's limits without ZIP64.
    #[error("the archive would exceed {0}")]
    TooLarge(&'static str),
    /// Compression failed (out of memory).
    #[error("compression failed: {0}")]
    Io(#[from] std::io::Error),
}

struct Entry {
    name: String,
    crc: u32,
    compressed: u32,
    size: u32,
    offset: u32,
}

/// An archive being written.
#[derive(Default)]
pub struct ZipWriter {
    out: Vec<u8>,
    entries: Vec<Entry>,
}

const UTF8: u16 = 1 << 11;
const DEFLATE: u16 = 8;
/// 1980-01-01 in DOS date form (time 00:00).
const DOS_DATE: u16 = (1 << 5) | 1;

impl ZipWriter {
    /// An empty archive.
    pub fn new() -> ZipWriter {
        ZipWriter::default()
    }

    /// Adds a file named `name` (a relative path with `/`) holding `data`.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<(), ZipError> {
        if self.entries.len() >= MAX_ENTRIES {
            return Err(ZipError::TooLarge("65,535 entries"));
        }
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data)?;
        let compressed = encoder.finish()?;
        let fits = |n: usize| {
            u32::try_from(n)
                .ok()
                .filter(|n| *n < u32::MAX)
                .ok_or(ZipError::TooLarge("4 GiB"))
        };
        let entry = Entry {
            name: name.to_owned(),
            crc: crc32fast::hash(data),
            compressed: fits(compressed.len())?,
            size: fits(data.len())?,
            offset: fits(self.out.len())?,
        };
        let name_len =
            u16::try_from(name.len()).map_err(|_| ZipError::TooLarge("a 65,535-byte name"))?;
        let out = &mut self.out;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&UTF8.to_le_bytes());
        out.extend_from_slice(&DEFLATE.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&entry.crc.to_le_bytes());
        out.extend_from_slice(&entry.compressed.to_le_bytes());
        out.extend_from_slice(&entry.size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&compressed);
        if out.len() as u64 > MAX_BYTES {
            return Err(ZipError::TooLarge("4 GiB"));
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The finished archive.
    pub fn finish(mut self) -> Result<Vec<u8>, ZipError> {
        let start = self.out.len();
        let out = &mut self.out;
        for e in &self.entries {
            out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            out.extend_from_slice(&20u16.to_le_bytes()); // made by
            out.extend_from_slice(&20u16.to_le_bytes()); // needed
            out.extend_from_slice(&UTF8.to_le_bytes());
            out.extend_from_slice(&DEFLATE.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&DOS_DATE.to_le_bytes());
            out.extend_from_slice(&e.crc.to_le_bytes());
            out.extend_from_slice(&e.compressed.to_le_bytes());
            out.extend_from_slice(&e.size.to_le_bytes());
            out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // extra
            out.extend_from_slice(&0u16.to_le_bytes()); // comment
            out.extend_from_slice(&0u16.to_le_bytes()); // disk
            out.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            out.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(e.name.as_bytes());
        }
        let size = u32::try_from(out.len() - start).map_err(|_| ZipError::TooLarge("4 GiB"))?;
        let offset = u32::try_from(start).map_err(|_| ZipError::TooLarge("4 GiB"))?;
        let count = self.entries.len() as u16;
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_has_its_entries_and_directory() {
        let mut zip = ZipWriter::new();
        zip.add("a.json", b"{\"x\":1}").unwrap();
        zip.add("files/b.txt", &[7u8; 10_000]).unwrap();
        let bytes = zip.finish().unwrap();
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        let end = bytes.len() - 22;
        assert_eq!(&bytes[end..end + 4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([bytes[end + 10], bytes[end + 11]]), 2);
        // The second entry compressed well below its size.
        assert!(bytes.len() < 2_000, "{}", bytes.len());
    }
}
