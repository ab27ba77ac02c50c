//! Task forms: what a user task's completion may set. A form is a small JSON Schema, an
//! object whose properties are the fields: `string` (with `format` `date`, `user` or `file`,
//! or an `enum` of choices), `number`, `integer` or `boolean`, each with an optional `title`,
//! `required` naming the fields that must be given, and `order` listing the fields in the order
//! a form shows them (those it leaves out follow, by name: a JSON object's keys carry no order
//! once stored). The web client renders it; the server validates every completion against it
//! again.
//!
//! Forms are deployed (`workflows.manage`) in immutable versions under a key; a user task names
//! one by `formKey`, and a model naming a form that is not deployed is refused. A task keeps
//! the version that was latest when it opened, as an instance keeps its process version. A
//! completion of a task with a form sets exactly the form's fields, typed as it says (a user
//! picker names a member of the workspace); a task without a form takes any variables, as in
//! other BPMN engines, so a model gives a form to every task whose completer must not be able
//! to change what comes after.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::WorkflowService;
use crate::audit::{Event, Outcome};
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::{Action, Actor};
use crate::store::workflows::{self as wf, FormRecord};
use crate::store::{Conn, Tx};

/// The most fields a form has.
const MAX_FIELDS: usize = 100;
/// The longest form, as JSON.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// The longest text a text field takes unless its `maxLength` says less.
const MAX_TEXT: u64 = 10_000;

/// A form to deploy.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "approval", "schema": {
    "title": "Approve the document",
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "title": "Approve"},
        "comment": {"type": "string", "title": "Comment", "maxLength": 2000}
    },
    "required": ["approved"]
}}))]
pub struct NewForm {
    /// The key user tasks name it by (`concord:formKey`, `form:` in YAML).
    pub key: String,
    /// The JSON Schema.
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// A deployed form version.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FormView {
    /// Its key.
    pub key: String,
    /// Its version (1, 2, …).
    pub version: i64,
    /// The JSON Schema.
    #[schema(value_type = Object)]
    pub schema: Value,
    /// When it was deployed.
    pub deployed_at: chrono::DateTime<Utc>,
}

/// The latest version of each of a workspace's forms.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FormList {
    /// By key.
    pub forms: Vec<FormView>,
}

/// A parsed form.
#[derive(Debug, Default)]
pub(crate) struct Form {
    fields: BTreeMap<String, Field>,
    required: Vec<String>,
}

#[derive(Debug)]
struct Field {
    kind: Kind,
    choices: Option<Vec<Value>>,
    max_length: u64,
    minimum: Option<f64>,
    maximum: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Date,
    User,
    File,
    Number,
    Integer,
    Boolean,
}

impl Form {
    /// Parses a schema; every problem is named.
    pub(crate) fn parse(schema: &Value) -> Result<Form, Vec<String>> {
        let mut problems = Vec::new();
        let Some(top) = schema.as_object() else {
            return Err(vec!["a form is a JSON object".into()]);
        };
        for key in top.keys() {
            if !matches!(
                key.as_str(),
                "type" | "title" | "description" | "properties" | "required" | "order" | "$schema"
            ) {
                problems.push(format!("the form has {key:?}, which forms do not take"));
            }
        }
        if top.get("type").is_some_and(|t| t != "object") {
            problems.push("a form's type is \"object\"".into());
        }
        let mut form = Form::default();
        let properties = match top.get("properties") {
            Some(Value::Object(p)) => p.clone(),
            Some(_) => {
                problems.push("properties is an object of fields".into());
                Map::new()
            }
            None => Map::new(),
        };
        if properties.len() > MAX_FIELDS {
            problems.push(format!("a form has at most {MAX_FIELDS} fields"));
        }
        for (name, spec) in &properties {
            if !is_name(name) {
                problems.push(format!(
                    "field {name:?}: a field's name is a letter or _ then letters, digits or _ (it becomes a variable)"
                ));
                continue;
            }
            match field(name, spec) {
                Ok(f) => {
                    form.fields.insert(name.clone(), f);
                }
                Err(p) => problems.extend(p),
            }
        }
        match top.get("required") {
            None => {}
            Some(Value::Array(names)) => {
                for n in names {
                    match n.as_str() {
                        Some(n) if properties.contains_key(n) => form.required.push(n.to_owned()),
                        _ => problems.push(format!("required names {n}, which is not a field")),
                    }
                }
            }
            Some(_) => problems.push("required is a list of field names".into()),
        }
        match top.get("order") {
            None => {}
            Some(Value::Array(names)) => {
                let mut seen = std::collections::HashSet::new();
                for n in names {
                    match n.as_str() {
                        Some(n) if !properties.contains_key(n) => {
                            problems.push(format!("order names {n:?}, which is not a field"))
                        }
                        Some(n) if !seen.insert(n) => {
                            problems.push(format!("order names {n:?} twice"))
                        }
                        Some(_) => {}
                        None => problems.push(format!("order names {n}, which is not a field")),
                    }
                }
            }
            Some(_) => problems.push("order is a list of field names".into()),
        }
        if problems.is_empty() {
            Ok(form)
        } else {
            Err(problems)
        }
    }

