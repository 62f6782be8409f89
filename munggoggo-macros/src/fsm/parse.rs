//! Reads `#[fsm(...)]` and the `#[state(...)]` attributes of the enum's
//! variants, and strips the latter from the enum that is emitted again.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::{Expr, Fields, Ident, ItemEnum, LitStr, Token, Type};

use crate::args::{self, keys, kw};
use crate::errors::Errors;
use crate::krate::Crate;

/// The enum, with its `#[state]` attributes stripped, and what they say.
pub(crate) struct Parsed {
    /// The runtime crate's path in the generated code.
    pub(crate) krate: Crate,
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

keys! {
    /// The keys of `#[fsm]`.
    enum FsmKey in "fsm" {
        Crate(syn::token::Crate) = "crate",
        Agent(kw::agent) = "agent",
        Restart(kw::restart) = "restart",
    }
}

keys! {
    /// The keys of `#[state]`.
    enum StateKey in "state" {
        Initial(kw::initial) = "initial",
        Final(syn::token::Final) = "final",
        To(kw::to) = "to",
        Timeout(kw::timeout) = "timeout",
    }
}

/// `#[fsm(...)]` as written.
#[derive(Default)]
struct FsmArgs {
    krate: Crate,
    agent: Option<Type>,
    /// `restart = "initial"`.
    restart_initial: bool,
}

/// Parses the arguments of `#[fsm]` and the variants' `#[state]`.
pub(crate) fn parse(args: TokenStream, mut item: ItemEnum, errors: &mut Errors) -> Parsed {
    let FsmArgs {
        krate,
        agent,
        restart_initial,
    } = fsm_args(args, errors);
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
        krate,
        item,
        agent,
        restart_initial,
        states,
    }
}

fn fsm_args(tokens: TokenStream, errors: &mut Errors) -> FsmArgs {
    let mut args = FsmArgs::default();
    let parser = |input: syn::parse::ParseStream<'_>| {
        args::parse(input, errors, |key, value, errors| {
            match key {
                FsmKey::Crate(_) => {
                    if let Some(krate) = value.crate_path(errors)? {
                        args.krate = krate;
                    }
                }
                FsmKey::Agent(_) => {
                    args.agent = value
                        .parse::<Type>("`agent` in `#[fsm]` needs a value: `agent = MyAgent`", errors)?;
                }
                FsmKey::Restart(_) => {
                    if let Some(lit) = value.string("restart = \"initial\"", errors)? {
                        match lit.value().as_str() {
                            "initial" => args.restart_initial = true,
                            "resume" => args.restart_initial = false,
                            other => errors.spanned(
                                &lit,
                                format!("unknown restart {other:?} in `#[fsm]`; write `restart = \"resume\"` (the default: carry on in the state it was in) or `restart = \"initial\"`"),
                            ),
                        }
                    }
                }
            }
            Ok(())
        })
    };
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    if args.agent.is_none() && errors.count() == 0 {
        errors.at(
            Span::call_site(),
            "`#[fsm]` needs the agent that runs the machine: `#[fsm(agent = MyAgent)]`",
        );
    }
    args
}

fn state_args(attr: &syn::Attribute, decl: &mut StateDecl, errors: &mut Errors) {
    let result = attr.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        args::parse(input, errors, |key, value, errors| {
            let span = value.span();
            match key {
                StateKey::Initial(_) => {
                    if value.flag(errors)? {
                        decl.initial = Some(span);
                    }
                }
                StateKey::Final(_) => {
                    if value.flag(errors)? {
                        decl.is_final = Some(span);
                    }
                }
                StateKey::To(_) => {
                    let help = "`to` in `#[state]` needs the states it may go to: `to = [Reserved, Available]`";
                    let Some(expr) = value.parse::<Expr>(help, errors)? else {
                        return Ok(());
                    };
                    let targets = match expr {
                        Expr::Array(array) => array.elems.iter().filter_map(|e| state_ident(e, errors)).collect(),
                        other => state_ident(&other, errors).into_iter().collect(),
                    };
                    decl.to = Some((span, targets));
                }
                StateKey::Timeout(_) => {
                    let input = value.input();
                    if !input.peek(syn::token::Paren) {
                        return value.reject(errors, "`timeout` in `#[state]` takes a duration and the state to go to: `timeout(\"30s\" => Available)`");
                    }
                    let content;
                    syn::parenthesized!(content in input);
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
            }
            Ok(())
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_by_its_name() {
        crate::args::check_names::<FsmKey>();
        crate::args::check_names::<StateKey>();
    }
}
