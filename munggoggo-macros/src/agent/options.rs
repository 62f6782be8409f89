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

use crate::args::{self, keys, kw};
use crate::errors::Errors;
use crate::krate::Crate;

keys! {
    /// The keys of `#[agent]` on the struct.
    enum AgentKey in "agent" {
        Crate(syn::token::Crate) = "crate",
        Identity(kw::identity) = "identity",
        Prefetch(kw::prefetch) = "prefetch",
        MaxQueue(kw::max_queue) = "max_queue",
        TraceSize(kw::trace_size) = "trace_size",
        PeerInterval(kw::peer_interval) = "peer_interval",
        CallTimeout(kw::call_timeout) = "call_timeout",
        New(kw::new) = "new",
        Config(kw::config) = "config",
        Replicated(kw::replicated) = "replicated",
        Dedup(kw::dedup) = "dedup",
    }
}

/// The options as written (each `None` when absent or invalid).
#[derive(Default)]
struct Args {
    /// The runtime crate's path in the generated code.
    krate: Crate,
    identity: Option<LitStr>,
    prefetch: Option<u16>,
    max_queue: Option<usize>,
    trace_size: Option<usize>,
    peer_interval: Option<Duration>,
    call_timeout: Option<Duration>,
    new: Option<ExprPath>,
    /// The `config` key (for errors) and the type.
    config: Option<(kw::config, Type)>,
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
    let parser = |input: syn::parse::ParseStream<'_>| {
        args::parse(input, errors, |key, value, errors| {
            match key {
                AgentKey::Crate(_) => {
                    if let Some(krate) = value.crate_path(errors)? {
                        args.krate = krate;
                    }
                }
                AgentKey::Identity(_) => args.identity = value.string("identity = \"pinger\"", errors)?,
                AgentKey::Prefetch(_) => args.prefetch = value.integer(1u16, "prefetch = 64", errors)?,
                AgentKey::MaxQueue(_) => {
                    args.max_queue = value.integer(1usize, "max_queue = 10000", errors)?
                }
                AgentKey::TraceSize(_) => {
                    args.trace_size = value.integer(0usize, "trace_size = 1000", errors)?
                }
                AgentKey::Replicated(_) => args.replicated = value.flag(errors)?,
                AgentKey::Dedup(_) => args.dedup = value.integer(0usize, "dedup = 10000", errors)?,
                AgentKey::PeerInterval(_) => args.peer_interval = value.duration(true, errors)?,
                AgentKey::CallTimeout(_) => args.call_timeout = value.duration(true, errors)?,
                AgentKey::New(_) => {
                    let help = "`new` in `#[agent]` needs a value: `new = path::to::constructor`";
                    match value.parse::<Expr>(help, errors)? {
                        Some(Expr::Path(path)) => args.new = Some(path),
                        Some(other) => errors.spanned(
                            other,
                            "`new` in `#[agent]` takes the path of a function `fn() -> Self`: `new = Self::new` or `new = path::to::constructor`",
                        ),
                        None => {}
                    }
                }
                AgentKey::Config(keyword) => {
                    let help = "`config` in `#[agent]` needs a value: `config = MyConfig`, a struct that derives `serde::Deserialize`";
                    if let Some(ty) = value.parse::<Type>(help, errors)? {
                        args.config = Some((keyword, ty));
                    }
                }
            }
            Ok(())
        })
    };
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    args
}

fn check(args: &Args, item: &ItemStruct, errors: &mut Errors) {
    if let (Some((key, ty)), None) = (&args.config, &args.new) {
        let ty = quote!(#ty).to_string().replace(' ', "");
        errors.at(
            key.span,
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
    let krate = &args.krate;
    let p = &krate.private();
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
        let d = krate.duration(d);
        sets.push(quote!(o.peer_interval = ::core::option::Option::Some(#d);));
    }
    if let Some(d) = args.call_timeout {
        let d = krate.duration(d);
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
            let defaults = #p::defaults_only();
            <Self as #p::AgentDefaults>::configured(&defaults, "")
                .ok()
                .flatten()
        },
        (Some(path), None) => quote_spanned! {path.span()=>
            let new: fn() -> Self = #path;
            ::core::option::Option::Some(new())
        },
        (None, _) => quote! {
            #[allow(unused_imports)]
            use #p::{ViaDefault as _, ViaNothing as _};
            (&#p::Construct::<Self>::new()).construct()
        },
    };
    let has_constructor = match &args.new {
        Some(_) => quote!(true),
        None => quote! {
            #[allow(unused_imports)]
            use #p::{ViaDefault as _, ViaNothing as _};
            (&#p::Construct::<Self>::new()).exists()
        },
    };
    let configured = match (&args.new, &args.config) {
        (Some(path), Some((_, ty))) => {
            let agent_type = ident.unraw().to_string();
            let config_name = quote!(#ty).to_string().replace(' ', "");
            let p_ty = krate.private_at(ty.span());
            let check = quote_spanned!(ty.span()=> #p_ty::load_config::<#ty>);
            let new = quote_spanned!(path.span()=> let new: fn(#ty) -> Self = #path;);
            quote! {
                fn configured(
                    config: &#p::Config,
                    identity: &str,
                ) -> ::core::result::Result<::core::option::Option<Self>, #p::ConfigError> {
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
        quote!(#p::AgentOptions::new(#identity))
    } else {
        quote! {
            let mut o = #p::AgentOptions::new(#identity);
            #(#sets)*
            o
        }
    };
    quote! {
        #[automatically_derived]
        impl #p::AgentDefaults for #ident {
            fn options() -> #p::AgentOptions {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_by_its_name() {
        crate::args::check_names::<AgentKey>();
    }
}