    /// Checks a completion's values; every problem is named.
    pub(crate) fn check(&self, values: &Map<String, Value>) -> Vec<String> {
        let mut problems = Vec::new();
        for name in &self.required {
            if values.get(name).is_none_or(Value::is_null) {
                problems.push(format!("{name} is required"));
            }
        }
        for (name, value) in values {
            let Some(f) = self.fields.get(name) else {
                problems.push(format!("{name} is not a field of this task's form"));
                continue;
            };
            if value.is_null() {
                continue;
            }
            if let Some(choices) = &f.choices {
                if !choices.contains(value) {
                    problems.push(format!("{name} must be one of the form's choices"));
                    continue;
                }
            }
            let ok = match f.kind {
                Kind::Text => value
                    .as_str()
                    .is_some_and(|s| s.chars().count() as u64 <= f.max_length),
                Kind::Date => value
                    .as_str()
                    .is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
                Kind::User | Kind::File => {
                    value.as_str().is_some_and(|s| s.parse::<Uuid>().is_ok())
                }
                Kind::Boolean => value.is_boolean(),
                Kind::Integer => value.as_i64().is_some() && in_range(f, value),
                Kind::Number => value.is_number() && in_range(f, value),
            };
            if !ok {
                problems.push(format!("{name} must be {}", f.describe()));
            }
        }
        problems
    }

    /// Whether a yes or no answers the form: it has a boolean `approved` field and requires
    /// nothing else (so Approve and Reject buttons in chat can complete its task).
    pub(crate) fn answers_yes_or_no(&self) -> bool {
        self.fields
            .get("approved")
            .is_some_and(|f| f.kind == Kind::Boolean && f.choices.is_none())
            && self.required.iter().all(|r| r == "approved")
    }

    /// The form's user fields, as given (a user picker names a member of the workspace).
    pub(crate) fn users<'a>(&self, values: &'a Map<String, Value>) -> Vec<&'a str> {
        self.fields
            .iter()
            .filter(|(_, f)| f.kind == Kind::User)
            .filter_map(|(n, _)| values.get(n).and_then(Value::as_str))
            .collect()
    }
}

impl Field {
    fn describe(&self) -> String {
        match self.kind {
            Kind::Text => format!("text of at most {} characters", self.max_length),
            Kind::Date => "a date (YYYY-MM-DD)".into(),
            Kind::User => "a user id".into(),
            Kind::File => "a file id".into(),
            Kind::Boolean => "true or false".into(),
            Kind::Integer | Kind::Number => {
                let what = if self.kind == Kind::Integer {
                    "a whole number"
                } else {
                    "a number"
                };
                match (self.minimum, self.maximum) {
                    (Some(a), Some(b)) => format!("{what} from {a} to {b}"),
                    (Some(a), None) => format!("{what} of at least {a}"),
                    (None, Some(b)) => format!("{what} of at most {b}"),
                    (None, None) => what.into(),
                }
            }
        }
    }
}

