//! The checked model of an `#[agent]` impl block: every marked method with
//! a signature that fits its role. Each mistake becomes an error spanned on
//! the smallest offending token; methods with mistakes are left out of the
//! model so that the generated impl does not add errors of its own.

use proc_macro2::{Ident, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::Type;

use super::parse::{Args, BehaviourArgs, Marked, Parsed, RouteArgs};
use super::signature::{is_raw, payload, return_type, rpc_param, signature};
use crate::errors::Errors;

/// An agent's impl block, checked.
pub(crate) struct AgentModel {
    /// The agent type, as the impl block names it.
    pub(crate) self_ty: Type,
    /// Its Rust name, for `AgentSpec::name`.
    pub(crate) name: String,
    /// The marked methods, in source order.
    pub(crate) methods: Vec<Method>,
}

/// One marked method.
pub(crate) struct Method {
    pub(crate) ident: Ident,
    /// Whether it takes `ctx: &Context`.
    pub(crate) takes_ctx: bool,
    /// Its return type; `None` for `()`.
    pub(crate) ret: Option<Type>,
    pub(crate) kind: Kind,
}

impl Method {
    /// The method's name as the wire knows it.
    pub(crate) fn name(&self) -> String {
        self.ident.unraw().to_string()
    }
}

/// What a method is.
pub(crate) enum Kind {
    Setup,
    Teardown,
    /// The kind, and whether it is a `singleton`.
    Behaviour(BehaviourArgs, bool),
    Handler {
        route: RouteArgs,
        payload: Box<Payload>,
    },
    Rpc {
        params: Vec<RpcParam>,
    },
}

/// The payload parameter of a handler.
pub(crate) struct Payload {
    /// `T` of `T` or `Envelope<T>`.
    pub(crate) ty: Type,
    pub(crate) envelope: bool,
}

/// A parameter of an `#[rpc]` method.
pub(crate) struct RpcParam {
    pub(crate) name: String,
    pub(crate) ty: Type,
}

/// Checks the parsed impl block into the model; `None` when the block as a
/// whole cannot be an agent.
pub(crate) fn check(args: &TokenStream, parsed: &Parsed, errors: &mut Errors) -> Option<AgentModel> {
    // Every check runs, so that one compile shows every mistake; the block
    // is an agent only if none of those about the block as a whole failed.
    let item = &parsed.item;
    let mut whole = true;
    if !args.is_empty() {
        errors.spanned(
            args,
            "`#[agent]` on an impl block takes no arguments; put the agent's options on the struct: `#[agent(identity = \"...\")]`",
        );
    }
    if let Some((_, path, _)) = &item.trait_ {
        errors.spanned(
            path,
            "`#[agent]` goes on the agent's inherent impl block (`impl MyAgent { ... }`), not on a trait impl",
        );
        whole = false;
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.spanned(
            &item.generics,
            "`#[agent]` impl blocks cannot be generic: an agent type is registered and started by its name; implement a concrete struct",
        );
        whole = false;
    }
    let name = match &*item.self_ty {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map(|s| s.ident.unraw().to_string())
        }
        _ => None,
    };
    if name.is_none() {
        errors.spanned(
            &item.self_ty,
            "`#[agent]` goes on the impl block of a struct marked `#[agent]`: `impl MyAgent { ... }`",
        );
    }

    let mut methods: Vec<Method> = Vec::new();
    for marked in &parsed.methods {
        let Some(args) = &marked.args else {
            // The attribute had errors; still check the signature.
            signature(marked, &format!("#[{}]", marked.role.name()), errors);
            continue;
        };
        if let Some(method) = method(marked, args, errors) {
            check_unique(&method, marked, &methods, errors);
            methods.push(method);
        }
    }
    let name = name.filter(|_| whole)?;
    Some(AgentModel {
        self_ty: (*item.self_ty).clone(),
        name,
        methods,
    })
}

