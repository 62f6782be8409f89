//! Reads the `#[agent]` impl block: finds the methods marked with
//! munggoggo's attributes, parses those attributes' arguments and strips
//! them from the block that is emitted again.

use std::time::Duration;

use syn::{Attribute, ImplItem, ItemImpl, LitStr, Meta, Signature};

use crate::attr::{self, Keys, Role};
use crate::errors::Errors;

/// The impl block, with munggoggo's attributes stripped, and its marked methods.
pub(crate) struct Parsed {
    pub(crate) item: ItemImpl,
    pub(crate) methods: Vec<Marked>,
}

/// A method with one of munggoggo's attributes.
pub(crate) struct Marked {
    pub(crate) role: Role,
    pub(crate) sig: Signature,
    /// The attribute, for errors about the method as a whole.
    pub(crate) attr: Attribute,
    /// The attribute's arguments; `None` when they had errors.
    pub(crate) args: Option<Args>,
}

/// The checked arguments of one attribute.
pub(crate) enum Args {
    Setup,
    Teardown,
    Rpc,
    /// The kind, and whether it is a `singleton`.
    Behaviour(BehaviourArgs, bool),
    OnMessage(RouteArgs),
}

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

impl Role {
    fn parse(self, attr: &Attribute, errors: &mut Errors) -> Option<Args> {
        match self {
            Role::Setup => no_args(attr, self, errors).then_some(Args::Setup),
            Role::Teardown => no_args(attr, self, errors).then_some(Args::Teardown),
            Role::Rpc => no_args(attr, self, errors).then_some(Args::Rpc),
            Role::Behaviour => {
                behaviour(attr, errors).map(|(kind, singleton)| Args::Behaviour(kind, singleton))
            }
            Role::OnMessage => on_message(attr, errors).map(Args::OnMessage),
        }
    }
}

/// Strips munggoggo's attributes from `item` and parses them.
pub(crate) fn parse(mut item: ItemImpl, errors: &mut Errors) -> Parsed {
    let mut methods = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let mut first: Option<(Role, &Attribute)> = None;
        let mut marked = None;
        for attr in &method.attrs {
            let Some(role) = Role::of(attr) else {
                continue;
            };
            if let Some((earlier, _)) = first {
                errors.spanned(
                    attr,
                    format!(
                        "`#[{}]` cannot be combined with `#[{}]` on one method: each method is one kind of handler; move the code into a separate method",
                        role.name(),
                        earlier.name()
                    ),
                );
                continue;
            }
            first = Some((role, attr));
            marked = Some(Marked {
                role,
                sig: method.sig.clone(),
                attr: attr.clone(),
                args: role.parse(attr, errors),
            });
        }
        method.attrs.retain(|attr| Role::of(attr).is_none());
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
    Parsed { item, methods }
}

/// `#[setup]`, `#[teardown]` and `#[rpc]` take no arguments.
fn no_args(attr: &Attribute, role: Role, errors: &mut Errors) -> bool {
    match &attr.meta {
        Meta::Path(_) => true,
        Meta::List(list) if list.tokens.is_empty() => true,
        Meta::List(list) => {
            errors.spanned(
                &list.tokens,
                format!("`#[{0}]` takes no arguments; write just `#[{0}]`", role.name()),
            );
            false
        }
        Meta::NameValue(nv) => {
            errors.spanned(
                &nv.value,
                format!("`#[{0}]` takes no arguments; write just `#[{0}]`", role.name()),
            );
            false
        }
    }
}

const BEHAVIOUR_KEYS: &[&str] = &[
    "periodic",
    "initial_delay",
    "oneshot",
    "delay",
    "cyclic",
    "singleton",
];
const BEHAVIOUR_HELP: &str = "write `#[behaviour(periodic = \"5s\")]`, `#[behaviour(oneshot)]`, `#[behaviour(delay = \"10s\")]` or `#[behaviour(cyclic)]`";

