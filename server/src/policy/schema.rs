//! The keys a policy file may hold, and the effective policy they resolve to.
//!
//! [`PolicyDocument`] is one layer as written (a module file or a workspace override): every
//! key optional, unknown keys refused, each value parsed into a type that cannot hold an
//! out-of-range value ([`Days`], [`Bounded`]), so a bad value fails where it is written, with
//! its position. [`Policy`] is what the layers resolve to: every key has a value.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::domain::ChannelId;

/// The longest period a policy may name in days (a century); longer is "forever".
pub const MAX_DAYS: u32 = 36_500;

/// A retention period: a number of days, or forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Days {
    /// Kept without limit.
    Forever,
    /// Kept this many days (1 to [`MAX_DAYS`]).
    Limited(u32),
}

impl Days {
    /// The number of days, `None` for forever.
    pub fn days(self) -> Option<u32> {
        match self {
            Days::Forever => None,
            Days::Limited(n) => Some(n),
        }
    }

    /// Whether this keeps data at least `days` days.
    pub fn at_least(self, days: u32) -> bool {
        match self {
            Days::Forever => true,
            Days::Limited(n) => n >= days,
        }
    }
}

impl std::fmt::Display for Days {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Days::Forever => f.write_str("forever"),
            Days::Limited(n) => write!(f, "{n} days"),
        }
    }
}

impl Serialize for Days {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Days::Forever => s.serialize_str("forever"),
            Days::Limited(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DaysVisitor;
        impl Visitor<'_> for DaysVisitor {
            type Value = Days;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a number of days (1 to {MAX_DAYS}) or \"forever\"")
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Days, E> {
                if (1..=i64::from(MAX_DAYS)).contains(&n) {
                    Ok(Days::Limited(n as u32))
                } else {
                    Err(E::custom(format!(
                        "{n} is out of range: give 1 to {MAX_DAYS} days, or \"forever\""
                    )))
                }
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Days, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Days, E> {
                if s == "forever" {
                    Ok(Days::Forever)
                } else {
                    Err(E::custom(format!(
                        "\"{s}\" is not a period: give 1 to {MAX_DAYS} days, or \"forever\""
                    )))
                }
            }
        }
        d.deserialize_any(DaysVisitor)
    }
}

impl utoipa::PartialSchema for Days {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(MAX_DAYS)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["forever"])),
            )
            .description(Some("A number of days, or \"forever\"."))
            .into()
    }
}

impl utoipa::ToSchema for Days {}

/// A whole number from `MIN` to `MAX`, refused otherwise where it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Bounded<const MIN: u32, const MAX: u32>(pub u32);

impl<'de, const MIN: u32, const MAX: u32> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if (i64::from(MIN)..=i64::from(MAX)).contains(&n) {
            Ok(Bounded(n as u32))
        } else {
            Err(de::Error::custom(format!(
                "{n} is out of range: must be between {MIN} and {MAX}"
            )))
        }
    }
}

/// What happens to an erased person's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Erasure {
    /// The content stays, with its author replaced by an anonymous placeholder.
    Anonymize,
    /// The content is destroyed.
    Delete,
}

/// One layer as written: a module file or a workspace override. Every key is optional; a key
/// set here replaces the same key of the layers below.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"retention": {"messages_days": 365, "files_days": 365}, "phi": {"enabled": true}}))]
pub struct PolicyDocument {
    /// What this layer is for (shown by `concord policy check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    /// How long content is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retention: Option<RetentionLayer>,
    /// Safeguards for protected health information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub phi: Option<PhiLayer>,
    /// Data-subject requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub data_subject: Option<DataSubjectLayer>,
    /// Per channel, by channel id (workspace overrides only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, ChannelLayer>,
}

