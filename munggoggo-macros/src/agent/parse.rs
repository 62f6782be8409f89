//! Reads the `#[agent]` impl block: finds the methods marked with
//! munggoggo's attributes, parses those attributes' arguments and strips
//! them from the block that is emitted again.

use std::time::Duration;

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::{Attribute, ImplItem, ItemImpl, LitStr, Meta, Signature};

use crate::args::{self, keys, kw, Key as _};
use crate::errors::Errors;
use crate::krate::Crate;
use crate::method_attr::MethodAttr;

/// The impl block, with munggoggo's attributes stripped, and its marked methods.
pub(crate) struct Parsed {
    /// The runtime crate's path in the generated code.
    pub(crate) krate: Crate,
    pub(crate) item: ItemImpl,
    pub(crate) methods: Vec<Marked>,
}

/// A method with one of munggoggo's attributes.
pub(crate) struct Marked {
    /// Which attribute.
    pub(crate) marker: MethodAttr,
    pub(crate) sig: Signature,
    /// The attribute, for errors about the method as a whole.
    pub(crate) attr: Attribute,
    /// The attribute's arguments; `None` when they had errors.
    pub(crate) args: Option<Args>,
}

/// What a marked method is, one variant per [`MethodAttr`], with what
/// each carries: the attribute's arguments ([`Args`]) and, once the
/// method's signature is checked, the handler's payload `P` and the
/// `#[rpc]` method's parameters `R` too (`model::Kind`).
pub(crate) enum Role<P, R> {
    Setup,
    Teardown,
    /// The kind, and whether it is a `singleton`.
    Behaviour(BehaviourArgs, bool),
    OnMessage {
        route: RouteArgs,
        payload: P,
    },
    Rpc {
        params: R,
    },
}

/// The checked arguments of one attribute.
pub(crate) type Args = Role<(), ()>;

/// `#[behaviour(...)]`.
#[derive(Clone)]
pub(crate) enum BehaviourArgs {
    Periodic {
        period: Duration,
        initial_delay: Option<Duration>,
    },
    Oneshot,
    Delay(Duration),
    Cyclic,
}

/// `#[on_message(...)]`.
#[derive(Clone)]
pub(crate) enum RouteArgs {
    /// No route given: the payload type's `Message::TYPE`; and which
    /// replicas of a replicated agent handle a broadcast of it.
    Inferred(Delivery),
    /// The type, and which replicas handle a broadcast of it.
    Type(LitStr, Delivery),
    /// The binding keys, and which replicas of a replicated agent get
    /// each publication.
    Topic(Vec<LitStr>, Delivery),
    Fallback,
}

/// `delivery = "..."` of a topic or type handler.
#[derive(Clone, Copy)]
pub(crate) enum Delivery {
    /// Not given: once per group for a replicated agent.
    Default,
    /// `delivery = "group"`.
    Group,
    /// `delivery = "each_replica"`.
    EachReplica,
}

/// The arguments of attribute `marker`, `None` when they have mistakes.
fn parse_args(marker: MethodAttr, attr: &Attribute, errors: &mut Errors) -> Option<Args> {
    match marker {
        MethodAttr::Setup => no_args(attr, marker, errors).then_some(Args::Setup),
        MethodAttr::Teardown => no_args(attr, marker, errors).then_some(Args::Teardown),
        MethodAttr::Rpc => no_args(attr, marker, errors).then_some(Args::Rpc { params: () }),
        MethodAttr::Behaviour => {
            behaviour(attr, errors).map(|(kind, singleton)| Args::Behaviour(kind, singleton))
        }
        MethodAttr::OnMessage => on_message(attr, errors).map(|route| Args::OnMessage { route, payload: () }),
    }
}

keys! {
    /// The keys of `#[agent]` on the impl block.
    enum ImplKey in "agent",
        place = " on an impl block",
        help = "; put the agent's options on the struct: `#[agent(identity = \"...\")]`"
    {
        Crate(syn::token::Crate) = "crate",
    }
}

