//! Human-chosen names: display names, workspace names and slugs, role names.

use super::ParseError;

fn clean_text(field: &'static str, raw: &str, max_chars: usize) -> Result<String, ParseError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ParseError::new(field, "is required"));
    }
    if value.chars().count() > max_chars {
        return Err(ParseError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ParseError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Parses a value from user input.
            pub fn parse(field: &'static str, raw: &str) -> Result<Self, ParseError> {
                clean_text(field, raw, $max).map(Self)
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

text_type!(
    /// How a person is shown to others: 1 to 100 characters, no control characters.
    DisplayName,
    100
);
text_type!(
    /// A workspace's name: 1 to 80 characters.
    WorkspaceName,
    80
);

/// A URL-safe workspace handle: 2 to 40 of `a-z`, `0-9` and inner `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug as given.
    pub fn parse(field: &'static str, raw: &str) -> Result<Slug, ParseError> {
        let value = raw.trim();
        let valid_chars = value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !(2..=40).contains(&value.len())
            || !valid_chars
            || value.starts_with('-')
            || value.ends_with('-')
        {
            return Err(ParseError::new(
                field,
                "must be 2 to 40 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            ));
        }
        Ok(Slug(value.to_owned()))
    }

    /// Derives a slug from a workspace name ("Acme Health" becomes "acme-health").
    pub fn from_name(name: &WorkspaceName) -> Option<Slug> {
        let mut slug = String::new();
        for c in name.as_str().chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let slug: String = slug.trim_end_matches('-').chars().take(40).collect();
        Slug::parse("slug", slug.trim_end_matches('-')).ok()
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A role's name: 2 to 40 of `a-z`, `0-9` and `_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    /// Parses a role name as given.
    pub fn parse(field: &'static str, raw: &str) -> Result<RoleName, ParseError> {
        let value = raw.trim();
        let valid = (2..=40).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(ParseError::new(
                field,
                "must be 2 to 40 characters of a-z, 0-9 and '_'",
            ));
        }
        Ok(RoleName(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_derive_from_names() {
        let name = WorkspaceName::parse("name", "  Acme Health — Ops!  ").unwrap();
        assert_eq!(Slug::from_name(&name).unwrap().as_str(), "acme-health-ops");
        assert!(Slug::from_name(&WorkspaceName::parse("name", "診療").unwrap()).is_none());
    }

    #[test]
    fn names_reject_empty_control_and_long_values() {
        assert!(DisplayName::parse("display_name", "   ").is_err());
        assert!(DisplayName::parse("display_name", "a\u{7}b").is_err());
        assert!(WorkspaceName::parse("name", &"x".repeat(81)).is_err());
        assert!(Slug::parse("slug", "-bad").is_err());
        assert!(RoleName::parse("name", "Auditor").is_err());
        assert!(RoleName::parse("name", "auditor").is_ok());
    }
}
