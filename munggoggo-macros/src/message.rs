//! `#[derive(Message)]`: the wire type name of a payload type.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::{DeriveInput, LitStr};

use crate::attr::{self, Keys};
use crate::errors::Errors;

const KEYS: &[&str] = &["type", "envelope"];

/// `#[message(...)]` as written (over all such attributes of the type).
#[derive(Default)]
struct Args {
    type_name: Option<LitStr>,
    envelope: bool,
}

/// The checked model: the name and where it came from.
struct Model {
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
    let envelope = model.envelope.then(|| {
        quote!(
            const ENVELOPE: bool = true;
        )
    });
    let errors = errors.into_compile_errors();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::munggoggo::__private::Message for #ident #ty_generics #where_clause {
            const TYPE: &'static str = #name;
            #envelope
        }
        #errors
    }
}

fn parse(input: &DeriveInput, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    let mut keys = Keys::new("message", KEYS);
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
        let result = attr.parse_nested_meta(|meta| {
            let Some(key) = keys.accept(&meta, errors)? else {
                return Ok(());
            };
            match key.as_str() {
                "type" => args.type_name = attr::string(&meta, &keys, "type = \"Ping\"", errors)?,
                "envelope" => args.envelope = attr::flag(&meta, &keys, errors)?,
                _ => unreachable!("every key in KEYS is handled"),
            }
            Ok(())
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
            name: lit.value(),
            span: lit.span(),
            explicit: true,
            envelope: args.envelope,
        },
        None => Model {
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
