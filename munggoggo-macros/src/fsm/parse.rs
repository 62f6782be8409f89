//! Reads `#[fsm(...)]` and the `#[state(...)]` attributes of the enum's
//! variants, and strips the latter from the enum that is emitted again.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, Fields, Ident, ItemEnum, LitStr, Token, Type};

use crate::attr::{self, Keys};
use crate::errors::Errors;

/// The enum, with its `#[state]` attributes stripped, and what they say.
pub(crate) struct Parsed {
    pub(crate) item: ItemEnum,
    /// `agent = ...`.
    pub(crate) agent: Option<Type>,
    /// `restart = "initial"`.
    pub(crate) restart_initial: bool,
    pub(crate) states: Vec<StateDecl>,
}

/// One variant and its `#[state(...)]`.
pub(crate) struct StateDecl {
    pub(crate) ident: Ident,
    /// The `initial` key.
    pub(crate) initial: Option<Span>,
    /// The `final` key.
    pub(crate) is_final: Option<Span>,
    /// The `to` key and its targets.
    pub(crate) to: Option<(Span, Vec<Ident>)>,
    /// `timeout("30s" => Target)`: the key, the duration and the target.
    pub(crate) timeout: Option<(Span, Duration, Ident)>,
}

const FSM_KEYS: &[&str] = &["agent", "restart"];
const STATE_KEYS: &[&str] = &["initial", "final", "to", "timeout"];

/// Parses the arguments of `#[fsm]` and the variants' `#[state]`.
pub(crate) fn parse(args: TokenStream, mut item: ItemEnum, errors: &mut Errors) -> Parsed {
    let (agent, restart_initial) = fsm_args(args, errors);
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.spanned(
            &item.generics,
            "`#[fsm]` enums cannot be generic: the machine is one behaviour of one agent type",
        );
    }
    let mut states = Vec::new();
    for variant in &mut item.variants {
        if !matches!(variant.fields, Fields::Unit) {
            errors.spanned(
                &variant.fields,
                format!(
                    "the states of an `#[fsm]` enum are unit variants: write `{}`; keep data in the agent's fields",
                    variant.ident
                ),
            );
        }
        if variant.ident == "Stay" {
            errors.spanned(
                &variant.ident,
                "`Stay` is what a state's method returns to stay in its state: name this state otherwise",
            );
        }
        let mut decl = StateDecl {
            ident: variant.ident.clone(),
            initial: None,
            is_final: None,
            to: None,
            timeout: None,
        };
        let mut seen = false;
        for attr in variant.attrs.iter().filter(|a| a.path().is_ident("state")) {
            if std::mem::replace(&mut seen, true) {
                errors.spanned(
                    attr,
                    "a second `#[state]` on one variant: give all its arguments in one",
                );
                continue;
            }
            state_args(attr, &mut decl, errors);
        }
        variant.attrs.retain(|a| !a.path().is_ident("state"));
        states.push(decl);
    }
    Parsed {
        item,
        agent,
        restart_initial,
        states,
    }
}

fn fsm_args(args: TokenStream, errors: &mut Errors) -> (Option<Type>, bool) {
    let mut agent = None;
    let mut restart_initial = false;
    let mut keys = Keys::new("fsm", FSM_KEYS);
    let parser = syn::meta::parser(|meta| {
        let Some(key) = keys.accept(&meta, errors)? else {
            return Ok(());
        };
        if key == "agent" {
            if meta.input.peek(Token![=]) {
                agent = Some(meta.value()?.parse::<Type>()?);
            } else {
                errors.spanned(&meta.path, "`agent` in `#[fsm]` needs a value: `agent = MyAgent`");
                attr::skip_value(&meta)?;
            }
            return Ok(());
        }
        let example = "restart = \"initial\"";
        if let Some(lit) = attr::string(&meta, &keys, example, errors)? {
            match lit.value().as_str() {
                "initial" => restart_initial = true,
                "resume" => restart_initial = false,
                other => errors.spanned(
                    &lit,
                    format!("unknown restart {other:?} in `#[fsm]`; write `restart = \"resume\"` (the default: carry on in the state it was in) or `restart = \"initial\"`"),
                ),
            }
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    if agent.is_none() && errors.count() == 0 {
        errors.at(
            Span::call_site(),
            "`#[fsm]` needs the agent that runs the machine: `#[fsm(agent = MyAgent)]`",
        );
    }
    (agent, restart_initial)
}

fn state_args(attr: &syn::Attribute, decl: &mut StateDecl, errors: &mut Errors) {
    let mut keys = Keys::new("state", STATE_KEYS);
    let result = attr.parse_nested_meta(|meta| {
        let Some(key) = keys.accept(&meta, errors)? else {
            return Ok(());
        };
        let span = meta.path.span();
        match key.as_str() {
            "initial" => {
                if attr::flag(&meta, &keys, errors)? {
                    decl.initial = Some(span);
                }
            }
            "final" => {
                if attr::flag(&meta, &keys, errors)? {
                    decl.is_final = Some(span);
                }
            }
            "to" => {
                if !meta.input.peek(Token![=]) {
                    errors.spanned(&meta.path, "`to` in `#[state]` needs the states it may go to: `to = [Reserved, Available]`");
                    attr::skip_value(&meta)?;
                    return Ok(());
                }
                let expr = meta.value()?.parse::<Expr>()?;
                let targets = match expr {
                    Expr::Array(array) => array.elems.iter().filter_map(|e| state_ident(e, errors)).collect(),
                    other => state_ident(&other, errors).into_iter().collect(),
                };
                decl.to = Some((span, targets));
            }
            "timeout" => {
                if !meta.input.peek(syn::token::Paren) {
                    errors.spanned(&meta.path, "`timeout` in `#[state]` takes a duration and the state to go to: `timeout(\"30s\" => Available)`");
                    attr::skip_value(&meta)?;
                    return Ok(());
                }
                let content;
                syn::parenthesized!(content in meta.input);
                let lit: LitStr = content.parse()?;
                content.parse::<Token![=>]>()?;
                let target: Ident = content.parse()?;
                match humantime::parse_duration(lit.value().trim()) {
                    Ok(d) if !d.is_zero() => decl.timeout = Some((span, d, target)),
                    Ok(_) => errors.spanned(&lit, "the timeout of a state must be longer than zero, such as \"30s\""),
                    Err(e) => errors.spanned(
                        &lit,
                        format!(
                            "invalid duration {:?} in `timeout` of `#[state]`: {e}; write numbers with units, such as \"30s\" or \"1m 30s\"",
                            lit.value()
                        ),
                    ),
                }
            }
            _ => unreachable!("every key in STATE_KEYS is handled"),
        }
        Ok(())
    });
    if let Err(e) = result {
        errors.push(e);
    }
}

/// A state named in `to = [...]`: a plain identifier.
fn state_ident(expr: &Expr, errors: &mut Errors) -> Option<Ident> {
    if let Expr::Path(path) = expr {
        if let Some(ident) = path.path.get_ident() {
            return Some(ident.clone());
        }
    }
    errors.spanned(
        expr,
        "name a state of this enum by its variant: `to = [Reserved]`",
    );
    None
}
