//! Generic access to the columns the data inventory (the top-level `inventory` module)
//! declares: walking a table's rows in key order after a cursor with the owner id of their key
//! scope and the values of some columns, and writing new values back. The table and column names come from
//! the inventory's static declarations, never from input.

use std::fmt;

use sqlx::Row;
use uuid::Uuid;

use super::{on, Conn, StoreError};

/// One part of a row's key, or of the row id a ciphertext is bound to, with its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPart {
    /// A UUID column (BLOB on SQLite, UUID on PostgreSQL).
    Id(&'static str),
    /// An integer column.
    Int(&'static str),
    /// A text column.
    Text(&'static str),
    /// A binary column (a hash); rows keyed by one are not walked.
    Bytes(&'static str),
}

impl KeyPart {
    /// The column's name.
    pub fn column(&self) -> &'static str {
        match self {
            KeyPart::Id(c) | KeyPart::Int(c) | KeyPart::Text(c) | KeyPart::Bytes(c) => c,
        }
    }
}

/// A step from a row to the row that owns it: the row's `column` holds the `id` of a row of
/// `table`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The column of the row we are at.
    pub column: &'static str,
    /// The table it points into (by its `id` column).
    pub table: &'static str,
}

/// Where an owner's id is found: `column` of the row reached from a row through `via`
/// (none: the row itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The hops, in order.
    pub via: &'static [Hop],
    /// The column holding the id, on the last table reached.
    pub column: &'static str,
}

impl Owner {
    /// `column` of the row itself.
    pub const fn at(column: &'static str) -> Owner {
        Owner { via: &[], column }
    }

    /// `column` of the row reached through `via`.
    pub const fn via(via: &'static [Hop], column: &'static str) -> Owner {
        Owner { via, column }
    }

    /// The table holding the id when starting from `table`.
    pub fn table(&self, table: &'static str) -> &'static str {
        self.via.last().map(|h| h.table).unwrap_or(table)
    }
}

/// A value read from a key column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyValue {
    /// A UUID.
    Id(Uuid),
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Id(u) => u.fmt(f),
            KeyValue::Int(i) => i.fmt(f),
            KeyValue::Text(t) => f.write_str(t),
        }
    }
}

