//! Block Kit blocks: the structured layout a bot's message may carry besides its text.
//!
//! A message posted through the Slack-compatible surface keeps the `blocks` it was posted
//! with (encrypted beside its body, under the same workspace key), so clients can render
//! them and people can press their buttons. The body stays the text every other reader uses
//! (search, notifications, exports): the blocks rendered as text.
//!
//! Blocks are kept as Slack's JSON, checked for shape only: an array of at most 50 objects,
//! each with a `type`, at most 48 KiB in all. Like Slack, a block without a `block_id` and an
//! interactive element without an `action_id` are given one when posted, so every action a
//! client sends names its element. [`MessageBlocks::action`] finds the element an action
//! names, and the value it carries comes from the stored block, never from the client.

use serde_json::{Map, Value};

use crate::domain::ParseError;

/// Most blocks in one message (Slack's limit).
pub const MAX_BLOCKS: usize = 50;
/// Most bytes of one message's blocks, as JSON.
pub const MAX_BLOCKS_BYTES: usize = 48 * 1024;
/// Longest `block_id`, `action_id` or option value (Slack's limits).
const MAX_ID: usize = 255;
const MAX_VALUE: usize = 2000;

/// Interactive element types an action may come from.
const INTERACTIVE: &[&str] = &["button", "static_select", "overflow"];

/// A message's blocks, checked and with their ids filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageBlocks(Vec<Value>);

/// The element an action names, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionElement {
    /// The block holding it.
    pub block_id: String,
    /// Its `action_id`.
    pub action_id: String,
    /// `button`, `static_select` or `overflow`.
    pub kind: String,
    /// The element as posted.
    pub element: Value,
}

impl MessageBlocks {
    /// Checks `value` as a message's blocks; `None` for an absent, null or empty array.
    pub fn parse(field: &'static str, value: Option<&Value>) -> Result<Option<Self>, ParseError> {
        let list = match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(ParseError::new(field, "must be an array of blocks")),
        };
        if list.is_empty() {
            return Ok(None);
        }
        if list.len() > MAX_BLOCKS {
            return Err(ParseError::new(
                field,
                format!("must hold at most {MAX_BLOCKS} blocks"),
            ));
        }
        let mut out = Vec::with_capacity(list.len());
        let mut block_ids = std::collections::HashSet::new();
        for (i, block) in list.iter().enumerate() {
            let Value::Object(block) = block else {
                return Err(ParseError::new(field, "every block must be an object"));
            };
            let mut block = block.clone();
            if !block.get("type").is_some_and(Value::is_string) {
                return Err(ParseError::new(field, "every block needs a type"));
            }
            let block_id = match block.get("block_id") {
                None | Some(Value::Null) => format!("b{i}"),
                Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID => id.clone(),
                Some(_) => {
                    return Err(ParseError::new(
                        field,
                        format!("a block_id must be 1 to {MAX_ID} characters"),
                    ))
                }
            };
            if !block_ids.insert(block_id.clone()) {
                return Err(ParseError::new(
                    field,
                    format!("block_id {block_id:?} appears twice"),
                ));
            }
            block.insert("block_id".into(), Value::String(block_id));
            fill_action_ids(field, &mut block)?;
            out.push(Value::Object(block));
        }
        let blocks = MessageBlocks(out);
        if blocks.to_bytes().len() > MAX_BLOCKS_BYTES {
            return Err(ParseError::new(
                field,
                format!("must be at most {MAX_BLOCKS_BYTES} bytes as JSON"),
            ));
        }
        Ok(Some(blocks))
    }

    /// Blocks as stored (already checked when posted).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match serde_json::from_slice(bytes).ok()? {
            Value::Array(list) => Some(MessageBlocks(list)),
            _ => None,
        }
    }

    /// The JSON that is stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).unwrap_or_default()
    }

    /// The blocks.
    pub fn as_slice(&self) -> &[Value] {
        &self.0
    }

    /// The blocks, owned.
    pub fn into_vec(self) -> Vec<Value> {
        self.0
    }

    /// The interactive element `block_id` / `action_id` names, if the message has it.
    pub fn action(&self, block_id: &str, action_id: &str) -> Option<ActionElement> {
        let block = self
            .0
            .iter()
            .find(|b| b.get("block_id").and_then(Value::as_str) == Some(block_id))?;
        elements(block)
            .find(|e| e.get("action_id").and_then(Value::as_str) == Some(action_id))
            .and_then(|e| {
                let kind = e.get("type").and_then(Value::as_str)?;
                INTERACTIVE.contains(&kind).then(|| ActionElement {
                    block_id: block_id.to_owned(),
                    action_id: action_id.to_owned(),
                    kind: kind.to_owned(),
                    element: e.clone(),
                })
            })
    }
}