/// `#[agent(crate = "...")]` on the impl block: the runtime's path, in the
/// generated code and in the paths of the methods' attributes.
fn impl_args(tokens: TokenStream, errors: &mut Errors) -> Crate {
    let mut krate = Crate::default();
    let parser = |input: syn::parse::ParseStream<'_>| {
        args::parse(input, errors, |key, value, errors| {
            match key {
                ImplKey::Crate(_) => {
                    if let Some(given) = value.crate_path(errors)? {
                        krate = given;
                    }
                }
            }
            Ok(())
        })
    };
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    krate
}

/// Parses the impl block's arguments `args`, strips munggoggo's
/// attributes from `item` and parses them.
pub(crate) fn parse(args: TokenStream, mut item: ItemImpl, errors: &mut Errors) -> Parsed {
    let krate = impl_args(args, errors);
    let mut methods = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let mut first: Option<(MethodAttr, &Attribute)> = None;
        let mut marked = None;
        for attr in &method.attrs {
            let Some(marker) = MethodAttr::of(attr, &krate) else {
                continue;
            };
            if let Some((earlier, _)) = first {
                errors.spanned(
                    attr,
                    format!(
                        "`#[{}]` cannot be combined with `#[{}]` on one method: each method is one kind of handler; move the code into a separate method",
                        marker.name(),
                        earlier.name()
                    ),
                );
                continue;
            }
            first = Some((marker, attr));
            marked = Some(Marked {
                marker,
                sig: method.sig.clone(),
                attr: attr.clone(),
                args: parse_args(marker, attr, errors),
            });
        }
        method.attrs.retain(|attr| MethodAttr::of(attr, &krate).is_none());
        if marked.is_some() {
            // The agent calls these methods: `async`, `&mut self` and owned
            // parameters are its contract, not choices to lint.
            method.attrs.push(syn::parse_quote!(#[allow(
                clippy::unused_async,
                clippy::unused_self,
                clippy::needless_pass_by_ref_mut,
                clippy::needless_pass_by_value
            )]));
        }
        methods.extend(marked);
    }
    Parsed { krate, item, methods }
}

/// `#[setup]`, `#[teardown]` and `#[rpc]` take no arguments.
fn no_args(attr: &Attribute, marker: MethodAttr, errors: &mut Errors) -> bool {
    match &attr.meta {
        Meta::Path(_) => true,
        Meta::List(list) if list.tokens.is_empty() => true,
        Meta::List(list) => {
            errors.spanned(
                &list.tokens,
                format!("`#[{0}]` takes no arguments; write just `#[{0}]`", marker.name()),
            );
            false
        }
        Meta::NameValue(nv) => {
            errors.spanned(
                &nv.value,
                format!("`#[{0}]` takes no arguments; write just `#[{0}]`", marker.name()),
            );
            false
        }
    }
}

keys! {
    /// The keys of `#[behaviour]`.
    enum BehaviourKey in "behaviour" {
        Periodic(kw::periodic) = "periodic",
        InitialDelay(kw::initial_delay) = "initial_delay",
        Oneshot(kw::oneshot) = "oneshot",
        Delay(kw::delay) = "delay",
        Cyclic(kw::cyclic) = "cyclic",
        Singleton(kw::singleton) = "singleton",
    }
}

const BEHAVIOUR_HELP: &str = "write `#[behaviour(periodic = \"5s\")]`, `#[behaviour(oneshot)]`, `#[behaviour(delay = \"10s\")]` or `#[behaviour(cyclic)]`";

