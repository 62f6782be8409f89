//! `#[agent(...)]` on the struct: the agent-level options and constructor,
//! emitted as an `AgentDefaults` impl.

use std::time::Duration;

use heck::ToKebabCase;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, ExprPath, ItemStruct, LitStr, Type};

use crate::attr::{self, Keys};
use crate::errors::Errors;

const KEYS: &[&str] = &[
    "identity",
    "prefetch",
    "max_queue",
    "trace_size",
    "peer_interval",
    "call_timeout",
    "new",
    "config",
    "replicated",
    "dedup",
];

/// The options as written (each `None` when absent or invalid).
#[derive(Default)]
struct Args {
    identity: Option<LitStr>,
    prefetch: Option<u16>,
    max_queue: Option<usize>,
    trace_size: Option<usize>,
    peer_interval: Option<Duration>,
    call_timeout: Option<Duration>,
    new: Option<ExprPath>,
    config: Option<(syn::Ident, Type)>,
    replicated: bool,
    dedup: Option<usize>,
}

/// Expands `#[agent(args)]` on a struct.
pub(crate) fn expand(args: TokenStream, item: ItemStruct) -> TokenStream {
    let mut errors = Errors::default();
    let args = parse(args, &mut errors);
    check(&args, &item, &mut errors);
    let generated = (item.generics.params.is_empty() && item.generics.where_clause.is_none())
        .then(|| defaults_impl(&args, &item));
    let errors = errors.into_compile_errors();
    quote!(#item #generated #errors)
}

fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    let mut keys = Keys::new("agent", KEYS);
    let parser = syn::meta::parser(|meta| {
        let Some(key) = keys.accept(&meta, errors)? else {
            return Ok(());
        };
        match key.as_str() {
            "identity" => args.identity = attr::string(&meta, &keys, "identity = \"pinger\"", errors)?,
            "prefetch" => args.prefetch = attr::integer(&meta, &keys, 1u16, "prefetch = 64", errors)?,
            "max_queue" => args.max_queue = attr::integer(&meta, &keys, 1usize, "max_queue = 10000", errors)?,
            "trace_size" => {
                args.trace_size = attr::integer(&meta, &keys, 0usize, "trace_size = 1000", errors)?
            }
            "replicated" => args.replicated = attr::flag(&meta, &keys, errors)?,
            "dedup" => args.dedup = attr::integer(&meta, &keys, 0usize, "dedup = 10000", errors)?,
            "peer_interval" => args.peer_interval = attr::duration(&meta, &keys, true, errors)?,
            "call_timeout" => args.call_timeout = attr::duration(&meta, &keys, true, errors)?,
            "new" => {
                if !meta.input.peek(syn::Token![=]) {
                    errors.spanned(
                        &meta.path,
                        "`new` in `#[agent]` needs a value: `new = path::to::constructor`",
                    );
                    attr::skip_value(&meta)?;
                    return Ok(());
                }
                match meta.value()?.parse::<Expr>()? {
                    Expr::Path(path) => args.new = Some(path),
                    other => errors.spanned(
                        other,
                        "`new` in `#[agent]` takes the path of a function `fn() -> Self`: `new = Self::new` or `new = path::to::constructor`",
                    ),
                }
            }
            "config" => {
                if !meta.input.peek(syn::Token![=]) {
                    errors.spanned(
                        &meta.path,
                        "`config` in `#[agent]` needs a value: `config = MyConfig`, a struct that derives `serde::Deserialize`",
                    );
                    attr::skip_value(&meta)?;
                    return Ok(());
                }
                let key = meta.path.get_ident().cloned();
                let ty = meta.value()?.parse::<Type>()?;
                if let Some(key) = key {
                    args.config = Some((key, ty));
                }
            }
            _ => unreachable!("every key in KEYS is handled"),
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    args
}

fn check(args: &Args, item: &ItemStruct, errors: &mut Errors) {
    if let (Some((key, ty)), None) = (&args.config, &args.new) {
        let ty = quote!(#ty).to_string().replace(' ', "");
        errors.spanned(
            key,
            format!(
                "`config = {ty}` in `#[agent]` needs a constructor that takes it: add `new = Self::new` with `fn new(config: {ty}) -> Self`"
            ),
        );
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.spanned(
            &item.generics,
            "`#[agent]` structs cannot be generic: an agent type is registered and started by its name; make the struct concrete",
        );
    }
    if let Some(identity) = &args.identity {
        let value = identity.value();
        let problem = if value.is_empty() {
            Some("must not be empty")
        } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("must not contain whitespace")
        } else if value.starts_with("amq.") {
            Some("must not start with `amq.` (reserved by AMQP)")
        } else if value.len() > 255 {
            Some("must be at most 255 bytes long")
        } else {
            None
        };
        if let Some(problem) = problem {
            errors.spanned(
                identity,
                format!("`identity` in `#[agent]` {problem}: write a name such as `identity = \"pinger\"`"),
            );
        }
    }
}

fn defaults_impl(args: &Args, item: &ItemStruct) -> TokenStream {
    let ident = &item.ident;
    let identity = match &args.identity {
        Some(lit) => lit.value(),
        None => ident.unraw().to_string().to_kebab_case(),
    };
    let mut sets = Vec::new();
    if let Some(v) = args.prefetch {
        sets.push(quote!(o.prefetch = #v;));
    }
    if let Some(v) = args.max_queue {
        sets.push(quote!(o.max_queue = ::core::option::Option::Some(#v);));
    }
    if let Some(v) = args.trace_size {
        sets.push(quote!(o.trace_size = #v;));
    }
    if let Some(d) = args.peer_interval {
        let d = attr::duration_tokens(d);
        sets.push(quote!(o.peer_interval = ::core::option::Option::Some(#d);));
    }
    if let Some(d) = args.call_timeout {
        let d = attr::duration_tokens(d);
        sets.push(quote!(o.call_timeout = #d;));
    }
    if args.replicated {
        sets.push(quote!(o.replicated = true;));
    }
    if let Some(v) = args.dedup {
        sets.push(quote!(o.dedup = #v;));
    }
    let construct = match (&args.new, &args.config) {
        (Some(_), Some(_)) => quote! {
            let defaults = ::munggoggo::__private::defaults_only();
            <Self as ::munggoggo::__private::AgentDefaults>::configured(&defaults, "")
                .ok()
                .flatten()
        },
        (Some(path), None) => quote_spanned! {path.span()=>
            let new: fn() -> Self = #path;
            ::core::option::Option::Some(new())
        },
        (None, _) => quote! {
            #[allow(unused_imports)]
            use ::munggoggo::__private::{ViaDefault as _, ViaNothing as _};
            (&::munggoggo::__private::Construct::<Self>::new()).construct()
        },
    };
    let has_constructor = match &args.new {
        Some(_) => quote!(true),
        None => quote! {
            #[allow(unused_imports)]
            use ::munggoggo::__private::{ViaDefault as _, ViaNothing as _};
            (&::munggoggo::__private::Construct::<Self>::new()).exists()
        },
    };
    let configured = match (&args.new, &args.config) {
        (Some(path), Some((_, ty))) => {
            let agent_type = ident.unraw().to_string();
            let config_name = quote!(#ty).to_string().replace(' ', "");
            let check = quote_spanned!(ty.span()=> ::munggoggo::__private::load_config::<#ty>);
            let new = quote_spanned!(path.span()=> let new: fn(#ty) -> Self = #path;);
            quote! {
                fn configured(
                    config: &::munggoggo::__private::Config,
                    identity: &str,
                ) -> ::core::result::Result<::core::option::Option<Self>, ::munggoggo::__private::ConfigError> {
                    #new
                    #check(config, identity, #agent_type).map(|c| ::core::option::Option::Some(new(c)))
                }

                fn config_type() -> ::core::option::Option<&'static str> {
                    ::core::option::Option::Some(#config_name)
                }
            }
        }
        _ => TokenStream::new(),
    };
    let options = if sets.is_empty() {
        quote!(::munggoggo::__private::AgentOptions::new(#identity))
    } else {
        quote! {
            let mut o = ::munggoggo::__private::AgentOptions::new(#identity);
            #(#sets)*
            o
        }
    };
    quote! {
        #[automatically_derived]
        impl ::munggoggo::__private::AgentDefaults for #ident {
            fn options() -> ::munggoggo::__private::AgentOptions {
                #options
            }

            fn construct() -> ::core::option::Option<Self> {
                #construct
            }

            fn has_constructor() -> bool {
                #has_constructor
            }

            #configured
        }
    }
}
