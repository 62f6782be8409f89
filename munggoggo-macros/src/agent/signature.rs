//! Signature checks shared by the marked methods: `async`, `&mut self`,
//! no type parameters, the optional `ctx: &Context`, the payload of a
//! handler and the named parameters of an `#[rpc]` method.

use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{FnArg, GenericArgument, GenericParam, Pat, PatType, PathArguments, ReturnType, Type};

use super::model::{Payload, RpcParam};
use super::parse::Marked;
use crate::errors::Errors;

/// The parts of a signature every marked method shares.
pub(super) struct Signature<'a> {
    pub(super) takes_ctx: bool,
    /// The parameters after the receiver and the context.
    pub(super) rest: Vec<&'a PatType>,
}

/// Checks what every marked method needs: `async`, `&mut self`, no type
/// parameters, and an optional `ctx: &Context` first. Returns the parts
/// even when some are wrong (the mistakes are recorded), so that the
/// parameters can be checked too.
pub(super) fn signature<'a>(marked: &'a Marked, attr: &str, errors: &mut Errors) -> Signature<'a> {
    let sig = &marked.sig;
    let ident = &sig.ident;
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token,
            format!("`{attr}` methods must be `async`: write `async fn {ident}`"),
        );
    }
    if let Some(token) = &sig.unsafety {
        errors.spanned(token, format!("`{attr}` methods cannot be `unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, format!("`{attr}` methods cannot have an `extern` ABI"));
    }
    let generic = sig
        .generics
        .params
        .iter()
        .any(|p| !matches!(p, GenericParam::Lifetime(_)));
    if generic || sig.generics.where_clause.is_some() {
        errors.spanned(
            &sig.generics,
            format!(
                "`{attr}` methods cannot be generic: the agent calls them with concrete types; remove the type parameters of `{ident}`"
            ),
        );
    }
    // A missing receiver leaves the other parameters where they are, so
    // that they are checked as written rather than reported again.
    let mut inputs = sig.inputs.iter().peekable();
    match inputs.next_if(|arg| matches!(arg, FnArg::Receiver(_))) {
        Some(FnArg::Receiver(receiver)) => {
            let ok = match &*receiver.ty {
                Type::Reference(r) => r.mutability.is_some() && is_self(&r.elem),
                _ => false,
            };
            if !ok {
                errors.spanned(
                    receiver,
                    format!("`{attr}` methods take `&mut self` (the agent runs them one at a time): write `&mut self`"),
                );
            }
        }
        _ => errors.spanned(
            ident,
            format!("`{attr}` methods take `&mut self` first: write `async fn {ident}(&mut self, ...)`"),
        ),
    }
    let mut takes_ctx = false;
    let mut rest = Vec::new();
    for (i, arg) in inputs.enumerate() {
        let FnArg::Typed(param) = arg else {
            continue;
        };
        match context_ref(&param.ty) {
            Some(true) if i == 0 => takes_ctx = true,
            Some(true) => errors.spanned(
                param,
                format!("`ctx: &Context` must be the first parameter of `{attr}` methods, right after `&mut self`"),
            ),
            Some(false) => errors.spanned(&param.ty, "the context is shared: write `&Context`, not `&mut Context`"),
            None => rest.push(param),
        }
    }
    Signature { takes_ctx, rest }
}

fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
}

/// `Some(true)` for `&Context`, `Some(false)` for `&mut Context`, else `None`.
fn context_ref(ty: &Type) -> Option<bool> {
    let Type::Reference(r) = ty else {
        return None;
    };
    let Type::Path(path) = &*r.elem else {
        return None;
    };
    let last = path.path.segments.last()?;
    (last.ident == "Context" && last.arguments.is_none()).then_some(r.mutability.is_none())
}

/// The return type, `None` for `()` written or not.
pub(super) fn return_type(output: &ReturnType) -> Option<Type> {
    match output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(t) if t.elems.is_empty() => None,
            ty => Some(ty.clone()),
        },
    }
}

/// The one payload parameter of an `#[on_message]` handler.
pub(super) fn payload(marked: &Marked, sig: &Signature<'_>, errors: &mut Errors) -> Option<Payload> {
    let help = "`#[on_message]` handlers take an optional `ctx: &Context`, then one payload parameter: `msg: T` or `msg: Envelope<T>`";
    let Some((first, extra)) = sig.rest.split_first() else {
        errors.spanned(&marked.sig.ident, format!("missing payload parameter: {help}"));
        return None;
    };
    for param in extra {
        errors.spanned(param, format!("unexpected parameter: {help}"));
    }
    let (ty, envelope) = match envelope_arg(&first.ty) {
        Some(inner) => (inner, true),
        None => ((*first.ty).clone(), false),
    };
    if let Type::Reference(r) = &ty {
        errors.spanned(
            r,
            format!(
                "the payload is decoded into a value the handler owns: write `{}`, not a reference",
                r.elem.to_token_stream()
            ),
        );
        return None;
    }
    if let Type::ImplTrait(t) = &ty {
        errors.spanned(
            t,
            "the payload must be a concrete type: `msg: T` or `msg: Envelope<T>`",
        );
        return None;
    }
    if !extra.is_empty() {
        return None;
    }
    Some(Payload { ty, envelope })
}

/// Whether the type is written `Raw` (any path ending in `Raw`).
pub(super) fn is_raw(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Raw" && s.arguments.is_none()))
}

/// `T` of a type written `Envelope<T>` (any path ending in `Envelope`).
fn envelope_arg(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Envelope" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    match (types.next(), types.next()) {
        (Some(t), None) => Some(t.clone()),
        _ => None,
    }
}

/// A named parameter of an `#[rpc]` method.
pub(super) fn rpc_param(param: &PatType, errors: &mut Errors) -> Option<RpcParam> {
    let name = match &*param.pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(p.ident.unraw().to_string()),
        _ => None,
    };
    let Some(name) = name else {
        errors.spanned(
            &param.pat,
            "`#[rpc]` parameters need plain names, since callers may pass them by name: write `x: i64`",
        );
        return None;
    };
    if let Type::Reference(r) = &*param.ty {
        errors.spanned(
            r,
            "`#[rpc]` parameters are decoded from JSON into values the method owns: take an owned type, such as `String` instead of `&str`",
        );
        return None;
    }
    if let Type::ImplTrait(t) = &*param.ty {
        errors.spanned(t, "`#[rpc]` parameters must have concrete types");
        return None;
    }
    Some(RpcParam {
        name,
        ty: (*param.ty).clone(),
    })
}
