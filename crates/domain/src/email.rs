//! Email addresses as accounts know them.

use super::ParseError;

/// A syntactically plausible email address, trimmed, at most 254 bytes.
///
/// The local part keeps its case as written; [`Email::lookup_key`] is the case-folded form
/// that identifies an account, so `Ann@Example.org` and `ann@example.org` are one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an address from user input.
    pub fn parse(field: &'static str, raw: &str) -> Result<Email, ParseError> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(ParseError::new(field, "is required"));
        }
        if value.len() > 254 {
            return Err(ParseError::new(field, "is longer than 254 characters"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::new(
                field,
                "must not contain spaces or control characters",
            ));
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return Err(ParseError::new(field, "is not an email address (no @)"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(ParseError::new(
                field,
                "has an empty or too long local part",
            ));
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !domain.contains('.') || !labels_ok {
            return Err(ParseError::new(field, "has an invalid domain"));
        }
        Ok(Email(value.to_owned()))
    }

    /// The address as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form used to find the account.
    pub fn lookup_key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn accepts_ordinary_addresses_and_folds_case() {
        let e = Email::parse("email", "  Ann.Lee+ops@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "Ann.Lee+ops@Example.ORG");
        assert_eq!(e.lookup_key(), "ann.lee+ops@example.org");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.org",
            "ann@example",
            "a b@example.org",
            "ann@-x.org",
            "ann@x..org",
        ] {
            assert!(
                Email::parse("email", bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