/// The behaviour's kind and whether it is a `singleton`.
fn behaviour(attr: &Attribute, errors: &mut Errors) -> Option<(BehaviourArgs, bool)> {
    if !matches!(attr.meta, Meta::List(_)) {
        errors.spanned(attr, format!("`#[behaviour]` needs a kind: {BEHAVIOUR_HELP}"));
        return None;
    }
    let before = errors.count();
    // The kind's key and the kind (`None` when its value has mistakes).
    let mut kind: Option<(BehaviourKey, Option<BehaviourArgs>)> = None;
    let mut initial_delay: Option<(BehaviourKey, Option<Duration>)> = None;
    let mut singleton = false;
    let result = attr.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        args::parse(input, errors, |key, value, errors| {
            let parsed = match key {
                BehaviourKey::Singleton(_) => {
                    singleton = value.flag(errors)?;
                    return Ok(());
                }
                BehaviourKey::InitialDelay(_) => {
                    initial_delay = Some((key, value.duration(false, errors)?));
                    return Ok(());
                }
                _ if kind.is_some() => {
                    let first = kind.as_ref().map_or("", |(first, _)| first.name());
                    return value.reject(
                        errors,
                        format!(
                            "`#[behaviour]` takes one kind, and `{first}` is already given; remove `{}` (a behaviour is `periodic`, `oneshot`, `delay` or `cyclic`)",
                            key.name()
                        ),
                    );
                }
                BehaviourKey::Periodic(_) => value.duration(true, errors)?.map(|period| BehaviourArgs::Periodic {
                    period,
                    initial_delay: None,
                }),
                BehaviourKey::Delay(_) => value.duration(false, errors)?.map(BehaviourArgs::Delay),
                BehaviourKey::Oneshot(_) => value.flag(errors)?.then_some(BehaviourArgs::Oneshot),
                BehaviourKey::Cyclic(_) => value.flag(errors)?.then_some(BehaviourArgs::Cyclic),
            };
            kind = Some((key, parsed));
            Ok(())
        })
    });
    if let Err(e) = result {
        errors.push(e);
        return None;
    }
    match (&mut kind, initial_delay) {
        (None, _) if errors.count() == before => {
            errors.spanned(attr, format!("`#[behaviour]` needs a kind: {BEHAVIOUR_HELP}"));
        }
        (
            Some((BehaviourKey::Periodic(_), Some(BehaviourArgs::Periodic { initial_delay, .. }))),
            Some((_, d)),
        ) => {
            *initial_delay = d;
        }
        (Some((BehaviourKey::Periodic(_), _)), _) => {}
        (Some((first, _)), Some((key, _))) => {
            errors.at(
                key.span(),
                format!(
                    "`initial_delay` in `#[behaviour]` only goes with `periodic`; a `{}` behaviour has no schedule to delay",
                    first.name()
                ),
            );
        }
        (None, Some((key, _))) => {
            errors.at(
                key.span(),
                "`initial_delay` in `#[behaviour]` only goes with `periodic`: `#[behaviour(periodic = \"5s\", initial_delay = \"0s\")]`",
            );
        }
        _ => {}
    }
    if errors.count() != before {
        return None;
    }
    kind.and_then(|(_, parsed)| parsed).map(|kind| (kind, singleton))
}

keys! {
    /// The keys of `#[on_message]`.
    enum OnMessageKey in "on_message" {
        Type(syn::token::Type) = "type",
        Topic(kw::topic) = "topic",
        Fallback(kw::fallback) = "fallback",
        Delivery(kw::delivery) = "delivery",
    }
}