/// At most one setup, teardown and fallback; one handler per type.
fn check_unique(method: &Method, marked: &Marked, earlier: &[Method], errors: &mut Errors) {
    let (what, attr) = match &method.kind {
        Kind::Setup => ("setup", "#[setup]"),
        Kind::Teardown => ("teardown", "#[teardown]"),
        Kind::Handler {
            route: RouteArgs::Fallback,
            ..
        } => ("fallback", "#[on_message(fallback)]"),
        Kind::Handler { route, payload } => {
            let key = type_key(route, payload);
            let first = earlier.iter().find(|m| match &m.kind {
                Kind::Handler { route, payload } => key.is_some() && type_key(route, payload) == key,
                _ => false,
            });
            if let (Some(first), Some(key)) = (first, key) {
                let span = match route {
                    RouteArgs::Type(lit, _) => lit.span(),
                    _ => payload.ty.span(),
                };
                errors.at(
                    span,
                    format!(
                        "a second handler for message type {key}: `{}` already handles it; an agent has one handler per type",
                        first.name()
                    ),
                );
            }
            return;
        }
        _ => return,
    };
    let same = |m: &&Method| {
        matches!(
            (&m.kind, &method.kind),
            (Kind::Setup, Kind::Setup)
                | (Kind::Teardown, Kind::Teardown)
                | (
                    Kind::Handler {
                        route: RouteArgs::Fallback,
                        ..
                    },
                    Kind::Handler {
                        route: RouteArgs::Fallback,
                        ..
                    },
                )
        )
    };
    if let Some(first) = earlier.iter().find(same) {
        errors.spanned(
            &marked.attr,
            format!(
                "a second `{attr}` method: `{}` is already the {what} method; an agent has at most one",
                first.name()
            ),
        );
    }
}

/// What identifies a type route, for spotting duplicates.
fn type_key(route: &RouteArgs, payload: &Payload) -> Option<String> {
    match route {
        RouteArgs::Type(lit, _) => Some(format!("{:?}", lit.value())),
        RouteArgs::Inferred(_) => Some(format!("`{}`", payload.ty.to_token_stream()).replace(' ', "")),
        _ => None,
    }
}

fn method(marked: &Marked, args: &Args, errors: &mut Errors) -> Option<Method> {
    let (attr, only_ctx_help) = match args {
        Args::Setup => (
            "#[setup]",
            "`#[setup]` methods take only `&mut self` and an optional `ctx: &Context`",
        ),
        Args::Teardown => (
            "#[teardown]",
            "`#[teardown]` methods take only `&mut self` and an optional `ctx: &Context`",
        ),
        Args::Behaviour(..) => (
            "#[behaviour]",
            "`#[behaviour]` methods take only `&mut self` and an optional `ctx: &Context`",
        ),
        Args::OnMessage(_) => ("#[on_message]", ""),
        Args::Rpc => ("#[rpc]", ""),
    };
    // The parameters are checked even when the signature has mistakes of
    // its own (not `async`, no `&mut self`), so that all are reported.
    let before = errors.count();
    let sig = signature(marked, attr, errors);
    let kind = match args {
        Args::Setup | Args::Teardown | Args::Behaviour(..) => {
            for param in &sig.rest {
                errors.spanned(param, format!("unexpected parameter: {only_ctx_help}"));
            }
            match args {
                Args::Setup => Kind::Setup,
                Args::Teardown => Kind::Teardown,
                Args::Behaviour(b, singleton) => Kind::Behaviour(b.clone(), *singleton),
                _ => unreachable!(),
            }
        }
        Args::OnMessage(route) => {
            let payload = payload(marked, &sig, errors)?;
            if matches!(route, RouteArgs::Inferred(_)) && is_raw(&payload.ty) {
                errors.spanned(
                    &payload.ty,
                    "a `Raw` payload has no message type to route by: name one with `#[on_message(type = \"...\")]`, subscribe with `topic = \"...\"`, or take what no other handler takes with `#[on_message(fallback)]`",
                );
                return None;
            }
            Kind::Handler {
                route: route.clone(),
                payload: Box::new(payload),
            }
        }
        Args::Rpc => Kind::Rpc {
            params: sig.rest.iter().filter_map(|p| rpc_param(p, errors)).collect(),
        },
    };
    (errors.count() == before).then(|| Method {
        ident: marked.sig.ident.clone(),
        takes_ctx: sig.takes_ctx,
        ret: return_type(&marked.sig.output),
        kind,
    })
}
