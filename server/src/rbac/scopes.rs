//! Bot token scopes: what a token may be used for, on top of what the bot's role allows.
//!
//! A bot acts with the permissions of its workspace role (the built-in `bot` role) and of the
//! channels it was added to, and each request also needs the scope its method names, granted
//! to the token it came with. Scope names are Slack's, so Slack apps ask for what they know.

use std::fmt;

macro_rules! scopes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal),* $(,)?) => {
        /// One scope a bot token may be granted.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum BotScope {
            $($(#[$doc])* $variant,)*
        }

        impl BotScope {
            /// Every scope, in declaration order.
            pub const ALL: &'static [BotScope] = &[$(BotScope::$variant,)*];

            /// Slack's name for it, such as `chat:write`.
            pub fn as_str(self) -> &'static str {
                match self { $(BotScope::$variant => $name,)* }
            }

            /// The scope with this name.
            pub fn parse(name: &str) -> Option<BotScope> {
                match name { $($name => Some(BotScope::$variant),)* _ => None }
            }
        }
    };
}

scopes! {
    /// Post, edit and delete its own messages.
    ChatWrite = "chat:write",
    /// List and look up public channels (and the private ones it is in).
    ChannelsRead = "channels:read",
    /// Read the messages of channels it is in.
    ChannelsHistory = "channels:history",
    /// Join public channels.
    ChannelsJoin = "channels:join",
    /// Add and remove its reactions.
    ReactionsWrite = "reactions:write",
    /// Look up the workspace's people.
    UsersRead = "users:read",
    /// Receive slash commands.
    Commands = "commands",
    /// Upload files.
    FilesWrite = "files:write",
    /// Post through incoming webhooks.
    IncomingWebhook = "incoming-webhook",
}

/// A set of scopes (a token's grant).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct BotScopes(u32);

impl BotScopes {
    /// Parses a list of names separated by spaces or commas; an unknown name is returned.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<BotScopes, String> {
        let mut set = BotScopes::default();
        for name in names
            .into_iter()
            .flat_map(|n| n.split([' ', ',']))
            .filter(|n| !n.is_empty())
        {
            let scope = BotScope::parse(name).ok_or_else(|| name.to_owned())?;
            set.0 |= 1 << Self::bit(scope);
        }
        Ok(set)
    }

    fn bit(scope: BotScope) -> u32 {
        BotScope::ALL.iter().position(|s| *s == scope).unwrap_or(0) as u32
    }

    /// Whether `scope` is granted.
    pub fn contains(self, scope: BotScope) -> bool {
        self.0 & (1 << Self::bit(scope)) != 0
    }

    /// Whether nothing is granted.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The granted scopes in declaration order.
    pub fn iter(self) -> impl Iterator<Item = BotScope> {
        BotScope::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }

    /// The names, comma-separated (Slack's `X-OAuth-Scopes` form).
    pub fn to_comma_list(self) -> String {
        self.iter()
            .map(BotScope::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for BotScopes {
    /// The names, space-separated (how they are stored).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(BotScope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl fmt::Debug for BotScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BotScopes({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_back() {
        let set = BotScopes::parse(["chat:write channels:read", "users:read"]).unwrap();
        assert!(set.contains(BotScope::ChatWrite));
        assert!(!set.contains(BotScope::ChannelsHistory));
        assert_eq!(set.to_string(), "chat:write channels:read users:read");
        assert_eq!(BotScopes::parse([set.to_string().as_str()]).unwrap(), set);
        assert_eq!(
            BotScopes::parse(["chat:write", "admin"]).unwrap_err(),
            "admin"
        );
    }
}