/// Joins key values with `:` (the form cursors and composite row ids take).
pub fn joined(values: &[KeyValue]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses a cursor made by [`joined`] back for `key`.
pub fn parse_cursor(key: &[KeyPart], cursor: &str) -> Result<Vec<KeyValue>, StoreError> {
    let bad = || StoreError::Corrupt("re-encryption cursor");
    let mut parts = cursor.splitn(key.len(), ':');
    key.iter()
        .map(|k| {
            let s = parts.next().ok_or_else(bad)?;
            match k {
                KeyPart::Id(_) => s.parse().map(KeyValue::Id).map_err(|_| bad()),
                KeyPart::Int(_) => s.parse().map(KeyValue::Int).map_err(|_| bad()),
                KeyPart::Text(_) => Ok(KeyValue::Text(s.to_owned())),
                KeyPart::Bytes(_) => Err(bad()),
            }
        })
        .collect()
}

/// A column whose values a walk reads and may write back.
#[derive(Clone, Copy, Debug)]
pub struct ValueColumn {
    /// Its name.
    pub name: &'static str,
    /// Whether it is a text column (its value is handed over as UTF-8 bytes).
    pub text: bool,
}

/// What a walk over one table reads.
#[derive(Clone, Debug)]
pub struct Walk {
    /// The table.
    pub table: &'static str,
    /// Its key, which orders the walk.
    pub key: &'static [KeyPart],
    /// What the row id its ciphertexts are bound to is made of.
    pub row: &'static [KeyPart],
    /// Where the owner of the rows' key scope is.
    pub scope: Owner,
    /// The value columns.
    pub columns: Vec<ValueColumn>,
}

/// One row of a walk.
#[derive(Clone, Debug)]
pub struct WalkedRow {
    /// Its key.
    pub key: Vec<KeyValue>,
    /// Its row id parts.
    pub row: Vec<KeyValue>,
    /// The owner id of its key scope, if any.
    pub scope: Option<Uuid>,
    /// The values, in [`Walk::columns`] order.
    pub values: Vec<Option<Vec<u8>>>,
}

fn key_condition(key: &[KeyPart], first: usize) -> String {
    let cols: Vec<String> = key.iter().map(|k| format!("t.{}", k.column())).collect();
    let params: Vec<String> = (0..key.len()).map(|i| format!("${}", first + i)).collect();
    if key.len() == 1 {
        format!("{} > {}", cols[0], params[0])
    } else {
        format!("({}) > ({})", cols.join(", "), params.join(", "))
    }
}

fn select_sql(walk: &Walk, cursor: bool, limit: usize) -> String {
    select_sql_of(walk, cursor, None, limit)
}

/// The walk's query; with `who`, only rows whose owner reached through it is the id bound
/// after the cursor's values.
fn select_sql_of(walk: &Walk, cursor: bool, who: Option<&Owner>, limit: usize) -> String {
    let mut select: Vec<String> = walk
        .key
        .iter()
        .chain(walk.row.iter())
        .map(|k| format!("t.{}", k.column()))
        .collect();
    let mut joins = String::new();
    let mut at = "t".to_owned();
    for (i, hop) in walk.scope.via.iter().enumerate() {
        let alias = format!("j{i}");
        joins.push_str(&format!(
            " LEFT JOIN {} {alias} ON {alias}.id = {at}.{}",
            hop.table, hop.column
        ));
        at = alias;
    }
    select.push(format!("{at}.{}", walk.scope.column));
    select.extend(walk.columns.iter().map(|c| format!("t.{}", c.name)));
    let order: Vec<String> = walk
        .key
        .iter()
        .map(|k| format!("t.{}", k.column()))
        .collect();
    let mut conditions = Vec::new();
    if cursor {
        conditions.push(key_condition(walk.key, 1));
    }
    if let Some(who) = who {
        let mut at = "t".to_owned();
        for (i, hop) in who.via.iter().enumerate() {
            let alias = format!("w{i}");
            joins.push_str(&format!(
                " JOIN {} {alias} ON {alias}.id = {at}.{}",
                hop.table, hop.column
            ));
            at = alias;
        }
        let param = if cursor { walk.key.len() + 1 } else { 1 };
        conditions.push(format!("{at}.{} = ${param}", who.column));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    format!(
        "SELECT {} FROM {} t{joins}{filter} ORDER BY {} LIMIT {limit}",
        select.join(", "),
        walk.table,
        order.join(", ")
    )
}

fn decode_part<R>(row: &R, i: usize, part: &KeyPart) -> Result<KeyValue, StoreError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    Uuid: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(match part {
        KeyPart::Id(_) => KeyValue::Id(row.try_get(i)?),
        KeyPart::Int(_) => KeyValue::Int(row.try_get(i)?),
        KeyPart::Text(_) => KeyValue::Text(row.try_get(i)?),
        KeyPart::Bytes(_) => return Err(StoreError::Corrupt("binary keys are not walked")),
    })
}

fn decode<R>(row: &R, walk: &Walk) -> Result<WalkedRow, StoreError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    Uuid: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let mut i = 0;
    let mut next = |part: &KeyPart| {
        let v = decode_part(row, i, part);
        i += 1;
        v
    };
    let key = walk.key.iter().map(&mut next).collect::<Result<_, _>>()?;
    let ids = walk.row.iter().map(&mut next).collect::<Result<_, _>>()?;
    let mut i = walk.key.len() + walk.row.len();
    let scope: Option<Uuid> = row.try_get(i)?;
    i += 1;
    let mut values = Vec::with_capacity(walk.columns.len());
    for c in &walk.columns {
        let v = if c.text {
            row.try_get::<Option<String>, _>(i)?.map(String::into_bytes)
        } else {
            row.try_get::<Option<Vec<u8>>, _>(i)?
        };
        values.push(v);
        i += 1;
    }
    Ok(WalkedRow {
        key,
        row: ids,
        scope,
        values,
    })
}

/// Up to `limit` rows of `walk.table` after `cursor` (a key), in key order.
pub async fn after(
    conn: &mut Conn<'_>,
    walk: &Walk,
    cursor: Option<&[KeyValue]>,
    limit: usize,
) -> Result<Vec<WalkedRow>, StoreError> {
    let sql = select_sql(walk, cursor.is_some(), limit);
    macro_rules! bound {
        ($q:expr) => {{
            let mut q = $q;
            for v in cursor.unwrap_or(&[]) {
                q = match v {
                    KeyValue::Id(u) => q.bind(*u),
                    KeyValue::Int(n) => q.bind(*n),
                    KeyValue::Text(t) => q.bind(t.clone()),
                };
            }
            q
        }};
    }
    on!(conn, |c| {
        let rows = bound!(sqlx::query(&sql)).fetch_all(c).await?;
        rows.iter().map(|r| decode(r, walk)).collect()
    })
}

