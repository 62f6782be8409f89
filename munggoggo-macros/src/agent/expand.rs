//! Emits the `Agent` impl of a checked impl block and its registration.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::Type;

use super::model::{AgentModel, Kind, Method, Payload};
use super::parse::{BehaviourArgs, Delivery, RouteArgs};
use crate::krate::{respan, Crate};

/// The `Agent` impl and the `inventory` registration, inside `const _`.
pub(crate) fn expand(model: &AgentModel) -> TokenStream {
    let krate = &model.krate;
    let p = &krate.private();
    let self_ty = &model.self_ty;
    let name = &model.name;

    let mut behaviours = Vec::new();
    let mut run_arms = Vec::new();
    let mut handle_arms = Vec::new();
    let mut rpcs = Vec::new();
    let mut call_arms = Vec::new();
    let mut setup = None;
    let mut teardown = None;
    for method in &model.methods {
        let name = method.name();
        match &method.kind {
            Kind::Setup => setup = Some(method),
            Kind::Teardown => teardown = Some(method),
            Kind::Behaviour(args, singleton) => {
                let index = behaviours.len();
                let kind = behaviour_kind(krate, args);
                behaviours.push(quote! {
                    #p::BehaviourSpec {
                        method: #name,
                        kind: #kind,
                        singleton: #singleton,
                        delivery: #p::GroupDelivery::Default,
                    }
                });
                let body = run_body(p, self_ty, method);
                run_arms.push(quote!(#index => #body,));
            }
            Kind::OnMessage { route, payload } => {
                let index = behaviours.len();
                let delivery = match route {
                    RouteArgs::Topic(_, Delivery::Group)
                    | RouteArgs::Type(_, Delivery::Group)
                    | RouteArgs::Inferred(Delivery::Group) => quote!(Group),
                    RouteArgs::Topic(_, Delivery::EachReplica)
                    | RouteArgs::Type(_, Delivery::EachReplica)
                    | RouteArgs::Inferred(Delivery::EachReplica) => quote!(EachReplica),
                    _ => quote!(Default),
                };
                let route = route_tokens(p, route, payload);
                behaviours.push(quote! {
                    #p::BehaviourSpec {
                        method: #name,
                        kind: #p::BehaviourKind::Handler(#route),
                        singleton: false,
                        delivery: #p::GroupDelivery::#delivery,
                    }
                });
                let body = handle_body(p, self_ty, method, payload);
                handle_arms.push(quote!(#index => #body,));
            }
            Kind::Rpc { params } => {
                let index = rpcs.len();
                let names = params.iter().map(|p| &p.name);
                rpcs.push(quote!(#p::RpcSpec { method: #name, params: &[#(#names),*] }));
                let body = call_body(p, self_ty, method);
                call_arms.push(quote!(#index => #body,));
            }
        }
    }

    // What the agent lacks is left to the trait's defaults (no setup or
    // teardown; no behaviour, handler or method at any index).
    let future =
        |output: TokenStream| quote!(#p::BoxFuture<'a, ::core::result::Result<#output, #p::BoxError>>);
    let (unit, next) = (future(quote!(())), future(quote!(#p::Next)));
    let setup = setup.map(|m| method(p, quote!(setup), quote!(), &unit, once_body(p, self_ty, m)));
    let teardown = teardown.map(|m| method(p, quote!(teardown), quote!(), &unit, once_body(p, self_ty, m)));
    let run = (!run_arms.is_empty()).then(|| {
        let body = dispatch(p, quote!(index), run_arms, "behaviour");
        method(p, quote!(run), quote!(index: usize,), &next, body)
    });
    let handle = (!handle_arms.is_empty()).then(|| {
        let body = dispatch(p, quote!(index), handle_arms, "handler");
        let args = quote!(index: usize, msg: &'a ::std::sync::Arc<#p::Received>,);
        let output = quote!(#p::BoxFuture<'a, ::core::result::Result<(), #p::HandlerError>>);
        method(p, quote!(handle), args, &output, body)
    });
    let call = (!call_arms.is_empty()).then(|| {
        let body = dispatch(p, quote!(index), call_arms, "rpc method");
        let args = quote!(index: usize, params: #p::serde_json::Value,);
        let output = quote!(#p::BoxFuture<'a, ::core::result::Result<#p::serde_json::Value, #p::CallError>>);
        method(p, quote!(call), args, &output, body)
    });

    quote! {
        const _: () = {
            #[automatically_derived]
            #[allow(unused_variables, clippy::all, clippy::pedantic, clippy::nursery)]
            impl #p::Agent for #self_ty {
                fn spec() -> &'static #p::AgentSpec {
                    static SPEC: #p::AgentSpec = #p::AgentSpec {
                        name: #name,
                        behaviours: &[#(#behaviours),*],
                        rpcs: &[#(#rpcs),*],
                    };
                    &SPEC
                }

                #setup
                #teardown
                #run
                #handle
                #call
            }

            #p::inventory::submit! {
                #p::Registration::of::<#self_ty>()
            }
        };
    }
}

/// A method of the `Agent` trait: `fn name<'a>(&'a mut self, ctx, args) -> output { body }`.
fn method(
    p: &TokenStream,
    name: TokenStream,
    args: TokenStream,
    output: &TokenStream,
    body: TokenStream,
) -> TokenStream {
    quote! {
        fn #name<'a>(
            &'a mut self,
            ctx: &'a #p::Context,
            #args
        ) -> #output {
            #body
        }
    }
}

/// `match index { arms, _ => unknown }` (never reached with an index the
/// spec does not have).
fn dispatch(p: &TokenStream, index: TokenStream, arms: Vec<TokenStream>, what: &str) -> TokenStream {
    let unknown = quote!(#p::unknown_index(#what, #index));
    quote! {
        match #index {
            #(#arms)*
            _ => #unknown,
        }
    }
}

fn behaviour_kind(krate: &Crate, args: &BehaviourArgs) -> TokenStream {
    let p = krate.private();
    match args {
        BehaviourArgs::Periodic {
            period,
            initial_delay,
        } => {
            let period = krate.duration(*period);
            let initial_delay = match initial_delay {
                Some(d) => {
                    let d = krate.duration(*d);
                    quote!(::core::option::Option::Some(#d))
                }
                None => quote!(::core::option::Option::None),
            };
            quote!(#p::BehaviourKind::Periodic { period: #period, initial_delay: #initial_delay })
        }
        BehaviourArgs::Oneshot => quote!(#p::BehaviourKind::Oneshot),
        BehaviourArgs::Delay(d) => {
            let d = krate.duration(*d);
            quote!(#p::BehaviourKind::Delay(#d))
        }
        BehaviourArgs::Cyclic => quote!(#p::BehaviourKind::Cyclic),
    }
}

fn route_tokens(p: &TokenStream, route: &RouteArgs, payload: &Payload) -> TokenStream {
    match route {
        RouteArgs::Inferred(_) => {
            let ty = &payload.ty;
            let p = respan(p.clone(), ty.span());
            quote_spanned!(ty.span()=> #p::HandlerRoute::Type(<#ty as #p::Message>::TYPE))
        }
        RouteArgs::Type(lit, _) => quote!(#p::HandlerRoute::Type(#lit)),
        RouteArgs::Topic(keys, _) => quote!(#p::HandlerRoute::Topic(&[#(#keys),*])),
        RouteArgs::Fallback => quote!(#p::HandlerRoute::Fallback),
    }
}

/// `<Agent>::method(self, ctx, args...).await`.
fn call_expr(self_ty: &Type, method: &Method, args: &[TokenStream]) -> TokenStream {
    let ident = &method.ident;
    let ctx = method.takes_ctx.then(|| quote!(ctx));
    let args = ctx.into_iter().chain(args.iter().cloned());
    quote!(<#self_ty>::#ident(self, #(#args),*).await)
}

/// Converts the method's outcome through `trait_::function`, naming the
/// return type so that a wrong one is reported at the user's return type.
fn convert(method: &Method, trait_: TokenStream, function: TokenStream, value: TokenStream) -> TokenStream {
    match &method.ret {
        None => quote!(<() as #trait_>::#function(#value)),
        Some(ret) if nameable(ret) => quote_spanned!(ret.span()=> <#ret as #trait_>::#function(#value)),
        Some(ret) => quote_spanned!(ret.span()=> #trait_::#function(#value)),
    }
}

/// `Box::pin(async move { body })`, spanned at the method so that a future
/// that is not `Send` is reported there.
fn boxed(method: &Method, body: TokenStream) -> TokenStream {
    quote_spanned!(method.ident.span()=> ::std::boxed::Box::pin(async move { #body }))
}

fn once_body(p: &TokenStream, self_ty: &Type, method: &Method) -> TokenStream {
    let value = convert(
        method,
        quote!(#p::HandlerReturn),
        quote!(into_result),
        call_expr(self_ty, method, &[]),
    );
    boxed(method, value)
}

fn run_body(p: &TokenStream, self_ty: &Type, method: &Method) -> TokenStream {
    let value = convert(
        method,
        quote!(#p::BehaviourReturn),
        quote!(into_step),
        call_expr(self_ty, method, &[]),
    );
    boxed(method, value)
}

fn handle_body(p: &TokenStream, self_ty: &Type, method: &Method, payload: &Payload) -> TokenStream {
    let ty = &payload.ty;
    let p_ty = respan(p.clone(), ty.span());
    let check = quote_spanned!(ty.span()=> #p_ty::check_payload::<#ty>(););
    let decode = if payload.envelope {
        quote_spanned!(ty.span()=> #p_ty::decode_envelope::<#ty>(msg)?)
    } else {
        quote_spanned!(ty.span()=> #p_ty::decode::<#ty>(msg)?)
    };
    let value = convert(
        method,
        quote!(#p::HandlerReturn),
        quote!(into_result),
        call_expr(self_ty, method, &[quote!(payload)]),
    );
    boxed(
        method,
        quote! {
            #check
            let payload = #decode;
            #value.map_err(#p::HandlerError::Failed)
        },
    )
}

fn call_body(p: &TokenStream, self_ty: &Type, method: &Method) -> TokenStream {
    let Kind::Rpc { params } = &method.kind else {
        unreachable!("call_body is for #[rpc] methods");
    };
    let mut lets = Vec::new();
    let mut args = Vec::new();
    for (i, param) in params.iter().enumerate() {
        let var = syn::Ident::new(&format!("arg{i}"), Span::call_site());
        let ty = &param.ty;
        let name = &param.name;
        let p_ty = respan(p.clone(), ty.span());
        let check = quote_spanned!(ty.span()=> #p_ty::check_rpc_param::<#ty>(););
        let param_value = quote_spanned!(ty.span()=> #p_ty::rpc_param::<#ty>(&params, #i, #name));
        lets.push(quote! {
            #check
            let #var = #param_value?;
        });
        args.push(var.into_token_stream());
    }
    let call = call_expr(self_ty, method, &args);
    // The return type's shape (a `Result` or a plain value) is proven by
    // the type, not by its name: an alias of `Result` is still one.
    let value = match &method.ret {
        Some(ret) => {
            // Named in the turbofish (when it can be), so that a type that
            // does not fit is reported on all of the user's return type.
            let (annotated, turbofish) = if nameable(ret) {
                (Some(quote!(: #ret)), Some(quote!(::<#ret>)))
            } else {
                (None, None)
            };
            let p_ret = respan(p.clone(), ret.span());
            let convert = quote_spanned!(ret.span()=>
                (&#p_ret::Shape::of(&ret)).rpc_shape().into_value #turbofish (ret)
            );
            quote! {{
                #[allow(unused_imports)]
                use #p::{ResultShape as _, ValueShape as _};
                let ret #annotated = #call;
                #convert
            }}
        }
        None => quote!(#p::ValueOut.into_value::<()>(#call)),
    };
    boxed(
        method,
        quote! {
            #(#lets)*
            #value
        },
    )
}

/// Whether the type's last path segment is `Result`.
pub(super) fn is_result(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Result"))
}

/// Whether the type can be named inside the generated impl: no `impl
/// Trait` and no lifetimes but `'static` (the method's own lifetimes are
/// not in scope there).
pub(super) fn nameable(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        let mut tokens = tokens.into_iter().peekable();
        while let Some(token) = tokens.next() {
            match token {
                TokenTree::Ident(ident) if ident == "impl" || ident == "dyn" => return false,
                TokenTree::Punct(p)
                    if p.as_char() == '\''
                        && !matches!(tokens.peek(), Some(TokenTree::Ident(i)) if i == "static") =>
                {
                    return false;
                }
                TokenTree::Group(g) if !walk(g.stream()) => return false,
                _ => {}
            }
        }
        true
    }
    walk(ty.to_token_stream())
}
