//! Skills: people who meet every required skill and level, ranked by how many preferred ones
//! they meet, then by load (as least loaded), then by id. Nobody meeting the requirements is
//! unroutable (waiting will not help); people who match but are unavailable make it wait.

use super::candidate::Candidate;
use super::decision::SkipReason;
use super::least_loaded::by_load;
use super::requirement::Requirement;
use super::route::{Routed, Screen};

/// Picks the best match in one pass.
pub(crate) fn route<'c>(
    requirements: &[Requirement],
    candidates: &'c [Candidate],
    screen: &mut Screen,
) -> Routed<'c> {
    let mut matching = 0;
    let mut best: Option<(&Candidate, usize)> = None;
    // How many eligible people share the best preferred score: the load tie-break's field.
    let mut tied = 0;
    for candidate in candidates {
        let missing = requirements
            .iter()
            .find(|r| r.is_required() && !r.is_met_by(&candidate.attributes));
        if let Some(missing) = missing {
            screen.skip(
                candidate,
                SkipReason::MissingSkill {
                    kind: missing.kind(),
                },
            );
            continue;
        }
        matching += 1;
        if !screen.admit(candidate) {
            continue;
        }
        let score = requirements
            .iter()
            .filter(|r| !r.is_required() && r.is_met_by(&candidate.attributes))
            .count();
        match best {
            Some((_, best_score)) if score < best_score => {}
            Some((current, best_score)) if score == best_score => {
                tied += 1;
                if by_load(candidate, current).is_lt() {
                    best = Some((candidate, score));
                }
            }
            _ => {
                best = Some((candidate, score));
                tied = 1;
            }
        }
    }
    if matching == 0 {
        let wanted: Vec<String> = requirements
            .iter()
            .filter(|r| r.is_required())
            .map(Requirement::to_string)
            .collect();
        return Routed::Unroutable {
            reason: format!("skills: nobody matches {}", wanted.join("; ")),
        };
    }
    let Some((chosen, _)) = best else {
        return Routed::Wait {
            explanation: Some(format!(
                "skills: nobody available now of {matching} matching ({})",
                screen.tally.availability()
            )),
        };
    };
    Routed::Assign {
        id: &chosen.id,
        explanation: format!(
            "skills: {}; {}{}",
            matched(requirements, chosen),
            ranking(screen.eligible, tied),
            screen.tally.suffix()
        ),
    }
}

/// "ko, billing (preferred: hipaa)": what the chosen person met, as the model wrote it.
fn matched(requirements: &[Requirement], chosen: &Candidate) -> String {
    let met = |required: bool| -> Vec<String> {
        requirements
            .iter()
            .filter(|r| r.is_required() == required && r.is_met_by(&chosen.attributes))
            .map(|r| r.describe_met(&chosen.attributes))
            .collect()
    };
    let (required, preferred) = (met(true), met(false));
    match (required.is_empty(), preferred.is_empty()) {
        (true, true) => "none required".to_string(),
        (false, true) => required.join(", "),
        (true, false) => format!("preferred: {}", preferred.join(", ")),
        (false, false) => format!(
            "{} (preferred: {})",
            required.join(", "),
            preferred.join(", ")
        ),
    }
}

/// How the chosen one won among the `eligible`, `tied` of whom matched equally well.
fn ranking(eligible: usize, tied: usize) -> String {
    if eligible == 1 {
        "the only match available".to_string()
    } else if tied == 1 {
        format!("best match of {eligible}")
    } else if tied == eligible {
        format!("least loaded of {eligible} matching")
    } else {
        format!("least loaded of {tied} best matches, {eligible} matching")
    }
}
