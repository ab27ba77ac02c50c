//! Passwords as chosen by users, wiped from memory when dropped.

use zeroize::Zeroizing;

use super::ParseError;

/// Fewest characters a new password may have.
pub const MIN_LEN: usize = 12;
/// Most bytes a password may have; bounds the work a request can ask of the hasher.
pub const MAX_BYTES: usize = 1024;

/// A password that meets the policy for new passwords.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Checks a new password against the policy.
    pub fn parse_new(field: &'static str, raw: String) -> Result<Password, ParseError> {
        let raw = Zeroizing::new(raw);
        if raw.chars().count() < MIN_LEN {
            return Err(ParseError::new(
                field,
                format!("must be at least {MIN_LEN} characters"),
            ));
        }
        if raw.len() > MAX_BYTES {
            return Err(ParseError::new(
                field,
                format!("must be at most {MAX_BYTES} bytes"),
            ));
        }
        if raw.trim().is_empty() {
            return Err(ParseError::new(field, "must not be only spaces"));
        }
        Ok(Password(raw))
    }

    /// Accepts a password offered at sign-in; only its size is bounded.
    pub fn parse_attempt(field: &'static str, raw: String) -> Result<Password, ParseError> {
        let raw = Zeroizing::new(raw);
        if raw.is_empty() {
            return Err(ParseError::new(field, "is required"));
        }
        if raw.len() > MAX_BYTES {
            return Err(ParseError::new(
                field,
                format!("must be at most {MAX_BYTES} bytes"),
            ));
        }
        Ok(Password(raw))
    }

    /// The secret itself, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn enforces_length_policy() {
        assert!(Password::parse_new("password", "short".into()).is_err());
        assert!(Password::parse_new("password", " ".repeat(20)).is_err());
        assert!(Password::parse_new("password", "x".repeat(2000)).is_err());
        assert!(Password::parse_new("password", "correct horse battery".into()).is_ok());
        assert_eq!(
            format!(
                "{:?}",
                Password::parse_attempt("p", "secret".into()).unwrap()
            ),
            "Password(<redacted>)"
        );
    }
}
