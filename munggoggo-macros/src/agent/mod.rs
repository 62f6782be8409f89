//! `#[agent]`: on a struct it emits the agent-level options
//! ([`options`]); on the impl block it reads the methods ([`parse`]),
//! checks them into a model ([`model`], [`signature`]) and emits the `Agent` impl and the
//! registration ([`expand`]) and the typed client of its `#[rpc]` methods
//! ([`client`]).

mod client;
mod expand;
mod model;
mod options;
mod parse;
mod signature;

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::Item;

use crate::errors::Errors;

/// Expands `#[agent(args)]` on `input`.
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Struct(item)) => options::expand(args, item),
        Ok(Item::Impl(item)) => {
            let mut errors = Errors::default();
            let parsed = parse::parse(args, item, &mut errors);
            let model = model::check(&parsed, &mut errors);
            let generated = model.as_ref().map(expand::expand);
            let item = &parsed.item;
            let client = model.as_ref().map(|model| client::expand(model, item));
            let errors = errors.into_compile_errors();
            quote!(#item #generated #client #errors)
        }
        Ok(other) => {
            let span = item_keyword_span(&other);
            let error = syn::Error::new(
                span,
                "`#[agent]` goes on a struct (for the agent's options) and on that struct's `impl` block (for its behaviours and handlers)",
            )
            .into_compile_error();
            quote!(#other #error)
        }
        Err(error) => {
            let error = error.into_compile_error();
            quote!(#input #error)
        }
    }
}

fn item_keyword_span(item: &Item) -> proc_macro2::Span {
    match item {
        Item::Enum(i) => i.enum_token.span,
        Item::Fn(i) => i.sig.fn_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::Union(i) => i.union_token.span,
        Item::Mod(i) => i.mod_token.span,
        other => other.span(),
    }
}
