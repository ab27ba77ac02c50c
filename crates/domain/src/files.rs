//! File names as users see them, made safe for every place they are used: a download's
//! `Content-Disposition`, a user's file system on Windows, macOS or Linux, and a listing.

/// Longest name kept, in bytes of UTF-8.
const MAX_BYTES: usize = 200;

/// Names Windows reserves for devices, with or without an extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    "CONIN$", "CONOUT$",
];

/// A sanitized file name: no directory part, no control or bidirectional-override
/// characters, none of `<>:"/\|?*`, no leading dot, no trailing dot or space, not a reserved
/// device name, at most 200 bytes (the extension kept). Never empty.
///
/// Parsing never fails: a hostile name is neutralised rather than refused, because the
/// name is informational and the upload itself is legitimate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName(String);

fn dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')
        // Bidirectional overrides and isolates ("invoice\u{202E}fdp.exe"), zero-width and BOM.
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

impl FileName {
    /// Sanitizes a name sent by a client.
    pub fn sanitize(raw: &str) -> FileName {
        // Only the last path component, whichever separator the client's system uses.
        let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let mut name: String = base
            .chars()
            .map(|c| if dangerous(c) { '_' } else { c })
            .collect();
        name = name.trim().trim_end_matches(['.', ' ']).to_owned();
        while name.starts_with('.') {
            name.remove(0);
        }
        if name.is_empty() {
            name = "file".into();
        }
        let stem = name.split('.').next().unwrap_or_default().trim_end();
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
            name.insert(0, '_');
        }
        FileName(truncate(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension, lowercased, if any.
    pub fn extension(&self) -> Option<String> {
        self.0
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .filter(|e| !e.is_empty())
    }
}

/// Cuts a name to [`MAX_BYTES`] on a character boundary, keeping a short extension.
fn truncate(name: String) -> String {
    if name.len() <= MAX_BYTES {
        return name;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && e.len() <= 16 => (s.to_owned(), format!(".{e}")),
        _ => (name.clone(), String::new()),
    };
    let mut cut = MAX_BYTES - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(raw: &str) -> String {
        FileName::sanitize(raw).as_str().to_owned()
    }

    #[test]
    fn hostile_names_are_neutralised() {
        assert_eq!(s("../../etc/passwd"), "passwd");
        assert_eq!(s("..\\..\\Windows\\system32\\evil.dll"), "evil.dll");
        assert_eq!(s(".."), "file");
        assert_eq!(s(""), "file");
        assert_eq!(s(".htaccess"), "htaccess");
        assert_eq!(s("CON"), "_CON");
        assert_eq!(s("con.txt"), "_con.txt");
        assert_eq!(s("LPT1.tar.gz"), "_LPT1.tar.gz");
        assert_eq!(s("console.txt"), "console.txt");
        assert_eq!(s("report.pdf. . "), "report.pdf");
        assert_eq!(s("a\nb\u{0}c\u{1b}[31m.txt"), "a_b_c_[31m.txt");
        assert_eq!(s("invoice\u{202E}fdp.exe"), "invoice_fdp.exe");
        assert_eq!(s("what?.txt"), "what_.txt");
        assert_eq!(s("naïve résumé.pdf"), "naïve résumé.pdf");
        let long = format!("{}.png", "é".repeat(300));
        let t = s(&long);
        assert!(t.len() <= MAX_BYTES && t.ends_with(".png"), "{t}");
        assert_eq!(
            FileName::sanitize("x.TXT").extension().as_deref(),
            Some("txt")
        );
    }
}
