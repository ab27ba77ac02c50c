//! What Concord learns from a file's bytes: its content type (never the client's claim),
//! whether a browser may show it inline, and a thumbnail for common image types.
//!
//! Thumbnails are bounded three ways: the source's size (`files.thumbnail_max_source_bytes`),
//! its pixel count read from the header before decoding (`files.thumbnail_max_pixels`, which
//! also sets the decoder's allocation cap), and how many decode at once
//! (`files.thumbnail_concurrency`, a semaphore in [`Thumbnailer`]).

use std::sync::Arc;

use image::{ImageFormat, ImageReader, Limits};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Content types a browser may display inline: raster images and PDF. Everything else
/// (HTML, SVG, XML, JavaScript, unknown bytes) is served as an attachment.
pub const INLINE: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
];

/// Longest side of a thumbnail, in pixels.
const THUMBNAIL_SIDE: u32 = 320;

/// The content type of a file that starts with `head`.
pub fn sniff(head: &[u8]) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        // The head may end inside a multi-byte character.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    if let Some(kind) = text.and_then(markup) {
        return kind.into();
    }
    match text {
        Some(t) if !t.chars().any(|c| c.is_control() && !c.is_whitespace()) => "text/plain".into(),
        _ => "application/octet-stream".into(),
    }
}

/// Markup a browser would render or run (infer misses HTML without a doctype).
fn markup(text: &str) -> Option<&'static str> {
    let lower = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .to_ascii_lowercase();
    let has = |tag: &str| lower.starts_with(tag) || lower.contains(&format!("\n{tag}"));
    if lower.contains("<svg") && (has("<svg") || has("<?xml")) {
        Some("image/svg+xml")
    } else if ["<!doctype", "<html", "<script", "<head", "<body", "<iframe"]
        .iter()
        .any(|t| has(t))
    {
        Some("text/html")
    } else if has("<?xml") {
        Some("application/xml")
    } else {
        None
    }
}

/// Whether `content_type` may be shown inline.
pub fn inline(content_type: &str) -> bool {
    INLINE.contains(&content_type)
}

/// Whether Concord makes thumbnails of `content_type`.
pub fn thumbnailable(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// Makes thumbnails on the blocking pool, a bounded number at a time; cheap to clone.
#[derive(Clone)]
pub struct Thumbnailer {
    permits: Arc<Semaphore>,
    max_pixels: u64,
}

impl Thumbnailer {
    /// At most `concurrency` decodes at once, of images of at most `max_pixels` pixels.
    pub fn new(concurrency: usize, max_pixels: u64) -> Thumbnailer {
        Thumbnailer {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            max_pixels,
        }
    }

    /// The pixel limit.
    pub fn max_pixels(&self) -> u64 {
        self.max_pixels
    }

    /// Waits for a turn to decode; read the source only once it is granted, so waiting
    /// uploads hold no image in memory.
    pub async fn turn(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Makes the thumbnail of `bytes` during the turn `permit`.
    pub async fn make(
        &self,
        permit: OwnedSemaphorePermit,
        bytes: Vec<u8>,
        content_type: String,
    ) -> Result<Vec<u8>, NoThumbnail> {
        let max = self.max_pixels;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            thumbnail(&bytes, &content_type, max)
        })
        .await
        .unwrap_or(Err(NoThumbnail::Undecodable))
    }
}

/// Why an image got no thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoThumbnail {
    /// Its header claims more pixels than the limit (or decoding would need more memory).
    TooLarge,
    /// It does not decode.
    Undecodable,
}

impl NoThumbnail {
    /// As stored (`files.thumbnail_error`).
    pub fn as_str(self) -> &'static str {
        match self {
            NoThumbnail::TooLarge => "too_large",
            NoThumbnail::Undecodable => "undecodable",
        }
    }
}

/// Bytes a decoder may allocate for an image of `max_pixels`: four bytes a pixel (8-bit
/// RGBA, the largest common layout) and room for the decoder's own buffers.
pub fn decode_budget(max_pixels: u64) -> u64 {
    max_pixels
        .saturating_mul(4)
        .saturating_add(16 * 1024 * 1024)
}