/// The behaviour's kind and whether it is a `singleton`.
fn behaviour(attr: &Attribute, errors: &mut Errors) -> Option<(BehaviourArgs, bool)> {
    if !matches!(attr.meta, Meta::List(_)) {
        errors.spanned(attr, format!("`#[behaviour]` needs a kind: {BEHAVIOUR_HELP}"));
        return None;
    }
    let before = errors.count();
    let mut keys = Keys::new("behaviour", BEHAVIOUR_KEYS);
    let mut kind: Option<(String, Option<BehaviourArgs>)> = None;
    let mut initial_delay: Option<(syn::Path, Option<Duration>)> = None;
    let mut singleton = false;
    let result = attr.parse_nested_meta(|meta| {
        let Some(key) = keys.accept(&meta, errors)? else {
            return Ok(());
        };
        if key == "singleton" {
            singleton = attr::flag(&meta, &keys, errors)?;
            return Ok(());
        }
        if key == "initial_delay" {
            let d = attr::duration(&meta, &keys, false, errors)?;
            initial_delay = Some((meta.path.clone(), d));
            return Ok(());
        }
        if let Some((first, _)) = &kind {
            errors.spanned(
                &meta.path,
                format!(
                    "`#[behaviour]` takes one kind, and `{first}` is already given; remove `{key}` (a behaviour is `periodic`, `oneshot`, `delay` or `cyclic`)"
                ),
            );
            attr::skip_value(&meta)?;
            return Ok(());
        }
        let parsed = match key.as_str() {
            "periodic" => attr::duration(&meta, &keys, true, errors)?.map(|period| BehaviourArgs::Periodic {
                period,
                initial_delay: None,
            }),
            "delay" => attr::duration(&meta, &keys, false, errors)?.map(BehaviourArgs::Delay),
            "oneshot" => attr::flag(&meta, &keys, errors)?.then_some(BehaviourArgs::Oneshot),
            "cyclic" => attr::flag(&meta, &keys, errors)?.then_some(BehaviourArgs::Cyclic),
            _ => unreachable!("every key in BEHAVIOUR_KEYS is handled"),
        };
        kind = Some((key, parsed));
        Ok(())
    });
    if let Err(e) = result {
        errors.push(e);
        return None;
    }
    match (&mut kind, initial_delay) {
        (None, _) if errors.count() == before => {
            errors.spanned(attr, format!("`#[behaviour]` needs a kind: {BEHAVIOUR_HELP}"));
        }
        (Some((_, Some(BehaviourArgs::Periodic { initial_delay, .. }))), Some((_, d))) => *initial_delay = d,
        (Some((first, _)), Some((key, _))) if first != "periodic" => {
            errors.spanned(
                key,
                format!("`initial_delay` in `#[behaviour]` only goes with `periodic`; a `{first}` behaviour has no schedule to delay"),
            );
        }
        (None, Some((key, _))) => {
            errors.spanned(
                key,
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

const ON_MESSAGE_KEYS: &[&str] = &["type", "topic", "fallback", "delivery"];

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
    let mut keys = Keys::new("on_message", ON_MESSAGE_KEYS);
    let mut route: Option<(String, RouteArgs)> = None;
    let mut delivery: Option<(LitStr, Delivery)> = None;
    let result = attr.parse_nested_meta(|meta| {
        let Some(key) = keys.accept(&meta, errors)? else {
            return Ok(());
        };
        if key == "delivery" {
            let Some(lit) = attr::string(&meta, &keys, "delivery = \"each_replica\"", errors)? else {
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
            errors.spanned(
                &meta.path,
                format!(
                    "`#[on_message]` takes one of `type`, `topic` or `fallback`, and `{first}` is already given; remove `{key}` or write a second handler"
                ),
            );
            attr::skip_value(&meta)?;
            return Ok(());
        }
        let parsed = match key.as_str() {
            "type" => attr::string(&meta, &keys, "type = \"Ping\"", errors)?
                .filter(|lit| check_type_name(lit, errors))
                .map(|lit| RouteArgs::Type(lit, Delivery::Default)),
            "topic" => attr::strings(&meta, &keys, "topic = \"ping.#\"", errors)?
                .filter(|lits| {
                    // Every key is checked, so that each bad one is reported.
                    let mut ok = true;
                    for lit in lits {
                        ok &= check_binding_key(lit, errors);
                    }
                    ok
                })
                .map(|keys| RouteArgs::Topic(keys, Delivery::Default)),
            "fallback" => attr::flag(&meta, &keys, errors)?.then_some(RouteArgs::Fallback),
            _ => unreachable!("every key in ON_MESSAGE_KEYS is handled"),
        };
        if let Some(parsed) = parsed {
            route = Some((key, parsed));
        }
        Ok(())
    });
    if let Err(e) = result {
        errors.push(e);
        return None;
    }
    if route.is_none() && delivery.is_some() {
        route = Some(("type".to_owned(), RouteArgs::Inferred(Delivery::Default)));
    }
    match (&mut route, delivery) {
        (
            Some((_, RouteArgs::Topic(_, to) | RouteArgs::Type(_, to) | RouteArgs::Inferred(to))),
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
    route.map(|(_, parsed)| parsed)
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
