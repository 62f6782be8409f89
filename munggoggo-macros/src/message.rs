//! `#[derive(Message)]`: the wire type name of a payload type.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::{DeriveInput, LitStr};

use crate::args::{self, keys, kw};
use crate::errors::Errors;
use crate::krate::Crate;

keys! {
    /// The keys of `#[message]`.
    enum MessageKey in "message" {
        Crate(syn::token::Crate) = "crate",
        Type(syn::token::Type) = "type",
        Envelope(kw::envelope) = "envelope",
    }
}

/// `#[message(...)]` as written (over all such attributes of the type).
#[derive(Default)]
struct Args {
    /// The runtime crate's path in the generated code.
    krate: Crate,
    type_name: Option<LitStr>,
    envelope: bool,
}

/// The checked model: the name and where it came from.
struct Model {
    /// The runtime crate's path in the generated code.
    krate: Crate,
    name: String,
    /// The literal or the type's ident, for errors.
    span: Span,
    explicit: bool,
    envelope: bool,
}

/// Expands `#[derive(Message)]`.
pub(crate) fn expand(input: DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let args = parse(&input, &mut errors);
    let model = check(&input, args, &mut errors);

    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let name = &model.name;
    let p = model.krate.private();
    let envelope = model.envelope.then(|| {
        quote!(
            const ENVELOPE: bool = true;
        )
    });
    let errors = errors.into_compile_errors();
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::Message for #ident #ty_generics #where_clause {
            const TYPE: &'static str = #name;
            #envelope
        }
        #errors
    }
}

fn parse(input: &DeriveInput, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    // The keys are checked across all `#[message]` attributes: each at most once.
    let mut seen = args::Seen::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
        let result = attr.parse_args_with(|input: syn::parse::ParseStream<'_>| {
            args::parse_again(input, &mut seen, errors, |key, value, errors| {
                match key {
                    MessageKey::Crate(_) => {
                        if let Some(krate) = value.crate_path(errors)? {
                            args.krate = krate;
                        }
                    }
                    MessageKey::Type(_) => args.type_name = value.string("type = \"Ping\"", errors)?,
                    MessageKey::Envelope(_) => args.envelope = value.flag(errors)?,
                }
                Ok(())
            })
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    args
}

fn check(input: &DeriveInput, args: Args, errors: &mut Errors) -> Model {
    let model = match args.type_name {
        Some(lit) => Model {
            krate: args.krate,
            name: lit.value(),
            span: lit.span(),
            explicit: true,
            envelope: args.envelope,
        },
        None => Model {
            krate: args.krate,
            name: input.ident.unraw().to_string(),
            span: input.ident.span(),
            explicit: false,
            envelope: args.envelope,
        },
    };
    if model.name.is_empty() {
        errors.at(
            model.span,
            "the message type name must not be empty: `#[message(type = \"Ping\")]`",
        );
    } else if crate::protocol_rules::is_reserved_type(&model.name) {
        let name = &model.name;
        let what = if model.explicit {
            format!("`{name}` is reserved")
        } else {
            format!("the type name `{name}` is reserved")
        };
        errors.at(
            model.span,
            format!(
                "{what}: munggoggo's protocol uses the message types `CONTROL`, `RPC` and `PUBSUB` itself; name this message type with `#[message(type = \"...\")]`"
            ),
        );
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_by_its_name() {
        crate::args::check_names::<MessageKey>();
    }
}
