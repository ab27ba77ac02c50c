//! Writing a [`ProcessModel`] back as BPMN 2.0 XML, with its diagram layout.
//!
//! The output uses the prefixes bpmn-js writes (`bpmn:`, `bpmndi:`, `dc:`, `di:`) and the
//! `concord:` extension described in `bpmn`; the diagram interchange kept at parse time is
//! written back verbatim, with the namespace declarations it may use. Parsing the output gives
//! the same model (source lines aside; a model that had no diagram comes back with the one
//! generated for it).

use std::fmt::Write;

use crate::bpmn::{BPMNDI_NS, BPMN_NS, CONCORD_NS, XSI_NS};
use crate::model::{
    Assignment, BoundaryTrigger, CatchTrigger, Element, ElementKind, EndResult, GatewayKind,
    PostTarget, ProcessModel, StartTrigger, ThrowKind,
};
use crate::timer::TimerDefinition;

const STANDARD_NS: &[(&str, &str)] = &[
    ("bpmn", BPMN_NS),
    ("bpmndi", BPMNDI_NS),
    ("dc", "http://www.omg.org/spec/DD/20100524/DC"),
    ("di", "http://www.omg.org/spec/DD/20100524/DI"),
    ("xsi", XSI_NS),
    ("concord", CONCORD_NS),
];

