//! `#[fsm(agent = ...)]` on an enum: a state machine the agent runs as one
//! behaviour. Reads the enum and its `#[state(...)]` attributes
//! ([`parse`]), checks the machine ([`model`]: every transition goes to a
//! declared state, one initial state, every state reachable) and emits the
//! per-state `<State>To` enums, the machine's description, the dispatch
//! to the agent's state methods and the registration ([`expand`]).

mod expand;
mod model;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::Item;

use crate::errors::Errors;

/// Expands `#[fsm(args)]` on `input`.
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Enum(item)) => {
            let mut errors = Errors::default();
            let parsed = parse::parse(args, item, &mut errors);
            let model = model::check(&parsed, &mut errors);
            let item = &parsed.item;
            let ways_out = expand::ways_out(&parsed);
            // With mistakes, only the enums the user's code names: no
            // dispatch, whose errors would repeat the ones reported here.
            let generated = model.filter(|_| errors.count() == 0).map(|m| expand::expand(&m));
            let errors = errors.into_compile_errors();
            quote!(#item #ways_out #generated #errors)
        }
        Ok(other) => {
            let error = syn::Error::new(
                other.span(),
                "`#[fsm]` goes on an enum of states: `#[fsm(agent = MyAgent)] enum Door { #[state(initial, to = [Open])] Closed, ... }`",
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
