//! What Concord learns from a file's bytes: its content type (never the client's claim),
//! whether a browser may show it inline, and a thumbnail for common image types.

use image::{ImageFormat, ImageReader, Limits};

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

/// A PNG thumbnail of an image (decoding bounded in size and memory), or `None` if the
/// image cannot be decoded within the limits. CPU-bound: call on the blocking pool.
pub fn thumbnail(bytes: &[u8], content_type: &str) -> Option<Vec<u8>> {
    let format = match content_type {
        "image/png" => ImageFormat::Png,
        "image/jpeg" => ImageFormat::Jpeg,
        "image/gif" => ImageFormat::Gif,
        "image/webp" => ImageFormat::WebP,
        _ => return None,
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(256 * 1024 * 1024);
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format);
    reader.limits(limits);
    let image = match reader.decode() {
        Ok(i) => i,
        Err(err) => {
            tracing::debug!(error = %err, "no thumbnail: image does not decode");
            return None;
        }
    };
    let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let mut out = std::io::Cursor::new(Vec::new());
    small.write_to(&mut out, ImageFormat::Png).ok()?;
    Some(out.into_inner())
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
        let thumb = thumbnail(png.get_ref(), "image/png").unwrap();
        let decoded = image::load_from_memory(&thumb).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 160));
        assert!(thumbnail(b"not an image", "image/png").is_none());
    }
}