/// Writes the model as BPMN XML. A model without a diagram (one written in YAML) gets a
/// generated one (see `layout`), so the file opens in a modeler.
pub fn to_bpmn(model: &ProcessModel) -> String {
    if model.diagram.is_none() {
        return to_bpmn(&crate::layout::with_layout(model.clone()));
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<bpmn:definitions");
    for (prefix, uri) in STANDARD_NS {
        let _ = write!(out, " xmlns:{prefix}=\"{}\"", esc(uri));
    }
    if let Some(d) = &model.diagram {
        for (prefix, uri) in &d.namespaces {
            if !STANDARD_NS.iter().any(|(p, _)| p == prefix) {
                let _ = write!(out, " xmlns:{prefix}=\"{}\"", esc(uri));
            }
        }
    }
    if let Some(id) = &model.definitions_id {
        let _ = write!(out, " id=\"{}\"", esc(id));
    }
    out.push_str(" targetNamespace=\"http://bpmn.io/schema/bpmn\" exporter=\"Concord\">\n");
    for (id, name) in &model.messages {
        let _ = writeln!(
            out,
            "  <bpmn:message id=\"{}\" name=\"{}\" />",
            esc(id),
            esc(name)
        );
    }
    for (id, code) in &model.errors {
        let _ = writeln!(
            out,
            "  <bpmn:error id=\"{}\" name=\"{}\" errorCode=\"{}\" />",
            esc(id),
            esc(code),
            esc(code)
        );
    }
    for (id, name) in &model.signals {
        let _ = writeln!(
            out,
            "  <bpmn:signal id=\"{}\" name=\"{}\" />",
            esc(id),
            esc(name)
        );
    }
    let _ = write!(out, "  <bpmn:process id=\"{}\"", esc(&model.id));
    if let Some(n) = &model.name {
        let _ = write!(out, " name=\"{}\"", esc(n));
    }
    out.push_str(" isExecutable=\"true\">\n");
    scope(model, None, 2, &mut out);
    out.push_str("  </bpmn:process>\n");
    if let Some(d) = &model.diagram {
        out.push_str("  ");
        out.push_str(&d.xml);
        out.push('\n');
    }
    out.push_str("</bpmn:definitions>\n");
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn scope(model: &ProcessModel, id: Option<&str>, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    for e in model.elements.iter().filter(|e| e.scope.as_deref() == id) {
        element(model, e, depth, out);
    }
    let in_scope = |el: &str| model.element(el).map(|e| e.scope.as_deref()) == Some(id);
    for f in model.flows.iter().filter(|f| in_scope(&f.source)) {
        let _ = write!(
            out,
            "{pad}<bpmn:sequenceFlow id=\"{}\"{} sourceRef=\"{}\" targetRef=\"{}\"",
            esc(&f.id),
            name_attr(&f.name),
            esc(&f.source),
            esc(&f.target)
        );
        match &f.condition {
            Some(c) => {
                let _ = write!(
                    out,
                    ">\n{pad}  <bpmn:conditionExpression xsi:type=\"bpmn:tFormalExpression\">{}</bpmn:conditionExpression>\n{pad}</bpmn:sequenceFlow>\n",
                    esc(c)
                );
            }
            None => out.push_str(" />\n"),
        }
    }
    for e in model.elements.iter().filter(|e| e.scope.as_deref() == id) {
        if let ElementKind::BoundaryEvent {
            trigger:
                BoundaryTrigger::Compensation {
                    handler: Some(h),
                    association,
                },
            ..
        } = &e.kind
        {
            let assoc_id = association
                .clone()
                .unwrap_or_else(|| format!("Association_{}", e.id));
            let _ = writeln!(
                out,
                "{pad}<bpmn:association id=\"{}\" associationDirection=\"One\" sourceRef=\"{}\" targetRef=\"{}\" />",
                esc(&assoc_id),
                esc(&e.id),
                esc(h)
            );
        }
    }
    for a in model
        .annotations
        .iter()
        .filter(|a| a.scope.as_deref() == id)
    {
        let _ = writeln!(
            out,
            "{pad}<bpmn:textAnnotation id=\"{}\">\n{pad}  <bpmn:text>{}</bpmn:text>\n{pad}</bpmn:textAnnotation>",
            esc(&a.id),
            esc(&a.text)
        );
        for (link, source, target) in &a.links {
            let _ = writeln!(
                out,
                "{pad}<bpmn:association id=\"{}\" sourceRef=\"{}\" targetRef=\"{}\" />",
                esc(link),
                esc(source),
                esc(target)
            );
        }
    }
}

fn name_attr(name: &Option<String>) -> String {
    name.as_ref()
        .map(|n| format!(" name=\"{}\"", esc(n)))
        .unwrap_or_default()
}

fn opt_attr(attr: &str, value: &Option<String>) -> String {
    value
        .as_ref()
        .map(|v| format!(" {attr}=\"{}\"", esc(v)))
        .unwrap_or_default()
}

fn timer(t: &TimerDefinition, pad: &str) -> String {
    let (tag, v) = match t {
        TimerDefinition::Date(v) => ("timeDate", v),
        TimerDefinition::Duration(v) => ("timeDuration", v),
        TimerDefinition::Cycle(v) => ("timeCycle", v),
    };
    format!(
        "{pad}  <bpmn:timerEventDefinition>\n{pad}    <bpmn:{tag} xsi:type=\"bpmn:tFormalExpression\">{}</bpmn:{tag}>\n{pad}  </bpmn:timerEventDefinition>\n",
        esc(v)
    )
}

fn element(model: &ProcessModel, e: &Element, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let mut attrs = name_attr(&e.name);
    // Child content, each line already indented: extension elements come before the
    // incoming/outgoing links, event definitions and loops after them (the BPMN schema's order).
    let mut ext = String::new();
    let mut body = String::new();
    let tag = match &e.kind {
        ElementKind::StartEvent { trigger } => {
            match trigger {
                StartTrigger::None => {}
                StartTrigger::Message { message } => {
                    let _ = writeln!(
                        body,
                        "{pad}  <bpmn:messageEventDefinition messageRef=\"{}\" />",
                        esc(message)
                    );
                }
                StartTrigger::Timer(t) => body.push_str(&timer(t, &pad)),
                StartTrigger::Signal { signal } => {
                    let _ = writeln!(
                        body,
                        "{pad}  <bpmn:signalEventDefinition signalRef=\"{}\" />",
                        esc(signal)
                    );
                }
            }
            "startEvent"
        }
        ElementKind::EndEvent { result } => {
            match result {
                EndResult::None => {}
                EndResult::Error { error } => {
                    let _ = writeln!(
                        body,
                        "{pad}  <bpmn:errorEventDefinition errorRef=\"{}\" />",
                        esc(error)
                    );
                }
                EndResult::Terminate => {
                    let _ = writeln!(body, "{pad}  <bpmn:terminateEventDefinition />");
                }
                EndResult::Message { message } => {
                    let _ = writeln!(
                        body,
                        "{pad}  <bpmn:messageEventDefinition messageRef=\"{}\" />",
                        esc(message)
                    );
                }
            }
            "endEvent"
        }
        ElementKind::IntermediateCatch { trigger } => {
            match trigger {
                CatchTrigger::Message(w) => {
                    attrs.push_str(&opt_attr("concord:correlationKey", &w.correlation_key));
                    let _ = writeln!(
                        body,
                        "{pad}  <bpmn:messageEventDefinition messageRef=\"{}\" />",
                        esc(&w.message)
                    );
                }
                CatchTrigger::Timer(t) => body.push_str(&timer(t, &pad)),
                CatchTrigger::Signal { signal } => {
                    let _ = writeln!(
                        body,
                        "{pad}  <bpmn:signalEventDefinition signalRef=\"{}\" />",
                        esc(signal)
                    );
                }
            }
            "intermediateCatchEvent"
        }
        ElementKind::IntermediateThrow { throw } => {
            if let ThrowKind::Compensate { activity } = throw {
                let _ = writeln!(
                    body,
                    "{pad}  <bpmn:compensateEventDefinition{} />",
                    opt_attr("activityRef", activity)
                );
            }
            "intermediateThrowEvent"
        }
        ElementKind::BoundaryEvent {
            attached_to,
            cancel_activity,
            trigger,
        } => {
            if !cancel_activity {
                attrs.push_str(" cancelActivity=\"false\"");
            }
            let _ = write!(attrs, " attachedToRef=\"{}\"", esc(attached_to));
            match trigger {
                BoundaryTrigger::Timer(t) => body.push_str(&timer(t, &pad)),
                BoundaryTrigger::Error { error } => {
                    let _ = writeln!(
                        body,
                        "{pad}  <bpmn:errorEventDefinition{} />",
                        opt_attr("errorRef", error)
                    );
                }
                BoundaryTrigger::Compensation { .. } => {
                    let _ = writeln!(body, "{pad}  <bpmn:compensateEventDefinition />");
                }
            }
            "boundaryEvent"
        }
        ElementKind::UserTask(t) => {
            match &t.assignment {
                Assignment::Person(p) => {
                    attrs.push_str(&opt_attr("concord:assignee", &Some(p.clone())))
                }
                Assignment::Role(r) => {
                    attrs.push_str(&opt_attr("concord:candidateRole", &Some(r.clone())))
                }
                Assignment::Channel(c) => {
                    attrs.push_str(&opt_attr("concord:candidateChannel", &Some(c.clone())))
                }
                Assignment::Unassigned => {}
            }
            attrs.push_str(&opt_attr("concord:formKey", &t.form_key));
            attrs.push_str(&opt_attr("concord:due", &t.due));
            if let Some(routing) = &t.routing {
                // JSON is YAML: the block reads back as it was written.
                let _ = write!(
                    ext,
                    "{pad}  <bpmn:extensionElements>\n{pad}    <concord:routing>{}</concord:routing>\n{pad}  </bpmn:extensionElements>\n",
                    esc(&routing.to_string())
                );
            }
            if let Some(mi) = &t.multi_instance {
                let _ =
                    write!(
                    body,
                    "{pad}  <bpmn:multiInstanceLoopCharacteristics{} concord:collection=\"{}\"{}{}",
                    if mi.sequential { " isSequential=\"true\"" } else { "" },
                    esc(&mi.collection),
                    opt_attr("concord:elementVariable", &mi.element_variable),
                    opt_attr("concord:outputCollection", &mi.output_collection),
                );
                match &mi.completion_condition {
                    Some(c) => {
                        let _ = write!(
                            body,
                            ">\n{pad}    <bpmn:completionCondition xsi:type=\"bpmn:tFormalExpression\">{}</bpmn:completionCondition>\n{pad}  </bpmn:multiInstanceLoopCharacteristics>\n",
                            esc(c)
                        );
                    }
                    None => body.push_str(" />\n"),
                }
            }
            "userTask"
        }
        ElementKind::ServiceTask(s) => {
            let _ = write!(
                ext,
                "{pad}  <bpmn:extensionElements>\n{pad}    <concord:http method=\"{}\" url=\"{}\">\n",
                esc(&s.http.method),
                esc(&s.http.url)
            );
            if let Some(b) = &s.http.body {
                let _ = writeln!(
                    ext,
                    "{pad}      <concord:body>{}</concord:body>",
                    esc(&b.to_string())
                );
            }
            for o in &s.http.outputs {
                let _ = writeln!(
                    ext,
                    "{pad}      <concord:output variable=\"{}\" expression=\"{}\" />",
                    esc(&o.variable),
                    esc(&o.expression)
                );
            }
            let _ = write!(
                ext,
                "{pad}    </concord:http>\n{pad}    <concord:retry attempts=\"{}\" backoff=\"{}\" multiplier=\"{}\" />\n{pad}  </bpmn:extensionElements>\n",
                s.retry.attempts,
                esc(&s.retry.backoff),
                s.retry.multiplier
            );
            "serviceTask"
        }
        ElementKind::SendTask(s) => {
            let (attr, to) = match &s.to {
                PostTarget::Channel(c) => ("channel", c),
                PostTarget::Person(p) => ("person", p),
            };
            let _ = write!(
                ext,
                "{pad}  <bpmn:extensionElements>\n{pad}    <concord:post {attr}=\"{}\">{}</concord:post>\n{pad}  </bpmn:extensionElements>\n",
                esc(to),
                esc(&s.text)
            );
            "sendTask"
        }
        ElementKind::BusinessRuleTask {
            decision_ref,
            result_variable,
        } => {
            attrs.push_str(&opt_attr(
                "concord:decisionRef",
                &Some(decision_ref.clone()),
            ));
            attrs.push_str(&opt_attr("concord:resultVariable", result_variable));
            "businessRuleTask"
        }
        ElementKind::ReceiveTask(w) => {
            let _ = write!(attrs, " messageRef=\"{}\"", esc(&w.message));
            attrs.push_str(&opt_attr("concord:correlationKey", &w.correlation_key));
            "receiveTask"
        }
        ElementKind::Gateway { kind, default_flow } => {
            attrs.push_str(&opt_attr("default", default_flow));
            match kind {
                GatewayKind::Exclusive => "exclusiveGateway",
                GatewayKind::Parallel => "parallelGateway",
                GatewayKind::Inclusive => "inclusiveGateway",
                GatewayKind::EventBased => "eventBasedGateway",
            }
        }
        ElementKind::SubProcess => "subProcess",
        ElementKind::CallActivity {
            called_element,
            result_variable,
        } => {
            let _ = write!(attrs, " calledElement=\"{}\"", esc(called_element));
            attrs.push_str(&opt_attr("concord:resultVariable", result_variable));
            "callActivity"
        }
    };
    if model.is_compensation_handler(&e.id) {
        attrs.push_str(" isForCompensation=\"true\"");
    }
    let mut links = String::new();
    for f in model.incoming(&e.id) {
        let _ = writeln!(
            links,
            "{pad}  <bpmn:incoming>{}</bpmn:incoming>",
            esc(&f.id)
        );
    }
    for f in model.outgoing(&e.id) {
        let _ = writeln!(
            links,
            "{pad}  <bpmn:outgoing>{}</bpmn:outgoing>",
            esc(&f.id)
        );
    }
    let mut inner = String::new();
    if matches!(e.kind, ElementKind::SubProcess) {
        scope(model, Some(&e.id), depth + 1, &mut inner);
    }
    let _ = write!(out, "{pad}<bpmn:{tag} id=\"{}\"{attrs}", esc(&e.id));
    if ext.is_empty() && links.is_empty() && body.is_empty() && inner.is_empty() {
        out.push_str(" />\n");
    } else {
        let _ = write!(out, ">\n{ext}{links}{body}{inner}{pad}</bpmn:{tag}>\n");
    }
}
