//! The checked machine: one initial state, transitions and timeouts to
//! declared states only, final states without a way out, every state
//! reachable from the initial one. Each mistake is an error spanned on
//! its token, all of them reported at once.

use std::time::Duration;

use syn::{Ident, Type};

use super::parse::Parsed;
use crate::errors::Errors;
use crate::krate::Crate;

/// A machine without mistakes.
pub(crate) struct Machine {
    /// The runtime crate's path in the generated code.
    pub(crate) krate: Crate,
    pub(crate) ident: Ident,
    pub(crate) agent: Type,
    pub(crate) restart_initial: bool,
    pub(crate) initial: usize,
    pub(crate) states: Vec<State>,
}

/// One state, its transitions as indices.
pub(crate) struct State {
    pub(crate) ident: Ident,
    pub(crate) to: Vec<(usize, Ident)>,
    pub(crate) timeout: Option<(Duration, usize)>,
    pub(crate) is_final: bool,
}

/// Checks the parsed enum; `None` when the machine cannot be built.
pub(crate) fn check(parsed: &Parsed, errors: &mut Errors) -> Option<Machine> {
    let enum_name = &parsed.item.ident;
    let names: Vec<String> = parsed.states.iter().map(|s| s.ident.to_string()).collect();
    let listed = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let index = |target: &Ident, errors: &mut Errors| {
        let found = names.iter().position(|n| target == n);
        if found.is_none() {
            errors.spanned(
                target,
                format!(
                    "`{target}` is not a state of `{enum_name}`: add the variant, or go to one of {listed}"
                ),
            );
        }
        found
    };

    let mut initial: Option<usize> = None;
    let mut states = Vec::new();
    for (i, decl) in parsed.states.iter().enumerate() {
        if let Some(span) = decl.initial {
            match initial {
                Some(first) => errors.at(
                    span,
                    format!(
                        "a second initial state: `{}` is already the initial state of `{enum_name}`; a machine has one",
                        names[first]
                    ),
                ),
                None => initial = Some(i),
            }
        }
        let mut to: Vec<(usize, Ident)> = Vec::new();
        if let Some((_, targets)) = &decl.to {
            for target in targets {
                let Some(t) = index(target, errors) else {
                    continue;
                };
                if to.iter().any(|(earlier, _)| *earlier == t) {
                    errors.spanned(target, format!("`{target}` is listed twice in `to`"));
                    continue;
                }
                to.push((t, target.clone()));
            }
        }
        let timeout = decl
            .timeout
            .as_ref()
            .and_then(|(_, d, target)| index(target, errors).map(|t| (*d, t)));
        if let Some(final_span) = decl.is_final {
            if let Some((span, _)) = &decl.to {
                errors.at(
                    *span,
                    format!(
                        "`{}` is a final state: it has no way out; remove `to`, or `final`",
                        decl.ident
                    ),
                );
            }
            if let Some((span, ..)) = &decl.timeout {
                errors.at(
                    *span,
                    format!(
                        "`{}` is a final state: it has no timeout; remove `timeout`, or `final`",
                        decl.ident
                    ),
                );
            }
            if decl.initial.is_some() {
                errors.at(
                    final_span,
                    format!("`{}` is the initial state: a machine that is final from the start does nothing; remove `final`", decl.ident),
                );
            }
        }
        states.push(State {
            ident: decl.ident.clone(),
            to,
            timeout,
            is_final: decl.is_final.is_some(),
        });
    }

    let Some(initial) = initial else {
        if !states.is_empty() {
            errors.spanned(
                enum_name,
                format!("`{enum_name}` has no initial state: mark one `#[state(initial, to = [...])]`"),
            );
        } else {
            errors.spanned(enum_name, "an `#[fsm]` enum needs states: its variants");
        }
        return None;
    };

    // Every state must be reachable from the initial one, through `to`
    // and timeouts.
    let mut reached = vec![false; states.len()];
    let mut todo = vec![initial];
    while let Some(s) = todo.pop() {
        if std::mem::replace(&mut reached[s], true) {
            continue;
        }
        todo.extend(states[s].to.iter().map(|(t, _)| *t));
        todo.extend(states[s].timeout.map(|(_, t)| t));
    }
    for (state, reached) in states.iter().zip(&reached) {
        if !reached {
            errors.spanned(
                &state.ident,
                format!(
                    "state `{}` cannot be reached from the initial state `{}`: add it to the `to` of a state that can be, or remove it",
                    state.ident, names[initial]
                ),
            );
        }
    }
    let agent = parsed.agent.clone()?;
    Some(Machine {
        krate: parsed.krate.clone(),
        ident: enum_name.clone(),
        agent,
        restart_initial: parsed.restart_initial,
        initial,
        states,
    })
}