fn on_message(attr: &Attribute, errors: &mut Errors) -> Option<RouteArgs> {
    match &attr.meta {
        Meta::Path(_) => return Some(RouteArgs::Inferred(Delivery::Default)),
        Meta::List(list) if list.tokens.is_empty() => return Some(RouteArgs::Inferred(Delivery::Default)),
        Meta::List(_) => {}
        Meta::NameValue(nv) => {
            errors.spanned(
                &nv.value,
                "`#[on_message]` takes its arguments in parentheses: `#[on_message(type = \"Ping\")]`",
            );
            return None;
        }
    }
    let before = errors.count();
    let mut route: Option<(OnMessageKey, RouteArgs)> = None;
    let mut delivery: Option<(LitStr, Delivery)> = None;
    let result = attr.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        args::parse(input, errors, |key, value, errors| {
            if let OnMessageKey::Delivery(_) = key {
                let Some(lit) = value.string("delivery = \"each_replica\"", errors)? else {
                    return Ok(());
                };
                match lit.value().as_str() {
                    "group" => delivery = Some((lit, Delivery::Group)),
                    "each_replica" => delivery = Some((lit, Delivery::EachReplica)),
                    other => errors.spanned(
                        &lit,
                        format!("unknown delivery {other:?} in `#[on_message]`; write `delivery = \"group\"` (once per group of replicas) or `delivery = \"each_replica\"` (every replica)"),
                    ),
                }
                return Ok(());
            }
            if let Some((first, _)) = &route {
                return value.reject(
                    errors,
                    format!(
                        "`#[on_message]` takes one of `type`, `topic` or `fallback`, and `{}` is already given; remove `{}` or write a second handler",
                        first.name(),
                        key.name()
                    ),
                );
            }
            let parsed = match key {
                OnMessageKey::Type(_) => value
                    .string("type = \"Ping\"", errors)?
                    .filter(|lit| check_type_name(lit, errors))
                    .map(|lit| RouteArgs::Type(lit, Delivery::Default)),
                OnMessageKey::Topic(_) => value
                    .strings("topic = \"ping.#\"", errors)?
                    .filter(|lits| {
                        // Every key is checked, so that each bad one is reported.
                        let mut ok = true;
                        for lit in lits {
                            ok &= check_binding_key(lit, errors);
                        }
                        ok
                    })
                    .map(|keys| RouteArgs::Topic(keys, Delivery::Default)),
                OnMessageKey::Fallback(_) => value.flag(errors)?.then_some(RouteArgs::Fallback),
                OnMessageKey::Delivery(_) => unreachable!("handled above"),
            };
            if let Some(parsed) = parsed {
                route = Some((key, parsed));
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        errors.push(e);
        return None;
    }
    let mut route = route.map(|(_, parsed)| parsed);
    if route.is_none() && delivery.is_some() {
        route = Some(RouteArgs::Inferred(Delivery::Default));
    }
    match (&mut route, delivery) {
        (
            Some(RouteArgs::Topic(_, to) | RouteArgs::Type(_, to) | RouteArgs::Inferred(to)),
            Some((_, given)),
        ) => *to = given,
        (_, Some((lit, _))) => errors.spanned(
            &lit,
            "`delivery` in `#[on_message]` does not go with `fallback`: a fallback handler takes what the others leave, once per group; give `delivery` to a `type` or `topic` handler",
        ),
        _ => {}
    }
    if errors.count() != before {
        return None;
    }
    route
}

fn check_type_name(lit: &LitStr, errors: &mut Errors) -> bool {
    let name = lit.value();
    if name.is_empty() {
        errors.spanned(
            lit,
            "`type` in `#[on_message]` must not be empty: `type = \"Ping\"`",
        );
        return false;
    }
    if crate::protocol_rules::is_reserved_type(&name) {
        errors.spanned(
            lit,
            format!("`{name}` is a message type reserved by munggoggo's protocol; name a type of your own, or handle a topic with `topic = \"...\"`"),
        );
        return false;
    }
    true
}

/// An AMQP topic binding key, by the rules the runtime applies to keys it
/// gets at run time (`protocol/rules.rs`): words separated by dots (empty
/// words allowed, as RabbitMQ does), `*` and `#` only as whole words.
fn check_binding_key(lit: &LitStr, errors: &mut Errors) -> bool {
    let key = lit.value();
    match crate::protocol_rules::validate_binding_key(&key) {
        Ok(()) => true,
        Err(problem) => {
            errors.spanned(
                lit,
                format!("the topic binding key {key:?} in `#[on_message]` {problem}"),
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_by_its_name() {
        crate::args::check_names::<ImplKey>();
        crate::args::check_names::<BehaviourKey>();
        crate::args::check_names::<OnMessageKey>();
    }
}
