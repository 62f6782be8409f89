//! The checked model of an `#[agent]` impl block: every marked method with
//! a signature that fits its role. Each mistake becomes an error spanned on
//! the smallest offending token; methods with mistakes are left out of the
//! model so that the generated impl does not add errors of its own.

use proc_macro2::Ident;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::Type;

use super::parse::{Args, Marked, Parsed, Role, RouteArgs};
use super::signature::{is_raw, payload, return_type, rpc_param, signature};
use crate::errors::Errors;
use crate::krate::Crate;

/// An agent's impl block, checked.
pub(crate) struct AgentModel {
    /// The runtime crate's path in the generated code.
    pub(crate) krate: Crate,
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

/// What a method is: its role, with the handler's payload and the
/// `#[rpc]` method's parameters.
pub(crate) type Kind = Role<Box<Payload>, Vec<RpcParam>>;

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
pub(crate) fn check(parsed: &Parsed, errors: &mut Errors) -> Option<AgentModel> {
    // Every check runs, so that one compile shows every mistake; the block
    // is an agent only if none of those about the block as a whole failed.
    let item = &parsed.item;
    let mut whole = true;
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
            signature(marked, &format!("#[{}]", marked.marker.name()), errors);
            continue;
        };
        if let Some(method) = method(marked, args, errors) {
            check_unique(&method, marked, &methods, errors);
            methods.push(method);
        }
    }
    let name = name.filter(|_| whole)?;
    Some(AgentModel {
        krate: parsed.krate.clone(),
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
        Kind::OnMessage {
            route: RouteArgs::Fallback,
            ..
        } => ("fallback", "#[on_message(fallback)]"),
        Kind::OnMessage { route, payload } => {
            let key = type_key(route, payload);
            let first = earlier.iter().find(|m| match &m.kind {
                Kind::OnMessage { route, payload } => key.is_some() && type_key(route, payload) == key,
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
                    Kind::OnMessage {
                        route: RouteArgs::Fallback,
                        ..
                    },
                    Kind::OnMessage {
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
    let attr = format!("#[{}]", marked.marker.name());
    // The parameters are checked even when the signature has mistakes of
    // its own (not `async`, no `&mut self`), so that all are reported.
    let before = errors.count();
    let sig = signature(marked, &attr, errors);
    let kind = match args {
        Role::Setup | Role::Teardown | Role::Behaviour(..) => {
            for param in &sig.rest {
                errors.spanned(
                    param,
                    format!("unexpected parameter: `{attr}` methods take only `&mut self` and an optional `ctx: &Context`"),
                );
            }
            match args {
                Role::Setup => Kind::Setup,
                Role::Teardown => Kind::Teardown,
                Role::Behaviour(b, singleton) => Kind::Behaviour(b.clone(), *singleton),
                Role::OnMessage { .. } | Role::Rpc { .. } => unreachable!("matched above"),
            }
        }
        Role::OnMessage { route, payload: () } => {
            let payload = payload(marked, &sig, errors)?;
            if matches!(route, RouteArgs::Inferred(_)) && is_raw(&payload.ty) {
                errors.spanned(
                    &payload.ty,
                    "a `Raw` payload has no message type to route by: name one with `#[on_message(type = \"...\")]`, subscribe with `topic = \"...\"`, or take what no other handler takes with `#[on_message(fallback)]`",
                );
                return None;
            }
            Kind::OnMessage {
                route: route.clone(),
                payload: Box::new(payload),
            }
        }
        Role::Rpc { params: () } => Kind::Rpc {
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