/// Up to `limit` rows of `walk.table` after `cursor` (a key), in key order, whose owner
/// reached through `who` is `owner` (a data subject's rows).
pub async fn owned_after(
    conn: &mut Conn<'_>,
    walk: &Walk,
    who: &Owner,
    owner: Uuid,
    cursor: Option<&[KeyValue]>,
    limit: usize,
) -> Result<Vec<WalkedRow>, StoreError> {
    let sql = select_sql_of(walk, cursor.is_some(), Some(who), limit);
    macro_rules! bound {
        ($q:expr) => {{
            let mut q = $q;
            for v in cursor.unwrap_or(&[]) {
                q = match v {
                    KeyValue::Id(u) => q.bind(*u),
                    KeyValue::Int(n) => q.bind(*n),
                    KeyValue::Text(t) => q.bind(t.clone()),
                };
            }
            q.bind(owner)
        }};
    }
    on!(conn, |c| {
        let rows = bound!(sqlx::query(&sql)).fetch_all(c).await?;
        rows.iter().map(|r| decode(r, walk)).collect()
    })
}

/// How many rows `table` has.
pub async fn count(conn: &mut Conn<'_>, table: &'static str) -> Result<i64, StoreError> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    Ok(on!(conn, |c| sqlx::query_scalar(&sql).fetch_one(c).await)?)
}

/// Writes new values of some of `walk`'s columns (by index into [`Walk::columns`]) into the
/// row with key `key`.
pub async fn set(
    conn: &mut Conn<'_>,
    walk: &Walk,
    key: &[KeyValue],
    values: &[(usize, Vec<u8>)],
) -> Result<(), StoreError> {
    if values.is_empty() {
        return Ok(());
    }
    let mut sets = Vec::new();
    for (n, (i, _)) in values.iter().enumerate() {
        let c = walk
            .columns
            .get(*i)
            .ok_or(StoreError::Corrupt("inventory column"))?;
        sets.push(format!("{} = ${}", c.name, n + 1));
    }
    let conds: Vec<String> = walk
        .key
        .iter()
        .enumerate()
        .map(|(n, k)| format!("{} = ${}", k.column(), values.len() + n + 1))
        .collect();
    let sql = format!(
        "UPDATE {} SET {} WHERE {}",
        walk.table,
        sets.join(", "),
        conds.join(" AND ")
    );
    let mut texts = Vec::with_capacity(values.len());
    for (i, v) in values {
        let text = walk.columns[*i].text;
        texts.push(if text {
            Some(
                String::from_utf8(v.clone())
                    .map_err(|_| StoreError::Corrupt("inventory text value"))?,
            )
        } else {
            None
        });
    }
    macro_rules! bound {
        ($q:expr) => {{
            let mut q = $q;
            for ((_, v), t) in values.iter().zip(&texts) {
                q = match t {
                    Some(t) => q.bind(t.clone()),
                    None => q.bind(v.clone()),
                };
            }
            for k in key {
                q = match k {
                    KeyValue::Id(u) => q.bind(*u),
                    KeyValue::Int(n) => q.bind(*n),
                    KeyValue::Text(t) => q.bind(t.clone()),
                };
            }
            q
        }};
    }
    on!(conn, |c| bound!(sqlx::query(&sql))
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_join_to_the_scope_and_resume_after_composite_keys() {
        const KEY: &[KeyPart] = &[KeyPart::Id("message_id"), KeyPart::Int("version")];
        const VIA: &[Hop] = &[
            Hop {
                column: "message_id",
                table: "messages",
            },
            Hop {
                column: "channel_id",
                table: "channels",
            },
        ];
        let walk = Walk {
            table: "message_versions",
            key: KEY,
            row: KEY,
            scope: Owner::via(VIA, "workspace_id"),
            columns: vec![ValueColumn {
                name: "body",
                text: false,
            }],
        };
        let sql = select_sql(&walk, true, 10);
        assert_eq!(
            sql,
            "SELECT t.message_id, t.version, t.message_id, t.version, j1.workspace_id, t.body \
             FROM message_versions t LEFT JOIN messages j0 ON j0.id = t.message_id \
             LEFT JOIN channels j1 ON j1.id = j0.channel_id \
             WHERE (t.message_id, t.version) > ($1, $2) ORDER BY t.message_id, t.version LIMIT 10"
        );
        let id = Uuid::now_v7();
        let cursor = joined(&[KeyValue::Id(id), KeyValue::Int(3)]);
        assert_eq!(
            parse_cursor(KEY, &cursor).unwrap(),
            vec![KeyValue::Id(id), KeyValue::Int(3)]
        );
        assert!(parse_cursor(KEY, "nonsense").is_err());
    }
}