fn in_range(f: &Field, v: &Value) -> bool {
    let Some(x) = v.as_f64() else {
        return false;
    };
    f.minimum.is_none_or(|m| x >= m) && f.maximum.is_none_or(|m| x <= m)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

fn field(name: &str, spec: &Value) -> Result<Field, Vec<String>> {
    let mut problems = Vec::new();
    let Some(spec) = spec.as_object() else {
        return Err(vec![format!("field {name:?} is an object")]);
    };
    for key in spec.keys() {
        if !matches!(
            key.as_str(),
            "type"
                | "title"
                | "description"
                | "format"
                | "enum"
                | "maxLength"
                | "minimum"
                | "maximum"
                | "default"
        ) {
            problems.push(format!(
                "field {name:?} has {key:?}, which fields do not take"
            ));
        }
    }
    let format = spec.get("format").and_then(Value::as_str);
    let kind = match (spec.get("type").and_then(Value::as_str), format) {
        (Some("string"), None | Some("multiline")) => Kind::Text,
        (Some("string"), Some("date")) => Kind::Date,
        (Some("string"), Some("user")) => Kind::User,
        (Some("string"), Some("file")) => Kind::File,
        (Some("number"), None) => Kind::Number,
        (Some("integer"), None) => Kind::Integer,
        (Some("boolean"), None) => Kind::Boolean,
        (t, f) => {
            problems.push(format!(
                "field {name:?}: type {} with format {} is not a form field (string, with format date, user, file or multiline; number; integer; boolean)",
                t.unwrap_or("(none)"),
                f.unwrap_or("(none)")
            ));
            Kind::Text
        }
    };
    let choices = match spec.get("enum") {
        None => None,
        Some(Value::Array(c)) if !c.is_empty() && c.len() <= 200 => Some(c.clone()),
        Some(_) => {
            problems.push(format!(
                "field {name:?}: enum is a list of 1 to 200 choices"
            ));
            None
        }
    };
    let number = |key: &str, problems: &mut Vec<String>| match spec.get(key) {
        None => None,
        Some(v) => match v.as_f64() {
            Some(x) => Some(x),
            None => {
                problems.push(format!("field {name:?}: {key} is a number"));
                None
            }
        },
    };
    let minimum = number("minimum", &mut problems);
    let maximum = number("maximum", &mut problems);
    let max_length = match spec.get("maxLength") {
        None => MAX_TEXT,
        Some(v) => match v.as_u64() {
            Some(n) if n <= MAX_TEXT => n,
            _ => {
                problems.push(format!(
                    "field {name:?}: maxLength is a whole number up to {MAX_TEXT}"
                ));
                MAX_TEXT
            }
        },
    };
    if problems.is_empty() {
        Ok(Field {
            kind,
            choices,
            max_length,
            minimum,
            maximum,
        })
    } else {
        Err(problems)
    }
}

impl WorkflowService {
    /// Deploys a form (`workflows.manage`) as the next version of its key. Audited as
    /// `workflow.form_deployed`.
    pub async fn deploy_form(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        new: NewForm,
    ) -> Result<FormView, Error> {
        let key = new.key.trim().to_owned();
        if key.is_empty() || key.len() > 100 || key.chars().any(char::is_control) {
            return Err(crate::domain::ParseError {
                field: "key",
                message: "must be 1 to 100 characters".into(),
            }
            .into());
        }
        let bytes = serde_json::to_vec(&new.schema)
            .map_err(|e| Error::Internal(format!("form to JSON: {e}")))?;
        if bytes.len() > MAX_FORM_BYTES {
            return Err(Error::TooLarge {
                code: "form_too_large",
                message: format!("a form may be at most {MAX_FORM_BYTES} bytes"),
                limit: MAX_FORM_BYTES as u64,
            });
        }
        Form::parse(&new.schema).map_err(|problems| invalid_form("invalid_form", problems))?;
        let this = self.clone();
        let actor = actor.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, Action::ManageWorkflows, workspace)
                        .await?;
                    let version = wf::latest_form(&mut tx.conn(), workspace, &key)
                        .await?
                        .map_or(1, |f| f.version + 1);
                    let id = Uuid::now_v7();
                    let schema = this
                        .seal(
                            tx,
                            workspace,
                            "workflow_forms",
                            &id.to_string(),
                            "schema",
                            &bytes,
                        )
                        .await?;
                    let record = FormRecord {
                        id,
                        workspace_id: workspace,
                        form_key: key.clone(),
                        version,
                        schema,
                        deployed_by: actor.user_id(),
                        deployed_at: Utc::now(),
                    };
                    wf::insert_form(&mut tx.conn(), &record).await?;
                    let event = Event::by(&actor, "workflow.form_deployed", Outcome::Allowed)
                        .target("workflow_form", id)
                        .workspace(workspace)
                        .details(json!({"key": key, "version": version}));
                    this.auditor().record(tx, event).await?;
                    Ok(FormView {
                        key: record.form_key,
                        version,
                        schema: new.schema.clone(),
                        deployed_at: record.deployed_at,
                    })
                })
            })
            .await
    }

    /// The latest version of each of the workspace's forms (`workflows.start`: members fill
    /// them in).
    pub async fn forms(&self, actor: &Actor, workspace: WorkspaceId) -> Result<FormList, Error> {
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::StartWorkflows, workspace)
            .await?;
        let mut forms = Vec::new();
        for r in wf::forms(&mut conn.conn(), workspace).await? {
            let schema = self.form_schema(&mut conn.conn(), &r).await?;
            forms.push(FormView {
                key: r.form_key,
                version: r.version,
                schema,
                deployed_at: r.deployed_at,
            });
        }
        Ok(FormList { forms })
    }

    /// The schema of form `key` at `version` (the latest without one), if deployed.
    pub(crate) async fn form_at(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
        key: &str,
        version: Option<i64>,
    ) -> Result<Option<Value>, Error> {
        let record = match version {
            Some(v) => wf::form_version(conn, workspace, key, v).await?,
            None => wf::latest_form(conn, workspace, key).await?,
        };
        match record {
            Some(r) => Ok(Some(self.form_schema(conn, &r).await?)),
            None => Ok(None),
        }
    }

    /// The latest version of form `key`, for a task opened now to keep.
    pub(crate) async fn current_form_version(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
        key: &str,
    ) -> Result<Option<i64>, Error> {
        Ok(wf::latest_form(conn, workspace, key)
            .await?
            .map(|f| f.version))
    }

    async fn form_schema(&self, conn: &mut Conn<'_>, r: &FormRecord) -> Result<Value, Error> {
        let row = r.id.to_string();
        self.open_json(
            conn,
            r.workspace_id,
            "workflow_forms",
            &row,
            "schema",
            &r.schema,
        )
        .await
    }

    /// Checks a completion's values against version `version` of form `key` (the version
    /// the task was opened with), inside the completing write.
    pub(super) async fn check_completion(
        &self,
        tx: &mut Tx,
        workspace: WorkspaceId,
        key: &str,
        version: Option<i64>,
        values: &Map<String, Value>,
    ) -> Result<(), Error> {
        let Some(schema) = self
            .form_at(&mut tx.conn(), workspace, key, version)
            .await?
        else {
            return Err(Error::refused(
                "form_missing",
                format!("this task's form {key:?} is not deployed"),
            ));
        };
        let form = Form::parse(&schema).map_err(|p| invalid_form("invalid_form", p))?;
        let mut problems = form.check(values);
        for user in form.users(values) {
            if let Ok(id) = user.parse::<Uuid>() {
                let member = crate::store::workspaces::member(
                    &mut tx.conn(),
                    workspace,
                    crate::domain::UserId(id),
                )
                .await?;
                if member.is_none() {
                    problems.push(format!("{user} is not a member of this workspace"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(invalid_form("invalid_completion", problems))
        }
    }
}

/// A refusal listing each problem, as a model's are.
fn invalid_form(code: &'static str, problems: Vec<String>) -> Error {
    Error::InvalidModel {
        code,
        message: problems.join("; "),
        problems: Value::Array(
            problems
                .into_iter()
                .map(|p| json!({"element": null, "line": null, "message": p}))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval() -> Form {
        Form::parse(&json!({
            "type": "object",
            "properties": {
                "approved": {"type": "boolean"},
                "comment": {"type": "string", "maxLength": 5},
                "amount": {"type": "integer", "minimum": 1, "maximum": 10},
                "due": {"type": "string", "format": "date"},
                "level": {"type": "string", "enum": ["low", "high"]},
                "delegate": {"type": "string", "format": "user"}
            },
            "required": ["approved"]
        }))
        .unwrap()
    }

    fn values(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_completion_sets_exactly_the_fields_as_typed() {
        let f = approval();
        assert!(f
            .check(&values(
                json!({"approved": true, "comment": "ok", "amount": 3,
                "due": "2027-01-31", "level": "high",
                "delegate": "01939e4e-0000-7000-8000-000000000001"})
            ))
            .is_empty());
        let p = f.check(&values(
            json!({"comment": "too long", "amount": 11, "due": "31/01",
            "level": "mid", "manager": "me", "delegate": "ann"}),
        ));
        let text = p.join("\n");
        for expected in [
            "approved is required",
            "comment must be text of at most 5",
            "amount must be a whole number from 1 to 10",
            "due must be a date",
            "level must be one of",
            "manager is not a field",
            "delegate must be a user id",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
    }

    #[test]
    fn forms_that_are_not_forms_are_refused_with_each_problem() {
        let p = Form::parse(&json!({
            "type": "array",
            "properties": {"1x": {"type": "string"}, "n": {"type": "object"},
                "c": {"type": "string", "pattern": ".*"}},
            "required": ["missing"],
            "allOf": []
        }))
        .unwrap_err();
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(Form::parse(&json!([1])).is_err());
    }

    #[test]
    fn a_forms_order_names_each_of_its_fields_once() {
        let fields = json!({"days": {"type": "integer"}, "approved": {"type": "boolean"}});
        let with = |order: Value| {
            Form::parse(&json!({"type": "object", "properties": fields, "order": order}))
        };
        assert!(with(json!(["days", "approved"])).is_ok());
        assert!(with(json!(["days"])).is_ok(), "the rest follow by name");
        let p = with(json!(["days", "days", "kind", 3])).unwrap_err();
        assert_eq!(
            p,
            vec![
                "order names \"days\" twice",
                "order names \"kind\", which is not a field",
                "order names 3, which is not a field"
            ]
        );
        assert_eq!(
            with(json!("days")).unwrap_err(),
            vec!["order is a list of field names"]
        );
    }
}
