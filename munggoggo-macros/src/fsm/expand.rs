//! Emits a checked machine: the `<State>To` enums (what each state's
//! method returns: `Stay` or one of the states it may go to), the
//! `Fsm` impl of the enum, the machine's description, the dispatch to the
//! agent's state methods and the registration, inside `const _`.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use super::model::Machine;
use super::parse::Parsed;

/// `<State>To`: the ways out of a state, named after it.
fn ways_out_ident(state: &Ident) -> Ident {
    format_ident!("{}To", state, span = state.span())
}

/// The agent's method for a state: the variant in snake case.
fn method_ident(state: &Ident) -> Ident {
    let snake = state.to_string().to_snake_case();
    syn::parse_str::<Ident>(&snake)
        .map(|mut ident| {
            ident.set_span(state.span());
            ident
        })
        .unwrap_or_else(|_| Ident::new_raw(&snake, state.span()))
}

/// The `<State>To` enums of every state that is not final, with the
/// targets that are states (also when the machine has mistakes, so that
/// the user's methods that name them do not add errors of their own).
pub(crate) fn ways_out(parsed: &Parsed) -> TokenStream {
    let machine = &parsed.item.ident;
    let vis = &parsed.item.vis;
    let names: Vec<&Ident> = parsed.states.iter().map(|s| &s.ident).collect();
    let enums = parsed.states.iter().filter(|s| s.is_final.is_none()).map(|state| {
        let ident = ways_out_ident(&state.ident);
        let from = state.ident.to_string();
        let doc = format!(
            "Where state `{from}` of [`{machine}`] goes next: what the agent's `{}` method returns.",
            method_ident(&state.ident)
        );
        let stay = format!("Stay in `{from}`: its method runs again after the agent handled something else (or at the state's timeout).");
        let mut seen: Vec<&Ident> = Vec::new();
        let targets = state.to.iter().flat_map(|(_, t)| t).filter(|t| {
            let new = names.contains(t) && !seen.contains(t);
            seen.push(t);
            new
        });
        let targets = targets.map(|t| {
            let doc = format!("Go to `{t}`.");
            quote!(#[doc = #doc] #t,)
        });
        quote! {
            #[doc = #doc]
            #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq, ::core::cmp::Eq)]
            #[allow(dead_code)]
            #vis enum #ident {
                #[doc = #stay]
                Stay,
                #(#targets)*
            }
        }
    });
    quote!(#(#enums)*)
}

/// The machine's description, dispatch and registration.
pub(crate) fn expand(machine: &Machine) -> TokenStream {
    let krate = &machine.krate;
    let p = &krate.private();
    let ident = &machine.ident;
    let agent = &machine.agent;
    let name = ident.to_string();
    let behaviour = name.to_snake_case();
    let initial = machine.initial;
    let restart = if machine.restart_initial {
        quote!(#p::Restart::Initial)
    } else {
        quote!(#p::Restart::Resume)
    };

    let mut specs = Vec::new();
    let mut arms = Vec::new();
    let mut impls = Vec::new();
    for (i, state) in machine.states.iter().enumerate() {
        let state_name = state.ident.to_string();
        let to = state.to.iter().map(|(t, _)| t);
        let timeout = match state.timeout {
            Some((d, t)) => {
                let d = krate.duration(d);
                quote!(::core::option::Option::Some((#d, #t)))
            }
            None => quote!(::core::option::Option::None),
        };
        let is_final = state.is_final;
        specs.push(quote! {
            #p::StateSpec { name: #state_name, to: &[#(#to),*], timeout: #timeout, is_final: #is_final }
        });
        if state.is_final {
            continue;
        }
        let ways = ways_out_ident(&state.ident);
        let method = method_ident(&state.ident);
        let index_arms = state
            .to
            .iter()
            .map(|(t, target)| quote!(#ways::#target => ::core::option::Option::Some(#t),));
        impls.push(quote! {
            impl #ways {
                fn __munggoggo_index(self) -> ::core::option::Option<usize> {
                    match self {
                        #ways::Stay => ::core::option::Option::None,
                        #(#index_arms)*
                    }
                }
            }
            #[automatically_derived]
            impl #p::StateReturn<#ways> for #ways {
                fn into_next(self) -> ::core::result::Result<#ways, #p::BoxError> {
                    ::core::result::Result::Ok(self)
                }
            }
            #[automatically_derived]
            impl<E: ::core::convert::Into<#p::BoxError>> #p::StateReturn<#ways> for ::core::result::Result<#ways, E> {
                fn into_next(self) -> ::core::result::Result<#ways, #p::BoxError> {
                    self.map_err(::core::convert::Into::into)
                }
            }
        });
        // Spanned at the variant: a state without its method is reported there.
        let call = quote_spanned!(state.ident.span()=> <#agent>::#method(agent, ctx));
        let p_state = krate.private_at(state.ident.span());
        let next = quote_spanned!(state.ident.span()=> #p_state::state_next::<#ways, _>(#call.await));
        arms.push(quote! {
            #i => ::std::boxed::Box::pin(async move {
                ::core::result::Result::Ok(#next?.__munggoggo_index())
            }),
        });
    }
    let from_names = machine.states.iter().map(|s| {
        let v = &s.ident;
        let n = v.to_string();
        quote!(#n => ::core::option::Option::Some(#ident::#v),)
    });
    let name_arms = machine.states.iter().map(|s| {
        let v = &s.ident;
        let n = v.to_string();
        quote!(#ident::#v => #n,)
    });

    quote! {
        const _: () = {
            #(#impls)*

            #[automatically_derived]
            impl #p::Fsm for #ident {
                fn name(&self) -> &'static str {
                    match self {
                        #(#name_arms)*
                    }
                }

                fn from_name(name: &str) -> ::core::option::Option<Self> {
                    match name {
                        #(#from_names)*
                        _ => ::core::option::Option::None,
                    }
                }
            }

            #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
            fn step<'a>(
                agent: &'a mut (dyn ::core::any::Any + ::core::marker::Send),
                ctx: &'a #p::Context,
                state: usize,
            ) -> #p::BoxFuture<'a, ::core::result::Result<::core::option::Option<usize>, #p::BoxError>> {
                // The enum is used by the machine, even where the user's code never names it.
                let _ = ::core::marker::PhantomData::<#ident>;
                let ::core::option::Option::Some(agent) = agent.downcast_mut::<#agent>() else {
                    return #p::machine_misrouted(#name, state);
                };
                match state {
                    #(#arms)*
                    _ => #p::machine_misrouted(#name, state),
                }
            }

            static FSM: #p::FsmSpec = #p::FsmSpec {
                name: #name,
                states: &[#(#specs),*],
                initial: #initial,
                restart: #restart,
            };
            static BEHAVIOUR: #p::BehaviourSpec = #p::BehaviourSpec::new(#behaviour, #p::BehaviourKind::Fsm(&FSM));

            #p::inventory::submit! {
                #p::MachineRegistration::new(&BEHAVIOUR, <#agent as #p::Agent>::spec, step)
            }
        };
    }
}