/// A PNG thumbnail of an image. The header is read first and an image of more than
/// `max_pixels` pixels is refused before anything is decoded; decoding itself is bounded by
/// the image crate's `Limits` (dimensions and allocation). CPU-bound: call on the blocking
/// pool.
pub fn thumbnail(
    bytes: &[u8],
    content_type: &str,
    max_pixels: u64,
) -> Result<Vec<u8>, NoThumbnail> {
    let format = match content_type {
        "image/png" => ImageFormat::Png,
        "image/jpeg" => ImageFormat::Jpeg,
        "image/gif" => ImageFormat::Gif,
        "image/webp" => ImageFormat::WebP,
        _ => return Err(NoThumbnail::Undecodable),
    };
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    let mut limits = Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(decode_budget(max_pixels));
    let reader = || {
        let mut r = ImageReader::with_format(std::io::Cursor::new(bytes), format);
        r.limits(limits.clone());
        r
    };
    let (width, height) = match reader().into_dimensions() {
        Ok(d) => d,
        Err(image::ImageError::Limits(_)) => return Err(NoThumbnail::TooLarge),
        Err(err) => {
            tracing::debug!(error = %err, "no thumbnail: image header does not decode");
            return Err(NoThumbnail::Undecodable);
        }
    };
    if u64::from(width) * u64::from(height) > max_pixels {
        tracing::debug!(width, height, "no thumbnail: image over the pixel limit");
        return Err(NoThumbnail::TooLarge);
    }
    let image = match reader().decode() {
        Ok(i) => i,
        Err(image::ImageError::Limits(err)) => {
            tracing::debug!(error = %err, "no thumbnail: image over the decoding limits");
            return Err(NoThumbnail::TooLarge);
        }
        Err(err) => {
            tracing::debug!(error = %err, "no thumbnail: image does not decode");
            return Err(NoThumbnail::Undecodable);
        }
    };
    let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let mut out = std::io::Cursor::new(Vec::new());
    small
        .write_to(&mut out, ImageFormat::Png)
        .map_err(|_| NoThumbnail::Undecodable)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"<html><script>alert(1)</script>"), "text/html");
        assert_eq!(
            sniff(b"  <svg xmlns='http://www.w3.org/2000/svg'/>"),
            "image/svg+xml"
        );
        assert_eq!(sniff(b"plain words\n"), "text/plain");
        assert_eq!(sniff(&[0, 159, 146, 150]), "application/octet-stream");
        assert!(inline("image/png") && !inline("text/html") && !inline("image/svg+xml"));
    }

    #[test]
    fn thumbnails_are_small_pngs() {
        let img = image::RgbImage::from_fn(1000, 500, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, ImageFormat::Png).unwrap();
        let thumb = thumbnail(png.get_ref(), "image/png", 1_000_000).unwrap();
        let decoded = image::load_from_memory(&thumb).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 160));
        assert_eq!(
            thumbnail(b"not an image", "image/png", 1_000_000),
            Err(NoThumbnail::Undecodable)
        );
        // One pixel over the limit: refused from the header.
        assert_eq!(
            thumbnail(png.get_ref(), "image/png", 499_999),
            Err(NoThumbnail::TooLarge)
        );
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A PNG of a few dozen bytes whose header claims `width` × `height` RGBA pixels of
    /// `depth` bits a channel.
    pub(crate) fn bomb(width: u32, height: u32, depth: u8) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend_from_slice(&body);
            out.extend_from_slice(&crc32(&body).to_be_bytes());
        };
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[depth, 6, 0, 0, 0]);
        chunk(b"IHDR", &ihdr);
        // A zlib stream of a few zero bytes: the start of an all-zero image.
        chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
        );
        chunk(b"IEND", &[]);
        out
    }

    #[tokio::test]
    async fn thumbnails_wait_for_a_turn() {
        let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, ImageFormat::Png).unwrap();
        let thumbs = Thumbnailer::new(1, 1_000_000);
        let held = thumbs.turn().await.unwrap();
        let waiting = {
            let thumbs = thumbs.clone();
            tokio::spawn(async move { thumbs.turn().await.is_some() })
        };
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(200), thumbs.turn()).await;
        assert!(blocked.is_err(), "a second decode waits while one runs");
        let made = thumbs
            .make(held, png.into_inner(), "image/png".into())
            .await;
        assert!(made.is_ok());
        assert!(
            waiting.await.unwrap(),
            "the next one runs once the first is done"
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // 60000 × 60000: 3.6 gigapixels (14 GB decoded) in under 100 bytes.
        let png = bomb(60_000, 60_000, 8);
        assert!(png.len() < 100, "{} bytes", png.len());
        let started = std::time::Instant::now();
        assert_eq!(
            thumbnail(&png, "image/png", 25_000_000),
            Err(NoThumbnail::TooLarge)
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Within the pixel limit but 16 bits a channel: 288 MB decoded, over the memory
        // cap that limit implies, so the decoder refuses before allocating.
        let deep = bomb(6_000, 6_000, 16);
        assert_eq!(
            thumbnail(&deep, "image/png", 40_000_000),
            Err(NoThumbnail::TooLarge)
        );
    }
}
