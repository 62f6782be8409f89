//! The typed client of an agent's `#[rpc]` methods: `<Agent>Client<'a>`
//! with one `async fn` per method (same name, parameters and visibility,
//! returning `munggoggo::Result<T>`), made by `Agent::client(&caller)` and
//! `Agent::client_for(&caller, "identity")`.
//!
//! The serde bounds a call needs (parameters `Serialize`, the result
//! `DeserializeOwned`) go in each method's `where` clause as higher-ranked
//! bounds, so that an agent whose types lack them still compiles and only
//! a call of that method reports them, at the caller. `client` names the
//! agent's options the same way, so that a struct without `#[agent]` gets
//! one error (from the `Agent` impl), not two.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, ImplItem, ItemImpl, PathArguments, Type, Visibility};

use super::expand::{is_result, nameable};
use super::model::{AgentModel, Kind, Method};
use crate::krate::Crate;

/// The client struct, its methods and the two constructors on the agent;
/// nothing for an agent without `#[rpc]` methods.
pub(crate) fn expand(model: &AgentModel, item: &ItemImpl) -> TokenStream {
    if !model.methods.iter().any(|m| matches!(m.kind, Kind::Rpc { .. })) {
        return TokenStream::new();
    }
    let krate = &model.krate;
    let p = &krate.private();
    let self_ty = &model.self_ty;
    let client = format_ident!("{}Client", model.name, span = self_ty.span());
    let agent_doc = format!(
        "Typed calls of the `#[rpc]` methods of [`{name}`] (made by `#[agent]`): \
         `{name}::client(&ctx).method(args).await` returns `munggoggo::Result<T>`.",
        name = model.name
    );
    let methods: Vec<TokenStream> = model
        .methods
        .iter()
        .filter_map(|m| method(krate, m, item))
        .collect();
    quote! {
        #[doc = #agent_doc]
        #[derive(Debug, Clone)]
        #[allow(dead_code)]
        pub struct #client<'a> {
            ctx: &'a #p::Context,
            identity: ::std::string::String,
        }

        #[allow(dead_code, private_interfaces, clippy::all, clippy::pedantic, clippy::nursery)]
        impl #self_ty {
            /// A typed client of this agent's `#[rpc]` methods, calling the
            /// agent with this type's default identity.
            pub fn client<'a, C>(caller: &'a C) -> #client<'a>
            where
                C: #p::Caller + ?::core::marker::Sized,
                for<'__munggoggo> #self_ty: #p::AgentDefaults,
            {
                #client {
                    ctx: #p::Caller::context(caller),
                    identity: <#self_ty as #p::AgentDefaults>::options().identity,
                }
            }

            /// A typed client of this agent's `#[rpc]` methods, calling the
            /// agent with identity `identity` (a second instance, say).
            pub fn client_for<'a, C>(caller: &'a C, identity: impl ::core::convert::Into<::std::string::String>) -> #client<'a>
            where
                C: #p::Caller + ?::core::marker::Sized,
            {
                #client {
                    ctx: #p::Caller::context(caller),
                    identity: ::core::convert::Into::into(identity),
                }
            }
        }

        #[allow(dead_code, private_interfaces, clippy::all, clippy::pedantic, clippy::nursery)]
        impl<'a> #client<'a> {
            #(#methods)*
        }
    }
}

/// One typed method; `None` when a type cannot be named outside the
/// method (the string form `ctx.call(...)` still works for it).
fn method(krate: &Crate, method: &Method, item: &ItemImpl) -> Option<TokenStream> {
    let p = &krate.private();
    let Kind::Rpc { params } = &method.kind else {
        return None;
    };
    let ret = output_type(method)?;
    if params.iter().any(|p| !nameable(&p.ty)) {
        return None;
    }
    let ident = &method.ident;
    let wire = method.name();
    let vis = visibility(method, item);
    let names: Vec<_> = (0..params.len()).map(|i| format_ident!("arg{}", i)).collect();
    let decls = params.iter().zip(&names).map(|(p, name)| {
        let ty = &p.ty;
        quote!(#name: #ty)
    });
    let bounds = params.iter().map(|param| {
        let ty = &param.ty;
        let p = krate.private_at(ty.span());
        quote_spanned!(ty.span()=> for<'__munggoggo> #ty: #p::ClientArg)
    });
    let ret_bound = {
        let p = krate.private_at(ret.span());
        quote_spanned!(ret.span()=> for<'__munggoggo> #ret: #p::ClientOutput)
    };
    let doc = format!("Calls `#[rpc]` method `{wire}` of the agent and decodes its result.");
    let call = quote! {
        #p::Context::call(self.ctx, &self.identity, #wire, (#(#names,)*)).await
    };
    let body = if method.ret.as_ref().is_some_and(is_result) {
        quote!(#call)
    } else {
        // Not spelled `Result`, but it may be one under another name: its
        // shape decides, as in the agent's dispatch (an alias of
        // `Result<T, E>` comes back as itself, always `Ok`).
        quote! {
            #[allow(unused_imports)]
            use #p::{ResultShape as _, ValueShape as _};
            let value: #p::serde_json::Value = #call?;
            (&#p::Shape::<#ret>::new()).rpc_shape().client_decode(&self.identity, #wire, value)
        }
    };
    Some(quote! {
        #[doc = #doc]
        #vis async fn #ident(&self, #(#decls),*) -> #krate::Result<#ret>
        where
            #(#bounds,)*
            #ret_bound,
        {
            #body
        }
    })
}

/// What a successful call returns: `T` of `Result<T, E>`, the plain return
/// type, or `()`.
fn output_type(method: &Method) -> Option<Type> {
    let Some(ret) = &method.ret else {
        return Some(syn::parse_quote!(()));
    };
    if !nameable(ret) {
        return None;
    }
    if !is_result(ret) {
        return Some(ret.clone());
    }
    let Type::Path(path) = ret else {
        return None;
    };
    let PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty.clone()),
        _ => None,
    })
}

/// The visibility the user gave the method.
fn visibility(method: &Method, item: &ItemImpl) -> Visibility {
    item.items
        .iter()
        .find_map(|i| match i {
            ImplItem::Fn(f) if f.sig.ident == method.ident => Some(f.vis.clone()),
            _ => None,
        })
        .unwrap_or(Visibility::Inherited)
}
