//! A simple diagram for a model that has none (one written in YAML), so its BPMN export opens
//! in a modeler with every shape and edge drawn.
//!
//! Elements are placed in columns by their distance from the start along sequence flows, and in
//! rows by the order they are met; sub-processes are drawn expanded, sized to hold their own
//! layout. Boundary events sit on the lower edge of their activity, compensation handlers below
//! it. Edges run right from their source, then vertically, then right into their target. The
//! result is meant to be readable and then rearranged by hand, not pretty.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write;

use crate::model::{BoundaryTrigger, Diagram, ElementKind, ProcessModel};

const COLUMN_GAP: i64 = 60;
const ROW_GAP: i64 = 50;
const PAD: i64 = 40;

#[derive(Clone, Copy, Default)]
struct Rect {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

/// Adds a generated diagram to a model that has none.
pub fn with_layout(mut model: ProcessModel) -> ProcessModel {
    if model.diagram.is_none() {
        model.diagram = Some(diagram(&model));
    }
    model
}

fn size(model: &ProcessModel, id: &str, placed: &HashMap<String, Rect>) -> (i64, i64) {
    match model.element(id).map(|e| &e.kind) {
        Some(ElementKind::StartEvent { .. })
        | Some(ElementKind::EndEvent { .. })
        | Some(ElementKind::IntermediateCatch { .. })
        | Some(ElementKind::IntermediateThrow { .. })
        | Some(ElementKind::BoundaryEvent { .. }) => (36, 36),
        Some(ElementKind::Gateway { .. }) => (50, 50),
        Some(ElementKind::SubProcess) => placed.get(id).map(|r| (r.w, r.h)).unwrap_or((350, 200)),
        _ => (100, 80),
    }
}

/// Lays out one scope at the origin; returns its size. Inner sub-processes are laid out first.
fn scope(model: &ProcessModel, id: Option<&str>, placed: &mut HashMap<String, Rect>) -> (i64, i64) {
    let members: Vec<&str> = model
        .elements
        .iter()
        .filter(|e| e.scope.as_deref() == id)
        .filter(|e| !matches!(e.kind, ElementKind::BoundaryEvent { .. }))
        .filter(|e| !model.is_compensation_handler(&e.id))
        .map(|e| e.id.as_str())
        .collect();
    for m in &members {
        if matches!(
            model.element(m).map(|e| &e.kind),
            Some(ElementKind::SubProcess)
        ) {
            let (w, h) = scope(model, Some(m), placed);
            placed.insert(
                m.to_string(),
                Rect {
                    x: 0,
                    y: 0,
                    w: w + 2 * PAD,
                    h: h + 2 * PAD,
                },
            );
        }
    }
    // Columns: breadth-first distance from the start events (boundary events count as part of
    // their activity).
    let mut column: HashMap<&str, usize> = HashMap::new();
    let mut queue: VecDeque<(&str, usize)> = members
        .iter()
        .filter(|m| {
            matches!(
                model.element(m).map(|e| &e.kind),
                Some(ElementKind::StartEvent { .. })
            )
        })
        .map(|m| (*m, 0))
        .collect();
    while let Some((at, col)) = queue.pop_front() {
        if column.contains_key(at) {
            continue;
        }
        column.insert(at, col);
        let sources = std::iter::once(at).chain(model.boundaries(at).map(|b| b.id.as_str()));
        for s in sources {
            for f in model.outgoing(s) {
                queue.push_back((f.target.as_str(), col + 1));
            }
        }
    }
    let last = column.values().max().copied().unwrap_or(0);
    let mut grid: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for m in &members {
        grid.entry(*column.get(m).unwrap_or(&(last + 1)))
            .or_default()
            .push(m);
    }
    let mut widths: BTreeMap<usize, i64> = BTreeMap::new();
    let mut heights: BTreeMap<usize, i64> = BTreeMap::new();
    for (c, items) in &grid {
        for (r, m) in items.iter().enumerate() {
            let (w, h) = size(model, m, placed);
            let extra = if model.boundaries(m).next().is_some() {
                60
            } else {
                0
            };
            let w_entry = widths.entry(*c).or_default();
            *w_entry = (*w_entry).max(w);
            let h_entry = heights.entry(r).or_default();
            *h_entry = (*h_entry).max(h + extra);
        }
    }
    let col_x: BTreeMap<usize, i64> = widths
        .iter()
        .scan(0, |x, (c, w)| {
            let at = *x;
            *x += w + COLUMN_GAP;
            Some((*c, at))
        })
        .collect();
    let row_y: Vec<i64> = heights
        .values()
        .scan(0, |y, h| {
            let at = *y;
            *y += h + ROW_GAP;
            Some(at)
        })
        .collect();
    let (mut total_w, mut total_h) = (0, 0);
    for (c, items) in &grid {
        for (r, m) in items.iter().enumerate() {
            let (w, h) = size(model, m, placed);
            let cw = widths[c];
            let rh = heights[&r];
            // Shapes of one row share the middle line of an 80-high band, so flows run straight.
            let rect = Rect {
                x: col_x[c] + (cw - w) / 2,
                y: row_y[r] + ((rh.min(80) - h) / 2).max(0),
                w,
                h,
            };
            total_w = total_w.max(rect.x + w);
            total_h = total_h.max(rect.y + h + 60);
            // A sub-process's inner shapes move with it.
            if matches!(
                model.element(m).map(|e| &e.kind),
                Some(ElementKind::SubProcess)
            ) {
                shift_inside(model, m, rect.x + PAD, rect.y + PAD, placed);
            }
            placed.insert(m.to_string(), rect);
            for (n, b) in model.boundaries(m).enumerate() {
                let bx = rect.x + 10 + 46 * n as i64;
                placed.insert(
                    b.id.clone(),
                    Rect {
                        x: bx,
                        y: rect.y + h - 18,
                        w: 36,
                        h: 36,
                    },
                );
                if let ElementKind::BoundaryEvent {
                    trigger:
                        BoundaryTrigger::Compensation {
                            handler: Some(hd), ..
                        },
                    ..
                } = &b.kind
                {
                    placed.insert(
                        hd.clone(),
                        Rect {
                            x: bx + 60,
                            y: rect.y + h + 40,
                            w: 100,
                            h: 80,
                        },
                    );
                    total_h = total_h.max(rect.y + h + 130);
                }
            }
        }
    }
    (total_w, total_h)
}

fn shift_inside(
    model: &ProcessModel,
    sub: &str,
    dx: i64,
    dy: i64,
    placed: &mut HashMap<String, Rect>,
) {
    let inner: Vec<String> = model
        .elements
        .iter()
        .filter(|e| e.scope.as_deref() == Some(sub))
        .map(|e| e.id.clone())
        .collect();
    for id in inner {
        if let Some(r) = placed.get_mut(&id) {
            r.x += dx;
            r.y += dy;
        }
        if matches!(
            model.element(&id).map(|e| &e.kind),
            Some(ElementKind::SubProcess)
        ) {
            shift_inside(model, &id, dx, dy, placed);
        }
    }
}

fn diagram(model: &ProcessModel) -> Diagram {
    let mut placed = HashMap::new();
    scope(model, None, &mut placed);
    let offset = |r: &Rect| Rect {
        x: r.x + 150,
        y: r.y + 80,
        ..*r
    };
    let mut xml = format!(
        "<bpmndi:BPMNDiagram id=\"BPMNDiagram_{0}\">\n    <bpmndi:BPMNPlane id=\"BPMNPlane_{0}\" bpmnElement=\"{0}\">\n",
        model.id
    );
    for e in &model.elements {
        let Some(r) = placed.get(&e.id).map(offset) else {
            continue;
        };
        let expanded = if matches!(e.kind, ElementKind::SubProcess) {
            " isExpanded=\"true\""
        } else {
            ""
        };
        let _ = write!(
            xml,
            "      <bpmndi:BPMNShape id=\"{0}_di\" bpmnElement=\"{0}\"{expanded}>\n        <dc:Bounds x=\"{1}\" y=\"{2}\" width=\"{3}\" height=\"{4}\" />\n      </bpmndi:BPMNShape>\n",
            e.id, r.x, r.y, r.w, r.h
        );
    }
    for f in &model.flows {
        let (Some(s), Some(t)) = (
            placed.get(&f.source).map(offset),
            placed.get(&f.target).map(offset),
        ) else {
            continue;
        };
        let from_boundary = matches!(
            model.element(&f.source).map(|e| &e.kind),
            Some(ElementKind::BoundaryEvent { .. })
        );
        let (sx, sy) = if from_boundary {
            (s.x + s.w / 2, s.y + s.h)
        } else {
            (s.x + s.w, s.y + s.h / 2)
        };
        let (tx, ty) = (t.x, t.y + t.h / 2);
        let mut points = vec![(sx, sy)];
        if from_boundary {
            points.push((sx, ty));
        } else if sy != ty {
            let mx = if tx > sx { (sx + tx) / 2 } else { sx + 20 };
            points.push((mx, sy));
            points.push((mx, ty));
        }
        points.push((tx, ty));
        let _ = writeln!(
            xml,
            "      <bpmndi:BPMNEdge id=\"{}_di\" bpmnElement=\"{}\">",
            f.id, f.id
        );
        for (x, y) in points {
            let _ = writeln!(xml, "        <di:waypoint x=\"{x}\" y=\"{y}\" />");
        }
        xml.push_str("      </bpmndi:BPMNEdge>\n");
    }
    for e in &model.elements {
        if let ElementKind::BoundaryEvent {
            trigger:
                BoundaryTrigger::Compensation {
                    handler: Some(h),
                    association: Some(a),
                },
            ..
        } = &e.kind
        {
            if let (Some(s), Some(t)) = (placed.get(&e.id).map(offset), placed.get(h).map(offset)) {
                let _ = write!(
                    xml,
                    "      <bpmndi:BPMNEdge id=\"{a}_di\" bpmnElement=\"{a}\">\n        <di:waypoint x=\"{}\" y=\"{}\" />\n        <di:waypoint x=\"{}\" y=\"{}\" />\n        <di:waypoint x=\"{}\" y=\"{}\" />\n      </bpmndi:BPMNEdge>\n",
                    s.x + s.w / 2,
                    s.y + s.h,
                    s.x + s.w / 2,
                    t.y + t.h / 2,
                    t.x,
                    t.y + t.h / 2
                );
            }
        }
    }
    xml.push_str("    </bpmndi:BPMNPlane>\n  </bpmndi:BPMNDiagram>");
    Diagram {
        xml,
        namespaces: vec![
            ("bpmndi".into(), crate::bpmn::BPMNDI_NS.into()),
            ("dc".into(), "http://www.omg.org/spec/DD/20100524/DC".into()),
            ("di".into(), "http://www.omg.org/spec/DD/20100524/DI".into()),
        ],
    }
}
