//! The broker nodes a bus may connect to: one URL names one node, or the
//! nodes of a cluster with their addresses separated by commas, as libpq's
//! and MongoDB's connection strings do:
//! `amqp://user:password@h1:5672,h2:5672,h3:5672/vhost?durable=true`.
//! Every node shares the URL's credentials, vhost and options. The first
//! connection tries the nodes in the order given; a lost connection is
//! replaced on the next node of the list.

use lapin::uri::AMQPUri;

use crate::error::{Error, Result};

/// One node: its URI for lapin, and its address for log lines (`h2:5672`).
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) uri: AMQPUri,
    pub(super) address: String,
}

/// Parses `url` (already without munggoggo's own query parameters) into
/// its nodes; `shown` is the URL without its password, for errors.
pub(super) fn parse(url: &str, shown: &str) -> Result<Vec<Node>> {
    split(url)
        .into_iter()
        .map(|one| {
            let uri: AMQPUri = one.parse().map_err(|e: String| {
                Error::Config(format!(
                    "invalid broker URL `{shown}`: {}",
                    e.replace(&one, shown).replace(url, shown)
                ))
            })?;
            let address = format!("{}:{}", uri.authority.host, uri.authority.port);
            Ok(Node { uri, address })
        })
        .collect()
}

/// One URL per host of the authority: `amqp://u:p@a,b:5673/v?q` becomes
/// `amqp://u:p@a/v?q` and `amqp://u:p@b:5673/v?q`. A URL of one host is
/// returned as it is.
fn split(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_owned()];
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    if !hosts.contains(',') {
        return vec![url.to_owned()];
    }
    hosts
        .split(',')
        .map(|host| format!("{scheme}://{userinfo}{}{tail}", host.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_several_hosts_names_one_node_each() {
        let url = "amqp://u:p@h1:5672,h2,h3:5673/v?heartbeat=5";
        let nodes = parse(url, "amqp://u:***@h1:5672,h2,h3:5673/v?heartbeat=5").unwrap();
        let addresses: Vec<&str> = nodes.iter().map(|n| n.address.as_str()).collect();
        assert_eq!(addresses, ["h1:5672", "h2:5672", "h3:5673"]);
        assert!(nodes.iter().all(|n| n.uri.vhost == "v"));
        assert!(nodes.iter().all(|n| n.uri.authority.userinfo.password == "p"));
        assert_eq!(split("amqp://h:1/%2f"), ["amqp://h:1/%2f"]);
        assert_eq!(split("amqps://a,b"), ["amqps://a", "amqps://b"]);
    }

    #[test]
    fn a_bad_host_is_an_error_without_the_password() {
        let e = parse(
            "amqp://u:secret@h1:5672,h2:notaport/v",
            "amqp://u:***@h1:5672,h2:notaport/v",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("invalid broker URL"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
