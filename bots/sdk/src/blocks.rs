//! Block Kit builders: each returns the block (or element) as JSON, ready for
//! [`crate::Message::blocks`] or a webhook payload.

use serde_json::{json, Value};

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text, "emoji": true })
}

fn mrkdwn(text: &str) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

/// A header: large plain text.
pub fn header(text: &str) -> Value {
    json!({ "type": "header", "text": plain(text) })
}

/// A section of Markdown text.
pub fn section(text: &str) -> Value {
    json!({ "type": "section", "text": mrkdwn(text) })
}

/// A section of Markdown text with an element (a button, a menu) beside it.
pub fn section_with(text: &str, accessory: Value) -> Value {
    json!({ "type": "section", "text": mrkdwn(text), "accessory": accessory })
}

/// A section of short Markdown fields shown in two columns.
pub fn fields<S: AsRef<str>>(fields: &[S]) -> Value {
    let fields: Vec<Value> = fields.iter().map(|f| mrkdwn(f.as_ref())).collect();
    json!({ "type": "section", "fields": fields })
}

/// Small Markdown text under a message.
pub fn context<S: AsRef<str>>(texts: &[S]) -> Value {
    let elements: Vec<Value> = texts.iter().map(|t| mrkdwn(t.as_ref())).collect();
    json!({ "type": "context", "elements": elements })
}

/// A horizontal line.
pub fn divider() -> Value {
    json!({ "type": "divider" })
}

/// A row of interactive elements; presses name `block_id` and the element's `action_id`.
pub fn actions(block_id: &str, elements: Vec<Value>) -> Value {
    json!({ "type": "actions", "block_id": block_id, "elements": elements })
}

/// A button; its press carries `value`.
pub fn button(action_id: &str, text: &str, value: &str) -> Value {
    json!({ "type": "button", "action_id": action_id, "text": plain(text), "value": value })
}

/// A green (`primary`) version of a button.
pub fn primary(mut button: Value) -> Value {
    button["style"] = json!("primary");
    button
}

/// A red (`danger`) version of a button.
pub fn danger(mut button: Value) -> Value {
    button["style"] = json!("danger");
    button
}

/// A menu of options, given as (text, value); a pick carries the option's value.
pub fn static_select(action_id: &str, placeholder: &str, options: &[(&str, &str)]) -> Value {
    let options: Vec<Value> = options
        .iter()
        .map(|(text, value)| json!({ "text": plain(text), "value": value }))
        .collect();
    json!({
        "type": "static_select",
        "action_id": action_id,
        "placeholder": plain(placeholder),
        "options": options,
    })
}
