//! Chat values: channel names, message bodies and reaction emoji.

use super::ParseError;

/// Largest message body, in bytes of UTF-8 markdown source.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A channel name as users know it from other chat tools: 1 to 80 lowercase letters, digits,
/// `-` and `_` (letters of any script), without a leading `#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelName(String);

impl ChannelName {
    /// Parses a name; a leading `#` and surrounding spaces are dropped.
    pub fn parse(field: &'static str, raw: &str) -> Result<ChannelName, ParseError> {
        let value = raw.trim().trim_start_matches('#');
        let chars = value.chars().count();
        if chars == 0 || chars > 80 {
            return Err(ParseError::new(field, "must be 1 to 80 characters"));
        }
        let ok = value
            .chars()
            .all(|c| c == '-' || c == '_' || (c.is_alphanumeric() && !c.is_uppercase()));
        if !ok {
            return Err(ParseError::new(
                field,
                "may hold only lowercase letters, digits, '-' and '_'",
            ));
        }
        Ok(ChannelName(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message body: markdown source, stored as written, 1 byte to 16 KiB, no control
/// characters other than newlines and tabs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    /// Parses a body.
    pub fn parse(field: &'static str, raw: String) -> Result<MessageBody, ParseError> {
        if raw.trim().is_empty() {
            return Err(ParseError::new(field, "must not be empty"));
        }
        if raw.len() > MAX_BODY_BYTES {
            return Err(ParseError::new(
                field,
                format!("must be at most {MAX_BODY_BYTES} bytes"),
            ));
        }
        if raw
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(ParseError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(MessageBody(raw))
    }

    /// The markdown source.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The accounts mentioned as `@handle`, and whether `@channel` / `@here` appear.
    pub fn mentions(&self) -> Mentions {
        let mut out = Mentions::default();
        let text = self.0.as_str();
        for (i, _) in text.match_indices('@') {
            let before = text[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_') {
                continue; // an email address, not a mention
            }
            let handle: String = text[i + 1..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@'))
                .collect();
            let handle = handle.trim_end_matches(['.', '-']).to_owned();
            match handle.as_str() {
                "" => {}
                "channel" | "everyone" => out.channel = true,
                "here" => out.here = true,
                _ => out.handles.push(handle.to_lowercase()),
            }
        }
        out
    }
}

/// Who a message mentions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mentions {
    /// `@name` handles (an email address or the part before `@`), lowercased.
    pub handles: Vec<String>,
    /// `@channel` or `@everyone`.
    pub channel: bool,
    /// `@here`.
    pub here: bool,
}

/// A reaction: a `:short_code:` or an emoji character sequence, at most 64 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    /// Parses an emoji.
    pub fn parse(field: &'static str, raw: &str) -> Result<Emoji, ParseError> {
        let value = raw.trim();
        let chars = value.chars().count();
        if chars == 0 || chars > 64 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::new(
                field,
                "must be 1 to 64 characters without spaces",
            ));
        }
        let short_code = value.len() > 2
            && value.starts_with(':')
            && value.ends_with(':')
            && value[1..value.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'));
        let pictographic = !value.chars().any(|c| c.is_ascii_alphanumeric());
        if !short_code && !pictographic {
            return Err(ParseError::new(field, "must be an emoji or a :short_code:"));
        }
        Ok(Emoji(value.to_owned()))
    }

    /// The emoji as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_follow_chat_conventions() {
        assert_eq!(
            ChannelName::parse("name", " #general ").unwrap().as_str(),
            "general"
        );
        assert!(ChannelName::parse("name", "공지사항").is_ok());
        assert!(ChannelName::parse("name", "General").is_err());
        assert!(ChannelName::parse("name", "two words").is_err());
        assert!(ChannelName::parse("name", "").is_err());
    }

    #[test]
    fn bodies_are_bounded_and_mentions_found() {
        assert!(MessageBody::parse("text", "   ".into()).is_err());
        assert!(MessageBody::parse("text", "x".repeat(MAX_BODY_BYTES + 1)).is_err());
        assert!(MessageBody::parse("text", "bell\u{7}".into()).is_err());
        let body = MessageBody::parse(
            "text",
            "hi @bo@example.org and @Ann, mail ann@example.org @here".into(),
        )
        .unwrap();
        let m = body.mentions();
        assert_eq!(
            m.handles,
            vec!["bo@example.org".to_string(), "ann".to_string()]
        );
        assert!(m.here && !m.channel);
    }

    #[test]
    fn emoji_are_pictographs_or_short_codes() {
        assert!(Emoji::parse("emoji", ":thumbsup:").is_ok());
        assert!(Emoji::parse("emoji", "👍🏽").is_ok());
        assert!(Emoji::parse("emoji", "abc").is_err());
        assert!(Emoji::parse("emoji", ": x:").is_err());
    }
}