/// The elements of a block that may be interactive: an `actions` block's elements and a
/// `section`'s accessory.
fn elements(block: &Value) -> impl Iterator<Item = &Value> {
    let listed = block
        .get("elements")
        .filter(|_| block.get("type").and_then(Value::as_str) == Some("actions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    listed.chain(block.get("accessory").filter(|a| a.is_object()))
}

fn fill_action_ids(field: &'static str, block: &mut Map<String, Value>) -> Result<(), ParseError> {
    let kind = block
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    let mut fill = |default: String, element: &mut Value| -> Result<(), ParseError> {
        let Value::Object(element) = element else {
            return Err(ParseError::new(field, "every element must be an object"));
        };
        let action_id = match element.get("action_id") {
            None | Some(Value::Null) => default,
            Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID => id.clone(),
            Some(_) => {
                return Err(ParseError::new(
                    field,
                    format!("an action_id must be 1 to {MAX_ID} characters"),
                ))
            }
        };
        if !seen.insert(action_id.clone()) {
            return Err(ParseError::new(
                field,
                format!("action_id {action_id:?} appears twice in one block"),
            ));
        }
        if let Some(value) = element.get("value") {
            if !value.as_str().is_some_and(|v| v.len() <= MAX_VALUE) {
                return Err(ParseError::new(
                    field,
                    format!("an element's value must be text of at most {MAX_VALUE} bytes"),
                ));
            }
        }
        element.insert("action_id".into(), Value::String(action_id));
        Ok(())
    };
    if kind == "actions" {
        match block.get_mut("elements") {
            Some(Value::Array(list)) => {
                for (i, element) in list.iter_mut().enumerate() {
                    fill(format!("a{i}"), element)?;
                }
            }
            _ => {
                return Err(ParseError::new(
                    field,
                    "an actions block needs an array of elements",
                ))
            }
        }
    }
    if let Some(accessory) = block.get_mut("accessory") {
        if accessory
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| INTERACTIVE.contains(&t))
        {
            fill("accessory".to_owned(), accessory)?;
        }
    }
    Ok(())
}

/// The option of a select or overflow element whose `value` is `value`, as posted.
pub fn option_of(element: &Value, value: &str) -> Option<Value> {
    let direct = element.get("options").and_then(Value::as_array);
    let grouped = element
        .get("option_groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.get("options").and_then(Value::as_array));
    direct
        .into_iter()
        .chain(grouped)
        .flatten()
        .find(|o| o.get("value").and_then(Value::as_str) == Some(value))
        .cloned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_are_filled_and_actions_found() {
        let blocks = MessageBlocks::parse(
            "blocks",
            Some(&json!([
                {"type": "section", "text": {"type": "mrkdwn", "text": "Deploy?"},
                 "accessory": {"type": "static_select", "options": [
                     {"text": {"type": "plain_text", "text": "Prod"}, "value": "prod"}]}},
                {"type": "actions", "block_id": "go", "elements": [
                    {"type": "button", "action_id": "approve", "value": "yes",
                     "text": {"type": "plain_text", "text": "Approve"}},
                    {"type": "button", "text": {"type": "plain_text", "text": "Deny"}}]}
            ])),
        )
        .unwrap()
        .unwrap();
        let approve = blocks.action("go", "approve").unwrap();
        assert_eq!(approve.kind, "button");
        assert_eq!(approve.element["value"], "yes");
        assert!(blocks.action("go", "a1").is_some());
        let select = blocks.action("b0", "accessory").unwrap();
        assert_eq!(option_of(&select.element, "prod").unwrap()["value"], "prod");
        assert!(option_of(&select.element, "staging").is_none());
        assert!(blocks.action("go", "nope").is_none());
        let again = MessageBlocks::from_bytes(&blocks.to_bytes()).unwrap();
        assert_eq!(again, blocks);
    }

    #[test]
    fn bad_shapes_are_refused() {
        for bad in [
            json!("nope"),
            json!([{"text": "no type"}]),
            json!([{"type": "actions"}]),
            json!([{"type": "divider", "block_id": "x"}, {"type": "divider", "block_id": "x"}]),
            json!([{"type": "actions", "elements": [{"type": "button", "action_id": "a"},
                                                    {"type": "button", "action_id": "a"}]}]),
            json!([{"type": "actions", "elements": [{"type": "button", "value": 3}]}]),
            json!(vec![json!({"type": "divider"}); 51]),
        ] {
            assert!(MessageBlocks::parse("blocks", Some(&bad)).is_err(), "{bad}");
        }
        assert!(matches!(
            MessageBlocks::parse("blocks", Some(&json!([]))),
            Ok(None)
        ));
    }
}