/// `[retention]` as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionLayer {
    /// Messages and their earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub messages_days: Option<Days>,
    /// Shared files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub files_days: Option<Days>,
    /// Documents' named versions and edit history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub document_history_days: Option<Days>,
    /// Records of ended sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sessions_days: Option<Days>,
    /// The audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub audit_days: Option<Days>,
    /// Days between a deletion and the destruction of what was deleted (0 to 3650).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u32, nullable = false, minimum = 0, maximum = 3650)]
    pub deletion_grace_days: Option<Bounded<0, 3650>>,
}

/// `[phi]` as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhiLayer {
    /// Whether the workspace holds protected health information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
    /// Idle minutes before sessions and live connections are ended (1 to 1440).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u32, nullable = false, minimum = 1, maximum = 1440)]
    pub idle_logoff_minutes: Option<Bounded<1, 1440>>,
    /// Whether every read of PHI is audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub audit_reads: Option<bool>,
    /// Longest emergency-access elevation, in minutes (1 to 1440).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u32, nullable = false, minimum = 1, maximum = 1440)]
    pub break_glass_max_minutes: Option<Bounded<1, 1440>>,
}

/// `[data_subject]` as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSubjectLayer {
    /// Days to answer a request (1 to 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u32, nullable = false, minimum = 1, maximum = 90)]
    pub request_deadline_days: Option<Bounded<1, 90>>,
    /// Days a request may be extended by (0 to 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u32, nullable = false, minimum = 0, maximum = 60)]
    pub extension_days: Option<Bounded<0, 60>>,
    /// What happens to an erased person's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub erasure: Option<Erasure>,
}

/// `[channels.<id>]` as written: a channel's own retention and PHI flag.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelLayer {
    /// The channel's messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub messages_days: Option<Days>,
    /// The channel's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub files_days: Option<Days>,
    /// Whether the channel holds PHI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub phi: Option<bool>,
}

/// The effective policy: every key with its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Policy {
    /// How long content is kept.
    pub retention: Retention,
    /// Safeguards for protected health information.
    pub phi: Phi,
    /// Data-subject requests.
    pub data_subject: DataSubject,
    /// Channels with their own retention or PHI flag, by id (other channels follow the
    /// workspace).
    #[serde(default)]
    pub channels: BTreeMap<ChannelId, ChannelPolicy>,
}

/// Retention periods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Retention {
    /// Messages and their earlier versions.
    pub messages_days: Days,
    /// Shared files.
    pub files_days: Days,
    /// Documents' named versions and edit history.
    pub document_history_days: Days,
    /// Records of ended sessions.
    pub sessions_days: Days,
    /// The audit log.
    pub audit_days: Days,
    /// Days between a deletion and the destruction of what was deleted.
    pub deletion_grace_days: u32,
}

/// Safeguards for protected health information.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Phi {
    /// Whether the workspace holds PHI.
    pub enabled: bool,
    /// Idle minutes before sessions and live connections are ended.
    pub idle_logoff_minutes: u32,
    /// Whether every read of PHI is audited.
    pub audit_reads: bool,
    /// Longest emergency-access elevation, in minutes.
    pub break_glass_max_minutes: u32,
}

/// Data-subject requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DataSubject {
    /// Days to answer a request.
    pub request_deadline_days: u32,
    /// Days a request may be extended by.
    pub extension_days: u32,
    /// What happens to an erased person's content.
    pub erasure: Erasure,
}

/// A channel's effective retention and PHI flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelPolicy {
    /// The channel's messages.
    pub messages_days: Days,
    /// The channel's files.
    pub files_days: Days,
    /// Whether the channel holds PHI.
    pub phi: bool,
}

impl Policy {
    /// The PHI flag of a channel: its own, else its workspace's.
    pub fn channel_phi(&self, channel: ChannelId) -> bool {
        self.channels
            .get(&channel)
            .map_or(self.phi.enabled, |c| c.phi)
    }

    /// How long a channel's messages are kept: its own period, else its workspace's.
    pub fn channel_messages_days(&self, channel: ChannelId) -> Days {
        self.channels
            .get(&channel)
            .map_or(self.retention.messages_days, |c| c.messages_days)
    }
}
